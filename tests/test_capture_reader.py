"""harness.packets, the one capture reader, on captures written here byte by byte: pcap in both byte orders and
timestamp resolutions, pcapng with several interfaces and sections, every link type it reads, FCS bits, VLAN tags,
IPv4 and IPv6 fragments (out of order too), IPv6 extension headers (Segment Routing included), damage, stdin and a
FIFO; tshark, where installed, numbers the frames and reads the addresses the same way. Then the dispatch table:
one decoder claims each datagram."""
from __future__ import annotations

import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrSegmentRouting, fragment6)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from support import ROOT
from harness.errors import CaptureError
from harness.packets import Capture, Datagrams, Frames, NotACapture, Records, damage, read
from harness.protocols import dispatch
from harness.protocols.ipsec.wire import Wire as IpsecWire
from harness.protocols.l2tp.wire import Wire as L2tpWire
from harness.protocols.vxlan.wire import Wire as VxlanWire

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
T0 = 1_700_000_000
A, B = "198.18.0.2", "198.18.0.3"
A6, B6 = "2001:db8::2", "2001:db8::3"
MACS = dict(src="02:00:00:00:00:02", dst="02:00:00:00:00:03")
SUBPROCESS_TIMEOUT = 60


# --- writing captures by hand --------------------------------------------------------------------------------

def pcap(frames, linktype: int = 1, *, endian: str = "<", nano: bool = False, snaplen: int = 262144) -> bytes:
    """A pcap file: `frames` are bytes, or (bytes, length on the wire); one per 1.5 ms from T0."""
    out = struct.pack(endian + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)
    for number, frame in enumerate(frames):
        data, wirelen = frame if isinstance(frame, tuple) else (frame, len(frame))
        micros = number * 1500
        fraction = micros * 1000 if nano else micros
        out += struct.pack(endian + "IIII", T0, fraction + (7 if nano else 0), len(data), wirelen) + data
    return out


def block(kind: int, body: bytes, endian: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(endian + "II", kind, len(body) + 12) + body + struct.pack(endian + "I", len(body) + 12)


def option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def shb(endian: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def idb(linktype: int, endian: str = "<", options: bytes = b"") -> bytes:
    return block(1, struct.pack(endian + "HHI", linktype, 0, 0) + options + (option(0, b"", endian) if options
                                                                               else b""), endian)


def epb(interface: int, stamp: int, data: bytes, endian: str = "<", wirelen: int | None = None,
        options: bytes = b"") -> bytes:
    body = struct.pack(endian + "IIIII", interface, stamp >> 32, stamp & 0xFFFFFFFF, len(data),
                       len(data) if wirelen is None else wirelen) + data + bytes(-len(data) % 4)
    return block(6, body + options, endian)


def udp(src: str = A, dst: str = B, sport: int = 40000, dport: int = 9, payload: bytes = b"x" * 40):
    return (IP(src=src, dst=dst) if ":" not in src else IPv6(src=src, dst=dst)) / UDP(sport=sport, dport=dport) \
        / Raw(payload)


def tshark(path: Path, *fields: str, options: tuple[str, ...] = ()) -> list[list[str]]:
    command = [TSHARK, "-r", str(path), *options, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=SUBPROCESS_TIMEOUT).stdout
    return [line.split("|") for line in out.splitlines()]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- link types ------------------------------------------------------------------------------------------------

IPV4, IPV6 = bytes(udp()), bytes(udp(A6, B6))
LINKS = {  # name: (link type, frame as captured, the IP version inside)
    "ethernet": (1, bytes(Ether(**MACS) / udp()), 4),
    "802.1Q": (1, bytes(Ether(**MACS) / Dot1Q(vlan=10) / udp()), 4),
    "802.1ad and 802.1Q": (1, bytes(Ether(**MACS) / Dot1AD(vlan=20) / Dot1Q(vlan=10) / udp(A6, B6)), 6),
    "raw IP (101)": (101, IPV4, 4),
    "raw IPv6 (101)": (101, IPV6, 6),
    "raw IP (12, BSD/OS)": (12, IPV4, 4),
    "raw IP (14, OpenBSD)": (14, IPV4, 4),
    "raw IPv4 (228)": (228, IPV4, 4),
    "raw IPv6 (229)": (229, IPV6, 6),
    "Linux cooked v1": (113, bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\2\0\0\0\0\2\0\0",
                                               proto=0x0800) / udp()), 4),
    "Linux cooked v2": (276, bytes(CookedLinuxV2(proto=0x86DD, ifindex=2, pkttype=0, lladdrtype=1, lladdrlen=6,
                                                 src=b"\2\0\0\0\0\2\0\0") / udp(A6, B6)), 6),
    "BSD loopback, little-endian host": (0, struct.pack("<I", 2) + IPV4, 4),
    "BSD loopback, big-endian host": (0, struct.pack(">I", 2) + IPV4, 4),
    "BSD loopback IPv6 (FreeBSD, 28)": (0, struct.pack("<I", 28) + IPV6, 6),
    "BSD loopback IPv6 (macOS, 30)": (0, struct.pack(">I", 30) + IPV6, 6),
    "OpenBSD loopback (108)": (108, struct.pack(">I", 24) + IPV6, 6),
}


