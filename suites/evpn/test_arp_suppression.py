"""ARP suppression (RFC 7432 10, RFC 9161 3): once a VTEP knows a remote host's MAC+IP from a type-2 route, it
answers its local hosts' ARP requests for that address itself; no ARP request for it crosses the overlay."""
import pytest

from harness.protocols.evpn.scenario import Scenario

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn", "arp_suppression")]

TIMEOUT_S = 30
BROADCAST = "ff:ff:ff:ff:ff:ff"


@pytest.mark.severity("normal")
def test_arp_suppression(evpn_pair):
    """RFC 7432 10: a PE with the MAC+IP of a remote host answers broadcast ARP requests for it locally (proxy ARP),
    so vtep1's host gets its answers and vtep1 floods no ARP request for vtep2's host into VXLAN."""
    lab = evpn_pair.start(Scenario(svi=True, arp_suppression=True))
    segment = lab.segments[0]
    lab.wait_established(TIMEOUT_S)
    target, mac = lab.inner_address("vtep2"), lab.inner_mac("vtep2")
    lab.inner_host("vtep2").exec(["ping", "-c", "1", "-W", "1", lab.sides["vtep2"].svi_address(segment)], timeout=5)
    known = lab.until_wire(lambda w: w.advertised(route_type=2, src=lab.address("vtep2"), mac=mac, ip_text=target),
                           TIMEOUT_S)
    assert known, f"vtep2 never advertised MAC+IP {mac} {target}: nothing to suppress ARP with\n{lab.explain()}"
    lab.until(lambda: lab.flood_list("vtep1"), TIMEOUT_S)
    # -b: every request broadcast (arping unicasts to a MAC it has heard from; unicast ARP is not suppressed)
    answer = lab.inner_host("vtep1").exec(["arping", "-b", "-c", "3", "-w", "3", target], timeout=10)

    wire, overlay = lab.wire(), lab.overlay()
    (route_record, _), = wire.advertised(route_type=2, src=lab.address("vtep2"), mac=mac, ip_text=target)[:1]
    crossed = [f for f in overlay.frames(vni=segment.vni, src=lab.address("vtep1"))
               if f.inner is not None and f.inner.arp is not None and f.inner.arp.target_ip == target
               and f.inner.arp.kind == "request" and f.inner.dst == BROADCAST
               and f.number > route_record.number]
    assert "Received 0 response" not in answer.output and "reply from" in answer.output.lower(), \
        f"vtep1's host got no ARP answer for {target} (suppression should answer it):\n{answer.output}"
    assert not crossed, (f"{len(crossed)} broadcast ARP request(s) for {target} crossed the overlay after vtep2's "
                         f"MAC+IP route (frame {route_record.number}):\n" + "\n".join(f.describe() for f in crossed))
