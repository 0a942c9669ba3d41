"""harness.protocols.ipsec.wire against a checked-in synthetic capture (tests/data/make_ipsec_pcaps.py) and
small captures built per test for link types, fragmentation and damage."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from support import without_spis
from scapy.contrib.ikev2 import (IKEv2, IKEv2_Encrypted, IKEv2_Notify, IKEv2_Payload,
                                 IKEv2NotifyMessageTypes)
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap, wrpcapng

import harness.protocols.ipsec.wire as wire_module
from harness.protocols.ipsec.ikev2_names import NOTIFY_TYPES, PAYLOAD_TYPES
from harness.protocols.ipsec.wire import EspFlow, IkeMessages, Wire

DATA = Path(__file__).parent / "data"
SYNTHETIC = DATA / "ipsec_synthetic.pcap"
T0 = 1_700_000_000.0
I, R, P = "198.18.0.2", "198.18.0.3", "198.18.0.4"
ISPI, RSPI = bytes.fromhex("2222222222222222"), bytes.fromhex("3333333333333333")
SA_INIT_OFFER = ("SA", "KE", "Nonce", "Notify", "Notify")


def _generator():
    spec = importlib.util.spec_from_file_location("make_ipsec_pcaps", DATA / "make_ipsec_pcaps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wire() -> Wire:
    return Wire.from_pcap(SYNTHETIC)


def _write(path: Path, frames, linktype: int | None = None) -> Path:
    for number, frame in enumerate(frames):
        frame.time = T0 + number
    wrpcap(str(path), frames, linktype=linktype)
    return path


def _mac():
    """Explicit addresses: left to itself scapy would look the destination MAC up on this host's network."""
    return Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:03")


def _ether(src=I, dst=R):
    return _mac() / IP(src=src, dst=dst)


def _auth_request(message_id=1, body=96):
    return (IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=35, flags="Initiator", id=message_id)
            / IKEv2_Encrypted(next_payload=35, load=bytes([0xE1]) * body))


# --- the checked-in capture --------------------------------------------------------------------------------

def test_checked_in_capture_is_what_the_generator_writes(tmp_path):
    fresh = tmp_path / "fresh.pcap"
    assert _generator().write_synthetic(fresh) == 15
    assert fresh.read_bytes() == SYNTHETIC.read_bytes()


def test_ike_messages_in_capture_order(wire):
    seen = [(m.exchange, m.message_id, m.is_initiator, m.is_response, m.src, m.sport, m.dst, m.dport)
            for m in wire.ike()]
    assert seen == [
        ("IKE_SA_INIT", 0, True, False, I, 500, R, 500),
        ("IKE_SA_INIT", 0, False, True, R, 500, I, 500),
        ("IKE_SA_INIT", 0, True, False, I, 500, R, 500),
        ("IKE_SA_INIT", 0, False, True, R, 500, I, 500),
        ("IKE_AUTH", 1, True, False, I, 4500, R, 4500),
        ("IKE_AUTH", 1, False, True, R, 4500, I, 4500),
    ]
    assert [m.time for m in wire.ike()] == pytest.approx([T0 + n / 10 for n in range(6)])


def test_invalid_ke_payload_answer(wire):
    offer, refusal = wire.ike()[:2]
    assert refusal.ispi == offer.ispi == bytes.fromhex("1111111111111111")
    assert refusal.rspi == bytes(8)
    assert refusal.names == ("Notify",)
    assert [(n.type, n.data) for n in refusal.notifies] == [("INVALID_KE_PAYLOAD", b"\x00\x0e")]
    refused = refusal.notify("INVALID_KE_PAYLOAD")
    assert refused.is_error and int.from_bytes(refused.data, "big") == 14
    assert refused.type == 17 and refused.group == "MODP_2048" and refused.group.number == 14
    assert refusal.errors == (refused,)
    assert not refusal.encrypted


