"""Geneve (RFC 8926) between two VTEPs, without and with option TLVs."""
import pytest

from harness.protocols.vxlan.scenario import GENEVE_OPTION, GENEVE_PORT, Scenario

pytestmark = [pytest.mark.protocol("vxlan"), pytest.mark.features("geneve")]

TRANSPARENT_ETHERNET = 0x6558


def _ping_both_ways(lab):
    for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        result = lab.ping(src, dst)
        assert result.all_answered, f"{src} -> {dst} inner ping over Geneve: {result.output}\n{lab.explain()}"


def test_geneve(vxlan_pair):
    """RFC 8926 3.4: Geneve over UDP 6081, version 0, protocol type 0x6558 (Ethernet) and the VNI; the peer
    decapsulates to the inner host, both ways."""
    lab = vxlan_pair.start(Scenario(encapsulation="geneve"))
    _ping_both_ways(lab)
    wire = lab.wire()
    frames = wire.frames()
    assert frames, f"no Geneve on the wire:\n{wire.describe()}"
    for frame in frames:
        assert frame.encapsulation == "geneve" and frame.dport == GENEVE_PORT, frame.describe()
        assert frame.header.version == 0 and frame.header.protocol == TRANSPARENT_ETHERNET, frame.describe()
        assert frame.vni == lab.segments[0].vni, frame.describe()


@pytest.mark.features("geneve", "geneve_options")
def test_geneve_options(vxlan_pair):
    """RFC 8926 3.5: options are TLVs after the base header; a receiver ignores a non-critical option it does not
    understand (3.5.1). Every VTEP sends one experimental option: the inner traffic still flows both ways."""
    lab = vxlan_pair.start(Scenario(encapsulation="geneve", geneve_options=True))
    _ping_both_ways(lab)
    wire = lab.wire()
    for name in ("vtep1", "vtep2"):
        sent = wire.frames(src=lab.address(name))
        assert sent, f"no Geneve from {name}:\n{wire.describe()}"
        wanted = (GENEVE_OPTION["class"], GENEVE_OPTION["type"], GENEVE_OPTION["data"])
        missing = [f for f in sent if wanted not in {(o.cls, o.type, o.data) for o in f.options}]
        assert not missing, f"{name} sent frames without the option {wanted}:\n{missing[0].describe()}"