@pytest.mark.parametrize("name", LINKS)
def test_every_link_type_gives_the_ip_datagram(tmp_path, name):
    linktype, frame, version = LINKS[name]
    path = write(tmp_path, "link.pcap", pcap([frame, frame], linktype))
    datagrams = list(Datagrams(path))
    src, dst = (A, B) if version == 4 else (A6, B6)
    assert [(d.number, d.version, d.src, d.dst, d.proto, d.ports) for d in datagrams] == [
        (n, version, src, dst, 17, (40000, 9)) for n in (1, 2)]
    assert datagrams[0].payload == bytes(udp(src, dst)[UDP])
    if TSHARK:
        field = "ip.src" if version == 4 else "ipv6.src"
        assert tshark(path, "frame.number", field, "udp.srcport") == [[str(n), src, "40000"] for n in (1, 2)]


def test_a_link_type_not_read_is_counted_by_number(tmp_path):
    path = write(tmp_path, "user0.pcap", pcap([b"\x00\x01" + IPV4], 147))
    datagrams = Datagrams(path)
    assert list(datagrams) == [] and datagrams.others == {"linktype 147": 1} and datagrams.frames == 1


def test_what_is_not_ip_is_counted_by_kind(tmp_path):
    frames = [bytes(Ether(**MACS, type=0x0806) / Raw(bytes(28))), bytes(Ether(**MACS, type=0x88CC) / Raw(b"l")),
              bytes(Ether(**MACS, type=0x1234) / Raw(b"?")), bytes(Ether(**MACS, type=0x0800) / Raw(b"\x45\x00")),
              b"\x02\x00", bytes(Ether(**MACS, type=60) / Raw(b"802.3 length"))]
    datagrams = Datagrams(write(tmp_path, "others.pcap", pcap(frames)))
    assert list(datagrams) == []
    assert datagrams.other_frames == [(1, "ARP"), (2, "LLDP"), (3, "ethertype 0x1234"), (4, "IPv4 header cut short"),
                                      (5, "Ethernet header cut short"), (6, "IEEE 802.3 frame")]


# --- pcap: byte orders, timestamp resolutions, FCS ----------------------------------------------------------

