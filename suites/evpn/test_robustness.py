"""What a BGP EVPN speaker does with routes a reference speaker sends on purpose (RFC 7432, RFC 8365, RFC 7606):
a route without the VXLAN encapsulation community, a label that is not the VNI, route distinguishers of every
type, and a malformed NLRI. The cell passes when the judged side survives all of it and keeps (or re-establishes)
its session; what it did with each route is written to findings.txt in the pair's folder."""
import struct

import pytest

from harness.protocols.evpn import bgp
from harness.protocols.evpn.scenario import Scenario

pytestmark = [pytest.mark.protocol("evpn"), pytest.mark.features("evpn"), pytest.mark.probes]

TIMEOUT_S = 30
SETTLE_S = 3  # after the control route is installed, how long the others get to be


def _mac(n: int) -> str:
    return f"02:4f:49:ee:00:{n:02x}"


def _malformed_nlri(next_hop: str, session: dict) -> list:
    """ORIGIN, AS_PATH, LOCAL_PREF as the session needs, and an MP_REACH_NLRI whose type-2 route says length 30: no
    MAC/IP route can have it (RFC 7432 7.2)."""
    value = struct.pack("!HBB4sB", bgp.AFI_L2VPN, bgp.SAFI_EVPN, 4, bytes(map(int, next_hop.split("."))), 0)
    value += bytes([2, 30]) + b"\x00" * 30
    path = b"".join(struct.pack("!BBI", 2, 1, asn) for asn in session.get("as_path", []))
    attributes = [bgp.Origin(), bgp.AsPath(flags=bgp.TRANSITIVE, type_code=2, value=path)]
    if "local_pref" in session:
        attributes.append(bgp.LocalPref(local_pref=session["local_pref"]))
    return attributes + [bgp.PathAttribute(flags=bgp.OPTIONAL | bgp.EXTENDED, type_code=14, value=value)]


@pytest.mark.severity("normal")
def test_robustness(evpn_pair):
    """RFC 7606 and RFC 7432: a speaker never crashes on a route it dislikes; a malformed NLRI is treated as a
    withdrawal or resets the session (then re-established), and well-formed routes with unusual values (no
    encapsulation community, label != VNI, RD types 0, 1, 2) are taken or left, never fatal."""
    lab = evpn_pair.start(Scenario())
    prober, judged = lab.pair_lab.prober, lab.pair_lab.judged
    segment = lab.segments[0]
    here, there = lab.address(prober), lab.address(judged)
    rt = bgp.route_target(lab.sides[prober].route_targets[segment.vni])
    vxlan = bgp.ExtEncapsulation(tunnel_type=8)
    lab.wait_established(TIMEOUT_S)

    variants = {
        "control (RD type 1, encapsulation VXLAN, label = VNI)":
            (bgp.mac_ip_route(lab.rd(prober), _mac(1), segment.vni), [rt, vxlan]),
        "no encapsulation community": (bgp.mac_ip_route(lab.rd(prober), _mac(2), segment.vni), [rt]),
        "label 999 in VNI 100's route target": (bgp.mac_ip_route(lab.rd(prober), _mac(3), 999), [rt, vxlan]),
        "RD type 0": (bgp.mac_ip_route("65000:100", _mac(4), segment.vni), [rt, vxlan]),
        "RD type 2": (bgp.EvpnMacIp(rd=bgp.rd("65000:100", kind=2), mac=_mac(5), vni=segment.vni), [rt, vxlan]),
    }
    for number, (what, (route, communities)) in enumerate(variants.items(), start=1):
        lab.send(prober, lab.update(prober, reach=[route], communities=communities), f"variant-{number}")

    findings = []
    installs = lab.has(judged, "data_plane")
    if installs:
        control = lab.until(lambda: lab.remote_macs(judged).get(_mac(1)) == here, TIMEOUT_S)
        assert control, (f"{judged} never installed the control route's MAC {_mac(1)} towards {here}: "
                         f"{lab.remote_macs(judged)}\n{lab.explain()}")
        lab.until(lambda: False, SETTLE_S)
        learned = lab.remote_macs(judged)
        for number, what in enumerate(variants, start=1):
            findings.append(f"{what}: " + (f"installed towards {learned[_mac(number)]}" if _mac(number) in learned
                                           else "not installed"))
    else:
        findings.append(f"{lab.vendor_name(judged)} has no data plane: what it took is not visible in a kernel")

    lab.send(prober, bgp.update(extra=_malformed_nlri(here, lab.sides[prober].session_attributes())),
             "malformed-nlri", once=True)
    lab.until(lambda: False, SETTLE_S)  # time to react: a NOTIFICATION, a reset, or nothing
    status, exit_code = lab.nodes[judged].status()
    assert exit_code is None, (f"{judged} ({lab.vendor_name(judged)}) died after the malformed NLRI (exit "
                               f"{exit_code}):\n{lab.explain()}")
    back = lab.until(lambda: here in lab.endpoints[judged].established(), TIMEOUT_S)
    wire = lab.wire()
    malformed = [r for r in wire.updates(src=here) if any("length 30 is none it can have" in p
                                                          for p in r.message.problems)]
    assert malformed, f"the malformed UPDATE is not on the wire:\n{wire.describe()}"
    after = [r for r in wire.messages(src=there) if r.number > malformed[0].number]
    notifications = [r for r in after if r.type_name == "NOTIFICATION"]
    findings.append("malformed NLRI (type-2 route of length 30): " + (
        f"NOTIFICATION {notifications[0].message.text().removeprefix('NOTIFICATION ')}, session reset"
        if notifications else "no NOTIFICATION (treated as withdrawal or ignored)"))
    (lab.pair_lab.dir / "findings.txt").write_text("\n".join(findings) + "\n")
    assert back and any(r.type_name in ("KEEPALIVE", "OPEN", "UPDATE") for r in after), (
        f"{judged} did not keep or re-establish its session after the malformed NLRI:\n" + "\n".join(findings)
        + f"\n{wire.describe()}")
