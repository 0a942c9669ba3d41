"""The overlay tax of VXLAN (issue 7): what the encapsulation costs between two VTEPs, against the underlay
between the same nodes. The figures are relative to this host (see harness.tax); the overhead is exact."""
import pytest

from harness import tax
from harness.protocols.vxlan.scenario import Scenario

pytestmark = [pytest.mark.protocol("vxlan"), pytest.mark.features("vxlan")]

ECHO_SIZE, ECHOES = 1000, 5  # ICMP payload bytes: a 1028-byte inner IP packet, below every inner MTU
ICMP_IP_HEADERS = 28
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14 (RFC 7348 5)


def test_overlay_tax(vxlan_pair, pair_lab):
    """RFC 7348 5: the overlay tax. Each inner packet costs 50 bytes on the wire (outer IPv4, UDP, VXLAN and the
    inner Ethernet header); TCP throughput and round-trip time through the overlay are measured against the
    underlay between the same VTEPs."""
    lab = vxlan_pair.start(Scenario())
    echo = lab.ping("vtep1", "vtep2", size=ECHO_SIZE, count=ECHOES)
    assert echo.all_answered, f"{ECHO_SIZE}-byte inner echo vtep1 -> vtep2: {echo.output}\n{lab.explain()}"

    wire = lab.wire()  # stops the capture: the iperf3 runs below would put up to a GB into it
    vtep1, vtep2 = lab.address("vtep1"), lab.address("vtep2")
    inner_length = ECHO_SIZE + ICMP_IP_HEADERS
    requests = [f for f in wire.echoes(src=vtep1, dst=vtep2).requests() if f.inner.ip.length == inner_length]
    assert len(requests) == echo.sent, \
        f"expected {echo.sent} echo requests of {inner_length} bytes inside VXLAN to vtep2:\n{wire.describe()}"
    outer = {p.number: p.length for p in tax.ip_packets(lab.capture.path, src=vtep1, dst=vtep2)}
    overheads = sorted({outer[f.number] - f.inner.ip.length for f in requests})
    assert overheads == [VXLAN_OVERHEAD], \
        f"outer IP length minus inner IP length: {overheads} bytes, expected {VXLAN_OVERHEAD}:\n{wire.describe()}"

    figures = tax.measure(lab.nodes["vtep1"], lab.nodes["vtep2"], underlay=vtep2,
                          overlay=(lab.inner_address("vtep1"), lab.inner_address("vtep2")))
    assert figures.underlay_carried_overlay, f"TCP through the overlay:\n{figures.describe()}\n{lab.explain()}"
    assert figures.overlay_rtt.avg_ms is not None, f"no RTT through the overlay:\n{figures.describe()}"
    figures.record(pair_lab, overhead_bytes=overheads[0])
