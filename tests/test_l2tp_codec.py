"""harness.protocols.l2tp (avp, codec): every RFC 2661 4.4 AVP through build -> bytes -> decode, the Result Code
sizes, AVP hiding against vectors worked out here with hashlib, tunnel authentication, control/data dispatch,
malformed input (a table and a seeded mutation loop: decode never raises), and tshark reading the same bytes."""
from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.ppp import HDLC, PPP, PPP_LCP_Configure
from scapy.packet import Raw
from scapy.utils import wrpcap

from harness.protocols.l2tp import ROLES
from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp.codec import L2TPv2, control, data, decode, encode, zlb

SECRET = b"tunnel-secret"
VECTOR = bytes(range(16))
TSHARK = shutil.which("tshark")


def sccrq(**overrides) -> bytes:
    avps = [A.message_type("SCCRQ"), A.protocol_version(1, 0), A.host_name("lac"), A.framing_capabilities("sync+async"),
            A.bearer_capabilities("analog"), A.firmware_revision(0x0680), A.vendor_name("interop"),
            A.assigned_tunnel_id(17), A.receive_window_size(8), A.challenge(b"0123456789abcdef"),
            A.tie_breaker(0x0102030405060708)]
    return encode(control(overrides.get("tunnel_id", 0), 0, 0, 0, overrides.get("avps", avps)))


def only_avp(layer: A.Avp, secret=None):
    """The one AVP (after the Message Type) of a control message carrying `layer`."""
    msg = decode(encode(control(9, 0, 1, 2, [A.message_type("ICRQ"), layer])), secret)
    assert not msg.malformed, msg.describe()
    assert len(msg.avps) == 2, msg.describe()
    return msg.avps[1]


def test_roles_lac_first():
    assert ROLES == ("lac", "lns")