def test_sa_init_payloads_and_nat_detection(wire):
    offer, refusal, retry, answer = wire.ike("IKE_SA_INIT")
    for message in (offer, retry, answer):
        assert message.names == SA_INIT_OFFER
        assert [n.type for n in message.notifies] == ["NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP"]
        assert [n.type for n in message.notifies] == [16388, 16389]
        assert message.errors == ()
        assert not message.encrypted
    assert answer.notify("NAT_DETECTION_SOURCE_IP").data == b"S" * 20
    assert answer.notify("NAT_DETECTION_SOURCE_IP").hash == b"S" * 20   # RFC 7296 2.23: typed as the hash it is
    assert answer.notify("NAT_DETECTION_DESTINATION_IP").data == b"D" * 20
    assert not answer.notify("NAT_DETECTION_SOURCE_IP").is_error
    assert answer.notify("COOKIE") is None
    assert (retry.ispi, retry.rspi) == (ISPI, bytes(8))
    assert (answer.ispi, answer.rspi) == (ISPI, RSPI)


def test_ike_auth_behind_the_non_esp_marker_is_encrypted(wire):
    request, response = wire.ike("IKE_AUTH")
    for message in (request, response):
        assert (message.ispi, message.rspi) == (ISPI, RSPI)
        assert message.names == ("Encrypted",)
        assert message.encrypted
        assert message.notifies == ()


def test_exchange_filter(wire):
    assert isinstance(wire.ike("IKE_AUTH"), IkeMessages)
    assert len(wire.ike("IKE_SA_INIT")) == 4
    assert wire.ike("CREATE_CHILD_SA") == ()
    assert wire.ike("INFORMATIONAL") == ()  # the only one on the wire is malformed


def test_misspelt_names_are_refused_not_silently_unmatched(wire):
    with pytest.raises(ValueError):
        wire.ike("IKE_SA_INT")
    with pytest.raises(ValueError):
        wire.ike()[1].notify("INVALID_KE")
    assert wire.ike("99") == ()
    assert wire.ike()[0].notify("12345") is None


def test_esp_flows_per_spi(wire):
    assert wire.esp() == (
        EspFlow(spi=0xC0000001, src=I, dst=R, encapsulated=True, packets=3, first_seq=1, last_seq=3),
        EspFlow(spi=0xC0000002, src=R, dst=I, encapsulated=True, packets=2, first_seq=1, last_seq=2),
        EspFlow(spi=0xC0000003, src=P, dst=R, encapsulated=False, packets=1, first_seq=7, last_seq=7),
    )


def test_esp_between(wire):
    assert [f.spi for f in wire.esp_between(I, R)] == [0xC0000001]
    assert [f.spi for f in wire.esp_between(R, I)] == [0xC0000002]
    assert [f.spi for f in wire.esp_between(P, R)] == [0xC0000003]
    assert wire.esp_between(R, P) == ()


def test_truncated_and_overrunning_packets_are_counted_keepalive_is_not(wire):
    assert wire.malformed == 2


def test_message_describe(wire):
    lines = [without_spis(m.describe()) for m in wire.ike()]
    assert lines[0] == ("#1 0.000000 198.18.0.2:500 > 198.18.0.3:500 IKE_SA_INIT mid=0 request(I) "
                        "SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP)")
    assert lines[1] == ("#2 0.100000 198.18.0.3:500 > 198.18.0.2:500 IKE_SA_INIT mid=0 response(R) "
                        "N(INVALID_KE_PAYLOAD: MODP_2048)")
    assert lines[4].endswith(" 0.400000 198.18.0.2:4500 > 198.18.0.3:4500 IKE_AUTH mid=1 request(I) Encrypted")
    assert " ispi=0x" in wire.ike()[0].describe() and " rspi=0x" in wire.ike()[0].describe()


