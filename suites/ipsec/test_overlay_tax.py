"""The overlay tax of an IPsec tunnel (issue 7): what ESP costs between initiator and responder, against the
underlay between the same nodes. The figures are relative to this host (see harness.tax); the overhead is
exact for the negotiated suite and the echo's size (ESP pads to the cipher's block)."""
import pytest

from harness import tax
from harness.ping import ping
from harness.protocols.ipsec import ROLES
from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "child_sa")]

ECHO_SIZE, ECHOES = 1000, 5  # ICMP payload bytes: a 1028-byte inner IP packet, below the tunnel's MTU
ICMP_IP_HEADERS = 28
IPPROTO_ESP, NAT_T_PORT = 50, 4500
ESP_MIN_OVERHEAD = 20 + 8 + 2  # outer IPv4, SPI and sequence number, pad length and next header (RFC 4303 2)
INITIATOR, RESPONDER = ROLES


def spi(packet: tax.IpPacket) -> int | None:
    """The SPI of an ESP packet, plain or in UDP (RFC 3948 2.2: IKE on that port starts with a zero marker)."""
    if packet.proto == IPPROTO_ESP or (NAT_T_PORT in (packet.sport, packet.dport) and any(packet.head[:4])):
        return int.from_bytes(packet.head[:4], "big")
    return None


def test_overlay_tax(ipsec_pair, pair_lab):
    """RFC 4303 2: the overlay tax of a tunnel-mode CHILD SA. Each inner packet costs the outer IP header, the
    ESP header, IV, padding, trailer and ICV (and UDP when encapsulated) on the wire; TCP throughput and
    round-trip time through the tunnel are measured against the underlay between the same nodes."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    src, dst = tunnel.inner_addresses
    initiator, responder = ipsec_pair.nodes[INITIATOR], ipsec_pair.nodes[RESPONDER]
    echo = ping(initiator, dst, source=src, size=ECHO_SIZE, count=ECHOES)
    assert echo.all_answered, f"{ECHO_SIZE}-byte echo {src} -> {dst} through the tunnel: {echo.output}"

    wire = ipsec_pair.wire()  # stops the capture: the iperf3 runs below would put hundreds of MB into it
    flows = wire.esp_between(initiator.address, responder.address)
    assert sum(f.packets for f in flows) == echo.sent, \
        f"expected one ESP packet to the responder per echo request ({echo.sent}):\n{wire.describe()}"
    spis = {f.spi for f in flows}
    esp = [p for p in tax.ip_packets(ipsec_pair.capture.path, src=initiator.address, dst=responder.address)
           if spi(p) in spis]
    lengths = sorted({p.length for p in esp})
    assert len(esp) == echo.sent and len(lengths) == 1, \
        f"expected {echo.sent} ESP packets of one length for the echo requests, got lengths {[p.length for p in esp]}"
    overhead = lengths[0] - (ECHO_SIZE + ICMP_IP_HEADERS)
    assert overhead >= ESP_MIN_OVERHEAD, \
        f"{lengths[0]}-byte ESP packets cannot carry a {ECHO_SIZE + ICMP_IP_HEADERS}-byte packet in tunnel mode"

    figures = tax.measure(initiator, responder, overlay=(src, dst), underlay=responder.address)
    assert figures.underlay_carried_overlay, f"TCP through the tunnel:\n{figures.describe()}\n{tunnel.explain()}"
    assert figures.overlay_rtt.avg_ms is not None, f"no RTT through the tunnel:\n{figures.describe()}"
    figures.record(pair_lab, overhead_bytes=overhead)