# (builder call, layer class, attribute type, M bit, wire length, decoded value)
EVERY_AVP = [
    (lambda: A.message_type("StopCCN"), A.AvpMessageType, 0, 1, 8, 4),
    (lambda: A.result_code(1), A.AvpResultCode, 1, 1, 8, 1),
    (lambda: A.protocol_version(1, 0), A.AvpProtocolVersion, 2, 1, 8, {"version": 1, "revision": 0}),
    (lambda: A.framing_capabilities("sync+async"), A.AvpFramingCapabilities, 3, 1, 10, 3),
    (lambda: A.bearer_capabilities("digital+analog"), A.AvpBearerCapabilities, 4, 1, 10, 3),
    (lambda: A.tie_breaker(0xFEDCBA9876543210), A.AvpTieBreaker, 5, 0, 14, 0xFEDCBA9876543210),
    (lambda: A.firmware_revision(0x0103), A.AvpFirmwareRevision, 6, 0, 8, 0x0103),
    (lambda: A.host_name("lns.example"), A.AvpHostName, 7, 1, 17, b"lns.example"),
    (lambda: A.vendor_name("Example Corp"), A.AvpVendorName, 8, 0, 18, b"Example Corp"),
    (lambda: A.assigned_tunnel_id(0xBEEF), A.AvpAssignedTunnelId, 9, 1, 8, 0xBEEF),
    (lambda: A.receive_window_size(16), A.AvpReceiveWindowSize, 10, 1, 8, 16),
    (lambda: A.challenge(b"\x00\x01\xfe\xff"), A.AvpChallenge, 11, 1, 10, b"\x00\x01\xfe\xff"),
    (lambda: A.q931_cause_code(16, 2, "normal"), A.AvpQ931CauseCode, 12, 1, 15,
     {"cause_code": 16, "cause_msg": 2, "advisory": b"normal"}),
    (lambda: A.challenge_response_avp(bytes(range(16))), A.AvpChallengeResponse, 13, 1, 22, bytes(range(16))),
    (lambda: A.assigned_session_id(4242), A.AvpAssignedSessionId, 14, 1, 8, 4242),
    (lambda: A.call_serial_number(0xDEADBEEF), A.AvpCallSerialNumber, 15, 1, 10, 0xDEADBEEF),
    (lambda: A.minimum_bps(9600), A.AvpMinimumBps, 16, 1, 10, 9600),
    (lambda: A.maximum_bps(10_000_000), A.AvpMaximumBps, 17, 1, 10, 10_000_000),
    (lambda: A.bearer_type("analog"), A.AvpBearerType, 18, 1, 10, 2),
    (lambda: A.framing_type("async"), A.AvpFramingType, 19, 1, 10, 2),
    (lambda: A.called_number("5551000"), A.AvpCalledNumber, 21, 1, 13, b"5551000"),
    (lambda: A.calling_number("5552000"), A.AvpCallingNumber, 22, 1, 13, b"5552000"),
    (lambda: A.sub_address("12"), A.AvpSubAddress, 23, 1, 8, b"12"),
    (lambda: A.tx_connect_speed(100_000_000), A.AvpTxConnectSpeed, 24, 1, 10, 100_000_000),
    (lambda: A.physical_channel_id(3), A.AvpPhysicalChannelId, 25, 0, 10, 3),
    (lambda: A.initial_received_lcp_confreq(b"\x01\x04\x05\xdc"), A.AvpInitialReceivedLcpConfreq, 26, 0, 10,
     b"\x01\x04\x05\xdc"),
    (lambda: A.last_sent_lcp_confreq(b"\x05\x06\x11\x22\x33\x44"), A.AvpLastSentLcpConfreq, 27, 0, 12,
     b"\x05\x06\x11\x22\x33\x44"),
    (lambda: A.last_received_lcp_confreq(b"\x03\x04\xc0\x23"), A.AvpLastReceivedLcpConfreq, 28, 0, 10,
     b"\x03\x04\xc0\x23"),
    (lambda: A.proxy_authen_type(2), A.AvpProxyAuthenType, 29, 0, 8, 2),
    (lambda: A.proxy_authen_name("alice"), A.AvpProxyAuthenName, 30, 0, 11, b"alice"),
    (lambda: A.proxy_authen_challenge(b"\x42" * 16), A.AvpProxyAuthenChallenge, 31, 0, 22, b"\x42" * 16),
    (lambda: A.proxy_authen_id(7), A.AvpProxyAuthenId, 32, 0, 8, 7),
    (lambda: A.proxy_authen_response(b"\x24" * 16), A.AvpProxyAuthenResponse, 33, 0, 22, b"\x24" * 16),
    (lambda: A.call_errors(1, 2, 3, 4, 5, 6), A.AvpCallErrors, 34, 1, 32,
     {"crc_errors": 1, "framing_errors": 2, "hardware_overruns": 3, "buffer_overruns": 4, "timeout_errors": 5,
      "alignment_errors": 6}),
    (lambda: A.accm(0xFFFFFFFF, 0x000A0000), A.AvpAccm, 35, 1, 16,
     {"send_accm": 0xFFFFFFFF, "receive_accm": 0x000A0000}),
    (lambda: A.random_vector(VECTOR), A.AvpRandomVector, 36, 1, 22, VECTOR),
    (lambda: A.private_group_id(b"group-1"), A.AvpPrivateGroupId, 37, 0, 13, b"group-1"),
    (lambda: A.rx_connect_speed(56_000), A.AvpRxConnectSpeed, 38, 0, 10, 56_000),
    (lambda: A.sequencing_required(), A.AvpSequencingRequired, 39, 1, 6, None),
]


@pytest.mark.parametrize("build, cls, attr, m, length, value", EVERY_AVP, ids=[c[1].__name__ for c in EVERY_AVP])
def test_every_avp_round_trips(build, cls, attr, m, length, value):
    """RFC 2661 4.4: each attribute builds with its M bit and length, and decodes to the same typed value."""
    layer = build()
    raw = bytes(layer)
    assert len(raw) == length and struct.unpack("!H", raw[:2])[0] == (m << 15) | length, raw.hex()
    assert struct.unpack("!HH", raw[2:6]) == (0, attr), raw.hex()
    entry = only_avp(layer)
    assert type(entry.layer) is cls and entry.attr_type == attr and entry.mandatory == bool(m)
    assert entry.length == length and not entry.is_hidden
    assert entry.value == value