def test_wire_describe_is_the_whole_transcript(wire):
    lines = without_spis(wire.describe()).splitlines()
    assert lines[:6] == without_spis(wire.ike().describe()).splitlines()
    assert len(lines[:6]) == 6
    # The INFORMATIONAL whose Notify overruns it is shown with its header and why the rest is unreadable; the
    # 3-byte datagram is not even a header, and is only counted.
    assert lines[6].endswith(" 1.400000 198.18.0.2:500 > 198.18.0.3:500 INFORMATIONAL mid=2 request(I)")
    assert lines[7:] == [
        "    malformed: Notify payload at byte 28: length 200 runs past the end (12 byte(s) left)",
        "ESP spi=0xc0000001 198.18.0.2 -> 198.18.0.3 in UDP packets=3 seq=1..3",
        "ESP spi=0xc0000002 198.18.0.3 -> 198.18.0.2 in UDP packets=2 seq=1..2",
        "ESP spi=0xc0000003 198.18.0.4 -> 198.18.0.3 plain packets=1 seq=7..7",
        "1 NAT-keepalive(s), the first: NAT-keepalive 198.18.0.2:4500 > 198.18.0.3:4500",
        "1 malformed packet(s) skipped",
    ]


def test_a_damaged_message_keeps_its_header_and_why(wire):
    (damaged,) = [m for m in wire.messages if m.problem]
    assert (damaged.exchange, damaged.message_id, damaged.ispi, damaged.names) == ("INFORMATIONAL", 2, ISPI, ())
    assert damaged.problem == "Notify payload at byte 28: length 200 runs past the end (12 byte(s) left)"
    assert wire.ike("INFORMATIONAL", damaged=True) == (damaged,)


# --- empty, missing and damaged captures -------------------------------------------------------------------

def test_a_wire_built_by_hand_still_describes_itself():
    assert Wire(messages=[], flows=[], malformed=1).describe() == (
        "no IKE messages on the wire\nno ESP on the wire\n1 malformed packet(s) skipped")


def _assert_empty(wire: Wire):
    assert wire.ike() == () and wire.esp() == () and wire.malformed == 0
    assert wire.ike().describe() == "no IKE messages on the wire"
    assert wire.describe() == "no IKE messages on the wire\nno ESP on the wire"


def test_missing_capture_is_an_empty_wire(tmp_path):
    _assert_empty(Wire.from_pcap(tmp_path / "never-written.pcap"))


def test_zero_byte_capture_is_an_empty_wire(tmp_path):
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    _assert_empty(Wire.from_pcap(path))


def test_capture_with_no_packets_is_an_empty_wire(tmp_path):
    _assert_empty(Wire.from_pcap(_write(tmp_path / "header-only.pcap", [], linktype=1)))


def test_a_file_that_is_not_a_capture_is_an_empty_wire(tmp_path):
    path = tmp_path / "junk.pcap"
    path.write_bytes(random.Random(7).randbytes(300))
    _assert_empty(Wire.from_pcap(path))


def test_capture_cut_off_mid_packet(tmp_path):
    path = _write(tmp_path / "cut.pcap", [_ether() / UDP(sport=500, dport=500) / _auth_request()] * 2)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    wire = Wire.from_pcap(path)
    assert [m.exchange for m in wire.ike()] == ["IKE_AUTH"]
    assert wire.malformed == 1


def test_one_frame_that_breaks_decoding_costs_only_itself(tmp_path, monkeypatch):
    real = wire_module._decode_ike

    def fragile(data, **where):
        if data[:8] == b"boom!!!!":
            raise RuntimeError("a decoder bug")
        return real(data, **where)
    monkeypatch.setattr(wire_module, "_decode_ike", fragile)
    frames = [_ether() / UDP(sport=500, dport=500) / Raw(b"boom!!!!" + bytes(40)),
              _ether() / UDP(sport=500, dport=500) / _auth_request()]
    wire = Wire.from_pcap(_write(tmp_path / "boom.pcap", frames))
    assert [m.exchange for m in wire.ike()] == ["IKE_AUTH"]
    assert wire.malformed == 1


def test_udp_length_beyond_the_captured_bytes_is_malformed(tmp_path):
    frame = _ether() / UDP(sport=500, dport=500, len=400) / _auth_request()
    wire = Wire.from_pcap(_write(tmp_path / "udp-len.pcap", [frame]))
    assert (wire.ike(), wire.malformed) == ((), 1)


