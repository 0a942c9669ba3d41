"""How transcripts and ladders read: values as an engineer reads them (text as text, binary as hex, flags by
name, numbers with their RFC meaning), never a Python repr; and one message line layout for every protocol
(frame number, time since the capture's first frame, addresses and ports, then the protocol's description).

Every capture under tests/data is transcribed, and captures built here that reach the values the checked-in
ones do not: L2TP with hidden AVPs and every AVP of RFC 2661, PPP's LCP (many options), PAP, CHAP, IPCP;
VXLAN and Geneve with options."""
from __future__ import annotations

import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.ppp import (PPP, PPP_CHAP_ChallengeResponse, PPP_IPCP, PPP_IPCP_Option_DNS1,
                              PPP_IPCP_Option_IPAddress, PPP_LCP_ACCM_Option, PPP_LCP_Auth_Protocol_Option,
                              PPP_LCP_Configure, PPP_LCP_Echo, PPP_LCP_Magic_Number_Option, PPP_LCP_MRU_Option,
                              PPP_LCP_Terminate, PPP_PAP_Request, PPP_PAP_Response)
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import DATA

from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp import ppp
from harness.protocols.l2tp.codec import control, data, decode, encode, zlb
from harness.protocols.l2tp.dissector import render_ladder
from harness.protocols.l2tp.transcript import transcript as l2tp_transcript
from harness.protocols.l2tp.wire import Wire as L2tpWire
from harness.protocols.vxlan.ladder import ladder as vxlan_ladder
from harness.protocols.vxlan.transcript import transcript as vxlan_transcript
from harness.textfmt import endpoint, message_line
from harness.transcript_cli import transcribe

SVG = "{http://www.w3.org/2000/svg}"
LAC, LNS = "198.18.0.2", "198.18.0.3"
V1, V2 = "198.18.0.2", "198.18.0.3"
SECRET, VECTOR = b"interop-secret", bytes(range(16))
T0 = 1700000000.0

# What Python prints for its own objects: bytes (b'..'), dicts ({'..': / {1: ), lists and tuples of strings or
# numbers, scapy's flag values, default object reprs, None.
PYTHON_REPR = re.compile(r"""\bb'|\bb"|\{['"]|\{\d+: |\[['"]|\(['"]|\[\d+(, \d+)+\]|<Flag |object at 0x|\bNone\b"""
                         r"""|<[A-Z]\w*\s+\w+=""")


def svg_text(path: Path) -> str:
    return "\n".join(t.text or "" for t in ET.fromstring(path.read_text()).iter(f"{SVG}text"))


def _lcp_options() -> list:
    return [PPP_LCP_MRU_Option(max_recv_unit=1400), PPP_LCP_ACCM_Option(accm=0),
            PPP_LCP_Auth_Protocol_Option(auth_protocol=0xC223, algorithm=5),
            PPP_LCP_Magic_Number_Option(magic_number=0x12345678),
            Raw(b"\x04\x08\xc0\x25\x00\x00\x27\x10"      # Quality-Protocol LQR, period 10000
                b"\x07\x02\x08\x02"                      # PFC, ACFC
                b"\x0d\x03\x06"                          # Callback, operation 6
                b"\x11\x04\x05\xdc"                      # Multilink MRRU 1500
                b"\x13\x07\x01\x0a\x0b\x0c\x0d"          # Endpoint Discriminator
                b"\x63\x03\xee")]                        # an option no RFC here knows