@pytest.mark.parametrize("endian", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nano", [False, True], ids=["microseconds", "nanoseconds"])
def test_pcap_in_both_byte_orders_and_resolutions(tmp_path, endian, nano):
    frames = [bytes(Ether(**MACS) / udp(sport=40000 + n)) for n in range(3)]
    path = write(tmp_path, "capture.pcap", pcap(frames, endian=endian, nano=nano))
    read_back = [frame for _, frame in Frames(path)]
    assert [f.number for f in read_back] == [1, 2, 3] and [f.data for f in read_back] == frames
    units = 10 ** 9 if nano else 10 ** 6
    assert [f.time for f in read_back] == [(T0 * units + n * 1500 * units // 10 ** 6 + (7 if nano else 0)) / units
                                           for n in range(3)]
    assert [d.sport for d in Datagrams(path)] == [40000, 40001, 40002]
    if TSHARK:
        stamps = [row[1] for row in tshark(path, "frame.number", "frame.time_epoch")]
        assert [round(float(s) - T0, 6) for s in stamps] == [round(f.time - T0, 6) for f in read_back]


def test_the_link_type_field_keeps_fcs_information_in_its_upper_bits(tmp_path):
    """draft-ietf-opsawg-pcap: the lower 16 bits are the link type; the P bit and the FCS length (in 16-bit words)
    above them say that every frame ends with a 4-byte FCS, which is not part of the frame's payload."""
    whole = bytes(Ether(**MACS) / udp(payload=bytes(100)))
    fcs = b"\xde\xad\xbe\xef"
    field = 1 | 0x04000000 | (2 << 28)
    snapped = whole[:60]  # cut by the snapshot length: its FCS was never captured
    path = write(tmp_path, "fcs.pcap", pcap([whole + fcs, (snapped, len(whole) + 4)], field))
    records = Records(path)
    frames = list(records)
    assert records.linktypes == [1] and [f.data for f in frames] == [whole, snapped]
    (datagram, cut) = list(Datagrams(path))
    assert datagram.payload == bytes(udp(payload=bytes(100))[UDP]) and cut.cut > 0
    if TSHARK:
        assert tshark(path, "frame.number", "eth.fcs", "udp.length") == [["1", "0xdeadbeef", "108"],
                                                                         ["2", "", "108"]]


# --- pcapng ----------------------------------------------------------------------------------------------------

def test_pcapng_with_two_interfaces_of_different_link_types_and_resolutions(tmp_path):
    """Interface 0: Ethernet in microseconds (the default); interface 1: raw IP in nanoseconds (if_tsresol 9),
    with an offset (if_tsoffset); interface 2: Linux cooked in 2^-20 s. Blocks the reader does not know (a name
    resolution block) are skipped; a custom block is a frame of no packet, as Wireshark numbers it; a simple
    packet block belongs to interface 0."""
    ether = bytes(Ether(**MACS) / udp(sport=1))
    data = (shb() + idb(1) + idb(101, options=option(9, bytes([9])) + option(14, struct.pack("<q", 100)))
            + block(4, struct.pack("<HH", 0, 0)) + idb(113, options=option(9, bytes([0x80 | 20])))
            + epb(0, (T0 + 1) * 10 ** 6 + 5, ether)
            + epb(1, (T0 + 2 - 100) * 10 ** 9 + 7, bytes(udp(sport=2)))
            + block(0x40000BAD, b"custom: nobody's business")
            + epb(2, (T0 + 3) << 20, bytes(CookedLinux(proto=0x0800) / udp(sport=3)))
            + block(3, struct.pack("<I", len(ether)) + ether))
    path = write(tmp_path, "two.pcapng", data)
    records = Records(path)
    frames = list(records)
    assert records.format == "pcapng" and records.linktypes == [1, 101, 113] and not records.problem
    assert [(f.number, f.linktype, f.interface) for f in frames] == [(1, 1, 0), (2, 101, 1), (3, None, 0),
                                                                     (4, 113, 2), (5, 1, 0)]
    assert frames[0].time == T0 + 1 + 5e-6 and frames[1].time == (T0 + 2) + 7e-9 and frames[3].time == T0 + 3
    assert frames[4].time == frames[3].time   # a simple packet block has no time of its own
    datagrams = Datagrams(path)
    assert [(d.number, d.sport) for d in datagrams] == [(1, 1), (2, 2), (4, 3), (5, 1)]
    assert datagrams.other_frames == [(3, "pcapng custom block")]
    if TSHARK:
        assert tshark(path, "frame.number", "frame.interface_id", "udp.srcport") == [
            ["1", "0", "1"], ["2", "1", "2"], ["3", "", ""], ["4", "2", "3"], ["5", "0", "1"]]


def test_pcapng_sections_of_either_byte_order(tmp_path):
    """A second section, big-endian, describes its own interfaces (numbered from 0 again); an obsolete packet
    block (type 2) is read like an enhanced one; frames are numbered across sections."""
    little = shb("<") + idb(101, "<") + epb(0, T0 * 10 ** 6, bytes(udp(sport=1)), "<")
    stamp = T0 * 10 ** 6
    obsolete = block(2, struct.pack(">HHIIII", 1, 0, stamp >> 32, stamp & 0xFFFFFFFF, len(IPV4), len(IPV4)) + IPV4,
                     ">")
    big = (shb(">") + idb(1, ">") + idb(101, ">") + epb(0, T0 * 10 ** 6, bytes(Ether(**MACS) / udp(sport=2)), ">")
           + obsolete)
    path = write(tmp_path, "sections.pcapng", little + big)
    assert [(n, f.linktype) for n, f in Frames(path)] == [(1, 101), (2, 1), (3, 101)]
    assert [(d.number, d.sport) for d in Datagrams(path)] == [(1, 1), (2, 2), (3, 40000)]
    if TSHARK:
        assert [row[1] for row in tshark(path, "frame.number", "udp.srcport")] == ["1", "2", "40000"]


def test_pcapng_fcs_from_the_interface_and_from_the_packet_flags(tmp_path):
    """if_fcslen (bits) says every frame of the interface ends with an FCS; epb_flags bits 5-8 (bytes) say it for
    one packet and override the interface's."""
    whole = bytes(Ether(**MACS) / udp())
    flags = option(2, struct.pack("<I", 4 << 5)) + option(0, b"")
    data = (shb() + idb(1, options=option(13, bytes([32]))) + idb(1)
            + epb(0, 0, whole + b"FCS!") + epb(1, 0, whole + b"fcs?", options=flags) + epb(1, 0, whole))
    assert [f.data for _, f in Frames(write(tmp_path, "fcs.pcapng", data))] == [whole, whole, whole]


# --- IP: fragments, extension headers ---------------------------------------------------------------------------

def _ipv4_pieces():
    datagram = IP(src=A, dst=B, id=0x4242) / UDP(sport=500, dport=500) / Raw(bytes(range(256)) * 12)
    return datagram, [bytes(Ether(**MACS) / piece) for piece in fragment(datagram, fragsize=1024)]


def test_ipv4_fragments_out_of_order_are_reassembled_and_numbered_by_the_last(tmp_path):
    whole, pieces = _ipv4_pieces()
    assert len(pieces) == 4
    other = bytes(Ether(**MACS) / udp(sport=7))
    path = write(tmp_path, "frag.pcap", pcap([pieces[3], pieces[1], other, pieces[0], pieces[2]]))
    first, reassembled = list(Datagrams(path))
    assert (first.number, first.sport) == (3, 7)
    assert reassembled.number == 5 and reassembled.numbers == (1, 2, 4, 5) and reassembled.complete
    assert [(f.number, f.offset, f.more) for f in reassembled.fragments] == [
        (1, 3072, False), (2, 1024, True), (4, 0, True), (5, 2048, True)]
    assert reassembled.payload == bytes(whole[UDP]) and reassembled.problem is None
    assert reassembled.length == len(whole) and reassembled.ip_id == 0x4242
    if TSHARK:   # Wireshark shows the reassembled datagram on the frame that completed it
        rows = tshark(path, "frame.number", "udp.srcport")
        assert [row for row in rows if row[1]] == [["3", "7"], ["5", "500"]]


def test_fragments_that_never_complete_are_reported_at_the_end(tmp_path):
    _whole, pieces = _ipv4_pieces()
    lone = bytes(Ether(**MACS) / IP(src=A, dst=B, id=9, frag=100, proto=17) / Raw(bytes(16)))
    path = write(tmp_path, "lost.pcap", pcap([pieces[0], pieces[2], lone, bytes(Ether(**MACS) / udp())]))
    whole, first, later = list(Datagrams(path))
    assert whole.number == 4 and whole.complete
    assert (first.complete, first.number, first.numbers, first.ports) == (False, 1, (1, 2), (500, 500))
    assert "never came" in first.problem and dispatch.owner(first) == "ipsec"
    assert (later.complete, later.numbers, later.payload, later.describe()) == (False, (3,), b"", "IPv4 fragment")
    assert dispatch.owner(later) is None   # no ports: nobody's


def test_overlapping_and_repeated_fragments_are_reported_not_raised(tmp_path):
    data = bytes(Ether(**MACS) / udp(payload=bytes(200)))[14:]
    payload = data[20:]
    pieces = [IP(src=A, dst=B, id=5, flags="MF", proto=17) / Raw(payload[:96]),
              IP(src=A, dst=B, id=5, flags="MF", proto=17) / Raw(payload[:96]),                 # again
              IP(src=A, dst=B, id=5, frag=8, proto=17) / Raw(b"\xee" * 8 + payload[72:])]      # overlaps, other bytes
    path = write(tmp_path, "overlap.pcap", pcap([bytes(Ether(**MACS) / p) for p in pieces]))
    (datagram,) = list(Datagrams(path))
    assert datagram.complete and datagram.numbers == (1, 2, 3)
    assert "repeats the fragment at offset 0" in datagram.problem
    assert "fragments overlap at offset 64 with other bytes (RFC 5722" in datagram.problem


def test_a_fragment_cut_by_the_snapshot_length_leaves_its_datagram_incomplete(tmp_path):
    _whole, pieces = _ipv4_pieces()
    path = write(tmp_path, "snapped.pcap", pcap([pieces[0], pieces[1], (pieces[2][:200], len(pieces[2])), pieces[3]],
                                                snaplen=200))
    (datagram,) = list(Datagrams(path))
    assert not datagram.complete and datagram.numbers == (1, 2, 3, 4)
    assert "frame 3 kept 166 of the fragment's 1024 bytes (the capture's snapshot length)" in datagram.problem


def test_reassembly_gives_up_after_60_seconds(tmp_path):
    """An identification comes round again: a piece more than 60 s after the first does not join it (RFC 8200
    4.5), the old pieces are reported incomplete."""
    _whole, pieces = _ipv4_pieces()
    data = pcap([pieces[0], pieces[1]])
    late = struct.pack("<IIII", T0 + 61, 0, len(pieces[2]), len(pieces[2])) + pieces[2]
    late_again = struct.pack("<IIII", T0 + 62, 0, len(pieces[3]), len(pieces[3])) + pieces[3]
    datagrams = list(Datagrams(write(tmp_path, "late.pcap", data + late + late_again)))
    assert [(d.numbers, d.complete) for d in datagrams] == [((1, 2), False), ((3, 4), False)]
    assert "given up after 60 s" in datagrams[0].problem


def test_ipv6_fragments_out_of_order_behind_extension_headers(tmp_path):
    """Hop-by-hop and a Segment Routing header before the fragment header, destination options after it (in the
    fragmentable part, RFC 8200 4.5): one walk finds UDP in the reassembled datagram."""
    srh = IPv6ExtHdrSegmentRouting(addresses=["2001:db8::a", "2001:db8::b"], segleft=1)
    inner = IPv6ExtHdrDestOpt() / UDP(sport=4500, dport=4500) / Raw(bytes(4) + bytes(range(250)) * 10)
    whole = IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / srh / IPv6ExtHdrFragment(id=0x77) / inner
    pieces = [bytes(Ether(**MACS) / p) for p in fragment6(whole, 1280)]
    assert len(pieces) == 3
    path = write(tmp_path, "frag6.pcap", pcap([pieces[2], pieces[0], pieces[1]]))
    (datagram,) = list(Datagrams(path))
    assert (datagram.number, datagram.numbers, datagram.version, datagram.ip_id) == (3, (1, 2, 3), 6, 0x77)
    assert datagram.proto == 17 and datagram.ports == (4500, 4500)
    assert datagram.payload[8:] == bytes(inner[UDP].payload) and len(datagram.payload) == len(inner[UDP])
    if TSHARK:
        rows = tshark(path, "frame.number", "udp.srcport")
        assert [row for row in rows if row[1]] == [["3", "4500"]]


@pytest.mark.parametrize("layers, proto", [
    (lambda: IPv6ExtHdrSegmentRouting(addresses=["2001:db8::a"]) / UDP(sport=4789, dport=4789), 17),
    (lambda: IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=4789, dport=4789), 17),
    (lambda: AH(nh=17, payloadlen=4, icv=bytes(12)) / UDP(sport=4789, dport=4789), 51),
    (lambda: IPv6ExtHdrDestOpt(nh=50) / Raw(struct.pack("!II", 0xC0000001, 1) + bytes(32)), 50),
], ids=["segment routing", "hop-by-hop and destination options", "AH is a protocol", "ESP ends the walk"])
def test_one_ipv6_extension_header_walk(tmp_path, layers, proto):
    path = write(tmp_path, "exthdr.pcap", pcap([bytes(Ether(**MACS) / IPv6(src=A6, dst=B6) / layers())]))
    (datagram,) = list(Datagrams(path))
    assert datagram.proto == proto
    if proto == 17:
        assert datagram.ports == (4789, 4789) and VxlanWire.from_pcap(path).frames()[0].sport == 4789


# --- damage ------------------------------------------------------------------------------------------------------

def test_a_cut_record_ends_the_reading_with_a_note(tmp_path):
    frames = [bytes(Ether(**MACS) / udp(sport=n)) for n in (1, 2, 3)]
    data = pcap(frames)
    path = write(tmp_path, "cut.pcap", data[:-10])
    datagrams = Datagrams(path)
    assert [d.sport for d in datagrams] == [1, 2]
    assert datagrams.damaged and datagrams.problem == f"record 3 cut short ({len(frames[2]) - 10} of {len(frames[2])} bytes)"
    assert damage(path) == f"damaged: {datagrams.problem}"
    ng = shb() + idb(1) + b"".join(epb(0, 0, f) for f in frames)
    cut = write(tmp_path, "cut.pcapng", ng[:-20])
    datagrams = Datagrams(cut)
    assert [d.sport for d in datagrams] == [1, 2] and "claims" in datagrams.problem and "left" in datagrams.problem


@pytest.mark.parametrize("seed", range(6))
def test_garbage_is_damage_or_not_a_capture_never_an_exception(tmp_path, seed):
    rng = random.Random(seed)
    frames = [bytes(Ether(**MACS) / udp(sport=n)) for n in range(5)]
    good = pcap(frames) if seed % 2 else shb() + idb(1) + b"".join(epb(0, 0, f) for f in frames)
    mangled = bytearray(good)
    for _ in range(8):
        mangled[rng.randrange(4, len(mangled))] = rng.randrange(256)
    for data in (bytes(mangled), good[:rng.randrange(len(good))], good[:24] + rng.randbytes(300),
                 rng.randbytes(300)):
        path = write(tmp_path, "garbage", data)
        try:
            capture = read(path)
        except NotACapture as exc:
            assert str(exc).startswith(f"{path}: ")
            continue
        for d in capture.datagrams:
            d.describe(), dispatch.claim(d)
        IpsecWire.from_pcap(capture), VxlanWire.from_pcap(capture), L2tpWire.from_pcap(capture)


@pytest.mark.parametrize("data, message", [(b"", "an empty file"), (b"GET / HTTP/1.1\r\n", "not a pcap or pcapng capture")])
def test_what_is_not_a_capture_is_refused_by_read_and_empty_to_the_readers(tmp_path, data, message):
    path = write(tmp_path, "nothing.pcap", data)
    with pytest.raises(NotACapture, match=f"{path}: {message}"):
        read(path)
    assert list(Datagrams(path)) == [] and list(Frames(path)) == [] and IpsecWire.from_pcap(path).describe()
    with pytest.raises(CaptureError, match="never started"):
        Datagrams(None)


# --- stdin and FIFOs: read once, as a stream -------------------------------------------------------------------

def _mixed() -> bytes:
    ike = bytes(Ether(**MACS) / IP(src=A, dst=B) / UDP(sport=4500, dport=4500)
                / Raw(struct.pack("!II", 0xC0000001, 1) + bytes(40)))
    vxlan = bytes(Ether(**MACS) / IP(src=A, dst=B) / UDP(sport=50000, dport=4789)
                  / Raw(struct.pack("!B3sI", 8, bytes(3), 100 << 8) + bytes(Ether(**MACS) / IP() / ICMP())))
    return pcap([ike, vxlan, bytes(Ether(**MACS, type=0x0806) / Raw(bytes(28)))], 1 | 0x04000000 * 0)


def _transcript(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "transcript", *args], cwd=ROOT, capture_output=True,
                          timeout=SUBPROCESS_TIMEOUT, **kwargs)


