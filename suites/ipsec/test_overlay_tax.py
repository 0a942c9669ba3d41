"""The overlay tax of an IPsec tunnel (issue 7): what ESP costs between initiator and responder, against the
underlay between the same nodes. The figures are relative to this host (see harness.tax); the overhead is
exact for the negotiated suite and the echo's size (ESP pads to the cipher's block)."""
import pytest

from harness import tax
from harness.errors import HarnessError
from harness.ping import ping
from harness.protocols.ipsec import ROLES
from harness.protocols.ipsec.scenario import EspProposal, Scenario
from harness.protocols.ipsec.wire import esp_overheads

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "child_sa")]

ECHO_SIZE, ECHOES = 1000, 5  # ICMP payload bytes: a 1028-byte inner IP packet, below the tunnel's MTU
ICMP_IP_HEADERS = 28
IPPROTO_ESP, IPPROTO_UDP, NAT_T_PORT = 50, 17, 4500
INITIATOR, RESPONDER = ROLES


def spi(packet: tax.IpPacket) -> int | None:
    """The SPI of an ESP packet, plain or in UDP (RFC 3948 2.2: IKE on that port starts with a zero marker)."""
    if packet.proto == IPPROTO_ESP or (NAT_T_PORT in (packet.sport, packet.dport) and any(packet.head[:4])):
        return int.from_bytes(packet.head[:4], "big")
    return None


def negotiated_esp(ipsec_pair, scenario: Scenario) -> tuple[EspProposal, str]:
    """The ESP transforms of the CHILD SA, and where they were read: from the wire, the responder's SA payload
    in the IKE_AUTH response, where a side exported the IKE keys to open it; else from the scenario, which
    gave both sides one and the same proposal (the responder cannot have chosen another)."""
    if ipsec_pair.ike_keys_exported:
        auth = ipsec_pair.decrypted().ike("IKE_AUTH")
        opened = [m for m in auth if m.is_response and m.decrypted]
        if not opened:
            raise HarnessError(f"the exported IKE keys do not open the IKE_AUTH response:\n{auth.describe()}")
        chosen = [p for m in opened for sa in m.payloads_of("SA") for p in sa.proposals if p.protocol == "ESP"]
        assert len(chosen) == 1, f"the IKE_AUTH response does not choose one ESP proposal:\n{auth.describe()}"
        transforms = chosen[0].algorithms
        encryption = next((t for t in transforms if t.startswith("ENCR_")), None)
        assert encryption, f"the responder's ESP proposal has no encryption transform:\n{auth.describe()}"
        integrity = next((t for t in transforms if t.startswith("AUTH_")), None)
        return EspProposal(encryption, integrity), "the responder's SA payload in IKE_AUTH (decrypted)"
    offered = scenario.esp_of(INITIATOR)
    if len(offered) != 1 or scenario.esp_of(RESPONDER) != offered:
        raise HarnessError("no IKE keys to read the negotiated ESP transforms from the wire, and the scenario "
                           f"offers more than one: {offered} / {scenario.esp_of(RESPONDER)}")
    return offered[0], "the scenario's only ESP proposal (no IKE keys exported to read it from the wire)"


def test_overlay_tax(ipsec_pair, pair_lab):
    """RFC 4303 2: the overlay tax of a tunnel-mode CHILD SA. Each inner packet costs exactly what the negotiated
    transforms add on the wire: the outer IP header (and UDP when encapsulated, RFC 3948), SPI and sequence
    number, IV, padding to the cipher's block, Pad Length and Next Header, ICV; TCP throughput and round-trip
    time through the tunnel are measured against the underlay between the same nodes."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    src, dst = tunnel.inner_addresses
    initiator, responder = ipsec_pair.nodes[INITIATOR], ipsec_pair.nodes[RESPONDER]
    echo = ping(initiator, dst, source=src, size=ECHO_SIZE, count=ECHOES)
    assert echo.all_answered, f"{ECHO_SIZE}-byte echo {src} -> {dst} through the tunnel: {echo.output}"

    wire = ipsec_pair.wire()  # stops the capture: the iperf3 runs below would put up to a GB into it
    flows = wire.esp_between(initiator.address, responder.address)
    assert sum(f.packets for f in flows) == echo.sent, \
        f"expected one ESP packet to the responder per echo request ({echo.sent}):\n{wire.describe()}"
    spis = {f.spi for f in flows}
    esp = [p for p in tax.ip_packets(ipsec_pair.capture.path, src=initiator.address, dst=responder.address)
           if spi(p) in spis]
    assert len(esp) == echo.sent, f"expected {echo.sent} ESP packets for the echo requests, got {len(esp)}"
    suite, source = negotiated_esp(ipsec_pair, tunnel.scenario)
    inner_length = ECHO_SIZE + ICMP_IP_HEADERS  # each of these packets carries one echo request (counted above)
    overheads = {p.number: p.length - inner_length for p in esp}
    wrong = []
    for p in esp:
        allowed = esp_overheads(suite.encryption, suite.integrity, inner_length,
                                encapsulated=p.proto == IPPROTO_UDP, ip_version=6 if ":" in p.dst else 4)
        if overheads[p.number] not in allowed:
            wrong.append(f"#{p.number}: {overheads[p.number]} bytes; RFC 4303 allows {allowed[0]} (the least "
                         f"padding), or {', '.join(map(str, allowed[1:3]))} ... {allowed[-1]}")
    assert not wrong, (f"ESP packets whose outer IP length minus the inner {inner_length} bytes is not what "
                       f"{suite.encryption} with {suite.integrity or 'its own ICV'} adds (read from {source}):\n"
                       + "\n".join(wrong) + f"\n{wire.describe()}")

    figures = tax.measure(initiator, responder, overlay=(src, dst), underlay=responder.address)
    assert figures.underlay_carried_overlay, f"TCP through the tunnel:\n{figures.describe()}\n{tunnel.explain()}"
    assert figures.overlay_rtt.avg_ms is not None, f"no RTT through the tunnel:\n{figures.describe()}"
    figures.record(pair_lab, overhead_bytes=overheads[esp[0].number])
