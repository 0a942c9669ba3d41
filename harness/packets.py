"""The one capture reader: every protocol reader, the transcript command and the tax read captures through it.

    for number, frame in Frames(path): ...          # the records: number, time, link type, bytes as captured
    for d in Datagrams(source): ...                 # IP datagrams, reassembled: d.number, d.src, d.proto, d.payload
    capture = read(source)                          # a whole capture in memory, for more than one reader

A source is a path, "-" (stdin), an open binary stream, or a Capture already read. The file is read once, front
to back, as a stream: never sought, never reopened, so stdin and a FIFO read like a file (a FIFO whose writer is
gone ends at its EOF). Formats, as the IETF drafts define them (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng):

- pcap in either byte order, with micro- or nanosecond timestamps. The link-type field's lower 16 bits are the
  link type; bits 26-31 say whether, and how long, a Frame Check Sequence ends each frame (stripped here).
- pcapng: any number of sections, each in its own byte order; an interface description per interface with its
  link type, if_tsresol, if_tsoffset and if_fcslen; enhanced, simple and obsolete packet blocks; other blocks
  skipped.
- Link types: Ethernet (1; 802.1Q/802.1ad tags), raw IP (101, 12 and 14 as BSD/OS and OpenBSD wrote them, 228,
  229), Linux cooked v1 (113) and v2 (276), BSD loopback (0, the family in either byte order), OpenBSD loopback
  (108).

Frames are numbered from 1 in file order, every packet record counted, as Wireshark numbers them. A datagram that
came in IP fragments is whole once its last missing piece arrives: it carries that frame's number and the pieces
it came in (`fragments`). IPv4 is reassembled by (source, destination, protocol, identification), IPv6 by
(source, destination, identification) from its Fragment header (RFC 8200 4.5); overlapping pieces are reported
(RFC 5722: a receiver discards such a datagram), and datagrams never completed are given at the end, marked
incomplete with what arrived. IPv6 extension headers are walked once: hop-by-hop, routing (any type, Segment
Routing included), destination options and fragment headers are passed; AH is a protocol like any other; ESP
ends the walk (what follows it is encrypted).

Records, link headers, IP and UDP are read with struct: a decoder gets bytes, and hands scapy only what it wants
dissected. Damage is reported, never raised: a record cut short or unframeable ends the reading (what follows it
cannot be framed either) with `problem` saying where; `damage()` turns that into the reason a finished capture
cannot back a verdict (harness.capture).
"""
from __future__ import annotations

import os
import socket
import struct
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness.errors import CaptureError, HarnessError

PCAP_HEADER = 24                # the file header: magic, version, thiszone, sigfigs, snaplen, linktype
RECORD_HEADER = 16              # seconds, sub-seconds, captured length, length on the wire
MAX_SNAPLEN = 262144            # libpcap's largest snapshot length: a record claiming more is garbage
MAX_BLOCK = 16 * 1024 * 1024    # no pcapng block of a real capture comes near: one claiming more is garbage
BLOCK_HEADER = 12               # type, total length ... total length again

PCAP_MAGICS = {  # magic as it lies in the file -> (byte order, timestamp units per second)
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000), b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000), b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
BYTE_ORDER_MAGIC = {b"\x1a\x2b\x3c\x4d": ">", b"\x4d\x3c\x2b\x1a": "<"}
FCS_PRESENT = 0x04000000        # the P bit of the pcap link-type field: bits 28-31 hold the FCS length
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_EPB = 0x0A0D0D0A, 1, 2, 3, 6
# Blocks that hold no packet but that Wireshark shows, and numbers, as frames of their own
PCAPNG_RECORDS = {9: "systemd journal entry", 0x00000BAD: "pcapng custom block", 0x40000BAD: "pcapng custom block",
                  0x204: "sysdig event", 0x208: "sysdig event"}
IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET, EPB_FLAGS = 9, 13, 14, 2

ETHERNET, RAW_IP, LINUX_SLL, LINUX_SLL2, NULL, LOOP = 1, 101, 113, 276, 0, 108
RAW_IPS = (RAW_IP, 12, 14)      # 12 and 14: DLT_RAW as BSD/OS and OpenBSD numbered it, found in old files
RAW_IPV4, RAW_IPV6 = 228, 229
LINKTYPES = {NULL: "BSD loopback", ETHERNET: "Ethernet", 12: "raw IP", 14: "raw IP", RAW_IP: "raw IP",
             LOOP: "OpenBSD loopback", LINUX_SLL: "Linux cooked", RAW_IPV4: "raw IPv4", RAW_IPV6: "raw IPv6",
             LINUX_SLL2: "Linux cooked v2"}
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, and the pre-standard QinQ tag
IPV4_ETHERTYPE, IPV6_ETHERTYPE = 0x0800, 0x86DD
ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x8847: "MPLS", 0x8848: "MPLS", 0x8863: "PPPoE",
              0x8864: "PPPoE", 0x888E: "EAPOL", 0x88F7: "PTP", 0x8809: "LACP", 0x88E5: "MACsec", 0x9000: "loopback",
              0x894F: "NSH", 0x6558: "Ethernet bridging", 0x22F0: "AVTP", 0x88B5: "local experimental"}