def test_every_rfc_2661_attribute_has_a_layer():
    assert sorted(A.AVP_CLASSES) == [n for n in range(40) if n != 20]
    assert {c[2] for c in EVERY_AVP} == set(A.AVP_CLASSES)


@pytest.mark.parametrize("layer, wire, values", [
    (A.result_code(1), "8008000000010001", {"result_code": 1}),
    (A.result_code(2, 6), "800a0000000100020006", {"result_code": 2, "error_code": 6}),
    (A.result_code(2, 6, "no more sessions"), "801a00000001000200066e6f206d6f72652073657373696f6e73",
     {"result_code": 2, "error_code": 6, "error_message": b"no more sessions"}),
], ids=["code", "code+error", "code+error+message"])
def test_result_code_in_its_three_sizes(layer, wire, values):
    """RFC 2661 4.4.2: 8 bytes (code), 10 (+ error code), more (+ error message)."""
    assert bytes(layer).hex() == wire
    msg = decode(encode(control(1, 0, 0, 0, [A.message_type("StopCCN"), A.assigned_tunnel_id(5), layer])))
    assert not msg.malformed, msg.describe()
    assert msg.avp("Result Code").layer.values() == values


def test_a_result_code_of_three_bytes_is_malformed_and_kept_raw():
    body = struct.pack("!HHH", 0x8000 | 9, 0, 1) + b"\x00\x02\x00"
    raw = encode(control(1, avps=[A.message_type("CDN")]))
    raw = raw[:2] + struct.pack("!H", len(raw) + len(body)) + raw[4:] + body
    msg = decode(raw)
    entry = msg.avp(1)
    assert type(entry.layer) is A.Avp and entry.value == b"\x00\x02\x00"
    assert msg.errors == ["Result Code AVP at byte 20: a 3-byte value, RFC 2661 allows 2 or more, not 3"], msg.errors


def test_message_type_names():
    names = {code: decode(encode(control(1, avps=[A.message_type(code)]))).message_type for code in range(1, 17)}
    assert names == {1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 5: "message type 5", 6: "HELLO", 7: "OCRQ",
                     8: "OCRP", 9: "OCCN", 10: "ICRQ", 11: "ICRP", 12: "ICCN", 13: "message type 13", 14: "CDN",
                     15: "WEN", 16: "SLI"}


def test_sccrq_decodes_header_and_avps():
    msg = decode(sccrq(tunnel_id=0))
    assert not msg.malformed, msg.describe()
    assert (msg.is_control, msg.message_type, msg.tunnel_id, msg.session_id, msg.ns, msg.nr) == \
        (True, "SCCRQ", 0, 0, 0, 0)
    assert msg.length == len(sccrq())
    assert [e.name for e in msg.avps] == ["Message Type", "Protocol Version", "Host Name", "Framing Capabilities",
                                          "Bearer Capabilities", "Firmware Revision", "Vendor Name",
                                          "Assigned Tunnel ID", "Receive Window Size", "Challenge", "Tie Breaker"]
    assert msg.avp("Host Name").value == b"lac" and msg.avp(A.AvpAssignedTunnelId).value == 17
    assert msg.avp(10).value == 8


def test_the_header_layer_dissects_what_it_builds():
    raw = sccrq()
    pkt = L2TPv2(raw)
    assert (pkt.T, pkt.L, pkt.S, pkt.O, pkt.version, pkt.length) == (1, 1, 1, 0, 2, len(raw))
    assert [type(a) for a in pkt.avps][:3] == [A.AvpMessageType, A.AvpProtocolVersion, A.AvpHostName]
    assert bytes(pkt) == raw


def test_zlb_is_an_empty_control_message():
    raw = encode(zlb(7, ns=3, nr=4))
    assert raw.hex() == "c802000c0007000000030004"
    msg = decode(raw)
    assert msg.is_zlb and msg.message_type == "ZLB" and not msg.avps and not msg.malformed
    assert (msg.tunnel_id, msg.ns, msg.nr) == (7, 3, 4)


