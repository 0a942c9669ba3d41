"""The wire reader on captures from real strongSwan <-> strongSwan runs of this harness (kernel-libipsec, so
ESP-in-UDP on 4500). Every value asserted here was cross-checked with tshark 4.0 on the same files."""
from pathlib import Path

from harness.protocols.ipsec.wire import Wire

DATA = Path(__file__).parent / "data"


def test_psk_tunnel_capture():
    wire = Wire.from_pcap(DATA / "strongswan_psk_tunnel.pcap")
    assert wire.malformed == 0
    init = wire.ike("IKE_SA_INIT")
    assert [(m.src, m.dport, m.message_id, m.is_initiator, m.is_response) for m in init] == [
        ("198.18.1.2", 500, 0, True, False), ("198.18.1.3", 500, 0, False, True)]
    assert init[0].names[:3] == ("SA", "KE", "Nonce") and not init[1].errors
    assert init[1].notify("NAT_DETECTION_SOURCE_IP") is not None
    assert init[1].ispi == init[0].ispi and init[1].rspi != bytes(8)
    auth = wire.ike("IKE_AUTH")
    assert [(m.dport, m.message_id, m.is_response, m.names) for m in auth] == [
        (4500, 1, False, ("Encrypted",)), (4500, 1, True, ("Encrypted",))]
    assert [(f.spi, f.src, f.dst, f.encapsulated, f.packets, f.first_seq, f.last_seq) for f in wire.esp()] == [
        (0xE0E82121, "198.18.1.2", "198.18.1.3", True, 3, 1, 3),
        (0xA457CDB7, "198.18.1.3", "198.18.1.2", True, 3, 1, 3)]


def test_wrong_psk_capture():
    wire = Wire.from_pcap(DATA / "strongswan_wrong_psk.pcap")
    assert [(m.exchange, m.is_response) for m in wire.ike()] == [
        ("IKE_SA_INIT", False), ("IKE_SA_INIT", True), ("IKE_AUTH", False), ("IKE_AUTH", True)]
    assert wire.esp() == ()
    assert wire.describe().endswith("no ESP on the wire")


def test_a_retransmission_counts_once_unless_asked_for(tmp_path):
    """RFC 7296 2.1: a retransmission is the same message again; cases judge the conversation."""
    from scapy.utils import rdpcap, wrpcap
    packets = rdpcap(str(DATA / "strongswan_psk_tunnel.pcap"))
    auth_request = next(i for i, p in enumerate(packets) if p.haslayer("UDP") and p["UDP"].dport == 4500)
    repeated = list(packets[:auth_request + 1]) + [packets[auth_request].copy()] + list(packets[auth_request + 1:])
    wrpcap(str(tmp_path / "retransmitted.pcap"), repeated)
    wire = Wire.from_pcap(tmp_path / "retransmitted.pcap")
    assert [m.is_response for m in wire.ike("IKE_AUTH")] == [False, True]
    assert [m.is_response for m in wire.ike("IKE_AUTH", retransmissions=True)] == [False, False, True]
