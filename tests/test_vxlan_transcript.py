"""The VXLAN/Geneve transcript and ladder, the dissector `overlay-interop transcript` finds, the command itself
on the captures of tests/data/vxlan, and agreement with tshark (tests/vxlan_tshark.py)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from types import SimpleNamespace

import pytest

from support import DATA, ROOT
import vxlan_tshark
from harness import transcript_cli
from harness.packets import Datagram
from harness.protocols.vxlan import dissector
from harness.protocols.vxlan.ladder import ladder, write_ladder
from harness.protocols.vxlan.transcript import transcript
from harness.protocols.vxlan.wire import VxlanHeader, Wire
from harness.report.ladder import Lifeline

VXLAN_DATA = DATA / "vxlan"
CAPTURES = sorted(VXLAN_DATA.glob("*.pcap"))
SVG = "{http://www.w3.org/2000/svg}"
V1, V2 = "198.18.0.2", "198.18.0.3"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "transcript", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "default"})


def svg_texts(svg: str) -> list[str]:
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


# --- the transcript -------------------------------------------------------------------------------------------

def test_transcript_of_a_ping_exchange():
    lines = transcript(VXLAN_DATA / "vxlan_ping_4789.pcap").splitlines()
    assert lines[:5] == [
        "overlay frames: 8 (VXLAN 8)",
        "VNI 100: 8 frame(s)",
        f"{V1} > {V2}: 4 frame(s), UDP port 4789, 2 source port(s)",
        f"{V2} > {V1}: 4 frame(s), UDP port 4789, 2 source port(s)",
        "",
    ]
    assert lines[7] == (f"#4 0.003000 {V1}:51000 > {V2}:4789 VXLAN vni=100 flags=0x08 (I) | 02:4f:49:64:00:01 > "
                        "02:4f:49:64:00:02 IPv4 198.19.100.1 > 198.19.100.2 ICMP echo-request id=20297 seq=1 len=84 DF")
    assert len(lines) == 13


def test_transcript_flags_what_is_wrong():
    reserved = transcript(VXLAN_DATA / "vxlan_reserved.pcap")
    assert "reserved bits set: 3 frame(s)" in reserved and "I flag clear: 1 frame(s)" in reserved
    assert "flags=0x88 (I) [reserved bits set: R flags 0x80] |" in reserved
    geneve = transcript(VXLAN_DATA / "geneve.pcap")
    assert "overlay frames: 5 (GENEVE 5)" in geneve
    assert ("C=1 proto=0x6558 (Ethernet) option class=0xfff0 (Experimental) type=0x01 len=8 data=0x4f490001 "
            "option class=0xfff0 (Experimental) type=0x81 critical len=8 data=0x0000000a") in geneve
    fragments = transcript(VXLAN_DATA / "vxlan_fragments.pcap")
    assert "outer IP fragments: 3 (of 2 overlay datagram(s))" in fragments
    assert f"\n    #1 0.000000 {V1} > {V2} fragment id=0x1234 offset=0 MF len=1480\n" in fragments
    malformed = transcript(VXLAN_DATA / "vxlan_malformed.pcap")
    assert "malformed: 8 frame(s)" in malformed
    assert f"#1 0.000000 {V1}:49152 > {V2}:4789 VXLAN malformed: VXLAN header cut short (3 of 8 bytes)" in malformed


def test_transcript_and_ladder_show_icmp_errors():
    text = transcript(VXLAN_DATA / "vxlan_port_unreachable.pcap")
    assert "ICMP errors about overlay datagrams: 2 (port-unreachable 2)" in text
    assert f"#2 0.001000 {V2} > {V1} ICMP port-unreachable about UDP 41863 > 4789 (VXLAN vni=100)" in text
    root = ET.fromstring(ladder(VXLAN_DATA / "vxlan_port_unreachable.pcap"))
    red = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") == "#c62828"]
    assert red.count("ICMP port-unreachable") == 2 and "about UDP 41863 > 4789 (VXLAN, VNI 100)" in red


def test_transcript_of_nothing(tmp_path):
    assert transcript(tmp_path / "missing.pcap") == "no overlay frames on the wire"
    assert transcript(Wire()) == "no overlay frames on the wire"


# --- the ladder --------------------------------------------------------------------------------------------------

def test_ladder_has_a_lifeline_per_vtep_and_an_arrow_per_frame():
    svg = ladder(VXLAN_DATA / "vxlan_two_vnis.pcap", nodes=[Lifeline("vtep1 linux", V1)], title="vxlan / two")
    root = ET.fromstring(svg)
    texts = svg_texts(svg)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "arrow"]) == 10
    assert "vtep1 linux" in texts and "VTEP 198.18.0.3" in texts and "VTEP 198.18.0.4" in texts
    assert texts.count("VNI 200: ICMP echo-request seq=1") == 2 and "198.19.200.3 > 198.19.200.2" in texts


def test_ladder_notes_header_problems_in_red():
    svg = ladder(VXLAN_DATA / "vxlan_reserved.pcap")
    root = ET.fromstring(svg)
    red = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") == "#c62828"]
    assert any("reserved bits set: flags 0x88" in t for t in red)
    assert any("I flag clear (flags 0x00)" in t for t in red)
    geneve = svg_texts(ladder(VXLAN_DATA / "geneve.pcap"))
    assert any("option class=0xfff0 (Experimental) type=0x81 critical len=8" in t for t in geneve)
    assert "data=0x0000000a" in geneve   # the note wraps there


def test_write_ladder_names_the_roles(tmp_path):
    vendor = lambda name: SimpleNamespace(name=name)  # noqa: E731
    pair = SimpleNamespace(protocol="vxlan", case="ping", a=vendor("linux"), b=vendor("frr"),
                           vendor=lambda role: vendor("linux" if role == "vtep1" else "frr"))
    write_ladder(SimpleNamespace(pair=pair, dir=tmp_path), VXLAN_DATA / "vxlan_ping_4789.pcap",
                 {"vtep1": V1, "vtep2": V2})
    texts = svg_texts((tmp_path / "ladder.svg").read_text())
    assert "vxlan / ping / linux -> frr" in texts and "vtep1 linux" in texts and "vtep2 frr" in texts
    assert not any(t.startswith("VTEP ") for t in texts)


# --- the dissector and the command ---------------------------------------------------------------------------

def test_the_dissector_claims_overlay_udp():
    assert transcript_cli.dissectors()["vxlan"] is dissector

    def datagram(version, proto, sport, dport):
        payload = struct.pack("!HH", sport, dport) + bytes(12)
        return Datagram(1, 0.0, version, V1, V2, proto, payload, 20 + len(payload))
    assert dissector.claims(datagram(4, 17, 51000, 4789))
    assert dissector.claims(datagram(4, 17, 8472, 40000))
    assert dissector.claims(datagram(6, 17, 50000, 6081))
    assert dissector.claims(datagram(4, 17, 50000, 4790))   # VXLAN-GPE
    assert not dissector.claims(datagram(4, 17, 500, 500))
    assert not dissector.claims(datagram(4, 6, 51000, 4789))
    assert not dissector.claims(datagram(4, 17, 4500, 8472))  # the lower port decides: NAT-T, not VXLAN


def test_the_command_on_a_vxlan_capture_with_a_ladder(tmp_path):
    svg = tmp_path / "ladder.svg"
    result = run(VXLAN_DATA / "vxlan_ping_4789.pcap", "--ladder", svg)
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert "== vxlan: 8 frame(s)\noverlay frames: 8 (VXLAN 8)\n" in out
    assert out.count("ICMP echo-request") == 3 and f"ladder diagram: {svg}" in out
    assert out.rstrip().endswith("not decoded: 2 frame(s): 1 ARP, 1 UDP port 53")
    assert "VNI 100: ARP who-has 198.19.100.2 tell 198.19.100.1" in svg_texts(svg.read_text())


@pytest.mark.parametrize("capture", CAPTURES, ids=[p.name for p in CAPTURES])
def test_the_command_on_every_vxlan_capture(capture):
    result = run(capture)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "Traceback" not in result.stdout and "gave up" not in result.stdout
    assert "== vxlan: " in result.stdout


def test_a_later_fragment_goes_with_its_first():
    out = run(VXLAN_DATA / "vxlan_fragments.pcap").stdout
    assert "== vxlan: 5 frame(s)" in out and "not decoded: 1 frame(s): 1 IPv4 fragment" in out


# --- tshark -------------------------------------------------------------------------------------------------------

needs_tshark = pytest.mark.skipif(vxlan_tshark.TSHARK is None, reason="tshark is not installed")


@needs_tshark
@pytest.mark.parametrize("capture", CAPTURES, ids=[p.name for p in CAPTURES])
def test_tshark_agrees(capture):
    assert vxlan_tshark.disagreements(capture) == []


@needs_tshark
def test_tshark_agrees_on_extra_ports(tmp_path):
    from scapy.utils import wrpcap
    make = sys.modules["make_vxlan_pcaps"] if "make_vxlan_pcaps" in sys.modules else None
    if make is None:
        from support import load
        make = load("make_vxlan_pcaps", VXLAN_DATA / "make_vxlan_pcaps.py")
    pcap = tmp_path / "ports.pcap"
    wrpcap(str(pcap), [make.outer(V1, V2, 40000, 9999, make.vxlan_header(7) + make.echo(100, 1, 2, 1)),
                       make.outer(V1, V2, 40000, 9998, make.geneve_header(8) + make.echo(100, 1, 2, 2))])
    ports = {9999: "vxlan", 9998: "geneve"}
    assert vxlan_tshark.disagreements(pcap, ports) == []
    assert [f.vni for f in vxlan_tshark.tshark_frames(pcap, ports).values()] == [7, 8]


def test_the_comparison_notices_a_disagreement():
    """Without tshark: the comparison itself, on a frame and a made-up tshark reading of it."""
    frame = Wire.from_pcap(VXLAN_DATA / "vxlan_ping_4789.pcap").echoes()[0]
    seen = vxlan_tshark.TsharkFrame(frame.number, 100, (V1, "198.19.100.1"), (V2, "198.19.100.2"), None, None,
                                    ("02:00:00:00:00:02", "02:4f:49:64:00:01"))
    assert vxlan_tshark.compare(frame, seen) == []
    wrong_vni = replace(frame, header=VxlanHeader(0x08, 0, 200, 0))
    assert vxlan_tshark.compare(wrong_vni, seen) == [f"frame {frame.number}: VNI 200 (harness) vs 100 (tshark)"]
    other_inner = replace(seen, ip_dst=(V2, "198.19.100.9"))
    assert "inner 198.19.100.1 > 198.19.100.2 (harness) vs 198.19.100.1 > 198.19.100.9 (tshark)" in \
        vxlan_tshark.compare(frame, other_inner)[0]
    assert vxlan_tshark.compare(None, seen) == [
        f"frame {frame.number}: tshark shows VNI 100, the harness no overlay frame"]
    assert vxlan_tshark.compare(frame, None) == [f"frame {frame.number}: the harness shows VNI 100, tshark none"]
