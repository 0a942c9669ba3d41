"""BGP EVPN for VXLAN (RFC 7432, RFC 8365) between two VTEPs, and three where the flood list needs it: judged from
the BGP UPDATEs on the wire (decoded by harness/protocols/evpn/bgp.py) and from the kernel's fdb read as JSON."""
import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario
from harness.protocols.vxlan.scenario import VXLAN_PORT

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn")]

TIMEOUT_S = 30


@pytest.mark.severity("critical")
@pytest.mark.features("data_plane")
def test_flood_list(evpn_pair):
    """RFC 8365 9 and RFC 7432 11: each VTEP advertises an Inclusive Multicast route for its VNI with a PMSI tunnel
    attribute of type ingress replication naming its own address and the VNI; every other VTEP adds it to the VNI's
    flood list on peer up, removes it on withdrawal and on peer down; a broadcast then reaches every remote VTEP
    exactly once."""
    lab = evpn_pair.start(Scenario(vtep_count=3))
    names = list(lab.nodes)
    lab.wait_established(TIMEOUT_S)
    for name in names:
        others = {lab.address(n) for n in names if n != name}
        lab.wait(lambda: lab.flood_list(name) >= others, f"{name}'s flood list to hold {sorted(others)}", TIMEOUT_S)

    # A broadcast from vtep1's host: ARP for an address nobody has, so it stays a broadcast.
    lab.inner_host("vtep1").exec(["arping", "-c", "1", "-w", "1", "198.19.100.99"], timeout=5)
    lab.ping("vtep1", "vtep2")  # traffic that needs the flood list first (ARP), then unicast

    # Withdrawal: vtep2 stops serving the VNI; vtep1 and vtep3 take it out of their flood lists.
    lab.withdraw_vni("vtep2")
    for name in ("vtep1", "vtep3"):
        lab.wait(lambda: lab.address("vtep2") not in lab.flood_list(name),
                 f"{name} to drop vtep2 ({lab.address('vtep2')}) from its flood list after vtep2 withdrew the VNI",
                 TIMEOUT_S)
    # Peer down: vtep3's BGP daemon dies; vtep1 takes it out of its flood list.
    lab.stop("vtep3")
    lab.wait(lambda: lab.address("vtep3") not in lab.flood_list("vtep1"),
             f"vtep1 to drop vtep3 ({lab.address('vtep3')}) from its flood list after vtep3 went down", TIMEOUT_S)

    wire = lab.wire()
    for name in ("vtep2", "vtep3"):
        address = lab.address(name)
        flood = wire.advertised(route_type=3, src=address)
        assert flood, f"no Inclusive Multicast route from {name} ({address}) on the wire:\n{wire.describe()}"
        record, route = flood[0]
        pmsi = record.message.attribute(bgp.PmsiTunnel)
        assert route.ip_text == address, f"{name}'s type-3 route names {route.ip_text}:\n{wire.describe()}"
        assert pmsi is not None and pmsi.tunnel_type == 6, \
            f"{name}'s type-3 route lacks PMSI ingress replication (RFC 8365 9):\n{wire.describe()}"
        assert pmsi.vni == lab.segments[0].vni and bgp._ip_text(bytes(pmsi.tunnel_id)) == address, \
            f"{name}'s PMSI tunnel says VNI {pmsi.vni} endpoint {bgp._ip_text(bytes(pmsi.tunnel_id))}:\n{wire.describe()}"
        encapsulation = record.message.community(bgp.ExtEncapsulation)
        assert encapsulation is not None and encapsulation.tunnel_type == 8, \
            f"{name}'s type-3 route lacks the VXLAN encapsulation community (RFC 8365 5.1.3):\n{wire.describe()}"

    withdrawn = wire.withdrawn(route_type=3, src=lab.address("vtep2"))
    assert withdrawn and withdrawn[0][1].ip_text == lab.address("vtep2"), \
        f"vtep2 removed its VNI but withdrew no Inclusive Multicast route:\n{wire.describe()}"

    overlay = lab.overlay()
    vni = lab.segments[0].vni
    broadcasts = [f for f in overlay.frames(vni=vni, src=lab.address("vtep1"))
                  if f.inner is not None and f.inner.arp is not None and f.inner.arp.target_ip == "198.19.100.99"]
    copies = {}
    for frame in broadcasts:
        copies[frame.dst] = copies.get(frame.dst, 0) + 1
    wanted = {lab.address("vtep2"): 1, lab.address("vtep3"): 1}
    assert copies == wanted, (f"the broadcast left vtep1 as {copies or 'nothing'}; RFC 8365 9: one copy to each "
                              f"remote VTEP in the flood list, {wanted}:\n{overlay.describe()}")
    assert {f.dport for f in broadcasts} == {VXLAN_PORT}, overlay.describe()


