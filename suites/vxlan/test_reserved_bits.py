"""The harness's own VTEP (vtep1) sends frames whose header bits a vendor VTEP must tolerate: one row per
vendor. Each frame carries an ICMP echo request to the vendor's inner host: an echo reply on the wire means
the frame was accepted."""
import pytest

from harness.protocols.vxlan.frames import arp_request, echo_request, vxlan
from harness.protocols.vxlan.scenario import Scenario

pytestmark = [pytest.mark.protocol("vxlan"), pytest.mark.features("vxlan"), pytest.mark.probes]

CONTROL = 0x4f00  # ICMP identifier of the clean control frame


def _answered_variants(lab, variants: dict[str, dict]) -> tuple[set[str], str]:
    """Send an ARP request (so the vendor's inner host knows the probe's MAC), a clean control echo, then one
    echo per header variant; return the variants whose echo was answered."""
    segment = lab.segments[0]
    mine, theirs = (lab.inner_mac("vtep1"), lab.inner_address("vtep1")), (lab.inner_mac("vtep2"), lab.inner_address("vtep2"))
    idents = {name: CONTROL + 1 + i for i, name in enumerate(variants)}
    frames = [vxlan(segment.vni, arp_request(mine[0], mine[1], theirs[1])),
              vxlan(segment.vni, echo_request(mine[0], theirs[0], mine[1], theirs[1], ident=CONTROL, seq=1))]
    frames += [vxlan(segment.vni, echo_request(mine[0], theirs[0], mine[1], theirs[1], ident=idents[name], seq=1),
                     **bits) for name, bits in variants.items()]
    lab.inject("vtep1", "vtep2", frames)
    wire = lab.wire()
    answered = {e.inner.icmp.id for e in wire.echoes(src=lab.address("vtep2")).replies()}
    assert CONTROL in answered, f"the vendor did not answer even a clean frame:\n{wire.describe()}\n{lab.explain()}"
    return {name for name, ident in idents.items() if ident in answered}, wire.describe()


def test_reserved_flags(vxlan_pair):
    """RFC 7348 5: the 7 flag bits other than I are reserved: MUST be zero on transmission and ignored on
    receipt. Frames with them set are accepted like any other."""
    lab = vxlan_pair.start(Scenario())
    variants = {"all R flags set (0xff)": {"flags": 0xFF}, "GPE-style P bit (0x0c)": {"flags": 0x0C}}
    accepted, wire = _answered_variants(lab, variants)
    dropped = sorted(set(variants) - accepted)
    assert not dropped, f"dropped frames with {', '.join(dropped)} (RFC 7348 5: ignored on receipt)\n{wire}"


def test_reserved_fields(vxlan_pair):
    """RFC 7348 5: the 24-bit field after the flags and the 8-bit field after the VNI are reserved: MUST be zero
    on transmission and ignored on receipt."""
    lab = vxlan_pair.start(Scenario())
    variants = {"reserved 24 bits set": {"reserved24": 0xABCDEF}, "reserved 8 bits set": {"reserved8": 0x5A}}
    accepted, wire = _answered_variants(lab, variants)
    dropped = sorted(set(variants) - accepted)
    assert not dropped, f"dropped frames with {', '.join(dropped)} (RFC 7348 5: ignored on receipt)\n{wire}"
