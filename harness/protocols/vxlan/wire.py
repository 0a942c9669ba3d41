"""What the wire shows of a VXLAN (RFC 7348) or Geneve (RFC 8926) overlay: every encapsulated frame, with
its outer addressing, its encapsulation header bit by bit, and a summary of the inner Ethernet frame.

    wire = Wire.from_pcap(pcap)                         # UDP 4789 and 8472 (VXLAN), 6081 (Geneve)
    assert wire.vnis() == (100,), wire.describe()
    requests = wire.echoes(vni=100).requests()
    assert all(f.reserved_clear for f in wire.frames()), wire.describe()
    assert not wire.fragments(), wire.describe()        # RFC 7348 4.3: VTEPs MUST NOT fragment

Interop failures are judged from the capture, not from either VTEP's own account: a VTEP that sends to 8472
while its peer listens on 4789 says nothing about it, but the wire shows frames that are never answered.

scapy reads the capture and decodes the outer link and IP layers (as harness.protocols.ipsec.wire does);
the 8-byte VXLAN header and the Geneve header we decode ourselves with struct, because scapy's VXLAN layer
binds ports, flags and the GBP/GPE extensions differently across versions, and a reserved bit that scapy
folds into a named flag is exactly what a test must see. The inner Ethernet frame is scapy's again.

Outer IP fragments of an overlay datagram are reassembled: the frame is decoded once, from the whole
datagram, and keeps the pieces it came in (`OverlayFrame.fragments`; `Wire.fragments()` lists them all).
A later fragment whose first fragment is not in the capture cannot be told from other traffic and is left
out. ICMP errors quoting an overlay datagram (port unreachable from a VTEP listening on another port) are
kept apart: `Wire.icmp_errors()`. Nothing here raises on what a capture holds: a frame that cannot be read
is kept with `malformed` set to the reason.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, Dot1Q, Ether  # (also registers the Ethernet and Linux cooked link types)
from scapy.packet import Packet

from harness.packets import Frames, captured, network_layer
from harness.textfmt import endpoint, message_line

logging.getLogger("scapy").setLevel(logging.ERROR)  # its warnings about odd packets would read as errors

VXLAN_PORTS = (4789, 8472)      # IANA (RFC 7348 5), and the Linux kernel's historical default
GENEVE_PORTS = (6081,)          # IANA (RFC 8926 3.3)
IPPROTO_UDP = 17

UDP_HEADER = struct.Struct("!HHHH")             # sport, dport, length, checksum
VXLAN_HEADER = struct.Struct("!B3sI")           # flags, 24 reserved bits, VNI (24) + 8 reserved bits
GENEVE_HEADER = struct.Struct("!BBHI")          # ver/opt len, O/C/reserved, protocol type, VNI + reserved
GENEVE_OPTION_HEADER = struct.Struct("!HBB")    # class, type, R bits/length (in 4-byte words)
VXLAN_I_FLAG = 0x08             # RFC 7348 5: "MUST be set to 1 for a valid VXLAN Network ID"
GENEVE_O_BIT, GENEVE_C_BIT = 0x80, 0x40
GENEVE_CRITICAL = 0x80          # the high bit of an option's type (RFC 8926 3.5.1)
ETHERNET_BRIDGING = 0x6558      # Geneve protocol type: an Ethernet frame follows (RFC 8926 3.4)
ETHERNET_HEADER = 14

ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88CC: "LLDP",
              ETHERNET_BRIDGING: "Ethernet"}
# RFC 8926 7.2: Geneve option classes; the names IANA's registry gives the ones assigned so far.
GENEVE_OPTION_CLASSES = {0x0100: "Linux", 0x0101: "Open vSwitch", 0x0102: "Open Virtual Networking (OVN)",
                         0x0103: "In-band Network Telemetry (INT)", 0x0104: "VMware"}
ARP_OPS = {1: "request", 2: "reply"}
ICMP_TYPES = {0: "echo-reply", 3: "dest-unreach", 5: "redirect", 8: "echo-request", 11: "time-exceeded"}
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
ICMPV6_ECHO = {128: "echo-request", 129: "echo-reply"}
IPV6_PASS_THROUGH_HEADERS = (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt)


# --- the encapsulation headers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VxlanHeader:
    """The 8 bytes of RFC 7348 5: flags (the I flag and 7 reserved R bits), 24 reserved bits, the VNI, and
    8 more reserved bits."""
    flags: int
    reserved24: int
    vni: int
    reserved8: int

    @property
    def i_flag(self) -> bool:
        return bool(self.flags & VXLAN_I_FLAG)

    @property
    def r_flags(self) -> int:
        """The 7 R bits of the flags byte (the I bit masked out)."""
        return self.flags & ~VXLAN_I_FLAG & 0xFF

    @property
    def reserved_clear(self) -> bool:
        """RFC 7348 5: reserved fields MUST be zero on transmission (and ignored on receipt)."""
        return not (self.r_flags or self.reserved24 or self.reserved8)

    def describe(self) -> str:
        text = f"VXLAN vni={self.vni} flags=0x{self.flags:02x}" + (" (I)" if self.i_flag else "")
        if not self.i_flag:
            text += " [I flag clear: VNI not valid]"
        if not self.reserved_clear:
            text += f" [reserved bits set: {_reserved_parts(self)}]"
        return text


def _reserved_parts(header: VxlanHeader) -> str:
    parts = []
    if header.r_flags:
        parts.append(f"R flags 0x{header.r_flags:02x}")
    if header.reserved24:
        parts.append(f"24-bit 0x{header.reserved24:06x}")
    if header.reserved8:
        parts.append(f"8-bit 0x{header.reserved8:02x}")
    return ", ".join(parts)


@dataclass(frozen=True)
class GeneveOption:
    """One option TLV (RFC 8926 3.5): its class, type (the high bit: critical), R bits and data."""
    cls: int
    type: int
    data: bytes
    reserved: int = 0  # the 3 R bits before the length

    @property
    def critical(self) -> bool:
        return bool(self.type & GENEVE_CRITICAL)

    @property
    def class_name(self) -> str:
        if self.cls in GENEVE_OPTION_CLASSES:
            return GENEVE_OPTION_CLASSES[self.cls]
        return "Standard" if self.cls <= 0x00FF else "Experimental" if self.cls >= 0xFFF0 else "Unassigned"

    def describe(self) -> str:
        """Class (and its IANA name), type (the critical bit spelt out), length as Wireshark gives it (the
        option's, its 4-byte header included), data in hex."""
        critical = " critical" if self.critical else ""
        reserved = f" R=0x{self.reserved:x}" if self.reserved else ""
        data = f"0x{self.data.hex()}" if self.data else "-"
        return (f"option class=0x{self.cls:04x} ({self.class_name}) type=0x{self.type:02x}{critical}{reserved} "
                f"len={GENEVE_OPTION_HEADER.size + len(self.data)} data={data}")


@dataclass(frozen=True)
class GeneveHeader:
    """RFC 8926 3.4: version, option length, O (control) and C (critical options present) bits, 6 reserved
    bits, protocol type, VNI, 8 reserved bits; then the options."""
    version: int
    o_bit: bool
    c_bit: bool
    reserved6: int
    protocol: int
    vni: int
    reserved8: int
    options: tuple[GeneveOption, ...] = ()

    @property
    def reserved_clear(self) -> bool:
        return not (self.reserved6 or self.reserved8 or any(o.reserved for o in self.options))

    @property
    def critical_options(self) -> tuple[GeneveOption, ...]:
        return tuple(o for o in self.options if o.critical)

    def describe(self) -> str:
        text = f"GENEVE vni={self.vni}"
        if self.version:
            text += f" version={self.version}"
        text += f" O={int(self.o_bit)} C={int(self.c_bit)} proto=0x{self.protocol:04x}"
        if self.protocol in ETHERTYPES:
            text += f" ({ETHERTYPES[self.protocol]})"
        if self.critical_options and not self.c_bit:
            text += " [C bit clear with a critical option]"  # RFC 8926 3.4: it MUST be set then
        if not self.reserved_clear:
            text += f" [reserved bits set: 6-bit 0x{self.reserved6:02x}, 8-bit 0x{self.reserved8:02x}]"
        for option in self.options:
            text += f" {option.describe()}"
        return text


# --- the inner frame ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arp:
    op: int
    sender_mac: str
    sender_ip: str
    target_ip: str

    @property
    def kind(self) -> str:
        return ARP_OPS.get(self.op, f"op={self.op}")

    def describe(self) -> str:
        if self.op == 1:
            return f"ARP who-has {self.target_ip} tell {self.sender_ip}"
        if self.op == 2:
            return f"ARP reply {self.sender_ip} is-at {self.sender_mac}"
        return f"ARP op={self.op} {self.sender_ip} > {self.target_ip}"


@dataclass(frozen=True)
class InnerIp:
    version: int
    src: str
    dst: str
    proto: int
    length: int                 # IPv4: the total length; IPv6: the payload length
    df: bool | None = None      # IPv4 only


@dataclass(frozen=True)
class Icmp:
    type: int
    code: int
    id: int | None = None       # echo request and reply only
    seq: int | None = None

    @property
    def kind(self) -> str:
        return ICMP_TYPES.get(self.type, f"type={self.type} code={self.code}")


@dataclass(frozen=True)
class InnerFrame:
    """The Ethernet frame a VTEP carried, as far as it could be read."""
    src: str | None = None      # MACs, lower case; None without an inner Ethernet header
    dst: str | None = None
    ethertype: int | None = None   # after any 802.1Q tag
    vlan: int | None = None
    length: int = 0             # bytes carried
    arp: Arp | None = None
    ip: InnerIp | None = None
    icmp: Icmp | None = None
    sport: int | None = None    # UDP/TCP
    dport: int | None = None

    @property
    def icmp_kind(self) -> str | None:
        """"echo-request", "echo-reply", "dest-unreach", ... for ICMP and ICMPv6."""
        if self.icmp is None or self.ip is None:
            return None
        if self.ip.version == 4:
            return self.icmp.kind
        return ICMPV6_ECHO.get(self.icmp.type, f"type={self.icmp.type} code={self.icmp.code}")

    @property
    def echo(self) -> str | None:
        """"request" or "reply" for an ICMP (v4 or v6) echo, else None."""
        return {"echo-request": "request", "echo-reply": "reply"}.get(self.icmp_kind or "")

    def describe(self) -> str:
        """MACs, then the summary."""
        macs = f"{self.src} > {self.dst}" if self.src is not None else ""
        return " ".join(part for part in (macs, self.summary()) if part)

    def summary(self) -> str:
        """What the frame carries, without its MACs: "IPv4 198.19.100.1 > 198.19.100.2 ICMP echo-request ..."."""
        parts = []
        if self.vlan is not None:
            parts.append(f"vlan {self.vlan}")
        if self.arp is not None:
            parts.append(self.arp.describe())
        elif self.ip is not None:
            parts.append(self._describe_ip())
        elif self.ethertype is not None:
            parts.append(f"{ETHERTYPES.get(self.ethertype, f'ethertype 0x{self.ethertype:04x}')} len={self.length}")
        return " ".join(parts)

    def _describe_ip(self) -> str:
        ip = self.ip
        text = f"IPv{ip.version} {endpoint(ip.src, self.sport)} > {endpoint(ip.dst, self.dport)}"
        text += f" {IP_PROTOCOLS.get(ip.proto, f'proto={ip.proto}')}"
        if self.icmp is not None:
            text += f" {self.icmp_kind}"
            if self.icmp.id is not None:
                text += f" id={self.icmp.id} seq={self.icmp.seq}"
        text += f" len={ip.length}"
        if ip.df:
            text += " DF"
        return text


# --- one overlay frame ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OuterFragment:
    """One outer IP fragment of an overlay datagram."""
    number: int                 # the frame's number in the capture (1-based, as Wireshark counts)
    time: float
    src: str
    dst: str
    ip_id: int
    offset: int                 # in bytes
    more: bool                  # the MF flag (IPv6: the M flag)
    length: int                 # payload bytes in this fragment

    def describe(self, t0: float = 0.0) -> str:
        more = " MF" if self.more else ""
        return message_line(self.number, self.time, t0, self.src, self.dst,
                            f"fragment id=0x{self.ip_id:04x} offset={self.offset}{more} len={self.length}")


ICMP_ERROR_NAMES = {  # (version, type, code) -> name; the errors a VTEP's datagram draws
    (4, 3, 3): "port-unreachable", (4, 3, 1): "host-unreachable", (4, 3, 4): "fragmentation-needed",
    (4, 11, 0): "ttl-exceeded", (6, 1, 4): "port-unreachable", (6, 1, 3): "address-unreachable",
    (6, 2, 0): "packet-too-big", (6, 3, 0): "hop-limit-exceeded",
}
ICMP_ERROR_TYPES = {4: (3, 11, 12), 6: (1, 2, 3, 4)}   # ICMP and ICMPv6 types that quote the offending datagram
IPPROTO_ICMP, IPPROTO_ICMPV6 = 1, 58


@dataclass(frozen=True)
class IcmpError:
    """An ICMP error about an overlay datagram: typically port unreachable from a VTEP that does not listen
    on the port it was sent to (the 4789 vs 8472 mismatch)."""
    number: int
    time: float
    src: str                    # who reports it
    dst: str                    # the sender of the datagram
    version: int                # 4: ICMP, 6: ICMPv6
    type: int
    code: int
    quoted_sport: int
    quoted_dport: int
    encapsulation: str
    vni: int | None = None      # when the quote reaches the VXLAN/Geneve header

    @property
    def kind(self) -> str:
        return ICMP_ERROR_NAMES.get((self.version, self.type, self.code), f"type={self.type} code={self.code}")

    def describe(self, t0: float = 0.0) -> str:
        vni = f" vni={self.vni}" if self.vni is not None else ""
        return message_line(self.number, self.time, t0, self.src, self.dst,
                            f"ICMP{'v6' if self.version == 6 else ''} {self.kind} about UDP {self.quoted_sport} > "
                            f"{self.quoted_dport} ({self.encapsulation.upper()}{vni})")


@dataclass(frozen=True)
class OverlayFrame:
    number: int                 # the frame's number in the capture; for a reassembled one, its last fragment's
    time: float
    src: str                    # the outer (underlay) addresses: the VTEPs
    dst: str
    sport: int
    dport: int
    encapsulation: str          # "vxlan" or "geneve", by the UDP port
    ip_id: int = 0              # outer IPv4 identification (IPv6: 0, or the fragment header's)
    df: bool | None = None      # outer IPv4 DF flag; None over IPv6
    udp_checksum: int = 0
    # "zero" (RFC 7348 5: SHOULD over IPv4), "correct", "offloaded" (the pseudo-header sum a sender with
    # checksum offload leaves for its NIC: what a capture on the sending node shows), "wrong", or
    # "unverified" (the datagram is not all in the capture).
    udp_checksum_status: str = "unverified"
    header: VxlanHeader | GeneveHeader | None = None
    inner: InnerFrame | None = None
    fragments: tuple[OuterFragment, ...] = ()   # the pieces it arrived in, when the outer IP fragmented it
    malformed: str | None = None                # why (part of) it could not be read

    @property
    def vni(self) -> int | None:
        return None if self.header is None else self.header.vni

    @property
    def flags(self) -> int | None:
        """VXLAN: the flags byte. Geneve: the second header byte (O, C and the 6 reserved bits)."""
        if isinstance(self.header, VxlanHeader):
            return self.header.flags
        if isinstance(self.header, GeneveHeader):
            return (GENEVE_O_BIT * self.header.o_bit) | (GENEVE_C_BIT * self.header.c_bit) | self.header.reserved6
        return None

    @property
    def i_flag(self) -> bool | None:
        return self.header.i_flag if isinstance(self.header, VxlanHeader) else None

    @property
    def reserved_clear(self) -> bool | None:
        return None if self.header is None else self.header.reserved_clear

    @property
    def options(self) -> tuple[GeneveOption, ...]:
        return self.header.options if isinstance(self.header, GeneveHeader) else ()

    @property
    def udp_checksum_ok(self) -> bool | None:
        """Zero or correct (or left to the sender's NIC); None when it cannot be verified."""
        if self.udp_checksum_status == "unverified":
            return None
        return self.udp_checksum_status != "wrong"

    @property
    def fragmented(self) -> bool:
        return bool(self.fragments)

    def describe(self, t0: float = 0.0) -> str:
        """One line: outer addressing, the header, then " | " and the inner frame."""
        text = self.header.describe() if self.header is not None else self.encapsulation.upper()
        if self.udp_checksum_status == "wrong":
            text += f" [outer UDP checksum 0x{self.udp_checksum:04x} wrong]"
        if self.fragments:
            text += f" [outer IP: {len(self.fragments)} fragment(s)]"
        inner = self.inner.describe() if self.inner is not None else ""
        if inner:
            text += f" | {inner}"
        if self.malformed:
            text += f" malformed: {self.malformed}"
        return message_line(self.number, self.time, t0, self.src, self.dst, text, self.sport, self.dport)


class OverlayFrames(tuple):
    """Overlay frames in capture order; a tuple, so tests can index, slice and compare it."""
    t0: float = 0.0

    def __new__(cls, frames: Iterable[OverlayFrame] = (), t0: float = 0.0):
        made = super().__new__(cls, frames)
        made.t0 = t0
        return made

    def __getitem__(self, index):
        got = super().__getitem__(index)
        return OverlayFrames(got, self.t0) if isinstance(index, slice) else got

    def requests(self) -> OverlayFrames:
        """The ICMP echo requests among them."""
        return OverlayFrames((f for f in self if f.inner is not None and f.inner.echo == "request"), self.t0)

    def replies(self) -> OverlayFrames:
        return OverlayFrames((f for f in self if f.inner is not None and f.inner.echo == "reply"), self.t0)

    def describe(self) -> str:
        return "\n".join(f.describe(self.t0) for f in self) or "no overlay frames on the wire"


# --- the capture ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wire:
    overlay: OverlayFrames = OverlayFrames()
    outer_fragments: tuple[OuterFragment, ...] = ()
    errors: tuple[IcmpError, ...] = ()
    start: float = 0.0          # the capture's first frame: times in describe() count from it

    def __post_init__(self) -> None:
        object.__setattr__(self, "overlay", OverlayFrames(self.overlay, self.start))
        object.__setattr__(self, "outer_fragments", tuple(self.outer_fragments))
        object.__setattr__(self, "errors", tuple(self.errors))

    @classmethod
    def from_pcap(cls, path: str | os.PathLike, ports: Iterable[int] | Mapping[int, str] = ()) -> Wire:
        """Never raises: a missing, empty or unreadable capture is an empty Wire. `ports` adds UDP ports
        to read as overlay traffic: port numbers (VXLAN), or {port: "vxlan" | "geneve"}."""
        reader = _Reader(ports)
        reader.read(path)
        return reader.wire()

    def frames(self, vni: int | None = None, src: str | None = None, dst: str | None = None,
               encapsulation: str | None = None) -> OverlayFrames:
        """The overlay frames in capture order, of one VNI, outer source, outer destination or
        encapsulation if given."""
        return OverlayFrames((f for f in self.overlay
                              if (vni is None or f.vni == vni) and (src is None or f.src == src)
                              and (dst is None or f.dst == dst)
                              and (encapsulation is None or f.encapsulation == encapsulation)), self.start)

    def vnis(self) -> tuple[int, ...]:
        """The distinct VNIs on the wire, in increasing order."""
        return tuple(sorted({f.vni for f in self.overlay if f.vni is not None}))

    def vtep_pairs(self) -> Counter:
        """Frames per (outer source, outer destination)."""
        return Counter((f.src, f.dst) for f in self.overlay)

    def echoes(self, vni: int | None = None, **where) -> OverlayFrames:
        """The frames carrying an ICMP echo request or reply (of one VNI, src, dst if given);
        .requests() and .replies() split them."""
        return OverlayFrames((f for f in self.frames(vni, **where) if f.inner is not None and f.inner.echo),
                             self.start)

    def arp(self, vni: int | None = None, op: str | None = None, **where) -> OverlayFrames:
        """The frames carrying ARP (of one VNI, src, dst if given); `op`: "request" or "reply"."""
        if op not in (None, *ARP_OPS.values()):
            raise ValueError(f"ARP op must be one of {', '.join(ARP_OPS.values())}, not {op!r}")
        return OverlayFrames((f for f in self.frames(vni, **where)
                              if f.inner is not None and f.inner.arp is not None
                              and (op is None or f.inner.arp.kind == op)), self.start)

    def outer_source_ports(self, vni: int | None = None, src: str | None = None,
                           dst: str | None = None) -> tuple[int, ...]:
        """The distinct outer UDP source ports, in increasing order. RFC 7348 5 recommends deriving them
        from a hash of the inner frame, so different inner flows spread over the underlay's ECMP paths."""
        return tuple(sorted({f.sport for f in self.frames(vni, src, dst)}))

    def fragments(self) -> tuple[OuterFragment, ...]:
        """Every outer IP fragment of an overlay datagram, in capture order."""
        return self.outer_fragments

    def icmp_errors(self, kind: str | None = None) -> tuple[IcmpError, ...]:
        """ICMP errors about overlay datagrams (of one kind, e.g. "port-unreachable"), in capture order."""
        return tuple(e for e in self.errors if kind is None or e.kind == kind)

    def malformed(self) -> OverlayFrames:
        return OverlayFrames((f for f in self.overlay if f.malformed), self.start)

    def describe(self) -> str:
        """One line per overlay frame and per ICMP error about one, in capture order."""
        events = sorted([*self.overlay, *self.errors], key=lambda e: e.number)
        lines = [e.describe(self.start) for e in events] or ["no overlay frames on the wire"]
        if self.outer_fragments:
            lines.append(f"{len(self.outer_fragments)} outer IP fragment(s) of overlay datagrams")
        return "\n".join(lines)


# --- decoding ---------------------------------------------------------------------------------------------------

class _Malformed(Exception):
    """The bytes contradict themselves (a length overruns the data) or stop short of a header."""


def decode_vxlan(data: bytes) -> VxlanHeader:
    if len(data) < VXLAN_HEADER.size:
        raise _Malformed(f"VXLAN header cut short ({len(data)} of {VXLAN_HEADER.size} bytes)")
    flags, reserved24, word = VXLAN_HEADER.unpack_from(data)
    return VxlanHeader(flags, int.from_bytes(reserved24, "big"), word >> 8, word & 0xFF)


def decode_geneve(data: bytes) -> tuple[GeneveHeader, int]:
    """The header and its length with the options (where the inner frame starts)."""
    if len(data) < GENEVE_HEADER.size:
        raise _Malformed(f"Geneve header cut short ({len(data)} of {GENEVE_HEADER.size} bytes)")
    first, second, protocol, word = GENEVE_HEADER.unpack_from(data)
    options_length = (first & 0x3F) * 4
    end = GENEVE_HEADER.size + options_length
    header = GeneveHeader(version=first >> 6, o_bit=bool(second & GENEVE_O_BIT), c_bit=bool(second & GENEVE_C_BIT),
                          reserved6=second & 0x3F, protocol=protocol, vni=word >> 8, reserved8=word & 0xFF)
    if end > len(data):
        raise _Partial(header, f"Geneve options claim {options_length} bytes, "
                               f"{len(data) - GENEVE_HEADER.size} on the wire")
    options = []
    offset = GENEVE_HEADER.size
    while offset < end:
        if offset + GENEVE_OPTION_HEADER.size > end:
            raise _Partial(header, "a Geneve option header runs past the options")
        cls, kind, length_byte = GENEVE_OPTION_HEADER.unpack_from(data, offset)
        data_end = offset + GENEVE_OPTION_HEADER.size + (length_byte & 0x1F) * 4
        if data_end > end:
            raise _Partial(header, f"Geneve option class=0x{cls:04x} type=0x{kind:02x} runs past the options")
        options.append(GeneveOption(cls, kind, bytes(data[offset + GENEVE_OPTION_HEADER.size:data_end]),
                                    reserved=length_byte >> 5))
        offset = data_end
    return replace(header, options=tuple(options)), end


class _Partial(_Malformed):
    """A Geneve header whose fixed part was read, but not its options."""

    def __init__(self, header: GeneveHeader, reason: str):
        super().__init__(reason)
        self.header = header


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def udp_checksum_status(src: str, dst: str, segment: bytes) -> str:
    """"zero", "correct", "offloaded" or "wrong" for a whole UDP datagram (header on) between src and dst."""
    checksum = struct.unpack_from("!H", segment, 6)[0]
    if checksum == 0:
        return "zero"
    if ":" in src:
        pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                  + struct.pack("!I3xB", len(segment), IPPROTO_UDP))
    else:
        pseudo = (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
                  + struct.pack("!xBH", IPPROTO_UDP, len(segment)))
    expected = (~_ones_complement_sum(pseudo + segment[:6] + b"\0\0" + segment[8:]) & 0xFFFF) or 0xFFFF
    if checksum == expected:
        return "correct"
    if checksum == _ones_complement_sum(pseudo):
        return "offloaded"
    return "wrong"


