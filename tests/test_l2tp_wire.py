"""The L2TP wire reader, transcript and dissector on a capture built with the codec: a tunnel and a session
set up, a data message, a damaged datagram; and `overlay-interop transcript` on it."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.layers.ppp import PPP, PPP_LCP_Configure
from scapy.packet import Raw
from scapy.utils import wrpcap

import l2tp_tshark
from support import ROOT

from harness.packets import Datagram
from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp import dissector
from harness.protocols.l2tp.codec import control, data, encode, zlb
from harness.protocols.l2tp.transcript import transcript
from harness.protocols.l2tp.wire import Wire

LAC, LNS = "198.18.0.2", "198.18.0.3"
SECRET, VECTOR = b"interop-secret", bytes(range(16))


def _exchange():
    return [
        (LAC, LNS, control(0, 0, 0, 0, [A.message_type("SCCRQ"), A.protocol_version(1, 0), A.host_name("lac"),
                                        A.framing_capabilities("sync+async"), A.assigned_tunnel_id(17)])),
        (LNS, LAC, control(17, 0, 0, 1, [A.message_type("SCCRP"), A.protocol_version(1, 0), A.host_name("lns"),
                                         A.framing_capabilities("sync+async"), A.assigned_tunnel_id(33)])),
        (LAC, LNS, control(33, 0, 1, 1, [A.message_type("SCCCN")])),
        (LNS, LAC, zlb(17, 1, 2)),
        (LAC, LNS, control(33, 0, 2, 1, [A.message_type("ICRQ"), A.random_vector(VECTOR),
                                         A.hide(A.assigned_session_id(5), SECRET, VECTOR),
                                         A.call_serial_number(1)])),
        (LAC, LNS, data(33, 9, PPP() / PPP_LCP_Configure(id=1))),
    ]


@pytest.fixture
def capture(tmp_path):
    packets = [IP(src=s, dst=d) / UDP(sport=1701, dport=1701) / Raw(encode(m)) for s, d, m in _exchange()]
    packets.append(IP(src=LAC, dst=LNS) / UDP(sport=1701, dport=1701) / Raw(b"\xc8\x02\x00"))  # cut short
    packets.append(IP(src=LAC, dst=LNS) / UDP(sport=5000, dport=5001) / Raw(b"not l2tp"))
    path = tmp_path / "l2tp.pcap"
    wrpcap(str(path), packets)
    return path


def test_the_wire_reads_message_types_ids_and_sequence_numbers(capture):
    wire = Wire.from_pcap(capture)
    assert wire.message_types() == ["SCCRQ", "SCCRP", "SCCCN", "ZLB", "ICRQ", "malformed"]
    assert wire.message_types(src=LAC, zlb=False) == ["SCCRQ", "SCCCN", "ICRQ", "malformed"]
    assert [(d.message.ns, d.message.nr) for d in wire.control(src=LAC)[:3]] == [(0, 0), (1, 1), (2, 1)]
    assert [d.message.tunnel_id for d in wire.control(src=LNS)] == [17, 17]
    assert len(wire.data(src=LAC)) == 1 and wire.data()[0].message.ppp is not None
    assert len(wire.malformed()) == 1 and wire.datagrams[-1].number == 7


def test_hidden_avps_stay_hidden_without_the_secret_and_open_with_it(capture):
    icrq = Wire.from_pcap(capture).control(src=LAC)[2].message
    assert icrq.avp("Assigned Session ID").is_hidden and icrq.avp("Assigned Session ID").value is None
    opened = Wire.from_pcap(capture, secret=SECRET).control(src=LAC)[2].message
    assert opened.avp("Assigned Session ID").revealed and opened.avp("Assigned Session ID").value == 5


def test_transcript_summarises_then_lists_every_message(capture):
    text = transcript(capture)
    assert f"{LAC} > {LNS}: 4 control message(s): SCCRQ SCCCN ICRQ malformed" in text
    assert "tunnel ids: 0, 17, 33; session ids: 9" in text and "malformed: 1 message(s)" in text
    assert "Host Name" in text and "SCCRP tunnel 17 session 0 Ns 0 Nr 1" in text


def test_a_file_that_is_not_a_capture_has_no_l2tp(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(40))
    assert transcript(junk) == "no L2TP on the wire"


def test_the_transcript_command_reads_l2tp(capture, tmp_path):
    ladder = tmp_path / "ladder.svg"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "transcript", str(capture), "--ladder", str(ladder)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "SCCRQ tunnel 0 session 0 Ns 0 Nr 0" in result.stdout
    svg = ladder.read_text()
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    assert "SCCRP" in svg and "ZLB" in svg


def test_the_dissector_claims_udp_1701_only():
    def d(sport, dport, proto=17):
        payload = struct.pack("!HH", sport, dport) + bytes(8)
        return Datagram(1, 0.0, 4, "198.18.0.2", "198.18.0.3", proto, payload, 20 + len(payload))
    assert dissector.claims(d(1701, 40000)) and dissector.claims(d(40000, 1701))
    assert not dissector.claims(d(4789, 4789)) and not dissector.claims(d(1701, 1701, proto=6))


# --- IPv6, IP fragments, L2TPv3 -----------------------------------------------------------------------------------

V6 = {LAC: "2001:db8::2", LNS: "2001:db8::3"}


def test_l2tp_over_ipv6_reads_as_over_ipv4(tmp_path, capture):
    packets = [Ether() / IPv6(src=V6[s], dst=V6[d]) / UDP(sport=1701, dport=1701) / Raw(encode(m))
               for s, d, m in _exchange()]
    wrpcap(str(tmp_path / "l2tp6.pcap"), packets)
    over6, over4 = Wire.from_pcap(tmp_path / "l2tp6.pcap"), Wire.from_pcap(capture)
    assert over6.message_types() == over4.message_types()[:-1] == ["SCCRQ", "SCCRP", "SCCCN", "ZLB", "ICRQ"]
    assert [(d.src, d.message.tunnel_id, d.message.ns, d.message.nr) for d in over6.control()] == [
        (V6[d.src], d.message.tunnel_id, d.message.ns, d.message.nr) for d in over4.control()[:-1]]
    assert over6.sequence_error(V6[LAC]) is None and len(over6.data()) == 1
    assert "[2001:db8::3]:1701 > [2001:db8::2]:1701 SCCRP tunnel 17 session 0 Ns 0 Nr 1" in over6.describe()
    if l2tp_tshark.TSHARK:
        assert l2tp_tshark.disagreements(tmp_path / "l2tp6.pcap") == []


def test_an_ip_fragmented_control_message_is_reassembled(tmp_path):
    """A control message larger than the path MTU, fragmented by the IP layer (IPv4 and IPv6): one message,
    numbered by the frame that completed it."""
    sccrq = encode(control(0, 0, 0, 0, [A.message_type("SCCRQ"), A.protocol_version(1, 0),
                                        A.host_name("l" * 1000), A.vendor_name("v" * 1000), A.assigned_tunnel_id(4)]))
    four = fragment(IP(src=LAC, dst=LNS, id=99) / UDP(sport=1701, dport=1701) / Raw(sccrq), fragsize=800)
    six = fragment6(IPv6(src=V6[LAC], dst=V6[LNS]) / IPv6ExtHdrFragment(id=5) / UDP(sport=1701, dport=1701)
                    / Raw(sccrq), 1280)
    wrpcap(str(tmp_path / "frag.pcap"), [Ether() / p for p in [four[2], four[0], four[1], *six]])
    wire = Wire.from_pcap(tmp_path / "frag.pcap")
    assert [(d.number, d.kind, d.message.avp("Host Name").value) for d in wire.datagrams] == [
        (3, "SCCRQ", b"l" * 1000), (3 + len(six), "SCCRQ", b"l" * 1000)]
    assert not any(d.message.malformed for d in wire.datagrams)


def _l2tpv3_frames():
    avps = struct.pack("!HHHH", 0x8008, 0, 0, 1) + struct.pack("!HHH", 0x800C, 0, 7) + b"lac.v3"
    sccrq = struct.pack("!HHIHH", 0xC803, 12 + len(avps), 0x11223344, 0, 0) + avps
    zlb_ = struct.pack("!HHIHH", 0xC803, 12, 0x55667788, 1, 1)
    data_ = struct.pack("!HHI", 0x0003, 0, 0x1234ABCD) + bytes(8) + b"an Ethernet frame, perhaps"
    return [IP(src=LAC, dst=LNS) / UDP(sport=1701, dport=1701) / Raw(sccrq),
            IPv6(src=V6[LNS], dst=V6[LAC]) / UDP(sport=1701, dport=1701) / Raw(zlb_),
            IP(src=LAC, dst=LNS) / UDP(sport=1701, dport=1701) / Raw(data_),
            IP(src=LAC, dst=LNS, proto=115) / Raw(bytes(4) + sccrq),                 # over IP: session 0, control
            IP(src=LAC, dst=LNS, proto=115) / Raw(struct.pack("!I", 0xABCD) + b"data")]


def test_l2tpv3_is_recognised_and_its_header_shown(tmp_path):
    """RFC 3931: over UDP 1701 the version field (3) tells it from L2TPv2; over IP (protocol 115) a zero Session
    ID means a control message. Header only: said so, and kept out of L2TPv2's control and data lists."""
    wrpcap(str(tmp_path / "v3.pcap"), [Ether() / p for p in _l2tpv3_frames()])
    wire = Wire.from_pcap(tmp_path / "v3.pcap")
    assert [d.kind for d in wire.datagrams] == ["L2TPv3 SCCRQ", "L2TPv3 ZLB", "L2TPv3 data", "L2TPv3 SCCRQ",
                                                "L2TPv3 data"]
    sccrq, zlb_, data_, over_ip, data_over_ip = (d.message for d in wire.datagrams)
    assert (sccrq.connection_id, sccrq.ns, sccrq.nr, sccrq.length, sccrq.malformed) == (0x11223344, 0, 0, 32, False)
    assert (zlb_.connection_id, zlb_.ns, zlb_.nr) == (0x55667788, 1, 1)
    assert (data_.session_id, data_over_ip.session_id, over_ip.message_code) == (0x1234ABCD, 0xABCD, 1)
    assert wire.control() == [] and wire.data() == [] and wire.retransmitted == {}
    first, *_, last = wire.describe().splitlines()
    assert first.endswith(f" {LAC}:1701 > {LNS}:1701 L2TPv3 SCCRQ control connection 0x11223344 Ns 0 Nr 0 over "
                          f"UDP (L2TPv3: header only)") and "#1" in first
    assert last.endswith(f" {LAC} > {LNS} L2TPv3 data session 0x0000abcd over IP (L2TPv3: header only)")
    assert "#5" in last


@pytest.mark.skipif(l2tp_tshark.TSHARK is None, reason="tshark is not installed")
def test_tshark_reads_l2tpv3_headers_the_same(tmp_path):
    wrpcap(str(tmp_path / "v3.pcap"), [Ether() / p for p in _l2tpv3_frames()])
    out = subprocess.run(["tshark", "-r", str(tmp_path / "v3.pcap"), "-T", "fields", "-E", "separator=|",
                          "-e", "frame.number", "-e", "l2tp.ccid", "-e", "l2tp.sid", "-e", "l2tp.Ns", "-e", "l2tp.Nr",
                          "-e", "l2tp.avp.message_type"], capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = [[int(v, 0) if v else None for v in line.split("|")] for line in out.splitlines()]
    ours = [[d.number, d.message.connection_id, d.message.session_id if d.message.session_id else
             (0 if d.message.over == "IP" and d.message.control else None), d.message.ns, d.message.nr,
             d.message.message_code] for d in Wire.from_pcap(tmp_path / "v3.pcap").datagrams]
    assert ours == theirs