def test_data_messages_carry_ppp():
    """T=0: no AVPs, the payload is a PPP frame (with or without the FF03 address and control)."""
    lcp = PPP_LCP_Configure(id=1, options=[])
    plain = decode(encode(data(5, 6, PPP() / lcp)))
    assert plain.is_control is False and plain.message_type is None and not plain.avps and not plain.malformed
    assert (plain.tunnel_id, plain.session_id, plain.ns, plain.length) == (5, 6, None, None)
    assert plain.ppp.haslayer(PPP_LCP_Configure) and plain.ppp[PPP].proto == 0xC021

    framed = encode(data(5, 6, HDLC() / PPP() / lcp, ns=3, nr=4, with_length=True, offset_pad=b"\0\0"))
    assert framed[:2] == b"\x4a\x02"      # L, S, O set; T clear; version 2
    msg = decode(framed)
    assert not msg.malformed, msg.describe()
    assert (msg.ns, msg.nr, msg.offset_size, msg.length) == (3, 4, 2, len(framed))
    assert msg.ppp.haslayer(HDLC) and msg.ppp.haslayer(PPP_LCP_Configure)


@pytest.mark.parametrize("framing", [b"\xff\x03\x00\x21", b"\x00\x21", b"\xff\x03\x21", b"\x21"],
                         ids=["full", "no address and control", "one-byte protocol", "both compressed"])
def test_data_messages_are_described_without_scapy_dissecting_them(framing):
    """A busy capture carries thousands of data messages: decoding and describing one reads its PPP frame with
    struct; scapy dissects it only when asked (`ppp`), and reads the same addresses."""
    from scapy.layers.inet import ICMP
    packet = bytes(IP(src="198.19.200.2", dst="198.19.200.1") / ICMP(type=8, id=9, seq=4) / Raw(bytes(20)))
    msg = decode(struct.pack("!HHH", 0x0002, 7, 3) + framing + packet)
    assert msg.ppp_protocol == 0x21 and not msg.malformed
    line = msg.describe().splitlines()[1]
    assert "ppp" not in vars(msg)   # not dissected (a cached property lands in the instance once computed)
    ip = msg.ppp[IP]
    assert f"{ip.src} > {ip.dst}" in line and "echo-request" in line and str(ip.len) in line, line
    udp = decode(struct.pack("!HHH", 0x0002, 7, 3) + framing + bytes(IP(src="1.1.1.1", dst="2.2.2.2")
                                                                     / UDP(sport=53, dport=4000)))
    assert "1.1.1.1" in udp.describe() and "4000" in udp.describe() and "ppp" not in vars(udp)
    cut = decode(struct.pack("!HHH", 0x0002, 7, 3) + b"\x00")
    assert cut.malformed and "Protocol field is cut short" in cut.reason


def test_unknown_and_vendor_avps_stay_raw_with_their_m_bit():
    msg = decode(encode(control(1, avps=[A.message_type("HELLO"), A.vendor_avp(4242, 1, b"ours", mandatory=True),
                                         A.vendor_avp(0, 200, b"\x01\x02"), A.vendor_avp(0, 20, b"")])))
    assert not msg.malformed, msg.describe()
    vendor, unknown, unassigned = msg.avps[1:]
    assert type(vendor.layer) is A.Avp and vendor.mandatory and vendor.vendor_id == 4242 and vendor.value == b"ours"
    assert vendor.name == "vendor 4242 attribute 1" and not vendor.known
    assert unknown.attr_type == 200 and not unknown.mandatory and unknown.value == b"\x01\x02"
    assert unassigned.name == "attribute 20"


