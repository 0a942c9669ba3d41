"""The L2TP wire reader, transcript and dissector on a capture built with the codec: a tunnel and a session
set up, a data message, a damaged datagram; and `overlay-interop transcript` on it."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.ppp import PPP, PPP_LCP_Configure
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import ROOT

from harness.packets import Datagram
from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp import dissector
from harness.protocols.l2tp.codec import control, data, encode, zlb
from harness.protocols.l2tp.transcript import transcript
from harness.protocols.l2tp.wire import Wire

LAC, LNS = "198.18.0.2", "198.18.0.3"
SECRET, VECTOR = b"interop-secret", bytes(range(16))


@pytest.fixture
def capture(tmp_path):
    exchange = [
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
    packets = [IP(src=s, dst=d) / UDP(sport=1701, dport=1701) / Raw(encode(m)) for s, d, m in exchange]
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
    assert "tunnel ids: [0, 17, 33]" in text and "malformed: 1 message(s)" in text
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