@pytest.mark.severity("critical")
@pytest.mark.features("data_plane")
def test_mac_routes(evpn_pair):
    """RFC 7432 9.2.1 and 7.2: a VTEP advertises a MAC/IP route for each MAC it learns behind it (MAC+IP once it
    knows the host's address) with the VNI as its label; its peer installs the MAC towards that VTEP; when the MAC
    leaves, the route is withdrawn and the entry removed."""
    lab = evpn_pair.start(Scenario(svi=True))
    lab.wait_established(TIMEOUT_S)
    lab.wait(lambda: lab.flood_list("vtep1") and lab.flood_list("vtep2"), "both flood lists", TIMEOUT_S)
    for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        result = lab.ping(src, dst)
        assert result.all_answered, f"{src} -> {dst} inner ping: {result.output}\n{lab.explain()}"
    # The SVI learns each host's IP from its ARP: MAC+IP routes follow.
    for name in ("vtep1", "vtep2"):
        lab.inner_host(name).exec(["ping", "-c", "1", "-W", "1", lab.sides[name].svi_address(lab.segments[0])], timeout=5)
    mac2, mac1 = lab.inner_mac("vtep2"), lab.inner_mac("vtep1")
    lab.wait(lambda: lab.remote_macs("vtep1").get(mac2) == lab.address("vtep2"),
             f"vtep1 to install {mac2} towards vtep2", TIMEOUT_S)
    lab.wait(lambda: lab.remote_macs("vtep2").get(mac1) == lab.address("vtep1"),
             f"vtep2 to install {mac1} towards vtep1", TIMEOUT_S)

    lab.host_link("vtep2", up=False)  # the host leaves: its MAC is flushed from vtep2's bridge
    lab.wait(lambda: mac2 not in lab.remote_macs("vtep1"), f"vtep1 to remove {mac2} after vtep2's withdrawal",
             TIMEOUT_S)

    wire = lab.wire()
    vni = lab.segments[0].vni
    for name, mac in (("vtep1", mac1), ("vtep2", mac2)):
        address, ip = lab.address(name), lab.inner_address(name)
        routes = wire.advertised(route_type=2, mac=mac)
        assert routes, f"no MAC/IP route for {name}'s host {mac} on the wire:\n{wire.describe()}"
        assert all(route.vni == vni for _, route in routes), \
            f"{mac}'s MAC/IP routes carry labels {[r.vni for _, r in routes]}, not VNI {vni}:\n{wire.describe()}"
        assert all(r.message.attribute(bgp.MpReach).next_hop == bytes(map(int, address.split(".")))
                   for r, _ in routes), f"{mac}'s routes name another next hop than {address}:\n{wire.describe()}"
        assert wire.advertised(route_type=2, mac=mac, ip_text=ip), \
            f"no MAC+IP route {mac} {ip} from {name} after its host ARPed:\n{wire.describe()}"
    gone = wire.withdrawn(route_type=2, src=lab.address("vtep2"), mac=mac2)
    assert gone, f"vtep2 never withdrew {mac2} after its host left:\n{wire.describe()}"