# BSD loopback: the address family, in the capturing host's byte order (no RFC: what the BSDs, macOS and Linux
# write); AF_INET6 is 24 on NetBSD and OpenBSD, 28 on FreeBSD, 30 on macOS, 10 on Linux.
LOOPBACK_FAMILIES = {2: 4, 24: 6, 28: 6, 30: 6, 10: 6}

IP_PROTOCOLS = {0: "IPv6 hop-by-hop", 1: "ICMP", 2: "IGMP", 4: "IPv4 in IP", 6: "TCP", 17: "UDP",
                41: "IPv6 in IP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6", 59: "IPv6 no next header",
                89: "OSPF", 103: "PIM", 112: "VRRP", 115: "L2TP", 132: "SCTP", 136: "UDP-Lite"}
PORTED = (6, 17, 132, 136)      # TCP, UDP, SCTP, UDP-Lite: the first four bytes are the ports
IPPROTO_UDP = 17
IPV6_PASSED = (0, 43, 60)       # hop-by-hop, routing (Segment Routing is routing type 4), destination options
IPV6_FRAGMENT = 44
REASSEMBLY_TIMEOUT = 60.0       # RFC 8200 4.5: give up 60 s after the first piece (an id may then come again)

_inet_ntoa = socket.inet_ntoa


def _inet6(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, packed)


class NotACapture(HarnessError):
    """Not a capture at all: missing, a folder, unreadable, empty, or neither pcap nor pcapng."""


# --- the file: records ------------------------------------------------------------------------------------------

class Frame:
    """One captured frame: its number (from 1, as Wireshark counts), time (seconds since the epoch), link type,
    and the bytes as captured (a Frame Check Sequence the file declares is stripped). A pcapng record Wireshark
    counts as a frame though it holds no packet (a custom block, a systemd journal entry) has linktype None and
    says what it is in `record`."""
    __slots__ = ("number", "time", "linktype", "data", "wirelen", "interface", "record")

    def __init__(self, number: int, time: float, linktype: int | None, data: bytes, wirelen: int,
                 interface: int = 0, record: str | None = None):
        self.number, self.time, self.linktype, self.data = number, time, linktype, data
        self.wirelen, self.interface, self.record = wirelen, interface, record

    def packet(self):
        """scapy's dissection of the frame, for a reader that wants it (slow: only on demand)."""
        from scapy.config import conf
        import scapy.layers.l2  # noqa: F401  (registers the link types)
        from scapy.packet import Raw
        layer = conf.l2types.num2layer.get(self.linktype, Raw)
        try:
            packet = layer(self.data)
        except Exception:
            packet = Raw(self.data)
        packet.time = self.time
        return packet

    def __repr__(self) -> str:
        return f"Frame({self.number}, {self.time:.6f}, linktype {self.linktype}, {len(self.data)} bytes)"


class _Interface:
    __slots__ = ("linktype", "snaplen", "units", "offset", "fcs")

    def __init__(self, linktype: int, snaplen: int):
        self.linktype, self.snaplen = linktype, snaplen
        self.units, self.offset, self.fcs = 1_000_000, 0, 0   # pcapng 4.2: microseconds unless if_tsresol says


