"""BGP EVPN for VXLAN (RFC 7432, RFC 8365) between two VTEPs, and three where the flood list needs it: judged from
the BGP UPDATEs on the wire (decoded by harness/protocols/evpn/bgp.py) and from the kernel's fdb read as JSON.
A control-plane peer without a data plane (GoBGP) is judged on what it sends; its peer, on what it installs."""
import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario
from harness.protocols.vxlan.scenario import VXLAN_PORT

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn")]

TIMEOUT_S = 30
NOBODY = "198.19.100.99"  # an inner address no host holds: ARP for it stays a broadcast


def assert_flood_route(wire, name, address, vni):
    """RFC 8365 9 / RFC 7432 11: an Inclusive Multicast route naming the VTEP, a PMSI tunnel attribute of type
    ingress replication with the VNI as label and the VTEP as endpoint, and the VXLAN encapsulation community."""
    flood = wire.advertised(route_type=3, src=address)
    assert flood, f"no Inclusive Multicast route from {name} ({address}) on the wire:\n{wire.describe()}"
    record, route = flood[0]
    assert route.ip_text == address, f"{name}'s type-3 route names {route.ip_text}:\n{wire.describe()}"
    pmsi = record.message.attribute(bgp.PmsiTunnel)
    assert pmsi is not None and pmsi.tunnel_type == 6, \
        f"{name}'s type-3 route lacks PMSI ingress replication (RFC 8365 9):\n{wire.describe()}"
    endpoint = bgp._ip_text(bytes(pmsi.tunnel_id))
    assert pmsi.vni == vni and endpoint == address, \
        f"{name}'s PMSI tunnel says VNI {pmsi.vni} endpoint {endpoint}, not {vni} {address}:\n{wire.describe()}"
    encapsulation = record.message.community(bgp.ExtEncapsulation)
    assert encapsulation is not None and encapsulation.tunnel_type == 8, \
        f"{name}'s type-3 route lacks the VXLAN encapsulation community (RFC 8365 5.1.3):\n{wire.describe()}"


@pytest.mark.severity("critical")
@pytest.mark.any_features("data_plane")
def test_flood_list(evpn_pair):
    """RFC 8365 9 and RFC 7432 11: each VTEP advertises an Inclusive Multicast route for its VNI with a PMSI tunnel
    attribute of type ingress replication naming its own address and the VNI; every other VTEP adds it to the VNI's
    flood list on peer up, removes it on withdrawal and on peer down; a broadcast then reaches every remote VTEP
    exactly once (as far as vtep1's capture sees: every copy where vtep1 sends it, the copy to vtep1 otherwise)."""
    lab = evpn_pair.start(Scenario(vtep_count=3))
    names = list(lab.nodes)
    forwarding = lab.data_planes()
    lab.wait_established(TIMEOUT_S)
    for name in forwarding:
        others = {lab.address(n) for n in names if n != name}
        assert lab.until(lambda: lab.flood_list(name) >= others, TIMEOUT_S), \
            f"{name}'s flood list is {sorted(lab.flood_list(name))}, not {sorted(others)}:\n{lab.explain()}"

    for name in ("vtep2", "vtep3"):  # an UPDATE may lag the install (FRR holds its first ones ~7 s for some peers)
        lab.until_wire(lambda w: w.advertised(route_type=3, src=lab.address(name)), TIMEOUT_S)

    sender = forwarding[0]
    lab.inner_host(sender).exec(["arping", "-c", "1", "-w", "1", NOBODY], timeout=5)

    # Withdrawal: vtep2 stops serving the VNI; the others take it out of their flood lists.
    lab.withdraw_vni("vtep2")
    for name in (n for n in forwarding if n != "vtep2"):
        assert lab.until(lambda: lab.address("vtep2") not in lab.flood_list(name), TIMEOUT_S), \
            f"{name} kept vtep2 ({lab.address('vtep2')}) in its flood list after vtep2 withdrew the VNI"
    # Peer down: vtep3's BGP speaker dies; vtep1 takes it out of its flood list.
    lab.stop("vtep3")
    if lab.has("vtep1", "data_plane"):
        assert lab.until(lambda: lab.address("vtep3") not in lab.flood_list("vtep1"), TIMEOUT_S), \
            f"vtep1 kept vtep3 ({lab.address('vtep3')}) in its flood list after vtep3 went down"

    wire = lab.wire()
    vni = lab.segments[0].vni
    for name in ("vtep2", "vtep3"):
        assert_flood_route(wire, name, lab.address(name), vni)
    withdrawn = wire.withdrawn(route_type=3, src=lab.address("vtep2"))
    assert withdrawn and withdrawn[0][1].ip_text == lab.address("vtep2"), \
        f"vtep2 removed its VNI but withdrew no Inclusive Multicast route:\n{wire.describe()}"

    overlay = lab.overlay()
    broadcasts = [f for f in overlay.frames(vni=vni, src=lab.address(sender))
                  if f.inner is not None and f.inner.arp is not None and f.inner.arp.target_ip == NOBODY]
    copies = {}
    for frame in broadcasts:
        copies[frame.dst] = copies.get(frame.dst, 0) + 1
    seen = [n for n in names if n != sender] if sender == "vtep1" else ["vtep1"]
    wanted = {lab.address(n): 1 for n in seen}
    assert copies == wanted, (f"the broadcast left {sender} as {copies or 'nothing'} (destination: copies); RFC 8365 "
                              f"9: one copy to each remote VTEP of the flood list, {wanted}:\n{overlay.describe()}")
    assert {f.dport for f in broadcasts} == {VXLAN_PORT}, overlay.describe()