def decode_inner(data: bytes, protocol: int = ETHERNET_BRIDGING) -> tuple[InnerFrame, str | None]:
    """The inner frame's summary and, if it is cut short or undecodable, why. Never raises."""
    try:
        return _decode_inner(bytes(data), protocol)
    except Exception as exc:  # scapy on bytes it was never meant to see
        return InnerFrame(length=len(data)), f"inner frame undecodable ({type(exc).__name__})"


def _decode_inner(data: bytes, protocol: int) -> tuple[InnerFrame, str | None]:
    if protocol != ETHERNET_BRIDGING:  # Geneve may carry IP directly: no inner Ethernet header
        if protocol in (0x0800, 0x86DD):
            packet = (IP if protocol == 0x0800 else IPv6)(data) if data else None
            return _decode_ip(packet, InnerFrame(ethertype=protocol, length=len(data)))
        return InnerFrame(ethertype=protocol, length=len(data)), None
    if len(data) < ETHERNET_HEADER:
        return InnerFrame(length=len(data)), f"inner Ethernet header cut short ({len(data)} of {ETHERNET_HEADER} bytes)"
    frame = Ether(data)
    ethertype, vlan, payload = frame.type, None, frame.payload
    if isinstance(payload, Dot1Q):
        vlan, ethertype, payload = payload.vlan, payload.type, payload.payload
    inner = InnerFrame(src=frame.src.lower(), dst=frame.dst.lower(), ethertype=ethertype, vlan=vlan, length=len(data))
    if isinstance(payload, ARP):
        if len(captured(payload)) < 28:
            return inner, "inner ARP packet cut short"
        return replace(inner, arp=Arp(payload.op, str(payload.hwsrc).lower(), str(payload.psrc),
                                      str(payload.pdst))), None
    if isinstance(payload, (IP, IPv6)):
        return _decode_ip(payload, inner)
    if ethertype in (0x0800, 0x86DD, 0x0806):
        return inner, f"inner {ETHERTYPES[ethertype]} header cut short"
    return inner, None