def test_notify_spi_is_not_part_of_the_data(tmp_path):
    rekey = (IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=36, flags="Initiator", id=4)
             / IKEv2_Notify(proto="ESP", SPI=b"\xc0\x00\x00\x01", type=16393, notify=b"extra"))
    wire = Wire.from_pcap(_write(tmp_path / "rekey.pcap", [_ether() / UDP(sport=500, dport=500) / rekey]))
    (message,) = wire.ike("CREATE_CHILD_SA")
    assert [(n.type, n.protocol, n.spi, n.data) for n in message.notifies] == [
        ("REKEY_SA", "ESP", b"\xc0\x00\x00\x01", b"extra")]


def test_keepalive_is_neither_ike_esp_nor_malformed(tmp_path):
    wire = Wire.from_pcap(_write(tmp_path / "ka.pcap", [_ether() / UDP(sport=4500, dport=4500) / Raw(b"\xff")]))
    assert (wire.ike(), wire.esp(), wire.malformed) == ((), (), 0)
    # RFC 3948 2.3: counted on their own, so a NAT-T case can judge that the side behind the NAT sends them
    [keepalive] = wire.keepalives
    assert (keepalive.sport, keepalive.dport) == (4500, 4500) and "NAT-keepalive" in wire.describe()


def test_ikev1_is_read_as_ikev1_not_mistaken_for_ikev2(tmp_path):
    # Main Mode, version 1.0, no payloads: well formed as far as the IKEv2 header layout goes.
    ikev1 = ISPI + bytes(8) + bytes([0, 0x10, 2, 0]) + bytes(4) + (28).to_bytes(4, "big")
    wire = Wire.from_pcap(_write(tmp_path / "v1.pcap", [_ether() / UDP(sport=500, dport=500) / Raw(ikev1)]))
    (message,) = wire.ike("Main Mode")
    assert (message.version, message.exchange.number, message.is_response, message.names) == (1, 2, None, ())
    assert wire.malformed == 0


def test_unrelated_udp_is_ignored(tmp_path):
    frames = [_ether() / UDP(sport=4789, dport=4789) / Raw(bytes(40)),
              _ether() / UDP(sport=1701, dport=1701) / Raw(b"\x12")]
    wire = Wire.from_pcap(_write(tmp_path / "other.pcap", frames))
    assert (wire.ike(), wire.esp(), wire.malformed) == ((), (), 0)


# --- where the bytes come from -----------------------------------------------------------------------------

def _over(link: str):
    ike = UDP(sport=4500, dport=4500) / Raw(bytes(4) + bytes(_auth_request()))
    esp = UDP(sport=4500, dport=4500) / ESP(spi=0xC0000009, seq=5, data=bytes(32))
    if link == "ipv6":
        return [_mac() / IPv6(src="2001:db8::2", dst="2001:db8::3") / layer for layer in (ike, esp)], 1
    network = [IP(src=I, dst=R) / layer for layer in (ike, esp)]
    linked = {
        "ethernet": ([_mac() / packet for packet in network], 1),
        "vlan": ([_mac() / Dot1Q(vlan=10) / packet for packet in network], 1),
        "sll": ([CookedLinux(proto=0x0800) / packet for packet in network], 113),
        "sll2": ([CookedLinuxV2(proto=0x0800) / packet for packet in network], 276),
        "raw": (network, 101),
    }
    return linked[link]


@pytest.mark.parametrize("link", ["ethernet", "vlan", "sll", "sll2", "raw", "ipv6"])
def test_link_types_and_ipv6(tmp_path, link):
    frames, linktype = _over(link)
    wire = Wire.from_pcap(_write(tmp_path / f"{link}.pcap", frames, linktype=linktype))
    (message,) = wire.ike()
    assert (message.exchange, message.message_id, message.names) == ("IKE_AUTH", 1, ("Encrypted",))
    (flow,) = wire.esp()
    assert (flow.spi, flow.packets, flow.first_seq, flow.encapsulated) == (0xC0000009, 1, 5, True)
    if link == "ipv6":
        assert (message.src, flow.dst) == ("2001:db8::2", "2001:db8::3")
        assert " [2001:db8::2]:4500 > [2001:db8::3]:4500 IKE_AUTH" in message.describe()
    else:
        assert (message.src, flow.dst) == (I, R)
    assert wire.malformed == 0


