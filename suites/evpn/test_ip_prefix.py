"""Type-5 IP prefix routes (RFC 9136) in the default VRF: each VTEP announces a prefix of its own with the L3 VNI as
label, its router's MAC and the VXLAN encapsulation; its peer routes the prefix towards it."""
import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn", "type5")]

TIMEOUT_S = 30
L3VNI = 4001


@pytest.mark.severity("normal")
def test_ip_prefix_routes(evpn_pair):
    """RFC 9136 3 and 4.4.1: an IP Prefix route carries the prefix, the L3 VNI in its label (RFC 8365 5.1.3), the
    router's MAC extended community (RFC 9135 8.1) and the encapsulation; the receiving VTEP installs a route to
    the prefix through the advertising VTEP."""
    lab = evpn_pair.start(Scenario(l3vni=L3VNI))
    lab.wait_established(TIMEOUT_S)
    for name, other in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        prefix = lab.sides[other].prefix
        lab.until(lambda: any(r.get("gateway") == lab.address(other) for r in lab.routes(name, prefix)), TIMEOUT_S)
    installed = {name: lab.routes(name, lab.sides[other].prefix) for name, other in (("vtep1", "vtep2"),
                                                                                      ("vtep2", "vtep1"))}
    wire = lab.wire()
    for name, other in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        address, prefix = lab.address(name), lab.sides[name].prefix
        sent = wire.advertised(route_type=5, src=address, prefix_text=prefix)
        assert sent, f"no IP Prefix route for {prefix} from {name}:\n{wire.describe()}"
        record, route = sent[0]
        assert route.vni == L3VNI, f"{name}'s type-5 route carries label {route.vni}, not the L3 VNI {L3VNI}"
        assert record.message.community(bgp.ExtRouterMac) is not None, \
            f"{name}'s type-5 route lacks the router's MAC (RFC 9135 8.1):\n{wire.describe()}"
        encapsulation = record.message.community(bgp.ExtEncapsulation)
        assert encapsulation is not None and encapsulation.tunnel_type == 8, \
            f"{name}'s type-5 route lacks the VXLAN encapsulation:\n{wire.describe()}"
        routes = installed[other]
        assert any(r.get("gateway") == address for r in routes), \
            f"{other} has no route to {name}'s {prefix} through {address}: {routes}"
