"""VXLAN (RFC 7348) between two VTEPs, and three where head-end replication and learning need it."""
import pytest

from harness.protocols.vxlan.frames import echo_request, vxlan
from harness.protocols.vxlan.scenario import VXLAN_PORT, Scenario, Segment

pytestmark = [pytest.mark.protocol("vxlan"), pytest.mark.features("vxlan")]

BLUE, RED = Segment(vni=100, k=100), Segment(vni=200, k=101)
UNKNOWN_VNI = 999
BOTH_WAYS = (("vtep1", "vtep2"), ("vtep2", "vtep1"))


def assert_valid_headers(frames, vni):
    """RFC 7348 5: the I flag set, every reserved bit zero, the VNI as configured; the outer UDP checksum zero
    (as it SHOULD be) or correct (as it MUST be if not zero)."""
    for frame in frames:
        assert frame.i_flag and frame.reserved_clear, f"bad VXLAN header: {frame.describe()}"
        assert frame.vni == vni, f"expected VNI {vni}: {frame.describe()}"
        assert frame.udp_checksum_ok, f"outer UDP checksum neither zero nor correct: {frame.describe()}"


@pytest.mark.severity("critical")  # the overlay every data centre starts with
def test_unicast(vxlan_pair):
    """RFC 7348 5: a VTEP encapsulates the inner frame in UDP to port 4789 with the I flag set, the reserved
    bits zero and the segment's VNI; the peer decapsulates it to the inner host, both ways."""
    lab = vxlan_pair.start(Scenario())
    for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        result = lab.ping(src, dst)
        assert result.all_answered, f"{src} -> {dst} inner ping: {result.output}\n{lab.explain()}"

    wire = lab.wire()
    for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        echoes = wire.echoes(src=lab.address(src), dst=lab.address(dst))
        inner = {(e.inner.ip.src, e.inner.ip.dst) for e in echoes}
        assert (lab.inner_address(src), lab.inner_address(dst)) in inner, \
            f"no echo {lab.inner_address(src)} > {lab.inner_address(dst)} inside VXLAN from {src}:\n{wire.describe()}"
        assert {e.dport for e in echoes} == {VXLAN_PORT}, f"{src} did not send to UDP {VXLAN_PORT}:\n{wire.describe()}"
    assert_valid_headers(wire.frames(), BLUE.vni)


@pytest.mark.features("vxlan")
def test_vni_isolation(vxlan_pair):
    """RFC 7348 4, 5: only hosts within the same VXLAN segment can communicate; a frame is delivered only into
    the segment its VNI names, and a frame for a VNI the VTEP does not serve is dropped."""
    lab = vxlan_pair.start(Scenario(segments=(BLUE, RED)))
    for segment in (BLUE, RED):
        result = lab.ping("vtep1", "vtep2", segment)
        assert result.all_answered, f"ping in VNI {segment.vni}: {result.output}\n{lab.explain()}"

    # The same inner echo request to vtep2's BLUE host, carried with BLUE's VNI (the control: answered), with
    # RED's (another segment: must not reach the BLUE host) and with a VNI vtep2 does not serve.
    def towards_blue_host(ident):
        return echo_request(lab.inner_mac("vtep1", BLUE), lab.inner_mac("vtep2", BLUE),
                            lab.inner_address("vtep1", BLUE), lab.inner_address("vtep2", BLUE), ident=ident, seq=1)
    idents = {BLUE.vni: 0x4f01, RED.vni: 0x4f02, UNKNOWN_VNI: 0x4f03}
    lab.inject("vtep1", "vtep2", [vxlan(vni, towards_blue_host(ident)) for vni, ident in idents.items()])

    wire = lab.wire()
    for segment in (BLUE, RED):
        echoes = wire.echoes(vni=segment.vni)
        assert echoes and all(segment.holds(e.inner.ip.src) and segment.holds(e.inner.ip.dst)
                              for e in echoes if e.inner.icmp.id not in idents.values()), \
            f"VNI {segment.vni} carried another segment's traffic:\n{wire.describe()}"
    answered = {e.inner.icmp.id for e in wire.echoes(src=lab.address("vtep2")).replies()}
    assert idents[BLUE.vni] in answered, f"control: the injected echo in VNI {BLUE.vni} was not answered:\n" \
                                         f"{wire.describe()}\n{lab.explain()}"
    assert idents[RED.vni] not in answered, f"a frame sent in VNI {RED.vni} reached VNI {BLUE.vni}'s host"
    assert idents[UNKNOWN_VNI] not in answered, f"a frame for unknown VNI {UNKNOWN_VNI} was delivered"