def test_pcapng(tmp_path):
    frames, _ = _over("ethernet")
    for number, frame in enumerate(frames):
        frame.time = T0 + number
    path = tmp_path / "capture.pcapng"
    wrpcapng(str(path), frames)
    wire = Wire.from_pcap(path)
    assert [m.exchange for m in wire.ike()] == ["IKE_AUTH"]
    assert [f.spi for f in wire.esp()] == [0xC0000009]


def test_ipv6_extension_headers_before_the_upper_layer(tmp_path):
    frames = [_mac() / IPv6(src="2001:db8::2", dst="2001:db8::3") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
              / UDP(sport=500, dport=500) / _auth_request(),
              _mac() / IPv6(src="2001:db8::2", dst="2001:db8::3") / IPv6ExtHdrDestOpt()
              / ESP(spi=0xC000000B, seq=9, data=bytes(16))]
    wire = Wire.from_pcap(_write(tmp_path / "exthdr.pcap", frames))
    assert [m.exchange for m in wire.ike()] == ["IKE_AUTH"]
    assert [(f.spi, f.first_seq, f.encapsulated) for f in wire.esp()] == [(0xC000000B, 9, False)]


def test_plain_esp_over_ipv6(tmp_path):
    frame = _mac() / IPv6(src="2001:db8::4", dst="2001:db8::3") / ESP(spi=0xC000000A, seq=3, data=bytes(16))
    wire = Wire.from_pcap(_write(tmp_path / "esp6.pcap", [frame]))
    assert wire.esp() == (EspFlow(0xC000000A, "2001:db8::4", "2001:db8::3", False, 1, 3, 3),)


def test_nat_rewritten_source_port(tmp_path):
    """Behind a NAT the sender's port is arbitrary; the receiver's port says how the bytes are parsed."""
    frames = [_ether() / UDP(sport=31000, dport=4500) / Raw(bytes(4) + bytes(_auth_request())),
              _ether(R, I) / UDP(sport=4500, dport=31000) / ESP(spi=0xC0000002, seq=1, data=bytes(16)),
              _ether() / UDP(sport=31001, dport=500) / _auth_request(message_id=7)]
    wire = Wire.from_pcap(_write(tmp_path / "nat.pcap", frames))
    assert [(m.sport, m.dport, m.message_id) for m in wire.ike()] == [(31000, 4500, 1), (31001, 500, 7)]
    assert [(f.spi, f.encapsulated) for f in wire.esp()] == [(0xC0000002, True)]


def test_ip_fragmented_ike_is_reassembled(tmp_path):
    big = _ether() / UDP(sport=4500, dport=4500) / Raw(bytes(4) + bytes(_auth_request(body=3000)))
    pieces = [_mac() / piece for piece in fragment(big[IP], fragsize=1400)]
    assert len(pieces) == 3
    wire = Wire.from_pcap(_write(tmp_path / "frag.pcap", pieces))
    (message,) = wire.ike()
    assert (message.exchange, message.encrypted, message.time) == ("IKE_AUTH", True, T0 + 2)
    assert wire.malformed == 0


def test_ip_fragmented_ike_with_a_lost_fragment_is_malformed(tmp_path):
    big = _ether() / UDP(sport=4500, dport=4500) / Raw(bytes(4) + bytes(_auth_request(body=3000)))
    pieces = [_mac() / piece for piece in fragment(big[IP], fragsize=1400)]
    wire = Wire.from_pcap(_write(tmp_path / "lost.pcap", [pieces[0], pieces[2]]))
    assert wire.ike() == ()
    assert wire.malformed == 1


def test_lost_fragment_of_other_udp_traffic_is_not_ours_to_count(tmp_path):
    vxlan = _ether() / UDP(sport=4789, dport=4789) / Raw(bytes(3000))
    pieces = [_mac() / piece for piece in fragment(vxlan[IP], fragsize=1400)]
    wire = Wire.from_pcap(_write(tmp_path / "vxlan.pcap", pieces[:2]))
    assert (wire.ike(), wire.esp(), wire.malformed) == ((), (), 0)