def _decode_ip(packet: Packet | None, inner: InnerFrame) -> tuple[InnerFrame, str | None]:
    fields: dict = {}
    packet_bytes = captured(packet) if packet is not None else b""
    if isinstance(packet, IP) and len(packet_bytes) >= 20:
        fields["ip"] = InnerIp(4, packet.src, packet.dst, packet.proto, packet.len, df=bool(packet.flags.DF))
        have, want = len(packet_bytes), packet.len
    elif isinstance(packet, IPv6) and len(packet_bytes) >= 40:
        fields["ip"] = InnerIp(6, packet.src, packet.dst, packet.nh, packet.plen)
        have, want = len(packet_bytes) - 40, packet.plen
    else:
        return inner, "inner IP header cut short"
    upper = packet.payload
    if isinstance(upper, ICMP) and len(captured(upper)) >= 8:
        echo = upper.type in (0, 8)
        fields["icmp"] = Icmp(upper.type, upper.code, upper.id if echo else None, upper.seq if echo else None)
    elif isinstance(packet, IPv6) and packet.nh == 58 and len(captured(upper)) >= 8:
        raw = captured(upper)  # ICMPv6 echo: type, code, checksum, id, seq
        kind, code, _sum, ident, seq = struct.unpack_from("!BBHHH", raw)
        echo = kind in ICMPV6_ECHO
        fields["icmp"] = Icmp(kind, code, ident if echo else None, seq if echo else None)
    elif isinstance(upper, (UDP, TCP)) and len(captured(upper)) >= 4:
        fields["sport"], fields["dport"] = upper.sport, upper.dport
    problem = f"inner IPv{fields['ip'].version} packet cut short ({have} of {want} bytes)" if have < want else None
    return replace(inner, **fields), problem