def _hidden_subformat_by_hand(attr_type: int, value: bytes, padding: bytes) -> bytes:
    """RFC 2661 4.3, step by step: p = original length (2) + value + padding, b1 = MD5(type + S + RV),
    c1 = p1 xor b1, b2 = MD5(S + c1), c2 = p2 xor b2 (the last chunk may be short)."""
    p = struct.pack("!H", len(value)) + value + padding
    b1 = hashlib.md5(struct.pack("!H", attr_type) + SECRET + VECTOR).digest()
    c1 = bytes(x ^ y for x, y in zip(p[:16], b1))
    if len(p) <= 16:
        return c1
    b2 = hashlib.md5(SECRET + c1).digest()
    c2 = bytes(x ^ y for x, y in zip(p[16:32], b2))
    assert len(p) <= 32
    return c1 + c2


# attribute, clear value, padding, the hidden value (worked out once with _hidden_subformat_by_hand)
HIDDEN_VECTORS = [
    (14, b"\x12\x34", b"\0\0\0\0", "cb6b626e52813067"),
    (22, b"5551234567890123456", b"", "944f938e318db0fcf8a809a323d7dfacda63f96788"),
]


@pytest.mark.parametrize("attr, clear, padding, hidden", HIDDEN_VECTORS, ids=["one-chunk", "two-chunks"])
def test_hiding_matches_the_rfc_computed_by_hand(attr, clear, padding, hidden):
    assert _hidden_subformat_by_hand(attr, clear, padding).hex() == hidden
    layer = {14: A.assigned_session_id(0x1234), 22: A.calling_number(clear)}[attr]
    hid = A.hide(layer, SECRET, VECTOR, padding=padding)
    assert bytes(hid) == struct.pack("!HHH", 0xC000 | (6 + len(hidden) // 2), 0, attr) + bytes.fromhex(hidden)
    assert A.reveal(attr, bytes.fromhex(hidden), SECRET, VECTOR) == clear


def test_decode_unhides_only_with_the_secret_and_keeps_both():
    raw = encode(control(3, 0, 1, 1, [A.message_type("ICRQ"), A.random_vector(VECTOR),
                                      A.hide(A.assigned_session_id(0x1234), SECRET, VECTOR, padding=b"\0\0\0\0"),
                                      A.hide(A.calling_number("5551234567890123456"), SECRET, VECTOR)]))
    closed = decode(raw)
    assert not closed.malformed, closed.describe()
    sid = closed.avp("Assigned Session ID")
    assert sid.is_hidden and not sid.revealed and sid.value is None and type(sid.layer) is A.AvpHidden
    assert sid.hidden.hex() == "cb6b626e52813067" and sid.mandatory and sid.length == 14

    opened = decode(raw, secret=SECRET)
    assert not opened.malformed, opened.describe()
    sid, number = opened.avp(14), opened.avp(22)
    assert sid.revealed and type(sid.layer) is A.AvpAssignedSessionId and sid.value == 0x1234
    assert sid.hidden.hex() == "cb6b626e52813067"
    assert number.value == b"5551234567890123456" and number.hidden.hex() == HIDDEN_VECTORS[1][3]

    wrong = decode(raw, secret=b"not-the-secret")
    assert wrong.malformed and "wrong secret" in wrong.reason, wrong.describe()
    assert wrong.tunnel_id == 3 and len(wrong.avps) == 4


def test_the_random_vector_in_force_is_the_latest():
    other = b"\xaa" * 16
    raw = encode(control(3, avps=[A.message_type("ICCN"), A.random_vector(VECTOR), A.random_vector(other),
                                  A.hide(A.tx_connect_speed(64000), SECRET, other)]))
    assert decode(raw, SECRET).avp(24).value == 64000


def test_tunnel_authentication_response():
    """RFC 5.1.1: MD5(CHAP id + secret + challenge), the id being 2 in an SCCRP and 3 in an SCCCN."""
    challenge = bytes(range(16, 32))
    assert A.challenge_response("SCCRP", SECRET, challenge).hex() == "76313aa0a3ce15a62f0a05de54b22ab8"
    assert A.challenge_response(2, SECRET, challenge) == hashlib.md5(b"\x02" + SECRET + challenge).digest()
    assert A.challenge_response("SCCCN", "tunnel-secret", challenge) == \
        hashlib.md5(b"\x03" + SECRET + challenge).digest()
    reply = decode(encode(control(1, 0, 0, 1, [A.message_type("SCCRP"),
                                               A.challenge_response_avp(A.challenge_response(2, SECRET, challenge))])))
    assert reply.avp("Challenge Response").value.hex() == "76313aa0a3ce15a62f0a05de54b22ab8"


def _patch_length(raw: bytes) -> bytes:
    return raw[:2] + struct.pack("!H", len(raw)) + raw[4:]


GOOD = sccrq()
MALFORMED = [
    ("empty", b"", "truncated header: 0 byte(s)"),
    ("one byte", b"\xc8", "truncated header: 1 byte(s)"),
    ("version 3", b"\xc8\x03" + GOOD[2:], "version 3, expected 2"),
    ("header cut in Ns", GOOD[:9], "no room for ns"),
    ("length past the end", GOOD[:2] + struct.pack("!H", len(GOOD) + 10) + GOOD[4:], "exceeds the"),
    ("length inside the header", GOOD[:2] + b"\x00\x04" + GOOD[4:], "shorter than the 12-byte header"),
    ("trailing bytes", GOOD + b"\0\0", "2 byte(s) after the end"),
    ("AVP length 3", _patch_length(GOOD[:12] + b"\x80\x03\x00\x00\x00\x00\x00\x01"), "length 3, less than"),
    ("AVP past the end", _patch_length(GOOD[:12] + b"\x80\x20\x00\x00\x00\x00\x00\x01"), "runs past the end"),
    ("AVP header cut", _patch_length(GOOD + b"\x80\x08\x00"), "3 byte(s) left"),
    ("hidden without vector", encode(control(1, avps=[A.message_type("ICRQ"),
                                                      A.hide(A.assigned_session_id(1), SECRET, VECTOR)])),
     "without a preceding Random Vector"),
    ("Message Type not first", encode(control(1, avps=[A.host_name("x"), A.message_type("SCCRQ")])),
     "first AVP is Host Name"),
    ("hidden Message Type", encode(control(1, avps=[A.random_vector(VECTOR),
                                                    A.hide(A.message_type("SCCRQ"), SECRET, VECTOR)])),
     "first AVP is Random Vector"),
    ("Message Type of 1 byte", _patch_length(GOOD[:12] + b"\x80\x07\x00\x00\x00\x00\x01"), "a 1-byte value"),
    ("control without L and S", b"\x80\x02\x00\x01\x00\x00", "without the L and S bit"),
    ("offset pad past the end", b"\x02\x02\x00\x01\x00\x01\x00\x10\x00", "offset size 16 runs past"),
    ("data without PPP", b"\x00\x02\x00\x01\x00\x01", "data message without a PPP frame"),
]


@pytest.mark.parametrize("raw, reason", [(m[1], m[2]) for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_marked_not_raised(raw, reason):
    msg = decode(raw)
    assert msg.malformed and reason in msg.reason, msg.describe()
    assert not any(e.startswith("decoder fault") for e in msg.errors), msg.errors


def test_what_precedes_the_damage_is_kept():
    msg = decode(GOOD[:-4])     # the Tie Breaker cut short
    assert msg.tunnel_id == 0 and msg.message_type == "SCCRQ" and msg.avp("Host Name").value == b"lac"
    assert msg.errors == [f"length field {len(GOOD)} exceeds the {len(GOOD) - 4} bytes received",
                          "Tie Breaker AVP at byte 116: length 14 runs past the end (10 bytes left)"], msg.errors


def test_decode_never_raises_on_cut_or_mutated_messages():
    rng = random.Random(2661)
    hidden = encode(control(3, 0, 1, 1, [A.message_type("ICRQ"), A.random_vector(VECTOR),
                                         A.hide(A.calling_number("5551234"), SECRET, VECTOR),
                                         A.result_code(2, 6, "x")]))
    seeds = [GOOD, hidden, encode(data(5, 6, HDLC() / PPP() / PPP_LCP_Configure(), ns=1, nr=2, with_length=True))]
    for n in range(3000):
        raw = bytearray(rng.choice(seeds))
        kind = rng.randrange(4)
        if kind == 0:
            raw = raw[:rng.randrange(len(raw) + 1)]
        elif kind == 1:
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif kind == 2:
            at = rng.randrange(len(raw))
            raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            raw = bytearray(rng.randrange(256) for _ in range(rng.randrange(40)))
        msg = decode(bytes(raw), secret=SECRET if n % 2 else None)
        assert not any(e.startswith("decoder fault") for e in msg.errors), (bytes(raw).hex(), msg.errors)
        msg.describe()
        if not msg.malformed and msg.is_control:
            assert msg.message_type is not None, bytes(raw).hex()


def test_importing_the_codec_leaves_scapys_udp_1701_binding_alone():
    from scapy.layers.l2tp import L2TP
    pkt = IP(bytes(IP() / UDP(sport=1701, dport=1701) / Raw(GOOD)))
    assert pkt.haslayer(L2TP) and not pkt.haslayer(L2TPv2)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_the_same_header_fields(tmp_path):
    """Wireshark's L2TP dissector against decode(): message type, tunnel, session, Ns, Nr per frame, and each
    AVP's length, M and H bits (the AVP walk)."""
    messages = [
        sccrq(),
        encode(control(17, 0, 0, 1, [A.message_type("SCCRP"), A.protocol_version(), A.host_name("lns"),
                                     A.framing_capabilities(), A.assigned_tunnel_id(33),
                                     A.challenge_response_avp(A.challenge_response(2, SECRET, b"0123456789abcdef"))])),
        encode(zlb(33, 1, 1)),
        encode(control(33, 0, 2, 1, [A.message_type("ICRQ"), A.assigned_session_id(5), A.call_serial_number(1),
                                     A.random_vector(VECTOR), A.hide(A.calling_number("555"), SECRET, VECTOR)])),
        encode(control(17, 5, 3, 3, [A.message_type("CDN"), A.result_code(2, 6, "bye"),
                                     A.assigned_session_id(5)])),
        encode(data(33, 9, HDLC() / PPP() / PPP_LCP_Configure(id=1), ns=4, nr=0, with_length=True)),
        encode(data(33, 9, PPP() / PPP_LCP_Configure(id=2))),
        encode(control(33, 0, 4, 2, [A.message_type("SLI"), A.accm(0, 0xFFFFFFFF), A.call_errors(1, 2, 3, 4, 5, 6),
                                     A.q931_cause_code(16, 2, "x"), A.vendor_avp(4242, 1, b"vendor", mandatory=True),
                                     A.sequencing_required()])),
    ]
    pcap = tmp_path / "l2tp.pcap"
    wrpcap(str(pcap), [IP(src="198.18.0.2", dst="198.18.0.3") / UDP(sport=1701, dport=1701) / Raw(m)
                       for m in messages])
    out = subprocess.run([TSHARK, "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-e", "l2tp.avp.message_type",
                          "-e", "l2tp.tunnel", "-e", "l2tp.session", "-e", "l2tp.Ns", "-e", "l2tp.Nr",
                          "-e", "l2tp.avp.length", "-e", "l2tp.avp.mandatory", "-e", "l2tp.avp.hidden",
                          "-e", "_ws.expert.message"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert len(out) == len(messages), out
    for raw, line in zip(messages, out):
        msg = decode(raw)
        assert not msg.malformed, msg.describe()
        shown = [v or None for v in line.split("|")]
        ours = [msg.message_code, msg.tunnel_id, msg.session_id, msg.ns, msg.nr,
                ",".join(str(e.length) for e in msg.avps), ",".join(str(int(e.mandatory)) for e in msg.avps),
                ",".join(str(int(e.is_hidden)) for e in msg.avps)]
        assert shown[:-1] == [None if v in (None, "") else str(v) for v in ours], (line, msg.describe())
        assert "Malformed" not in (shown[-1] or ""), (line, msg.describe())     # notes like vendor data are fine