def test_the_command_reads_stdin_once():
    result = _transcript("-", input=_mixed())
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert out.startswith("stdin: pcap, linktype 1 (Ethernet), 3 frame(s)\n")
    assert "== ipsec: 1 frame(s)" in out and "0xc0000001" in out
    assert "== vxlan: 1 frame(s)" in out and "VXLAN vni=100" in out and "not decoded: 1 frame(s): 1 ARP" in out
    assert _transcript("-", input=b"").stderr.decode() == "overlay-interop: error: stdin: an empty file\n"


def _writer(fifo: Path, deadline: float) -> int:
    """The FIFO's write end, once the command has opened its read end (opening first would block)."""
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_the_command_reads_a_fifo_and_ends_when_its_writer_is_gone(tmp_path):
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    for data in (_mixed(), b""):
        command = subprocess.Popen([sys.executable, "-m", "harness.cli", "transcript", str(fifo)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            end = _writer(fifo, time.monotonic() + SUBPROCESS_TIMEOUT)
            os.set_blocking(end, True)
            for start in range(0, len(data), 100):   # in pieces, as tcpdump writes
                os.write(end, data[start:start + 100])
            os.close(end)   # the writer is gone: EOF
            out, err = command.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            command.kill()
        if data:
            assert command.returncode == 0, err
            assert out.decode().startswith(f"{fifo}: pcap, linktype 1 (Ethernet), 3 frame(s)\n")
            assert "VXLAN vni=100" in out.decode()
        else:
            assert (command.returncode, err.decode()) == (1, f"overlay-interop: error: {fifo}: an empty file\n")


def test_a_stream_that_hands_over_a_few_bytes_at_a_time_reads_whole():
    """A pipe or socket read raw gives less than asked for; only an empty read is the end."""
    class Dribble:
        def __init__(self, data: bytes):
            self.data = data

        def read(self, n: int) -> bytes:
            chunk, self.data = self.data[:min(n, 7)], self.data[min(n, 7):]
            return chunk
    records = Records(Dribble(_mixed()))
    assert [f.number for f in records] == [1, 2, 3] and records.problem is None


def test_a_capture_read_into_memory_serves_every_reader():
    """What the command does with stdin: read once, then every protocol reads the same Capture."""
    import io
    capture = read(io.BytesIO(_mixed()))
    assert isinstance(capture, Capture) and len(capture) == 3 and capture.name == "stream"
    assert [f.spi for f in IpsecWire.from_pcap(capture).esp()] == [0xC0000001]
    assert VxlanWire.from_pcap(capture).vnis() == (100,)
    assert capture.other_frames == [(3, "ARP")] and capture.start == T0


# --- tshark numbers frames the same ------------------------------------------------------------------------

@needs_tshark
def test_tshark_numbers_frames_and_reads_addresses_the_same(tmp_path):
    """A capture with every kind of thing in it: tshark's frame numbers and outer addresses are the reader's."""
    _whole, pieces = _ipv4_pieces()
    six = [bytes(Ether(**MACS) / p) for p in fragment6(IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=3)
                                                         / UDP(sport=1, dport=2) / Raw(bytes(3000)), 1280)]
    frames = [bytes(Ether(**MACS, type=0x0806) / Raw(bytes(28))), pieces[1], bytes(Ether(**MACS) / udp(sport=11)),
              six[1], pieces[0], bytes(Ether(**MACS) / Dot1Q(vlan=4) / udp(A6, B6, sport=12)), six[0], pieces[3],
              pieces[2], six[2], bytes(Ether(**MACS) / IPv6(src=B6, dst=A6) / IPv6ExtHdrSegmentRouting(
                  addresses=[A6]) / UDP(sport=13, dport=4789) / Raw(bytes(16)))]
    data = shb() + idb(1) + idb(101) + b"".join(epb(0, (T0 + n) * 10 ** 6, f) for n, f in enumerate(frames))
    path = write(tmp_path, "mixed.pcapng", data + epb(1, (T0 + 20) * 10 ** 6, bytes(udp(sport=14))))
    datagrams = Datagrams(path)
    ours = {d.number: (d.src, d.sport) for d in datagrams}
    assert datagrams.frames == 12
    rows = tshark(path, "frame.number", "ip.src", "ipv6.src", "udp.srcport")
    assert len(rows) == 12
    theirs = {int(n): (v4 or v6, int(port)) for n, v4, v6, port in rows if port}
    assert ours == theirs


# --- the dispatch table: one decoder per datagram -------------------------------------------------------------

def test_one_decoder_claims_each_datagram(tmp_path):
    """Every datagram on a port two protocols know goes to one of them (the lower port decides), in the transcript
    command's count and in every protocol's wire reader alike."""
    vxlan_header = struct.pack("!B3sI", 8, bytes(3), 7 << 8) + bytes(Ether(**MACS) / IP() / ICMP())
    esp = struct.pack("!II", 0xC0000009, 1) + bytes(40)
    l2tp_zlb = struct.pack("!HHHHHH", 0xC802, 12, 1, 0, 0, 0)
    pairs = [(4500, 8472, esp), (8472, 4500, esp), (8472, 4789, vxlan_header), (1701, 4789, l2tp_zlb),
             (50000, 4790, struct.pack("!BHBI", 0x0C, 0, 3, 7 << 8) + bytes(Ether(**MACS) / IP() / ICMP())),
             (1701, 1701, l2tp_zlb), (500, 4500, bytes(4)), (6081, 4789, vxlan_header)]
    frames = [bytes(Ether(**MACS) / IP(src=A, dst=B) / UDP(sport=s, dport=d) / Raw(body)) for s, d, body in pairs]
    path = write(tmp_path, "ports.pcap", pcap(frames))
    owners = {d.number: dispatch.owner(d) for d in Datagrams(path)}
    assert owners == {1: "ipsec", 2: "ipsec", 3: "vxlan", 4: "l2tp", 5: "vxlan", 6: "l2tp", 7: "ipsec", 8: "vxlan"}
    vxlan = {f.number for f in VxlanWire.from_pcap(path).frames()}
    l2tp = {d.number for d in L2tpWire.from_pcap(path).datagrams}
    ipsec = IpsecWire.from_pcap(path)
    assert vxlan == {3, 5, 8} and l2tp == {4, 6}
    assert sum(f.packets for f in ipsec.esp()) + len(ipsec.ike()) + ipsec.malformed == 3
    assert VxlanWire.from_pcap(path, ports={8472: "vxlan"}).frames()[0].number == 1   # told: Decode As
    if TSHARK:  # Wireshark (its own port table, no Decode As) agrees where both know the ports
        rows = {int(r[0]): r[1] for r in tshark(path, "frame.number", "frame.protocols")}
        assert rows[1].endswith("udpencap:esp") and rows[3].endswith("vxlan:eth:ethertype:ip:icmp")


def test_the_dispatch_table_refuses_a_port_claimed_twice():
    row = dispatch.TABLE[0]
    with pytest.raises(ValueError, match="claimed twice"):
        dispatch.Dispatch([*dispatch.TABLE, dispatch.Row(row.carrier, row.number, "other", "x", "y")])
    assert "UDP port 4790: vxlan (VXLAN-GPE" in dispatch.DISPATCH.describe()


def test_the_command_on_what_the_issue_found(tmp_path):
    """Issue 13's findings, in one capture as a user brings it: a link-type field with FCS bits set, L2TP over
    IPv6, VXLAN-GPE, and a datagram from 4500 to 8472: every frame transcribed, each by one protocol."""
    from harness.protocols.l2tp import avp
    from harness.protocols.l2tp.codec import control, encode
    fcs = b"\x00\x00\x00\x00"
    sccrq = encode(control(0, 0, 0, 0, [avp.message_type("SCCRQ"), avp.protocol_version(1, 0), avp.host_name("lac"),
                                        avp.framing_capabilities("sync"), avp.assigned_tunnel_id(4)]))
    gpe = struct.pack("!BHBI", 0x0C, 0, 1, 300 << 8) + bytes(IP(src="198.19.1.1", dst="198.19.1.2") / ICMP())
    vxlan = struct.pack("!B3sI", 8, bytes(3), 100 << 8) + bytes(Ether(**MACS) / IP() / ICMP())
    packets = [IPv6(src=A6, dst=B6) / UDP(sport=1701, dport=1701) / Raw(sccrq),
               IP(src=A, dst=B) / UDP(sport=50000, dport=4790) / Raw(gpe),
               IP(src=A, dst=B) / UDP(sport=4500, dport=8472) / Raw(struct.pack("!II", 0xC0000001, 7) + bytes(40)),
               IP(src=A, dst=B) / UDP(sport=50001, dport=4789) / Raw(vxlan)]
    path = write(tmp_path, "issue.pcap", pcap([bytes(Ether(**MACS) / p) + fcs for p in packets],
                                              1 | 0x04000000 | (2 << 28)))
    result = _transcript(str(path))
    out = result.stdout.decode()
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    assert out.startswith(f"{path}: pcap, linktype 1 (Ethernet), 4 frame(s)\n")
    assert "== ipsec: 1 frame(s)" in out and "0xc0000001" in out.split("== ipsec")[1].split("== l2tp")[0]
    assert "== l2tp: 1 frame(s)" in out and f"[{A6}]:1701 > [{B6}]:1701 SCCRQ tunnel 0 session 0 Ns 0 Nr 0" in out
    assert "== vxlan: 2 frame(s)" in out and "VXLAN-GPE vni=300" in out and "VXLAN vni=100" in out
    assert "not decoded" not in out
