"""The overlay tax of L2TP (issue 7): what carrying IPv4 in PPP in L2TP data messages costs between a LAC and an
LNS, against the underlay between the same nodes. The figures are relative to this host (see harness.tax)."""
import pytest
from scapy.layers.inet import IP

from harness import tax
from harness.protocols.ipsec.wire import esp_overheads
from harness.protocols.l2tp.scenario import LAC_INNER, LNS_INNER, Scenario

pytestmark = [pytest.mark.protocol("l2tp"), pytest.mark.features("data_plane")]

ECHO_SIZE, ECHOES = 1000, 5  # ICMP payload bytes: a 1028-byte inner IP packet, below the PPP MRU (1400)
ICMP_IP_HEADERS = 28
OUTER_IPV4 = 20


def allowed(lab, encapsulation, inner_length: int) -> tuple[list[int], str]:
    """The overheads the RFCs allow, and in words: the L2TP encapsulation's; under IPsec (RFC 3193) the L2TP
    packet's UDP segment in transport-mode ESP besides (RFC 4303 2.4: SPI, sequence number, IV, padding to the
    cipher's block, trailer, ICV; a sender may pad more)."""
    if lab.protection is None:
        return [encapsulation.total], encapsulation.describe()
    esp = lab.protection.esp
    segment = inner_length + encapsulation.total - OUTER_IPV4  # UDP, L2TP, PPP and the inner packet
    made = [encapsulation.total - OUTER_IPV4 + extra  # esp_overheads counts the (here original) IPv4 header
            for extra in esp_overheads(esp.encryption, esp.integrity, segment, encapsulated=False)]
    return made, (f"{encapsulation.describe()}, in transport-mode ESP ({esp.encryption}, {esp.integrity}): {made[0]} "
                  f"with the least padding, or {made[1]} ... {made[-1]}")


def test_overlay_tax(l2tp_pair, pair_lab):
    """RFC 2661 4: the overlay tax. Each inner packet costs exactly the outer IPv4 and UDP headers, the L2TP
    header its flag bits call for (RFC 2661 3.1) and PPP's header, compressed only where LCP agreed to it (RFC
    1661 6.5, 6.6), and under IPsec (RFC 3193) what transport-mode ESP adds (RFC 4303 2.4); TCP throughput and
    round-trip time through the session are measured against the underlay between the same LAC and LNS."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    echo = lab.ping(count=ECHOES, size=ECHO_SIZE)
    assert echo.all_answered, f"{ECHO_SIZE}-byte echo through the session: {echo.output}\n{lab.explain()}"

    wire = lab.wire()  # stops the capture: the iperf3 runs below would put up to a GB into it
    lac, lns = lab.address("lac"), lab.address("lns")
    inner_length = ECHO_SIZE + ICMP_IP_HEADERS
    requests = [d for d in wire.data(src=lac, dst=lns)
                if d.message.ppp is not None and IP in d.message.ppp and d.message.ppp[IP].len == inner_length]
    assert len(requests) == echo.sent, \
        f"expected {echo.sent} echo requests of {inner_length} bytes in L2TP data messages:\n{wire.describe()}"
    outer = {p.number: p.length for p in tax.ip_packets(lab.capture.path, src=lac, dst=lns)}
    overheads = {d.number: outer[d.number] - inner_length for d in requests}
    made = {d.number: allowed(lab, wire.encapsulation(d), inner_length) for d in requests}
    wrong = [f"#{d.number}: {overheads[d.number]} bytes, the RFCs make {made[d.number][1]}"
             for d in requests if overheads[d.number] not in made[d.number][0]]
    assert not wrong, "outer IP length minus inner IP length (RFC 2661 3.1, RFC 1661 6.5/6.6):\n" + \
        "\n".join(wrong) + f"\n{wire.describe()}"

    figures = tax.measure(lab.nodes["lac"], lab.nodes["lns"], underlay=lns, overlay=(LAC_INNER, LNS_INNER))
    assert figures.underlay_carried_overlay, f"TCP through the session:\n{figures.describe()}\n{lab.explain()}"
    assert figures.overlay_rtt.avg_ms is not None, f"no RTT through the session:\n{figures.describe()}"
    figures.record(pair_lab, overhead_bytes=overheads[requests[0].number])
