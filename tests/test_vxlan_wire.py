"""harness.protocols.vxlan.wire against the checked-in captures of tests/data/vxlan (make_vxlan_pcaps.py), small
captures built per test for ports and link types, and damaged files (the decoders are fuzzed in test_fuzz.py)."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import DATA, load
from harness.protocols.vxlan.wire import GeneveOption, OverlayFrames, Wire

VXLAN_DATA = DATA / "vxlan"
V1, V2, V3 = "198.18.0.2", "198.18.0.3", "198.18.0.4"
H1, H2 = "198.19.100.1", "198.19.100.2"
M1, M2 = "02:4f:49:64:00:01", "02:4f:49:64:00:02"
make = load("make_vxlan_pcaps", VXLAN_DATA / "make_vxlan_pcaps.py")


def read(name: str, **kwargs) -> Wire:
    return Wire.from_pcap(VXLAN_DATA / name, **kwargs)


def test_the_generator_reproduces_the_checked_in_captures(tmp_path):
    subprocess.run([sys.executable, str(VXLAN_DATA / "make_vxlan_pcaps.py"), str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(make.CAPTURES)
    for name in made:
        assert (tmp_path / name).read_bytes() == (VXLAN_DATA / name).read_bytes(), name


# --- a ping exchange ------------------------------------------------------------------------------------------

def test_ping_exchange_at_4789():
    wire = read("vxlan_ping_4789.pcap")
    frames = wire.frames()
    assert len(frames) == 8, wire.describe()   # the underlay ARP and the UDP 53 datagram are not overlay
    assert [f.number for f in frames] == [2, 3, 4, 5, 7, 8, 9, 10]
    assert wire.vnis() == (100,)
    first = frames[0]
    assert (first.src, first.dst, first.sport, first.dport) == (V1, V2, 51234, 4789)
    assert first.encapsulation == "vxlan" and first.flags == 0x08 and first.i_flag and first.reserved_clear
    assert first.header.r_flags == 0 and first.header.reserved24 == 0 and first.header.reserved8 == 0
    assert first.df is True and first.ip_id == 0 and first.udp_checksum == 0 and not first.fragmented
    assert first.malformed is None
    assert first.time == pytest.approx(make.T0 + 0.001)


def test_inner_arp_is_decoded():
    wire = read("vxlan_ping_4789.pcap")
    request, reply = wire.arp()
    assert (request.inner.src, request.inner.dst, request.inner.ethertype) == (M1, "ff:ff:ff:ff:ff:ff", 0x0806)
    assert request.inner.arp.kind == "request" and request.inner.arp.op == 1
    assert (request.inner.arp.sender_ip, request.inner.arp.target_ip) == (H1, H2)
    assert reply.inner.arp.kind == "reply" and reply.inner.arp.sender_mac == M2 and (reply.src, reply.dst) == (V2, V1)
    assert wire.arp(op="reply") == (reply,) and wire.arp(vni=200) == ()
    with pytest.raises(ValueError, match="ARP op must be one of request, reply"):
        wire.arp(op="who-has")


def test_inner_echoes_are_decoded():
    wire = read("vxlan_ping_4789.pcap")
    echoes = wire.echoes(vni=100)
    assert len(echoes) == 6 and len(echoes.requests()) == 3 and len(echoes.replies()) == 3
    request = echoes.requests()[0]
    assert (request.src, request.dst, request.vni) == (V1, V2, 100)
    assert (request.inner.src, request.inner.dst, request.inner.ethertype) == (M1, M2, 0x0800)
    ip = request.inner.ip
    assert (ip.version, ip.src, ip.dst, ip.proto, ip.df, ip.length) == (4, H1, H2, 1, True, 84)
    icmp = request.inner.icmp
    assert (icmp.kind, icmp.id, icmp.seq) == ("echo-request", 0x4F49, 1)
    assert [f.inner.icmp.seq for f in echoes.replies()] == [1, 2, 3]
    assert all((f.src, f.dst) == (V2, V1) for f in echoes.replies())
    assert wire.echoes(src=V2) == echoes.replies()


def test_linux_port_8472_is_vxlan():
    wire = read("vxlan_ping_8472.pcap")
    assert len(wire.frames()) == 8 and {f.dport for f in wire.frames()} == {8472}
    assert {f.encapsulation for f in wire.frames()} == {"vxlan"}
    assert len(wire.echoes().requests()) == 3


def test_two_vnis_and_three_vteps():
    wire = read("vxlan_two_vnis.pcap")
    assert wire.vnis() == (100, 200)
    assert len(wire.frames(vni=100)) == 4 and len(wire.frames(vni=200)) == 6
    assert [f.inner.ip.src for f in wire.frames(vni=200, src=V3)] == ["198.19.200.3"]
    assert wire.frames(vni=200, dst=V3)[0].inner.dst == "02:4f:49:c8:00:03"
    assert wire.outer_source_ports(vni=200) == (50200, 50201, 50300, 50301)
    assert wire.outer_source_ports(src=V1, dst=V2) == (50100, 50200)
    assert wire.vtep_pairs() == {(V1, V2): 4, (V2, V1): 4, (V3, V2): 1, (V2, V3): 1}
    assert len(wire.echoes(vni=200).requests()) == 3


# --- header bits ------------------------------------------------------------------------------------------------

def test_reserved_bits_and_the_i_flag():
    frames = read("vxlan_reserved.pcap").frames()
    r_flag, reserved24, reserved8, no_i_flag, tagged = frames
    assert r_flag.flags == 0x88 and r_flag.header.r_flags == 0x80 and r_flag.i_flag and not r_flag.reserved_clear
    assert reserved24.header.reserved24 == 1 and not reserved24.reserved_clear
    assert reserved8.header.reserved8 == 1 and not reserved8.reserved_clear and reserved8.vni == 100
    assert no_i_flag.i_flag is False and no_i_flag.reserved_clear and no_i_flag.vni == 100
    assert tagged.reserved_clear and tagged.inner.vlan == 10 and tagged.inner.ethertype == 0x0800
    assert tagged.inner.icmp.seq == 5
    assert "[reserved bits set: R flags 0x80]" in r_flag.describe()
    assert "[reserved bits set: 24-bit 0x000001]" in reserved24.describe()
    assert "[reserved bits set: 8-bit 0x01]" in reserved8.describe()
    assert "flags=0x00 [I flag clear: VNI not valid]" in no_i_flag.describe()
    assert "vlan 10 IPv4" in tagged.describe()


def test_geneve_header_and_options():
    wire = read("geneve.pcap")
    plain, one_option, critical, critical_without_c, direct = wire.frames()
    assert {f.encapsulation for f in wire.frames()} == {"geneve"} and wire.vnis() == (100,)
    assert plain.options == () and plain.header.version == 0 and plain.header.protocol == 0x6558
    assert not plain.header.o_bit and not plain.header.c_bit and plain.reserved_clear and plain.flags == 0
    assert plain.i_flag is None   # a VXLAN flag
    assert one_option.options == (GeneveOption(0xFFF0, 0x01, bytes.fromhex("4f490001")),)
    assert not one_option.options[0].critical and one_option.inner.echo == "reply"
    assert [o.critical for o in critical.options] == [False, True] and critical.header.c_bit
    assert critical.flags == 0x40 and critical.header.critical_options[0].data == bytes.fromhex("0000000a")
    assert critical_without_c.header.critical_options and not critical_without_c.header.c_bit
    assert "[C bit clear with a critical option]" in critical_without_c.describe()
    assert "option class=0xfff0 (Experimental) type=0x81 critical len=8 data=0x0000000a" in critical.describe()
    assert direct.header.protocol == 0x0800 and direct.inner.src is None and direct.inner.ip.dst == H2
    assert direct.malformed is None


# --- outer fragmentation, IPv6 underlay, link types ------------------------------------------------------------

def test_outer_fragments_are_reassembled_and_kept():
    wire = read("vxlan_fragments.pcap")
    whole, incomplete, request, reply = wire.frames()
    assert whole.fragmented and len(whole.fragments) == 2 and whole.malformed is None
    assert whole.number == 2 and whole.df is False and whole.ip_id == 0x1234   # numbered as Wireshark does
    assert whole.inner.ip.length == 1500 and whole.inner.icmp.seq == 1
    assert [(p.offset, p.more) for p in whole.fragments] == [(0, True), (1480, False)]
    assert incomplete.malformed.startswith("outer IP fragments missing") and incomplete.vni == 100
    assert [p.ip_id for p in wire.fragments()] == [0x1234, 0x1234, 0x1235]   # the lone later fragment is unclaimable
    assert not request.fragmented and request.inner.echo == "request" and reply.inner.echo == "reply"
    assert "fragment id=0x1234 offset=1480 len=50" in wire.fragments()[1].describe()


def test_ipv6_underlay():
    wire = read("vxlan_ipv6_underlay.pcap")
    request, reply = wire.frames()
    assert (request.src, request.dst, request.df) == ("2001:db8::2", "2001:db8::3", None)
    assert request.udp_checksum != 0 and request.inner.icmp.seq == 1 and reply.inner.echo == "reply"
    assert wire.describe().startswith("#1 0.000000 [2001:db8::2]:49152 > [2001:db8::3]:4789 VXLAN vni=100")


def test_linux_cooked_capture(tmp_path):
    pcap = tmp_path / "cooked.pcap"
    datagram = IP(src=V1, dst=V2) / UDP(sport=40000, dport=4789) / Raw(make.vxlan_header(300) + make.echo(100, 1, 2, 9))
    wrpcap(str(pcap), [CookedLinux(pkttype=0, lladdrtype=1, src=b"\x02\x00\x00\x00\x00\x02\x00\x00") / datagram])
    (frame,) = Wire.from_pcap(pcap).frames()
    assert frame.vni == 300 and frame.inner.icmp.seq == 9


def test_extra_ports(tmp_path):
    pcap = tmp_path / "port.pcap"
    vxlan = make.outer(V1, V2, 40000, 9999, make.vxlan_header(7) + make.echo(100, 1, 2, 1))
    geneve = make.outer(V1, V2, 40000, 9998, make.geneve_header(8) + make.echo(100, 1, 2, 2))
    wrpcap(str(pcap), [vxlan, geneve])
    assert Wire.from_pcap(pcap).frames() == ()
    assert Wire.from_pcap(pcap, ports=[9999]).vnis() == (7,)
    both = Wire.from_pcap(pcap, ports={9999: "vxlan", 9998: "geneve"})
    assert [(f.encapsulation, f.vni) for f in both.frames()] == [("vxlan", 7), ("geneve", 8)]
    with pytest.raises(ValueError, match="vxlan or geneve"):
        Wire.from_pcap(pcap, ports={9999: "gre"})


def test_outer_udp_checksum(tmp_path):
    """Zero (as VTEPs send it over IPv4), correct, left to the NIC (a capture on the sender), or wrong."""
    assert {f.udp_checksum_status for f in read("vxlan_ping_4789.pcap").frames()} == {"zero"}
    assert {f.udp_checksum_status for f in read("vxlan_ipv6_underlay.pcap").frames()} == {"correct"}
    payload = make.vxlan_header(100) + make.echo(100, 1, 2, 1)
    correct = Ether() / IP(src=V1, dst=V2) / UDP(sport=40000, dport=4789) / Raw(payload)
    pseudo = struct.pack("!4s4sxBH", bytes([198, 18, 0, 2]), bytes([198, 18, 0, 3]), 17, 8 + len(payload))
    words = sum(struct.unpack("!6H", pseudo))
    partial = (words & 0xFFFF) + (words >> 16)
    offloaded = Ether() / IP(src=V1, dst=V2) / UDP(sport=40000, dport=4789, chksum=partial) / Raw(payload)
    wrong = Ether() / IP(src=V1, dst=V2) / UDP(sport=40000, dport=4789, chksum=0x1234) / Raw(payload)
    wrpcap(str(tmp_path / "sums.pcap"), [correct, offloaded, wrong])
    frames = Wire.from_pcap(tmp_path / "sums.pcap").frames()
    assert [f.udp_checksum_status for f in frames] == ["correct", "offloaded", "wrong"]
    assert [f.udp_checksum_ok for f in frames] == [True, True, False]
    assert "[outer UDP checksum 0x1234 wrong]" in frames[2].describe()
    assert read("vxlan_fragments.pcap").frames()[1].udp_checksum_ok is None   # not all of it was captured


def test_icmp_errors_about_overlay_datagrams():
    """A VTEP that does not listen on the port answers port unreachable: kept apart from the frames."""
    wire = read("vxlan_port_unreachable.pcap")
    assert [f.number for f in wire.frames()] == [1, 3]
    v4, v6 = wire.icmp_errors()
    assert (v4.number, v4.src, v4.dst, v4.kind, v4.quoted_sport, v4.quoted_dport) == (2, V2, V1, "port-unreachable",
                                                                                       41863, 4789)
    assert v4.encapsulation == "vxlan" and v4.vni == 100 and (v4.version, v4.type, v4.code) == (4, 3, 3)
    assert (v6.version, v6.kind, v6.src, v6.vni) == (6, "port-unreachable", "2001:db8::3", 100)
    assert wire.icmp_errors("port-unreachable") == (v4, v6) and wire.icmp_errors("ttl-exceeded") == ()
    lines = wire.describe().splitlines()   # in capture order; the error about UDP 53 is not ours
    assert lines[1] == f"#2 0.001000 {V2} > {V1} ICMP port-unreachable about UDP 41863 > 4789 (VXLAN vni=100)"
    assert lines[3].startswith("#4 0.003000 2001:db8::3 > 2001:db8::2 ICMPv6 port-unreachable") and len(lines) == 4


# --- damage ----------------------------------------------------------------------------------------------------

def test_malformed_frames_are_kept_with_a_reason():
    wire = read("vxlan_malformed.pcap")
    reasons = [f.malformed for f in wire.frames()]
    assert reasons == [
        "VXLAN header cut short (3 of 8 bytes)",
        "inner Ethernet header cut short (0 of 14 bytes)",
        "inner Ethernet header cut short (10 of 14 bytes)",
        "inner IPv4 header cut short",
        "UDP length 400 with 114 bytes captured",
        "Geneve options claim 20 bytes, 4 on the wire",
        "Geneve option class=0xfff0 type=0x01 runs past the options",
        "UDP length 4 is shorter than its header",
        None,
    ]
    assert len(wire.malformed()) == 8
    assert wire.frames()[0].vni is None and wire.frames()[5].vni == 100   # the Geneve fixed header was read
    assert wire.frames()[4].inner.icmp.seq == 3   # what was there is still decoded
    assert wire.frames()[-1].inner.echo == "request"
    assert "malformed: VXLAN header cut short" in wire.describe()


def test_unreadable_captures_are_an_empty_wire(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "text.pcap"
    text.write_text("not a capture\n")
    for path in (tmp_path / "missing.pcap", empty, text, tmp_path):
        wire = Wire.from_pcap(path)
        assert wire.frames() == () and wire.describe() == "no overlay frames on the wire"


def test_a_capture_cut_mid_frame_keeps_what_came_before(tmp_path):
    data = (VXLAN_DATA / "vxlan_ping_4789.pcap").read_bytes()
    for cut in (len(data) - 40, len(data) - 120, 24 + 16 + 5, 30):
        path = tmp_path / f"cut{cut}.pcap"
        path.write_bytes(data[:cut])
        wire = Wire.from_pcap(path)
        assert all(isinstance(f.describe(), str) for f in wire.frames())
    assert len(Wire.from_pcap(tmp_path / f"cut{len(data) - 40}.pcap").echoes().requests()) == 3


# --- helpers ---------------------------------------------------------------------------------------------------

def test_describe_is_one_line_per_frame_with_times_from_the_capture_start():
    wire = read("vxlan_ping_4789.pcap")
    lines = wire.describe().splitlines()
    assert len(lines) == 8
    assert lines[2] == (f"#4 0.003000 {V1}:51000 > {V2}:4789 VXLAN vni=100 flags=0x08 (I) | {M1} > {M2} "
                        f"IPv4 {H1} > {H2} ICMP echo-request id=20297 seq=1 len=84 DF")
    assert lines[0].endswith(f"| {M1} > ff:ff:ff:ff:ff:ff ARP who-has {H2} tell {H1}")
    assert lines[1].endswith(f"ARP reply {H2} is-at {M2}")
    sliced = wire.echoes()[:2]
    assert isinstance(sliced, OverlayFrames) and sliced.describe().splitlines() == lines[2:4]
    assert OverlayFrames().describe() == "no overlay frames on the wire"
    assert "3 outer IP fragment(s)" in read("vxlan_fragments.pcap").describe()


# --- VXLAN-GPE (UDP 4790) --------------------------------------------------------------------------------------

def _gpe(flags: int, next_protocol: int, vni: int, reserved16: int = 0, reserved8: int = 0) -> bytes:
    return struct.pack("!BHBI", flags, reserved16, next_protocol, (vni << 8) | reserved8)


def _gpe_capture(tmp_path):
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import IPv6
    inner4 = bytes(IP(src=H1, dst=H2) / ICMP(id=1, seq=2))
    inner6 = bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / UDP(sport=1, dport=2))
    ethernet = bytes(Ether(src=M1, dst=M2) / IP(src=H1, dst=H2) / ICMP(id=3, seq=4))
    nsh = bytes.fromhex("0fc6010300000100") + inner4
    bodies = [_gpe(0x0C, 1, 100) + inner4, _gpe(0x0C, 2, 200) + inner6, _gpe(0x0C, 3, 300) + ethernet,
              _gpe(0x0C, 4, 400) + nsh, _gpe(0x0F, 1, 500) + inner4, _gpe(0xDC, 1, 600, 5, 9) + inner4,
              _gpe(0x04, 1, 700) + inner4, _gpe(0x0C, 99, 800) + b"abc", _gpe(0x08, 0, 900) + ethernet]
    pcap = tmp_path / "gpe.pcap"
    wrpcap(str(pcap), [Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:03") / IP(src=V1, dst=V2)
                       / UDP(sport=50000, dport=4790) / Raw(body) for body in bodies])
    return pcap


def test_vxlan_gpe_flags_next_protocol_vni_and_inner_payload(tmp_path):
    """draft-ietf-nvo3-vxlan-gpe 3.2: flags R R Ver I P B O, Next Protocol (1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH),
    the VNI; what follows is decoded as the Next Protocol says."""
    frames = Wire.from_pcap(_gpe_capture(tmp_path)).frames()
    assert [f.encapsulation for f in frames] == ["vxlan-gpe"] * 9
    assert [f.vni for f in frames] == [100, 200, 300, 400, 500, 600, 700, 800, 900]
    v4, v6, ethernet, nsh, b_and_o, reserved, no_i, unassigned, p_clear = frames
    assert (v4.header.next_protocol, v4.header.payload[0], v4.inner.ip.src, v4.inner.icmp.seq) == (1, "IPv4", H1, 2)
    assert v4.inner.src is None and v4.reserved_clear and v4.i_flag and v4.malformed is None
    assert (v6.inner.ip.version, v6.inner.ip.src, v6.inner.sport) == (6, "2001:db8:1::1", 1)
    assert (ethernet.inner.src, ethernet.inner.icmp.seq) == (M1, 4)
    assert nsh.header.payload[0] == "NSH" and nsh.inner.ethertype == 0x894F and "NSH len=" in nsh.describe()
    assert b_and_o.header.b_flag and b_and_o.header.o_flag and "(ver 0, I, P, B, O)" in b_and_o.describe()
    assert reserved.header.version == 1 and not reserved.reserved_clear
    assert "[reserved bits set: R flags 0xc0, 16-bit 0x0005, 8-bit 0x09]" in reserved.describe()
    assert no_i.i_flag is False and "[I flag clear: VNI not valid]" in no_i.describe()
    assert "next=unassigned (99)" in unassigned.describe() and unassigned.inner.length == 3
    assert p_clear.header.payload == ("Ethernet", 0x6558) and p_clear.inner.src == M1   # P clear: as VXLAN
    assert (f"{V1}:50000 > {V2}:4790 VXLAN-GPE vni=100 flags=0x0c (ver 0, I, P) next=IPv4 (1) | IPv4 {H1} > {H2} "
            f"ICMP echo-request") in v4.describe()


@pytest.mark.skipif(not __import__("shutil").which("tshark"), reason="tshark is not installed")
def test_tshark_reads_vxlan_gpe_the_same(tmp_path):
    """VNI and Next Protocol of every frame, and the inner addresses where the Next Protocol is set (Wireshark
    reads a P-clear frame as data; the draft says it is Ethernet, as in VXLAN)."""
    pcap = _gpe_capture(tmp_path)
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a",
                          "-e", "frame.number", "-e", "vxlan.vni", "-e", "vxlan.next_proto", "-e", "ip.src",
                          "-e", "ipv6.src"], capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = {int(n): (int(vni), int(nxt), [a for a in (v4 + "," + v6).split(",") if a][1:2])
              for n, vni, nxt, v4, v6 in (line.split("|") for line in out.splitlines())}
    for frame in Wire.from_pcap(pcap).frames():
        inner = [frame.inner.ip.src] if frame.inner.ip and frame.header.p_flag and frame.vni != 400 else []
        assert theirs[frame.number] == (frame.vni, frame.header.next_protocol, inner), frame.describe()