@pytest.mark.severity("critical")
@pytest.mark.any_features("data_plane")
def test_mac_routes(evpn_pair):
    """RFC 7432 9.2.1 and 7.2: a VTEP advertises a MAC/IP route for each MAC behind it (MAC+IP once it knows the
    host's address) with the VNI as its label and itself as next hop; its peer installs the MAC towards that VTEP;
    when the MAC leaves, the route is withdrawn and the entry removed."""
    lab = evpn_pair.start(Scenario(svi=True))
    forwarding = lab.data_planes()
    lab.wait_established(TIMEOUT_S)
    for name in forwarding:
        assert lab.until(lambda: lab.flood_list(name), TIMEOUT_S), f"{name} never built a flood list:\n{lab.explain()}"
    if len(forwarding) == 2:
        for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
            result = lab.ping(src, dst)
            assert result.all_answered, f"{src} -> {dst} inner ping: {result.output}\n{lab.explain()}"
    for name in forwarding:  # the host talks to its VTEP's SVI: its MAC is learned, and its IP with it
        lab.inner_host(name).exec(["ping", "-c", "1", "-W", "1", lab.sides[name].svi_address(lab.segments[0])],
                                  timeout=5)
    other = {"vtep1": "vtep2", "vtep2": "vtep1"}
    for name in forwarding:
        mac = lab.inner_mac(other[name])
        assert lab.until(lambda: lab.remote_macs(name).get(mac) == lab.address(other[name]), TIMEOUT_S), \
            f"{name} did not install {mac} towards {other[name]}: {lab.remote_macs(name)}"

    for name in ("vtep1", "vtep2"):  # an UPDATE may lag the install (FRR holds its first ones ~7 s for some peers)
        lab.until_wire(lambda w: w.advertised(route_type=2, src=lab.address(name), mac=lab.inner_mac(name),
                                              ip_text=lab.inner_address(name)), TIMEOUT_S)
    mac2 = lab.inner_mac("vtep2")
    lab.host_link("vtep2", up=False)  # the host leaves
    lab.until_wire(lambda wire: wire.withdrawn(route_type=2, src=lab.address("vtep2"), mac=mac2), TIMEOUT_S)
    if "vtep1" in forwarding:
        assert lab.until(lambda: mac2 not in lab.remote_macs("vtep1"), TIMEOUT_S), \
            f"vtep1 kept {mac2} towards {lab.remote_macs('vtep1').get(mac2)} after vtep2's host left"

    wire = lab.wire()
    vni = lab.segments[0].vni
    for name in ("vtep1", "vtep2"):
        address, ip, mac = lab.address(name), lab.inner_address(name), lab.inner_mac(name)
        routes = wire.advertised(route_type=2, src=address, mac=mac)
        assert routes, f"no MAC/IP route for {name}'s host {mac} on the wire:\n{wire.describe()}"
        assert all(route.vni == vni for _, route in routes), \
            f"{mac}'s MAC/IP routes carry labels {[r.vni for _, r in routes]}, not VNI {vni}:\n{wire.describe()}"
        hops = {bgp._ip_text(bytes(r.message.attribute(bgp.MpReach).next_hop)) for r, _ in routes}
        assert hops == {address}, f"{mac}'s routes name next hop {hops}, not {address}:\n{wire.describe()}"
        assert wire.advertised(route_type=2, src=address, mac=mac, ip_text=ip), \
            f"no MAC+IP route {mac} {ip} from {name} once its host had talked:\n{wire.describe()}"
    assert wire.withdrawn(route_type=2, src=lab.address("vtep2"), mac=mac2), \
        f"vtep2 never withdrew {mac2} after its host left:\n{wire.describe()}"