def _open(source) -> tuple[object, str, bool]:
    """(binary stream, name for messages, whether we opened it and must close it)."""
    if hasattr(source, "read"):
        return source, getattr(source, "name", "stream"), False
    path = os.fspath(source)
    if path == "-":
        return sys.stdin.buffer, "stdin", False
    try:
        return open(path, "rb", buffering=1 << 16), path, True
    except FileNotFoundError:
        raise NotACapture(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NotACapture(f"{path}: is a folder, not a capture") from None
    except OSError as exc:
        raise NotACapture(f"{path}: cannot read it ({exc.strerror or exc})") from None


class Records:
    """The frames of one pcap or pcapng file, read once from its stream. Opening reads the first bytes (so it waits
    for a FIFO's writer) and raises NotACapture for what is not a capture at all; iterating never raises: where the
    file breaks, `problem` says so in words and the frames end. `notes` lists damage the reading went past (a
    pcapng packet block naming an interface no block described)."""

    def __init__(self, source):
        self._stream, self.name, self._close = _open(source)
        self._read = _exactly(self._stream)
        self.format: str | None = None
        self.linktypes: list[int] = []
        self.problem: str | None = None
        self.notes: list[str] = []
        self.frames = 0
        try:
            self._magic = self._read(4)
        except OSError as exc:
            self.close()
            raise NotACapture(f"{self.name}: cannot read it ({exc.strerror or exc})") from None
        if self._magic in PCAP_MAGICS:
            self.format = "pcap"
        elif self._magic == PCAPNG_MAGIC:
            self.format = "pcapng"
        else:
            self.close()
            what = "an empty file" if not self._magic else "not a pcap or pcapng capture"
            raise NotACapture(f"{self.name}: {what}")

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._close:
            self._stream.close()
            self._close = False

    def __iter__(self) -> Iterator[Frame]:
        try:
            if self.format == "pcap":
                yield from self._pcap()
            else:
                yield from self._pcapng()
        except OSError as exc:  # an I/O error half way (a vanished network file): damage like a cut record
            self.problem = f"reading stopped after frame {self.frames}: {exc.strerror or exc}"

    def _pcap(self) -> Iterator[Frame]:
        endian, units = PCAP_MAGICS[self._magic]
        read = self._read
        header = read(PCAP_HEADER - 4)
        if len(header) < PCAP_HEADER - 4:
            self.problem = f"no whole pcap header ({4 + len(header)} of {PCAP_HEADER} bytes)"
            return
        _major, _minor, _zone, _sigfigs, snaplen, field = struct.unpack(endian + "HHiIII", header)
        linktype = field & 0xFFFF
        fcs = (field >> 28) * 2 if field & FCS_PRESENT else 0   # in 16-bit words
        self.linktypes.append(linktype)
        limit = max(snaplen, MAX_SNAPLEN)
        record = struct.Struct(endian + "IIII").unpack
        number = 0
        while True:
            head = read(RECORD_HEADER)
            if not head:
                return
            number += 1
            if len(head) < RECORD_HEADER:
                self.problem = f"record {number} header cut short ({len(head)} of {RECORD_HEADER} bytes)"
                return
            seconds, fraction, caplen, wirelen = record(head)
            if caplen > limit:
                self.problem = f"record {number} claims {caplen} bytes, more than any capture holds"
                return
            data = read(caplen)
            if len(data) < caplen:
                self.problem = f"record {number} cut short ({len(data)} of {caplen} bytes)"
                return
            if fcs and caplen >= wirelen and caplen >= fcs:  # a frame cut by the snapshot length lost its FCS
                data = data[:-fcs]
            self.frames = number
            yield Frame(number, (seconds * units + fraction) / units, linktype, data, wirelen)

    def _pcapng(self) -> Iterator[Frame]:
        read = self._read
        endian = "<"
        interfaces: list[_Interface] = []
        offset, number, pending, last_time = 0, 0, self._magic, 0.0
        while True:
            head = pending + read(8 - len(pending))
            pending = b""
            if not head:
                return
            if len(head) < 8:
                self.problem = f"block at byte {offset} cut short ({len(head)} of {BLOCK_HEADER} bytes)"
                return
            if head[:4] == PCAPNG_MAGIC:  # a section header: its byte-order magic says how to read the section
                prefix = read(4)
                if len(prefix) < 4:
                    self.problem = f"section header at byte {offset} cut short"
                    return
                if prefix not in BYTE_ORDER_MAGIC:
                    self.problem = (f"section header at byte {offset} has byte-order magic 0x{prefix.hex()}: "
                                    f"the rest is not pcapng")
                    return
                endian = BYTE_ORDER_MAGIC[prefix]
                kind, length = PCAPNG_SHB, struct.unpack(endian + "I", head[4:])[0]
                interfaces = []
            else:
                prefix = b""
                kind, length = struct.unpack(endian + "II", head)
            if length < BLOCK_HEADER or length % 4:
                self.problem = f"block at byte {offset} claims {length} bytes: not a block; the rest is unreadable"
                return
            if length > MAX_BLOCK:
                self.problem = f"block at byte {offset} claims {length} bytes, more than any capture holds"
                return
            rest = read(length - 8 - len(prefix))
            if len(rest) < length - 8 - len(prefix):
                self.problem = f"block at byte {offset} claims {length} bytes with {8 + len(prefix) + len(rest)} left"
                return
            if struct.unpack(endian + "I", rest[-4:])[0] != length:
                self.problem = (f"block at byte {offset} claims {length} bytes but ends claiming "
                                f"{struct.unpack(endian + 'I', rest[-4:])[0]}: the rest is unreadable")
                return
            body = rest[:-4]
            where = offset
            offset += length
            if kind == PCAPNG_IDB:
                if len(body) < 8:
                    self.notes.append(f"interface description at byte {where} cut short")
                    interfaces.append(_Interface(-1, 0))
                    continue
                linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body)
                interface = _Interface(linktype, snaplen)
                for code, value in _options(body, 8, endian):
                    if code == IF_TSRESOL and value:
                        interface.units = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
                    elif code == IF_TSOFFSET and len(value) >= 8:
                        interface.offset = struct.unpack_from(endian + "q", value)[0]
                    elif code == IF_FCSLEN and value:
                        interface.fcs = value[0] // 8   # in bits
                interfaces.append(interface)
                if linktype not in self.linktypes:
                    self.linktypes.append(linktype)
                continue
            if kind in PCAPNG_RECORDS:
                number += 1
                self.frames = number
                yield Frame(number, last_time, None, b"", 0, record=PCAPNG_RECORDS[kind])
                continue
            if kind not in (PCAPNG_EPB, PCAPNG_PB, PCAPNG_SPB):
                continue  # name resolution, statistics, decryption secrets: not frames
            number += 1
            self.frames = number
            if kind == PCAPNG_SPB:
                if len(body) < 4 or not interfaces:
                    self.notes.append(f"frame {number} (block at byte {where}): a simple packet block "
                                      f"{'cut short' if len(body) < 4 else 'before any interface is described'}")
                    continue
                wirelen = struct.unpack_from(endian + "I", body)[0]
                interface, index = interfaces[0], 0
                caplen = min(wirelen, len(body) - 4, interface.snaplen or wirelen)
                data, time, flags = body[4:4 + caplen], last_time, None
            else:
                if len(body) < 20:
                    self.notes.append(f"frame {number} (block at byte {where}): a packet block cut short")
                    continue
                if kind == PCAPNG_EPB:
                    index, high, low, caplen, wirelen = struct.unpack_from(endian + "IIIII", body)
                else:
                    index, _drops, high, low, caplen, wirelen = struct.unpack_from(endian + "HHIIII", body)
                if index >= len(interfaces):
                    self.notes.append(f"frame {number} (block at byte {where}) names interface {index}, "
                                      f"which no block describes")
                    continue
                interface = interfaces[index]
                data = body[20:20 + caplen]
                if len(data) < caplen:
                    self.notes.append(f"frame {number} (block at byte {where}) claims {caplen} bytes, "
                                      f"its block holds {len(data)}")
                flags = None
                options_at = 20 + caplen + (-caplen % 4)
                if kind == PCAPNG_EPB and len(body) > options_at:
                    flags = next((v for code, v in _options(body, options_at, endian) if code == EPB_FLAGS), None)
                units = interface.units
                time = (((high << 32) | low) + interface.offset * units) / units
                last_time = time
            fcs = interface.fcs
            if flags is not None and len(flags) >= 4:
                fcs = (struct.unpack_from(endian + "I", flags)[0] >> 5) & 0xF or fcs  # epb_flags bits 5-8
            if fcs and len(data) >= wirelen and len(data) >= fcs:
                data = data[:-fcs]
            yield Frame(number, time, interface.linktype, data, wirelen, index)