def _port_map(extra: Iterable[int] | Mapping[int, str]) -> dict[int, str]:
    ports = {port: "vxlan" for port in VXLAN_PORTS} | {port: "geneve" for port in GENEVE_PORTS}
    if isinstance(extra, Mapping):
        for port, kind in extra.items():
            if kind not in ("vxlan", "geneve"):
                raise ValueError(f"encapsulation must be vxlan or geneve, not {kind!r}")
            ports[int(port)] = kind
    else:
        ports |= {int(port): "vxlan" for port in extra}
    return ports


@dataclass
class _Pieces:
    """The outer fragments of one IP datagram seen so far."""
    fragments: list[OuterFragment] = field(default_factory=list)
    data: dict[int, bytes] = field(default_factory=dict)   # by offset
    end: int | None = None
    df: bool | None = None

    def add(self, fragment: OuterFragment, data: bytes) -> bytes | None:
        """The whole datagram once the last missing piece arrives, else None."""
        self.fragments.append(fragment)
        self.data[fragment.offset] = data
        if not fragment.more:
            self.end = fragment.offset + len(data)
        if self.end is None:
            return None
        whole = bytearray()
        for start in sorted(self.data):
            if start > len(whole):
                return None
            whole[start:start + len(self.data[start])] = self.data[start]
        return bytes(whole[:self.end]) if len(whole) >= self.end else None