def _l2tp_messages() -> list:
    """(src, dst, message) in capture order: a tunnel and a session set up with every AVP of RFC 2661 (some
    hidden), the PPP a session negotiates, a teardown, damage."""
    hidden = [A.random_vector(VECTOR), A.hide(A.assigned_session_id(5), SECRET, VECTOR),
              A.hide(A.calling_number("555\x01"), SECRET, VECTOR, padding=b"pad"),
              A.hide(A.proxy_authen_response(bytes(16)), SECRET, VECTOR)]
    session = lambda *ppp_layers: (LAC, LNS, data(33, 9, PPP() / ppp_layers[0]))  # noqa: E731
    return [
        (LAC, LNS, control(0, 0, 0, 0, [
            A.message_type("SCCRQ"), A.protocol_version(1, 0), A.host_name("lac.lab"),
            A.framing_capabilities("sync+async"), A.bearer_capabilities(3), A.assigned_tunnel_id(17),
            A.challenge(b"\x86\xaa\x01\x02\x03"), A.tie_breaker(0x1234), A.firmware_revision(0x101),
            A.vendor_name("ven\x01dor \xe9"), A.receive_window_size(4)])),
        (LNS, LAC, control(17, 0, 0, 1, [
            A.message_type("SCCRP"), A.protocol_version(1, 0), A.host_name(b"lns\xff"),
            A.framing_capabilities(0), A.assigned_tunnel_id(33),
            A.challenge_response_avp(A.challenge_response(2, SECRET, b"\x86\xaa\x01\x02\x03"))])),
        (LAC, LNS, control(33, 0, 1, 1, [A.message_type("SCCCN")])),
        (LNS, LAC, zlb(17, 1, 2)),
        (LAC, LNS, control(33, 0, 2, 1, [
            A.message_type("ICRQ"), *hidden, A.call_serial_number(1), A.bearer_type(2), A.minimum_bps(9600),
            A.maximum_bps(64000), A.called_number("123"), A.sub_address("7"), A.physical_channel_id(3),
            A.proxy_authen_type(2), A.proxy_authen_name("bob"), A.proxy_authen_challenge(b"\x01\x02"),
            A.proxy_authen_id(7), A.initial_received_lcp_confreq(b"\x01\x04\x05\xdc\x05\x06\x12\x34\x56\x78"),
            A.last_sent_lcp_confreq(b""), A.last_received_lcp_confreq(b"\x03\x05\xc2\x23\x05"),
            A.private_group_id("grp"), A.sequencing_required(), A.vendor_avp(4242, 1, b"vendor", mandatory=True)])),
        (LAC, LNS, control(33, 5, 3, 1, [
            A.message_type("ICCN"), A.tx_connect_speed(64000), A.rx_connect_speed(64000), A.framing_type(1),
            A.q931_cause_code(16, 2, "x")])),
        (LAC, LNS, control(33, 5, 4, 1, [A.message_type("SLI"), A.accm(0, 0xFFFFFFFF)])),
        (LAC, LNS, control(33, 5, 5, 1, [A.message_type("WEN"), A.call_errors(1, 2, 3, 4, 5, 6)])),
        session(PPP_LCP_Configure(id=1, options=_lcp_options())),
        session(PPP_LCP_Configure(code=3, id=1, options=[PPP_LCP_MRU_Option(max_recv_unit=1500)])),
        session(PPP_LCP_Configure(code=4, id=1, options=[Raw(b"\x07\x02")])),
        session(PPP_CHAP_ChallengeResponse(code=1, id=3, value=b"\x86\xaa" * 8, optional_name=b"lns")),
        session(PPP_CHAP_ChallengeResponse(code=2, id=3, value=bytes(16), optional_name=b"bob")),
        (LAC, LNS, data(33, 9, PPP(proto=0xC223) / Raw(b"\x03\x03\x00\x0bWelcome"))),   # CHAP Success
        session(PPP_PAP_Request(username=b"bob", password=b"p'w")),
        session(PPP_PAP_Response(code=3, message=b"Login incorrect")),
        session(PPP_IPCP(code=1, id=1, options=[PPP_IPCP_Option_IPAddress(data="198.19.200.1"),
                                                PPP_IPCP_Option_DNS1(data="0.0.0.0"),
                                                Raw(b"\x02\x06\x00\x2d\x0f\x01")])),
        session(PPP_LCP_Echo(code=9, id=1, magic_number=0xDEADBEEF)),
        session(PPP_LCP_Terminate(code=5, id=2, data=b"User request")),
        (LAC, LNS, data(33, 9, PPP(proto=0x8057) / Raw(b"\x01\x01\x00\x0e\x01\x0a\x00\x01\x02\x03\x04\x05\x06\x07"))),
        (LAC, LNS, data(33, 9, PPP(proto=0xC021) / Raw(b"\x08\x02\x00\x0a\x80\xfd\x01\x01\x00\x04"))),
        (LAC, LNS, data(33, 9, PPP(proto=0x21) / IP(src="198.19.200.1", dst="198.19.200.2") / ICMP())),
        (LAC, LNS, data(33, 9, PPP(proto=0x57) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP())),
        (LAC, LNS, data(33, 9, PPP(proto=0xC021) / Raw(b"\x01\x05\x00\x30\x01"))),   # length past the end
        (LNS, LAC, control(17, 5, 3, 6, [A.message_type("CDN"), A.result_code(2, 6, "bye \x00"),
                                         A.assigned_session_id(5)])),
        (LNS, LAC, control(17, 0, 4, 6, [A.message_type("StopCCN"), A.result_code(1),
                                         A.assigned_tunnel_id(33)])),
    ]