def _ping_over_ports(vxlan_pair, scenario):
    lab = vxlan_pair.start(scenario)
    result = lab.ping("vtep1", "vtep2")
    wire = lab.wire()
    sent = {side: sorted({f.dport for f in wire.frames(src=lab.address(side))}) for side in ("vtep1", "vtep2")}
    listens = {side: lab.port(side) for side in ("vtep1", "vtep2")}
    assert result.all_answered, (f"inner ping failed; vtep1 sends to UDP {sent['vtep1']} and listens on "
                                 f"{listens['vtep1']}, vtep2 listens on {listens['vtep2']}:\n{wire.describe()}")
    return lab, wire


def test_port_default(vxlan_pair):
    """RFC 7348 5: IANA has assigned 4789 to VXLAN, and it SHOULD be used by default as the destination UDP port.
    Each VTEP as it comes, no port configured, sends its VXLAN frames to 4789; the Linux kernel still defaults to
    8472, its pre-IANA port. (Whether VTEPs on other ports still reach each other is not this case's question.)"""
    lab = vxlan_pair.start(Scenario(vendor_default_port=True))
    pings = {(src, dst): lab.ping(src, dst, count=2) for src, dst in BOTH_WAYS}  # each VTEP has frames to send
    wire = lab.wire()
    for src, dst in BOTH_WAYS:
        frames = wire.frames(src=lab.address(src), dst=lab.address(dst))
        lab.capture.confirm(frames.requests(), f"answered echo requests {src} -> {dst}", pings[src, dst].received)
        assert frames, f"{src} sent no VXLAN frames to {dst} while its inner host pinged:\n{wire.describe()}"
        wrong = sorted({f.dport for f in frames} - {VXLAN_PORT})
        assert not wrong, (f"{src} ({lab.vendor_name(src)}) sent to {', '.join(map(str, wrong))}, not {VXLAN_PORT} "
                           f"(RFC 7348 5: the default destination port SHOULD be 4789):\n{wire.describe()}")


def test_port_explicit(vxlan_pair):
    """RFC 7348 5: with destination port 4789 configured on every VTEP (the fix for the Linux kernel's 8472
    default), both directions use 4789."""
    lab, wire = _ping_over_ports(vxlan_pair, Scenario(port=VXLAN_PORT))
    for src, dst in (("vtep1", "vtep2"), ("vtep2", "vtep1")):
        ports = {f.dport for f in wire.frames(src=lab.address(src), dst=lab.address(dst))}
        assert ports == {VXLAN_PORT}, f"{src} sent to UDP {sorted(ports)}, not only {VXLAN_PORT}:\n{wire.describe()}"


def test_source_port_entropy(vxlan_pair):
    """RFC 7348 5: the source port SHOULD be a hash of the inner frame's headers, so that different inner
    flows take different outer source ports (and ECMP paths)."""
    flows = 8
    lab = vxlan_pair.start(Scenario())
    assert lab.ping("vtep1", "vtep2", count=1).all_answered, lab.explain()
    lab.udp_flows("vtep1", "vtep2", flows)
    wire = lab.wire()
    carried = [f for f in wire.frames(src=lab.address("vtep1")) if f.inner and f.inner.dport == 5001]
    assert len({f.inner.sport for f in carried}) == flows, f"expected {flows} inner UDP flows:\n{wire.describe()}"
    ports = {f.sport for f in carried}
    assert len(ports) > 1, f"{flows} inner flows all left with outer source port {ports}"