def test_ipv6_fragmented_ike_is_reassembled(tmp_path):
    big = (IPv6(src="2001:db8::2", dst="2001:db8::3") / IPv6ExtHdrFragment()
           / UDP(sport=500, dport=500) / _auth_request(body=3000))
    pieces = [_mac() / piece for piece in fragment6(big, 1280)]
    assert len(pieces) == 3
    wire = Wire.from_pcap(_write(tmp_path / "frag6.pcap", pieces))
    assert [(m.exchange, m.src) for m in wire.ike()] == [("IKE_AUTH", "2001:db8::2")]
    assert wire.malformed == 0


# --- the tables against an independent reading -------------------------------------------------------------

def test_payload_chain_agrees_with_scapys_dissection(wire):
    frames = rdpcap(str(SYNTHETIC))[:4]  # the port-500 IKE_SA_INIT messages, which scapy dissects itself
    for frame, message in zip(frames, wire.ike("IKE_SA_INIT"), strict=True):
        layer, scapy_names = frame[IKEv2].payload, []
        while isinstance(layer, IKEv2_Payload):
            scapy_names.append(type(layer).__name__.removeprefix("IKEv2_"))
            layer = layer.payload
        assert list(message.names) == scapy_names
        assert [n.type for n in message.notifies] == [n.type for n in frame[IKEv2].iterpayloads()
                                                      if isinstance(n, IKEv2_Notify)]


def test_notify_names_agree_with_scapy_where_both_know_them():
    # scapy prefixes newer ones with IV2_NOTIFY_ and calls 47 NOTIFY_STATE_NOT_FOUND; IANA does neither.
    shared = {number for number in IKEv2NotifyMessageTypes if number in NOTIFY_TYPES and number < 16434
              and number != 47}
    assert len(shared) >= 70
    assert {n: NOTIFY_TYPES[n] for n in shared} == {n: IKEv2NotifyMessageTypes[n] for n in shared}
    for number, name in IKEv2NotifyMessageTypes.items():
        if name.startswith("IV2_NOTIFY_"):
            assert NOTIFY_TYPES[number] == name.removeprefix("IV2_NOTIFY_")
    assert NOTIFY_TYPES[16430] == "IKEV2_FRAGMENTATION_SUPPORTED" and NOTIFY_TYPES[16418] == "CHILDLESS_IKEV2_SUPPORTED"


def test_payload_names_agree_with_scapy():
    from scapy.contrib.ikev2 import IKEv2PayloadTypes
    renamed = {46: "Encrypted", 53: "EncryptedFragment"}  # scapy: "Encrypted", "Encrypted_Fragment"
    for number, name in PAYLOAD_TYPES.items():
        assert name == renamed.get(number, IKEv2PayloadTypes[number])


def test_unknown_numbers_fall_back_to_the_number(tmp_path):
    message = (IKEv2(init_SPI=ISPI, resp_SPI=RSPI, exch_type=99, flags="Response", id=3)
               / IKEv2_Notify(type=40000, notify=b"x") / IKEv2_Payload(next_payload=0, load=b"abc"))
    raw = bytearray(bytes(message))
    raw[28] = 60  # the notify is followed by an unassigned payload type
    wire = Wire.from_pcap(_write(tmp_path / "unknown.pcap", [_ether() / UDP(sport=500, dport=500) / Raw(raw)]))
    (seen,) = wire.ike()
    assert (seen.exchange, seen.names) == ("99", ("Notify", "60"))
    assert [(n.type, n.type.number, n.data) for n in seen.notifies] == [("40000", 40000, b"x")]
    assert without_spis(seen.describe()).endswith("99 mid=3 response(R) N(40000) 60")


def test_nat_detection_hash_is_rfc_7296_2_23s():
    from harness.protocols.ipsec.wire import nat_detection_hash
    import hashlib
    ispi, rspi = bytes.fromhex("0102030405060708"), bytes(8)
    assert nat_detection_hash(ispi, rspi, "198.18.0.2", 500) == hashlib.sha1(
        ispi + rspi + bytes([198, 18, 0, 2]) + bytes([1, 244])).digest()
    assert nat_detection_hash(ispi, rspi, "198.18.0.2", 4500) != nat_detection_hash(ispi, rspi, "198.18.0.2", 500)