@pytest.fixture(scope="module")
def l2tp_capture(tmp_path_factory) -> Path:
    """The L2TP exchange, after an unrelated frame first (times count from it), and two damaged datagrams."""
    packets = [IP(src=LAC, dst=LNS) / UDP(sport=5000, dport=5001) / Raw(b"not l2tp")]
    packets += [IP(src=s, dst=d) / UDP(sport=1701, dport=1701) / Raw(encode(m)) for s, d, m in _l2tp_messages()]
    packets.append(IP(src=LAC, dst=LNS) / UDP(sport=1701, dport=1701) / Raw(b"\xc8\x02\x00"))
    packets.append(IP(src=LAC, dst=LNS) / UDP(sport=1701, dport=1701) / Raw(b"\x00"))
    for i, packet in enumerate(packets):
        packet.time = T0 + i * 0.25
    path = tmp_path_factory.mktemp("l2tp") / "l2tp.pcap"
    wrpcap(str(path), packets)
    return path


def _geneve(vni: int, options: bytes, protocol: int = 0x6558, flags: int = 0) -> bytes:
    return struct.pack("!BBHI", len(options) // 4, flags, protocol, vni << 8) + options


def _option(cls: int, kind: int, value: bytes) -> bytes:
    return struct.pack("!HBB", cls, kind, len(value) // 4) + value


@pytest.fixture(scope="module")
def overlay_capture(tmp_path_factory) -> Path:
    """VXLAN and Geneve: options of assigned, experimental and unassigned classes, a critical one, reserved
    bits, inner ARP, IPv6 and a VLAN tag, Geneve carrying IPv4 directly."""
    inner = Ether(src="02:4f:49:64:00:01", dst="02:4f:49:64:00:02")
    ping = inner / IP(src="198.19.100.1", dst="198.19.100.2") / ICMP(id=1, seq=1)
    carried = [
        (4789, struct.pack("!B3sI", 0x08, b"\0\0\0", 100 << 8) + bytes(ping)),
        (4789, struct.pack("!B3sI", 0x8C, b"\0\0\1", (100 << 8) | 1) + bytes(inner / ARP(psrc="198.19.100.1",
                                                                                          pdst="198.19.100.2"))),
        (8472, struct.pack("!B3sI", 0x08, b"\0\0\0", 200 << 8) + bytes(inner / Dot1Q(vlan=10) / IPv6() / UDP())),
        (6081, _geneve(100, _option(0x0102, 0x80, b"\x00\x01\x00\x02") + _option(0x0101, 0x01, b"")
                       + _option(0x1234, 0x7F, bytes(range(8))) + _option(0xFFF0, 0x01, b"\x4f\x49\x00\x01"),
                       flags=0x40) + bytes(ping)),
        (6081, _geneve(100, b"", protocol=0x0800, flags=0x81) + bytes(IP(src="198.19.100.1", dst="198.19.100.2")
                                                                     / ICMP())),
        (6081, _geneve(100, _option(0xFFF0, 0x81, b"\x00\x00\x00\x0a")) + bytes(ping)),
    ]
    packets = [Ether() / IP(src=V1, dst=V2, id=i) / UDP(sport=50000 + i, dport=port) / Raw(body)
               for i, (port, body) in enumerate(carried)]
    for i, packet in enumerate(packets):
        packet.time = T0 + i * 0.001
    path = tmp_path_factory.mktemp("overlay") / "overlay.pcap"
    wrpcap(str(path), packets)
    return path


def _every_capture(l2tp_capture: Path, overlay_capture: Path) -> list[tuple[Path, list[Path]]]:
    """(capture, --keys-from logs): every capture under tests/data, with the daemon logs beside it, and ours."""
    found = []
    for pcap in sorted(p for p in DATA.rglob("*") if p.suffix in (".pcap", ".pcapng")):
        stem = pcap.name.rsplit(".", 1)[0]
        found.append((pcap, sorted(pcap.parent.glob(f"{stem}.*.log"))))
    return found + [(l2tp_capture, []), (overlay_capture, [])]


def test_no_transcript_or_ladder_shows_a_python_repr(l2tp_capture, overlay_capture, tmp_path):
    """What `overlay-interop transcript --ladder` prints and draws for every capture we have."""
    checked = 0
    for pcap, logs in _every_capture(l2tp_capture, overlay_capture):
        out = tmp_path / pcap.name
        out.mkdir()
        text = "\n".join(transcribe(pcap, logs, ladder=out / "ladder.svg"))
        drawn = "\n".join(svg_text(svg) for svg in sorted(out.glob("*.svg")))
        for where, shown in (("transcript", text), ("ladder", drawn)):
            leaks = [line for line in shown.splitlines() if PYTHON_REPR.search(line)]
            assert not leaks, f"{pcap.name}: the {where} shows Python reprs:\n" + "\n".join(leaks[:10])
        checked += 1
    assert checked >= 20


def test_the_l2tp_transcript_opened_with_the_secret_shows_no_repr_either(l2tp_capture):
    text = l2tp_transcript(L2tpWire.from_pcap(l2tp_capture, SECRET))
    assert not [line for line in text.splitlines() if PYTHON_REPR.search(line)]
    assert "Assigned Session ID [MH] 5" in text and "Calling Number [MH] 555\\x01" in text
    assert "Proxy Authen Response [-H] 0x00000000000000000000000000000000" in text


def test_avp_values_read_as_rfc_2661_writes_them(l2tp_capture):
    text = l2tp_transcript(l2tp_capture)
    for expected in [
        "Message Type [M-] 1 (SCCRQ)", "Protocol Version [M-] 1.0", "Host Name [M-] lac.lab",
        "Framing Capabilities [M-] sync, async", "Bearer Capabilities [M-] digital, analog",
        "Challenge [M-] 0x86aa010203", "Tie Breaker [--] 0x0000000000001234", "Vendor Name [--] ven\\x01dor é",
        "Host Name [M-] lns\\xff", "Framing Capabilities [M-] none", "Bearer Type [M-] analog",
        "Random Vector [M-] 0x000102030405060708090a0b0c0d0e0f", "Proxy Authen Type [--] 2 (PPP CHAP)",
        "Initial Received LCP CONFREQ [--] Maximum-Receive-Unit 1500, Magic-Number 0x12345678",
        "Last Sent LCP CONFREQ [--] (no options)",
        "Last Received LCP CONFREQ [--] Authentication-Protocol CHAP (0xc223) algorithm MD5 (5)",
        "Sequencing Required [M-]\n", "vendor 4242 attribute 1 [M-] 0x76656e646f72",
        'Q.931 Cause Code [M-] cause 16, message type 2, advisory "x"',
        "ACCM [M-] send 0x00000000, receive 0xffffffff",
        "Call Errors [M-] CRC errors 1, framing errors 2, hardware overruns 3, buffer overruns 4, timeout errors 5, "
        "alignment errors 6",
        # RFC 2661 4.4.2: a Result Code means one thing in a CDN and another in a StopCCN
        'Result Code [M-] 2 (Call disconnected for the reason indicated in error code), error 6 (A generic '
        'vendor-specific error occurred in the LAC), message "bye \\x00"',
        "Result Code [M-] 1 (General request to clear control connection)",
    ]:
        assert expected in text, f"{expected!r} not in\n{text}"
    assert re.search(r"Assigned Session ID \[MH\] hidden 0x[0-9a-f]{8}\n", text), text


def test_ppp_reads_by_its_rfcs(l2tp_capture):
    text = l2tp_transcript(l2tp_capture)
    for expected in [
        "PPP LCP Configure-Request id 1: Maximum-Receive-Unit 1400, Async-Control-Character-Map 0x00000000, "
        "Authentication-Protocol CHAP (0xc223) algorithm MD5 (5), Magic-Number 0x12345678, "
        "Quality-Protocol LQR (0xc025) reporting period 10000, Protocol-Field-Compression, "
        "Address-and-Control-Field-Compression, Callback operation 6, Multilink-MRRU 1500, "
        "Multilink-Endpoint-Discriminator class 1 address 0x0a0b0c0d, option 99 0xee",
        "PPP LCP Configure-Nak id 1: Maximum-Receive-Unit 1500",
        "PPP LCP Configure-Reject id 1: Protocol-Field-Compression",
        'PPP CHAP Challenge id 3: value 0x86aa86aa86aa86aa86aa86aa86aa86aa, name "lns"',
        'PPP CHAP Success id 3: message "Welcome"',
        "PPP PAP Authenticate-Request id 0: peer-id \"bob\", password \"p'w\"",
        'PPP PAP Authenticate-Nak id 0: message "Login incorrect"',
        "PPP IPCP Configure-Request id 1: IP-Address 198.19.200.1, Primary-DNS-Address 0.0.0.0, "
        "IP-Compression-Protocol Van Jacobson (0x002d) max slot 15 compress slot 1",
        "PPP LCP Echo-Request id 1: magic 0xdeadbeef",
        'PPP LCP Terminate-Request id 2: data "User request"',
        "PPP IPV6CP Configure-Request id 1: Interface-Identifier 0001:0203:0405:0607",
        "PPP LCP Protocol-Reject id 2: rejected protocol CCP (0x80fd), information 0x01010004",
        "PPP IPv4 198.19.200.1 > 198.19.200.2 ICMP echo-request len=28",
        "PPP IPv6 [2001:db8::1]:53 > [2001:db8::2]:53 UDP len=8",
        "PPP LCP Configure-Request id 5: unreadable option at byte 0: 0x01, length 48, 5 bytes on the wire",
    ]:
        assert expected in text, f"{expected!r} not in\n{text}"


def test_the_endpoints_log_reads_ppp_the_same_way():
    """ppp.py's log (the user-space PPP endpoint) and the transcript describe a packet with the same code."""
    logged = []
    link = ppp.Link({"auth": "chap", "password": "pw", "username": "bob"}, write=lambda payload: None,
                    log=logged.append)
    link.start()
    assert re.fullmatch(r"sent LCP Configure-Request id \d+: Maximum-Receive-Unit 1400, Magic-Number 0x[0-9a-f]{8}, "
                        r"Authentication-Protocol CHAP \(0xc223\) algorithm MD5 \(5\)", logged[0]), logged


def test_the_ladder_shows_what_the_transcript_shows(l2tp_capture):
    """One description per format: an AVP's and a PPP packet's text is the same in the transcript and the ladder,
    and an arrow carries its frame number and the time the transcript gives it."""
    wire = L2tpWire.from_pcap(l2tp_capture)
    svg = ET.fromstring(render_ladder(wire))
    drawn = [t.text for t in svg.iter(f"{SVG}text")]
    assert "Protocol Version [M-] 1.0" in drawn and "Host Name [M-] lac.lab" in drawn
    assert "data: LCP Echo-Request id 1" in drawn and "magic 0xdeadbeef" in drawn
    first = wire.datagrams[0]
    assert first.number == 2 and "#2" in drawn and f"{first.time - wire.start:.3f}" == "0.250" and "0.250" in drawn


def test_overlay_values_read_as_the_rfcs_write_them(overlay_capture):
    text = vxlan_transcript(overlay_capture)
    for expected in [
        "VXLAN vni=100 flags=0x08 (I) |",
        "VXLAN vni=100 flags=0x8c (I) [reserved bits set: R flags 0x84, 24-bit 0x000001, 8-bit 0x01] |",
        "GENEVE vni=100 O=0 C=1 proto=0x6558 (Ethernet) "
        "option class=0x0102 (Open Virtual Networking (OVN)) type=0x80 critical len=8 data=0x00010002 "
        "option class=0x0101 (Open vSwitch) type=0x01 len=4 data=- "
        "option class=0x1234 (Unassigned) type=0x7f len=12 data=0x0001020304050607 "
        "option class=0xfff0 (Experimental) type=0x01 len=8 data=0x4f490001 |",
        "GENEVE vni=100 O=1 C=0 proto=0x0800 (IPv4) [reserved bits set: 6-bit 0x01, 8-bit 0x00] | IPv4",
        "vlan 10 IPv6",
    ]:
        assert expected in text, f"{expected!r} not in\n{text}"


LINE = re.compile(r"^#(\d+) (\d+\.\d{6}) (\S+) > (\S+) ")


def test_every_protocol_starts_a_message_line_the_same_way(l2tp_capture, overlay_capture):
    """Frame number (Wireshark's, from 1), seconds since the capture's first frame (6 decimals), addresses and
    ports: for L2TP, VXLAN and Geneve alike."""
    l2tp = [LINE.match(line) for line in l2tp_transcript(l2tp_capture).splitlines() if line.startswith("#")]
    assert l2tp[0].groups() == ("2", "0.250000", f"{LAC}:1701", f"{LNS}:1701")
    assert len(l2tp) == len(_l2tp_messages()) + 2 and all(l2tp)
    overlay = [LINE.match(line) for line in vxlan_transcript(overlay_capture).splitlines()]
    assert overlay[-1].groups() == ("6", "0.005000", f"{V1}:50005", f"{V2}:6081"), overlay
    svg = [t.text for t in ET.fromstring(vxlan_ladder(overlay_capture)).iter(f"{SVG}text")]
    assert "#6" in svg and "0.005" in svg


def test_message_line():
    assert message_line(7, 12.5, 10.0, "198.18.0.2", "198.18.0.3", "SCCRQ", 1701, 1701) == \
        "#7 2.500000 198.18.0.2:1701 > 198.18.0.3:1701 SCCRQ"
    assert message_line(1, 3.0, 3.0, "2001:db8::2", "2001:db8::3", "fragment") == \
        "#1 0.000000 2001:db8::2 > 2001:db8::3 fragment"
    assert endpoint("2001:db8::2", 4789) == "[2001:db8::2]:4789" and endpoint("198.18.0.2") == "198.18.0.2"


def test_a_message_too_damaged_for_its_ids_says_so_without_none():
    assert decode(b"\x00").describe().splitlines()[0] == "unreadable"
    assert decode(b"\xc8\x02\x00").describe().splitlines()[0] == "control"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_the_built_captures_as_we_do(l2tp_capture, overlay_capture):
    """The captures built here are read alike by Wireshark: L2TP message types, ids, Ns/Nr; VNIs, inner
    addresses and MACs."""
    import l2tp_tshark
    import vxlan_tshark
    assert not l2tp_tshark.disagreements(l2tp_capture)
    assert not vxlan_tshark.disagreements(overlay_capture)