def _exactly(stream):
    """read(n): n bytes, or fewer only at the end of the stream. A buffered file, stdin or a FIFO opened by path
    already reads so; a raw stream or a socket may hand over less and more later."""
    read = stream.read

    def exactly(n: int) -> bytes:
        data = read(n)
        if data is None:  # a non-blocking stream with nothing yet: the reader is not for those
            return b""
        if len(data) == n or not data:
            return data
        parts, have = [data], len(data)
        while have < n:
            more = read(n - have)
            if not more:
                break
            parts.append(more)
            have += len(more)
        return b"".join(parts)
    return exactly


def _options(body: bytes, start: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options (code, length, value padded to 4 bytes) from `start`; stops at opt_endofopt or the end."""
    unpack = struct.Struct(endian + "HH").unpack_from
    at = start
    while at + 4 <= len(body):
        code, length = unpack(body, at)
        if code == 0:
            return
        yield code, body[at + 4:at + 4 + length]
        at += 4 + length + (-length % 4)


class Frames:
    """The frames of a capture as (number, Frame), numbered from 1 as Wireshark counts. Never raises on what the
    file holds: a missing or unreadable file has no frames; a damaged record (cut short or unframeable) ends the
    reading, since what follows it cannot be framed either, and sets `damaged` (and `problem`, in words). A capture
    read while tcpdump still writes it (Capture.peek) may end so; a finished one must not (see `damage`)."""

    def __init__(self, path):
        if path is None:  # Capture.stop of a capture that never started: there is no wire to read, not an empty one
            raise CaptureError("no capture to read: it never started")
        self.path = path
        self.damaged = False
        self.problem: str | None = None

    def __iter__(self) -> Iterator[tuple[int, Frame]]:
        try:
            records = Records(self.path)
        except NotACapture:  # missing, empty, or not a capture at all
            return
        with records:
            for frame in records:
                yield frame.number, frame
        if records.problem:
            self.damaged, self.problem = True, records.problem


def damage(path: str | os.PathLike) -> str | None:
    """What makes a finished capture unfit to judge from, in words, or None: missing, empty (tcpdump never wrote
    its header), not a capture, or a record cut short or unframeable. Records are framed, not dissected, so this is
    quick on a large capture. A header and no records is a whole capture of silence: only the case knows whether
    silence is what it expects (see Capture.confirm)."""
    path = Path(path)
    if not path.is_file():
        return "no capture file"
    size = path.stat().st_size
    if size == 0:
        return "empty: no pcap header (tcpdump never wrote to it)"
    try:
        records = Records(path)
    except NotACapture:
        if size < PCAP_HEADER:
            return f"no whole pcap header ({size} of {PCAP_HEADER} bytes)"
        return f"not a capture: no pcap header (it begins 0x{path.read_bytes()[:4].hex()})"
    with records:
        for _ in records:
            pass
    if size < PCAP_HEADER:
        return f"no whole pcap header ({size} of {PCAP_HEADER} bytes)"
    problem = records.problem or next(iter(records.notes), None)
    return f"damaged: {problem}" if problem else None


# --- IP datagrams -----------------------------------------------------------------------------------------------

class Fragment:
    """One IP fragment as it arrived: its frame, offset and length in bytes, and the more-fragments flag."""
    __slots__ = ("number", "time", "offset", "more", "length")

    def __init__(self, number: int, time: float, offset: int, more: bool, length: int):
        self.number, self.time, self.offset, self.more, self.length = number, time, offset, more, length

    def __repr__(self) -> str:
        return f"Fragment(#{self.number}, offset {self.offset}{' MF' if self.more else ''}, {self.length} bytes)"


class Datagram:
    """One IP datagram: the outermost IP header of a frame (the underlay) and what it carries, after any IPv6
    extension headers, reassembled where it came in fragments.

    number, time    the frame that completed it (its only frame, or its last missing fragment)
    version         4 or 6; src, dst as text
    proto           the upper-layer protocol (IPv6: after the extension headers)
    payload         the upper-layer bytes, cut to what the IP header says (Ethernet padding dropped); shorter
                    than that when the capture's snapshot length cut the frame (`cut` bytes short)
    length          the whole IP datagram as its header(s) say: IPv4 total length, IPv6 40 + payload length
    ip_id, df       IPv4 identification and DF flag (IPv6: the fragment header's identification, DF None)
    fragments       the pieces it came in (Fragment), in arrival order; () when it came whole
    complete        False for fragments that never became whole (given after every other datagram)
    problem         what is wrong with it, in words (overlapping fragments, pieces missing), or None
    """
    __slots__ = ("number", "time", "version", "src", "dst", "proto", "payload", "length", "ip_id", "df",
                 "fragments", "complete", "problem", "cut", "linktype")

    def __init__(self, number: int, time: float, version: int, src: str, dst: str, proto: int, payload: bytes,
                 length: int, ip_id: int = 0, df: bool | None = None, fragments: tuple[Fragment, ...] = (),
                 complete: bool = True, problem: str | None = None, cut: int = 0, linktype: int = ETHERNET):
        self.number, self.time, self.version, self.src, self.dst = number, time, version, src, dst
        self.proto, self.payload, self.length, self.ip_id, self.df = proto, payload, length, ip_id, df
        self.fragments, self.complete, self.problem, self.cut, self.linktype = (fragments, complete, problem, cut,
                                                                               linktype)

    @property
    def ip_proto(self) -> int:
        return self.proto

    @property
    def kind(self) -> str:
        return f"IPv{self.version}"

    @property
    def ports(self) -> tuple[int, int] | None:
        """(source, destination) of TCP, UDP, SCTP and UDP-Lite, when the first four bytes are there."""
        if self.proto in PORTED and len(self.payload) >= 4:
            return struct.unpack_from("!HH", self.payload)
        return None

    @property
    def sport(self) -> int | None:
        ports = self.ports
        return ports[0] if ports else None

    @property
    def dport(self) -> int | None:
        ports = self.ports
        return ports[1] if ports else None

    @property
    def numbers(self) -> tuple[int, ...]:
        """The frames it came in."""
        return tuple(f.number for f in self.fragments) or (self.number,)

    @property
    def first_fragment(self) -> Fragment | None:
        return next((f for f in self.fragments if f.offset == 0), None)

    def describe(self) -> str:
        """What it is, for a count of what nothing decoded: "UDP port 53", "ICMPv6", "IPv4 fragment"."""
        if not self.complete and self.first_fragment is None:
            return f"{self.kind} fragment"
        name = IP_PROTOCOLS.get(self.proto, f"IP protocol {self.proto}")
        ports = self.ports
        if ports:
            return f"{name} port {min(ports)}"
        return f"{name} (header cut short)" if self.proto in PORTED else name

    def __repr__(self) -> str:
        pieces = f", fragments {[f.number for f in self.fragments]}" if self.fragments else ""
        return (f"Datagram(#{self.number} IPv{self.version} {self.src} > {self.dst} proto {self.proto}, "
                f"{len(self.payload)} bytes{pieces}{'' if self.complete else ', incomplete'})")


class _Pieces:
    """The fragments of one datagram seen so far."""
    __slots__ = ("fragments", "data", "end", "head", "info", "started", "problems")

    def __init__(self, started: float, info: tuple):
        self.fragments: list[Fragment] = []
        self.data: dict[int, bytes] = {}
        self.end: int | None = None
        self.head: tuple | None = None      # what the offset-0 fragment's header said
        self.info = info                    # what any fragment's header said (for one without the first)
        self.started = started
        self.problems: list[str] = []

    def add(self, fragment: Fragment, data: bytes, head: tuple | None, claimed: int) -> bytes | None:
        """The whole payload once the last missing piece arrives, else None. `claimed`: the fragment's length as
        its IP header says (more than `data` when the snapshot length cut the frame)."""
        self.fragments.append(fragment)
        if claimed > len(data):
            self.problems.append(f"frame {fragment.number} kept {len(data)} of the fragment's {claimed} bytes "
                                 f"(the capture's snapshot length)")
        if fragment.offset in self.data:
            same = self.data[fragment.offset] == data
            self.problems.append(f"frame {fragment.number} repeats the fragment at offset {fragment.offset}"
                                 + ("" if same else " with other bytes"))
        self.data[fragment.offset] = data
        if head is not None:
            self.head = head
        if not fragment.more:
            end = fragment.offset + max(claimed, len(data))
            if self.end is not None and end != self.end:
                self.problems.append(f"frame {fragment.number} ends the datagram at {end}, another fragment at "
                                     f"{self.end}")
            self.end = end
        if self.end is None or self.head is None:
            return None
        covered = 0
        for start in sorted(self.data):
            if start > covered:
                return None
            covered = max(covered, start + len(self.data[start]))
        if covered < self.end:
            return None
        whole = bytearray()
        for start in sorted(self.data):
            piece = self.data[start]
            if start < len(whole):
                overlap = whole[start:start + len(piece)]
                self.problems.append(f"fragments overlap at offset {start}"
                                     + ("" if piece[:len(overlap)] == overlap else " with other bytes")
                                     + " (RFC 5722: a receiver discards such a datagram)")
            whole[start:start + len(piece)] = piece
        if len(whole) > self.end:
            self.problems.append(f"fragments run {len(whole) - self.end} byte(s) past the last fragment's end")
        return bytes(whole[:self.end])

    def prefix(self) -> bytes:
        """What arrived contiguously from offset 0."""
        whole = bytearray()
        for start in sorted(self.data):
            if start > len(whole):
                break
            piece = self.data[start]
            whole[start:start + len(piece)] = piece
        return bytes(whole)


def link_layer(frame: Frame) -> tuple[int, int] | str:
    """The frame's link layer read: (the ethertype of what it carries, where that starts in frame.data), or
    what the frame is instead, in words (a record, a cut-short header, another link type)."""
    data, linktype = frame.data, frame.linktype
    if linktype is None:
        return frame.record or "record"
    if linktype == ETHERNET:
        if len(data) < 14:
            return "Ethernet header cut short"
        ethertype, at = (data[12] << 8) | data[13], 14
        while ethertype in VLAN_TAGS:
            if len(data) < at + 4:
                return "802.1Q tag cut short"
            ethertype, at = (data[at + 2] << 8) | data[at + 3], at + 4
        if ethertype < 0x0600:
            return "IEEE 802.3 frame"
    elif linktype in RAW_IPS or linktype in (RAW_IPV4, RAW_IPV6):
        if not data:
            return "empty raw IP frame"
        ethertype, at = {4: IPV4_ETHERTYPE, 6: IPV6_ETHERTYPE}.get(data[0] >> 4, -1), 0
        if ethertype < 0:
            return f"raw IP frame of IP version {data[0] >> 4}"
    elif linktype == LINUX_SLL:
        if len(data) < 16:
            return "Linux cooked header cut short"
        ethertype, at = (data[14] << 8) | data[15], 16
    elif linktype == LINUX_SLL2:
        if len(data) < 20:
            return "Linux cooked v2 header cut short"
        ethertype, at = (data[0] << 8) | data[1], 20
    elif linktype in (NULL, LOOP):
        if len(data) < 4:
            return "loopback header cut short"
        family = struct.unpack_from("!I" if linktype == LOOP else "<I", data)[0]
        if family > 0xFFFF:  # written by a host of the other byte order
            family = struct.unpack_from(">I", data)[0] if linktype == NULL else family
        version = LOOPBACK_FAMILIES.get(family)
        if version is None:
            return f"loopback frame of address family {family}"
        ethertype, at = IPV4_ETHERTYPE if version == 4 else IPV6_ETHERTYPE, 4
    else:
        return f"linktype {linktype}"
    if linktype in (LINUX_SLL, LINUX_SLL2):
        while ethertype in VLAN_TAGS and len(data) >= at + 4:
            ethertype, at = (data[at + 2] << 8) | data[at + 3], at + 4
    return ethertype, at


class _Assembler:
    """Frames in, datagrams out, in capture order (a reassembled one when its last piece arrives); what is not
    an IP datagram is counted by kind in `others` ("ARP", "LLDP", "linktype 147")."""

    def __init__(self):
        self.others: Counter = Counter()
        self.other_frames: list[tuple[int, str]] = []   # (frame number, kind), in capture order
        self.start: float | None = None
        self.frames = 0
        self.pending: dict[tuple, _Pieces] = {}

    def add(self, frame: Frame) -> Iterator[Datagram]:
        self.frames += 1
        if self.start is None:
            self.start = frame.time
        try:
            found = self._network(frame)
        except Exception as exc:  # a bug of ours must cost one frame, not the capture
            found = f"undecodable ({type(exc).__name__})"
        if isinstance(found, str):
            self.others[found] += 1
            self.other_frames.append((frame.number, found))
            return ()
        return found

    def _network(self, frame: Frame):
        found = link_layer(frame)
        if isinstance(found, str):
            return found
        (ethertype, at), data = found, frame.data
        if ethertype == IPV4_ETHERTYPE:
            return self._ipv4(frame, data, at)
        if ethertype == IPV6_ETHERTYPE:
            return self._ipv6(frame, data, at)
        if ethertype < 0x0600:
            return f"Linux cooked protocol 0x{ethertype:04x}"
        return ETHERTYPES.get(ethertype, f"ethertype 0x{ethertype:04x}")

    def _ipv4(self, frame: Frame, data: bytes, at: int):
        if len(data) - at < 20:
            return "IPv4 header cut short"
        first = data[at]
        if first >> 4 != 4:
            return f"IP version {first >> 4} where IPv4 was announced"
        header = (first & 0x0F) * 4
        total, ip_id, flags, _ttl, proto = struct.unpack_from("!HHHBB", data, at + 2)
        if header < 20:
            return "IPv4 header length under 20 bytes"
        if len(data) - at < header:
            return "IPv4 header cut short"
        if total == 0:  # segmentation offload: the sending host's capture shows 0 (as Wireshark reads it)
            total = len(data) - at
        if total < header:
            return "IPv4 total length shorter than its header"
        src, dst = _inet_ntoa(data[at + 12:at + 16]), _inet_ntoa(data[at + 16:at + 20])
        end = at + total
        payload = data[at + header:end]
        cut = max(end - len(data), 0)
        df = bool(flags & 0x4000)
        more, offset = bool(flags & 0x2000), (flags & 0x1FFF) * 8
        if not (more or offset):
            return (Datagram(frame.number, frame.time, 4, src, dst, proto, payload, total, ip_id, df, cut=cut,
                             linktype=frame.linktype),)
        head = (4, src, dst, proto, ip_id, df, header, frame.linktype) if offset == 0 else None
        return self._piece((4, src, dst, proto, ip_id), frame, offset, more, payload, total - header, head,
                           (4, src, dst, proto, ip_id, df, header, frame.linktype))

    def _ipv6(self, frame: Frame, data: bytes, at: int):
        if len(data) - at < 40:
            return "IPv6 header cut short"
        if data[at] >> 4 != 6:
            return f"IP version {data[at] >> 4} where IPv6 was announced"
        plen, proto = (data[at + 4] << 8) | data[at + 5], data[at + 6]
        src, dst = _inet6(data[at + 8:at + 24]), _inet6(data[at + 24:at + 40])
        end = at + 40 + plen if plen else len(data)   # 0: a jumbogram (RFC 2675), or offload: what was captured
        upto = min(end, len(data))
        walked = _walk_ipv6(data, at + 40, upto, proto)
        if isinstance(walked, str):
            return walked
        proto, position = walked
        cut = max(end - len(data), 0)
        if proto != IPV6_FRAGMENT:
            return (Datagram(frame.number, frame.time, 6, src, dst, proto, data[position:end], end - at, cut=cut,
                             linktype=frame.linktype),)
        if upto - position < 8:
            return "IPv6 fragment header cut short"
        following, offset_flags, ip_id = data[position], (data[position + 2] << 8) | data[position + 3], \
            struct.unpack_from("!I", data, position + 4)[0]
        offset, more = offset_flags & 0xFFF8, bool(offset_flags & 1)
        header = position - at   # the unfragmentable part, without the fragment header
        info = (6, src, dst, following, ip_id, None, header, frame.linktype)
        return self._piece((6, src, dst, ip_id), frame, offset, more, data[position + 8:end], end - position - 8,
                           info if offset == 0 else None, info)

    def _piece(self, key: tuple, frame: Frame, offset: int, more: bool, data: bytes, claimed: int,
               head: tuple | None, info: tuple) -> tuple[Datagram, ...]:
        out = []
        pieces = self.pending.get(key)
        if pieces is not None and frame.time - pieces.started > REASSEMBLY_TIMEOUT:
            out.append(self._incomplete(self.pending.pop(key), timed_out=True))
            pieces = None
        if pieces is None:
            pieces = self.pending[key] = _Pieces(frame.time, info)
        whole = pieces.add(Fragment(frame.number, frame.time, offset, more, len(data)), data, head, claimed)
        if whole is not None:
            del self.pending[key]
            out.append(self._whole(frame, pieces, whole))
        return tuple(out)

    def _whole(self, frame: Frame, pieces: _Pieces, whole: bytes) -> Datagram:
        version, src, dst, proto, ip_id, df, header, linktype = pieces.head
        length = header + len(whole)
        if version == 6:  # the fragmentable part may begin with more extension headers (RFC 8200 4.5)
            walked = _walk_ipv6(whole, 0, len(whole), proto)
            if isinstance(walked, str):
                proto, position = 59, len(whole)
                pieces.problems.append(walked)
            else:
                proto, position = walked
            header, whole = header + position, whole[position:]
        return Datagram(frame.number, frame.time, version, src, dst, proto, whole, length, ip_id, df,
                        tuple(pieces.fragments), problem="; ".join(pieces.problems) or None, linktype=linktype)

    def _incomplete(self, pieces: _Pieces, timed_out: bool = False) -> Datagram:
        version, src, dst, proto, ip_id, df, header, linktype = pieces.head or pieces.info
        first = next((f for f in pieces.fragments if f.offset == 0), pieces.fragments[0])
        have = sum(len(d) for d in pieces.data.values())
        payload = pieces.prefix() if pieces.head is not None else b""
        if version == 6 and payload:
            walked = _walk_ipv6(payload, 0, len(payload), proto)
            if not isinstance(walked, str):
                proto, position = walked
                payload = payload[position:]
        frames = ", ".join(str(f.number) for f in pieces.fragments)
        of = f"of {pieces.end}" if pieces.end is not None else "of an unknown length (no last fragment)"
        why = "given up after 60 s" if timed_out else "the rest never came"
        problem = (f"IPv{version} fragments (id 0x{ip_id:x}, frame(s) {frames}): {have} byte(s) {of}: {why}")
        if pieces.head is None:
            problem += "; no first fragment"
        return Datagram(first.number, first.time, version, src, dst, proto, payload, header + have, ip_id,
                        df if pieces.head is not None else None, tuple(pieces.fragments), complete=False,
                        problem="; ".join([problem, *pieces.problems]), linktype=linktype)

    def finish(self) -> Iterator[Datagram]:
        """The datagrams whose fragments never all came, in the order their first piece came."""
        left = sorted(self.pending.items(), key=lambda item: item[1].fragments[0].number)
        self.pending = {}
        for _key, pieces in left:
            yield self._incomplete(pieces)


def _walk_ipv6(data: bytes, position: int, end: int, proto: int) -> tuple[int, int] | str:
    """Past the extension headers every IPv6 node may meet before the upper layer: (next header, where it starts);
    a fragment header stops the walk (44 is returned). In words, why the walk could not finish."""
    while proto in IPV6_PASSED:
        if end - position < 2:
            return "IPv6 extension header cut short"
        proto, position = data[position], position + (data[position + 1] + 1) * 8
        if position > end:
            return "IPv6 extension header cut short"
    return proto, position


class Capture:
    """A whole capture, read once into memory: what several readers share when the file can be read only once
    (stdin, a FIFO). Its datagrams are worked out once, on first use: `datagrams`, and with them `others` (the
    frames that are not IP, by kind), `other_frames` ((number, kind) of each) and `start` (the first frame's time)."""

    def __init__(self, records: Records):
        self.name = records.name
        self.format = records.format
        self.frames: list[Frame] = list(records)
        self.linktypes = list(records.linktypes)
        self.problem = records.problem
        self.notes = list(records.notes)
        self._assembled: tuple | None = None

    @property
    def damage(self) -> list[str]:
        """Where the file breaks, in words."""
        return [*self.notes, *([self.problem] if self.problem else [])]

    def _assemble(self) -> tuple:
        if self._assembled is None:
            assembler = _Assembler()
            found: list[Datagram] = []
            for frame in self.frames:
                found.extend(assembler.add(frame))
            found.extend(assembler.finish())
            self._assembled = (found, assembler.others, assembler.other_frames, assembler.start)
        return self._assembled

    @property
    def datagrams(self) -> list[Datagram]:
        return self._assemble()[0]

    @property
    def others(self) -> Counter:
        return self._assemble()[1]

    @property
    def other_frames(self) -> list[tuple[int, str]]:
        return self._assemble()[2]

    @property
    def start(self) -> float | None:
        return self.frames[0].time if self.frames else None

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


def read(source) -> Capture:
    """The whole capture. Raises NotACapture (one line naming the file) for what is not a capture at all; damage
    is in the Capture (`damage`)."""
    with Records(source) as records:
        return Capture(records)


class Datagrams:
    """The IP datagrams of a capture (a path, "-", a stream, or a Capture already read), in capture order.
    Never raises on what the capture holds: what is not a capture has none. After iterating: `start` (the first
    frame's time, whatever it carried), `frames` (how many), `others` (frames that are not IP, by kind),
    `damaged` and `problem` (where the file broke)."""

    def __init__(self, source):
        if source is None:
            raise CaptureError("no capture to read: it never started")
        self.source = source
        self.start: float | None = None
        self.frames = 0
        self.others: Counter = Counter()
        self.other_frames: list[tuple[int, str]] = []
        self.damaged = False
        self.problem: str | None = None

    def __iter__(self) -> Iterator[Datagram]:
        if isinstance(self.source, Capture):
            capture = self.source
            found = capture.datagrams
            self.start, self.frames, self.others = capture.start, len(capture.frames), capture.others
            self.other_frames = capture.other_frames
            self.damaged, self.problem = bool(capture.damage), capture.problem or next(iter(capture.notes), None)
            yield from found
            return
        try:
            records = Records(self.source)
        except NotACapture:
            return
        assembler = _Assembler()
        with records:
            for frame in records:
                found = assembler.add(frame)
                self.start, self.frames = assembler.start, assembler.frames
                yield from found
        self.others, self.other_frames = assembler.others, assembler.other_frames
        yield from assembler.finish()
        if records.problem or records.notes:
            self.damaged, self.problem = True, records.problem or records.notes[0]


# --- scapy, for readers that still want it -------------------------------------------------------------------

def captured(layer) -> bytes:
    """The bytes as captured from this scapy layer on (scapy keeps them per layer, already cut to the IP length)."""
    return bytes(getattr(layer, "original", None) or b"")


def network_layer(frame):
    """The outermost IP header of a scapy packet: the underlay the peers talk over."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    for layer in frame.iterpayloads():
        if isinstance(layer, (IP, IPv6)):
            return layer
    return None


def write_replaced(source, out: str | os.PathLike, replaced: dict[int, bytes]) -> int:
    """A copy of capture `source` as a pcap at `out`, each frame whose number is in `replaced` carrying those bytes
    in place of its network layer (its link header kept: a decrypted capture, each ESP packet replaced by what it
    carried, as an IP packet of the same version). Frames of another link type than the first one's cannot go in
    one pcap and are left out; returns how many."""
    from scapy.utils import RawPcapWriter
    writer, left_out = None, 0
    for number, frame in Frames(source):
        if frame.linktype is None:
            continue
        if writer is None:
            writer = RawPcapWriter(os.fspath(out), linktype=frame.linktype, nano=True, snaplen=262144)
            writer.write_header(None)  # write_packet writes records only
            linktype = frame.linktype
        if frame.linktype != linktype:
            left_out += 1
            continue
        data = frame.data
        if number in replaced:
            found = link_layer(frame)
            if not isinstance(found, str):
                data = data[:found[1]] + replaced[number]
        seconds = int(frame.time)
        writer.write_packet(data, sec=seconds, usec=min(round((frame.time - seconds) * 1e9), 999_999_999),
                            wirelen=len(data) if number in replaced else frame.wirelen)
    if writer is None:  # nothing to copy: an empty capture all the same
        writer = RawPcapWriter(os.fspath(out), linktype=ETHERNET, nano=True)
        writer.write_header(None)
    writer.close()
    return left_out