def test_mtu(vxlan_pair):
    """RFC 7348 4.3: VTEPs MUST NOT fragment VXLAN packets. Inner packets up to the underlay MTU minus the
    50-byte overhead pass; a larger one with DF set is refused or dropped, never sent as outer fragments."""
    lab = vxlan_pair.start(Scenario())
    fits = 1500 - 50 - 28  # ICMP payload: inner MTU minus IP and ICMP headers
    answered = {}
    for src, dst in BOTH_WAYS:
        result = lab.ping(src, dst, size=fits, dont_fragment=True, count=2)
        assert result.all_answered, f"{fits}-byte echo {src} -> {dst} with DF: {result.output}\n{lab.explain()}"
        answered[src, dst] = result.received
    lab.ping("vtep1", "vtep2", size=1500 - 28, dont_fragment=True, count=2)
    wire = lab.wire()
    for src, dst in BOTH_WAYS:  # no fragments means something only if the capture saw the echoes that fit
        whole = [f for f in wire.echoes(src=lab.address(src), dst=lab.address(dst)).requests()
                 if f.inner.ip.length == fits + 28]
        lab.capture.confirm(whole, f"answered {fits}-byte echo requests {src} -> {dst}", answered[src, dst])
    assert not wire.fragments(), f"outer IP fragments of VXLAN packets on the wire:\n{wire.describe()}"


def test_bum_flooding(vxlan_pair):
    """RFC 7348 4.2: a VTEP sends broadcast, unknown unicast and multicast to every VTEP of the segment (here by
    head-end replication); each gets one copy, and known unicast then goes to its VTEP alone."""
    lab = vxlan_pair.start(Scenario(vtep_count=3))
    result = lab.ping("vtep1", "vtep2")
    assert result.all_answered, f"{result.output}\n{lab.explain()}"
    assert lab.learned("vtep3").get(lab.inner_mac("vtep1")) == lab.address("vtep1"), \
        f"vtep3 never learned vtep1's MAC from the flooded ARP request: {lab.learned('vtep3')}"

    wire = lab.wire()
    arp = [f for f in wire.arp(op="request", src=lab.address("vtep1"))
           if f.inner.arp.target_ip == lab.inner_address("vtep2")]
    copies = {name: len([f for f in arp if f.dst == lab.address(name)]) for name in ("vtep2", "vtep3")}
    assert copies["vtep2"] >= 1 and copies["vtep2"] == copies["vtep3"], \
        f"the ARP broadcast was not replicated once to each VTEP: {copies}\n{wire.describe()}"
    assert len({round(f.time, 2) for f in arp if f.dst == lab.address("vtep2")}) == copies["vtep2"], \
        f"duplicate copies of one broadcast to vtep2:\n{wire.describe()}"
    assert not wire.echoes(src=lab.address("vtep1"), dst=lab.address("vtep3")), f"echoes to vtep2's inner host were flooded to vtep3:\n{wire.describe()}"


def test_learning(vxlan_pair):
    """RFC 7348 4.1: a VTEP learns the inner source MAC against the outer source IP of the frames it receives;
    when a host moves behind another VTEP, the next frame from it moves the entry."""
    lab = vxlan_pair.start(Scenario(vtep_count=3))
    for name in ("vtep2", "vtep3"):
        assert lab.ping(name, "vtep1").all_answered, lab.explain()
    moving = lab.inner_mac("vtep2")
    table = lab.learned("vtep1")
    assert table.get(moving) == lab.address("vtep2") and table.get(lab.inner_mac("vtep3")) == lab.address("vtep3"), \
        f"vtep1 learned {table}"

    lab.set_mac("vtep2", "02:4f:49:ff:00:02")  # the host leaves vtep2 ...
    lab.set_mac("vtep3", moving)  # ... and appears behind vtep3, which sends from it
    lab.ping("vtep3", "vtep1", count=2)
    table = lab.learned("vtep1")
    assert table.get(moving) == lab.address("vtep3"), f"after the move vtep1 still has {moving} -> {table.get(moving)}"
    lab.ping("vtep1", "vtep2", count=1)  # vtep1's inner host still has the moved MAC for vtep2's address
    wire = lab.wire()
    to_moved = [f for f in wire.frames(src=lab.address("vtep1")) if f.inner and f.inner.dst == moving]
    assert to_moved and to_moved[-1].dst == lab.address("vtep3"), \
        f"vtep1's last frame to {moving} did not go to vtep3 ({lab.address('vtep3')}):\n{wire.describe()}"