class _Reader:
    """Accumulates what one capture shows, frame by frame, in capture order."""

    def __init__(self, ports: Iterable[int] | Mapping[int, str] = ()) -> None:
        self.ports = _port_map(ports)
        self.frames: list[OverlayFrame] = []
        self.pieces: dict[tuple, _Pieces] = {}
        self.fragments: list[OuterFragment] = []
        self.errors: list[IcmpError] = []
        self.start: float | None = None

    def wire(self) -> Wire:
        for pieces in self.pieces.values():  # incomplete datagrams: what the first fragment shows, if ours
            first = pieces.data.get(0)
            if first is not None and self._encapsulation(first) is not None:
                head = pieces.fragments[[f.offset for f in pieces.fragments].index(0)]
                self.fragments += pieces.fragments
                self.frames.append(self._decode(head.number, head.time, head.src, head.dst, first, ip_id=head.ip_id,
                                                df=pieces.df, fragments=tuple(pieces.fragments),
                                                missing=True))
        frames = sorted((f for f in self.frames if f is not None), key=lambda f: f.number)
        return Wire(OverlayFrames(frames), tuple(sorted(self.fragments, key=lambda f: f.number)), tuple(self.errors),
                    self.start or 0.0)

    def read(self, path: str | os.PathLike) -> None:
        for number, frame in Frames(path):
            time = float(frame.time)
            if self.start is None:
                self.start = time
            try:
                self.add_frame(number, time, frame)
            except Exception as exc:  # one undecodable frame must not cost the rest of the capture
                self._add_undecodable(number, time, frame, exc)

    def add_frame(self, number: int, time: float, frame: Packet) -> None:
        ip = network_layer(frame)
        if isinstance(ip, IP):
            self._add_ipv4(number, time, ip)
        elif isinstance(ip, IPv6):
            self._add_ipv6(number, time, ip)

    def _add_ipv4(self, number: int, time: float, ip: IP) -> None:
        payload = captured(ip.payload)
        df = bool(ip.flags.DF)
        if ip.frag or ip.flags.MF:
            fragment = OuterFragment(number, time, ip.src, ip.dst, ip.id, ip.frag * 8, bool(ip.flags.MF), len(payload))
            self._add_fragment((4, ip.src, ip.dst, ip.id, ip.proto), fragment, payload, df, ip.proto)
            return
        if ip.proto == IPPROTO_UDP:
            self._add_udp(number, time, ip.src, ip.dst, payload, ip_id=ip.id, df=df)
        elif ip.proto == IPPROTO_ICMP:
            self._add_icmp_error(number, time, ip.src, ip.dst, 4, payload)

    def _add_ipv6(self, number: int, time: float, ip: IPv6) -> None:
        header = ip
        while isinstance(header.payload, IPV6_PASS_THROUGH_HEADERS):
            header = header.payload
        payload = header.payload
        if isinstance(payload, IPv6ExtHdrFragment):
            data = captured(payload.payload)
            fragment = OuterFragment(number, time, ip.src, ip.dst, payload.id, payload.offset * 8, bool(payload.m),
                                     len(data))
            self._add_fragment((6, ip.src, ip.dst, payload.id, payload.nh), fragment, data, None, payload.nh)
            return
        if header.nh == IPPROTO_UDP:
            self._add_udp(number, time, ip.src, ip.dst, captured(payload), ip_id=0, df=None)
        elif header.nh == IPPROTO_ICMPV6:
            self._add_icmp_error(number, time, ip.src, ip.dst, 6, captured(payload))

    def _add_icmp_error(self, number: int, time: float, src: str, dst: str, version: int, icmp: bytes) -> None:
        """An ICMP error quoting a UDP datagram to or from an overlay port (RFC 792, RFC 4443 3: the quote is
        the offending IP header and at least the next 8 bytes)."""
        if len(icmp) < 8 or icmp[0] not in ICMP_ERROR_TYPES[version]:
            return
        quote = icmp[8:]
        if version == 4:
            if len(quote) < 20 or quote[0] >> 4 != 4 or quote[9] != IPPROTO_UDP:
                return
            udp = quote[(quote[0] & 0x0F) * 4:]
        else:
            if len(quote) < 40 or quote[6] != IPPROTO_UDP:  # the quoted header's own next header
                return
            udp = quote[40:]
        kind = self._encapsulation(udp)
        if kind is None:
            return
        sport, dport = struct.unpack_from("!HH", udp)
        vni = None
        try:
            body = udp[UDP_HEADER.size:]
            vni = decode_vxlan(body).vni if kind == "vxlan" else decode_geneve(body)[0].vni
        except _Partial as exc:
            vni = exc.header.vni
        except _Malformed:
            pass
        self.errors.append(IcmpError(number, time, src, dst, version, icmp[0], icmp[1], sport, dport, kind, vni))

    def _add_fragment(self, key: tuple, fragment: OuterFragment, data: bytes, df: bool | None, proto: int) -> None:
        if proto != IPPROTO_UDP:
            return
        pieces = self.pieces.setdefault(key, _Pieces())
        if fragment.offset == 0:
            pieces.df = df
        whole = pieces.add(fragment, data)
        if whole is None:
            return
        del self.pieces[key]
        if self._encapsulation(whole) is None:
            return
        self.fragments += pieces.fragments
        head = next(f for f in pieces.fragments if f.offset == 0)
        self.frames.append(self._decode(fragment.number, head.time, fragment.src, fragment.dst, whole,
                                        ip_id=fragment.ip_id, df=pieces.df, fragments=tuple(pieces.fragments)))

    def _encapsulation(self, segment: bytes) -> str | None:
        """The overlay a UDP segment belongs to, by its ports (the receiver's port first)."""
        if len(segment) < 4:
            return None
        sport, dport = struct.unpack_from("!HH", segment)
        return self.ports.get(dport) or self.ports.get(sport)

    def _add_udp(self, number: int, time: float, src: str, dst: str, segment: bytes, *, ip_id: int,
                 df: bool | None) -> None:
        if self._encapsulation(segment) is not None:
            self.frames.append(self._decode(number, time, src, dst, segment, ip_id=ip_id, df=df))

    def _decode(self, number: int, time: float, src: str, dst: str, segment: bytes, *, ip_id: int,
                df: bool | None, fragments: tuple[OuterFragment, ...] = (), missing: bool = False) -> OverlayFrame:
        """One overlay datagram (UDP header on), whatever its bytes hold."""
        sport, dport = struct.unpack_from("!HH", segment)
        kind = self.ports.get(dport) or self.ports[sport]
        frame = OverlayFrame(number, time, src, dst, sport, dport, kind, ip_id=ip_id, df=df, fragments=fragments)
        if len(segment) < UDP_HEADER.size:
            return replace(frame, malformed=f"UDP header cut short ({len(segment)} of {UDP_HEADER.size} bytes)")
        udp_length, checksum = UDP_HEADER.unpack_from(segment)[2:]
        frame = replace(frame, udp_checksum=checksum)
        if missing:
            reason = "outer IP fragments missing: the datagram could not be reassembled"
        elif udp_length < UDP_HEADER.size:
            return replace(frame, malformed=f"UDP length {udp_length} is shorter than its header")
        else:
            reason = (f"UDP length {udp_length} with {len(segment)} bytes captured"
                      if udp_length > len(segment) else None)
            if reason is None:
                frame = replace(frame, udp_checksum_status=udp_checksum_status(src, dst, segment[:udp_length]))
            segment = segment[:udp_length]
        return self._decode_overlay(frame, segment[UDP_HEADER.size:], reason)

    def _decode_overlay(self, frame: OverlayFrame, body: bytes, reason: str | None) -> OverlayFrame:
        try:
            if frame.encapsulation == "vxlan":
                header, start, protocol = decode_vxlan(body), VXLAN_HEADER.size, ETHERNET_BRIDGING
            else:
                header, start = decode_geneve(body)
                protocol = header.protocol
        except _Partial as exc:
            return replace(frame, header=exc.header, malformed=_join(reason, str(exc)))
        except _Malformed as exc:
            return replace(frame, malformed=_join(reason, str(exc)))
        inner, problem = decode_inner(body[start:], protocol)
        return replace(frame, header=header, inner=inner, malformed=_join(reason, problem))

    def _add_undecodable(self, number: int, time: float, frame: Packet, exc: Exception) -> None:
        """A frame scapy could not take apart: kept only if it is plainly to or from an overlay port."""
        try:
            ip = network_layer(frame)
            segment = captured(ip.payload) if ip is not None else b""
        except Exception:
            return
        if ip is not None and self._encapsulation(segment) is not None:
            sport, dport = struct.unpack_from("!HH", segment)
            self.frames.append(OverlayFrame(number, time, ip.src, ip.dst, sport, dport,
                                            self.ports.get(dport) or self.ports[sport],
                                            malformed=f"undecodable ({type(exc).__name__})"))


def _join(*reasons: str | None) -> str | None:
    return "; ".join(r for r in reasons if r) or None
