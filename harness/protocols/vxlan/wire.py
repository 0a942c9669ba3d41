"""What the wire shows of a VXLAN (RFC 7348), VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe) or Geneve (RFC 8926)
overlay: every encapsulated frame, with its outer addressing, its encapsulation header bit by bit, and a summary
of the inner frame.

    wire = Wire.from_pcap(pcap)                         # UDP 4789 and 8472 (VXLAN), 4790 (GPE), 6081 (Geneve)
    assert wire.vnis() == (100,), wire.describe()
    requests = wire.echoes(vni=100).requests()
    assert all(f.reserved_clear for f in wire.frames()), wire.describe()
    assert not wire.fragments(), wire.describe()        # RFC 7348 4.3: VTEPs MUST NOT fragment

Interop failures are judged from the capture, not from either VTEP's own account: a VTEP that sends to 8472
while its peer listens on 4789 says nothing about it, but the wire shows frames that are never answered.

The capture reader (harness.packets) gives the outer IP datagrams, reassembled, and the dispatch table
(harness.protocols.dispatch) says which UDP datagrams are overlay traffic. The encapsulation headers and the
inner frame (Ethernet, 802.1Q, ARP, IPv4/IPv6, ICMP, the ports of UDP and TCP) are decoded with struct: scapy's
VXLAN layer binds ports, flags and the GBP/GPE extensions differently across versions, a reserved bit that scapy
folds into a named flag is exactly what a test must see, and a busy capture has thousands of frames.

Outer IP fragments of an overlay datagram are reassembled: the frame is decoded once, from the whole
datagram, and keeps the pieces it came in (`OverlayFrame.fragments`; `Wire.fragments()` lists them all).
A later fragment whose first fragment is not in the capture cannot be told from other traffic and is left
out. ICMP errors quoting an overlay datagram (port unreachable from a VTEP listening on another port) are
kept apart: `Wire.icmp_errors()`. Nothing here raises on what a capture holds: a frame that cannot be read
is kept with `malformed` set to the reason.
"""
from __future__ import annotations

import socket
import struct
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from harness.packets import Datagram, Datagrams
from harness.protocols.dispatch import DISPATCH, Dispatch
from harness.textfmt import endpoint, message_line

PROTOCOL = "vxlan"              # its rows in the dispatch table
VXLAN_PORTS = (4789, 8472)      # IANA (RFC 7348 5), and the Linux kernel's historical default
VXLAN_GPE_PORTS = (4790,)       # IANA (draft-ietf-nvo3-vxlan-gpe 3.3)
GENEVE_PORTS = (6081,)          # IANA (RFC 8926 3.3)
ENCAPSULATIONS = ("vxlan", "geneve", "vxlan-gpe")
IPPROTO_UDP = 17

UDP_HEADER = struct.Struct("!HHHH")             # sport, dport, length, checksum
VXLAN_HEADER = struct.Struct("!B3sI")           # flags, 24 reserved bits, VNI (24) + 8 reserved bits
VXLAN_GPE_HEADER = struct.Struct("!BHBI")       # flags, 16 reserved bits, next protocol, VNI (24) + 8 reserved
GENEVE_HEADER = struct.Struct("!BBHI")          # ver/opt len, O/C/reserved, protocol type, VNI + reserved
GENEVE_OPTION_HEADER = struct.Struct("!HBB")    # class, type, R bits/length (in 4-byte words)
VXLAN_I_FLAG = 0x08             # RFC 7348 5: "MUST be set to 1 for a valid VXLAN Network ID"
# draft-ietf-nvo3-vxlan-gpe 3.2: R R Ver(2) I P B O
GPE_VERSION, GPE_I, GPE_P, GPE_B, GPE_O, GPE_RESERVED = 0x30, 0x08, 0x04, 0x02, 0x01, 0xC0
# The IANA "VXLAN-GPE Next Protocol" registry (draft-ietf-nvo3-vxlan-gpe), with the ethertype decoded inside
GPE_NEXT_PROTOCOLS = {1: ("IPv4", 0x0800), 2: ("IPv6", 0x86DD), 3: ("Ethernet", 0x6558), 4: ("NSH", 0x894F),
                      5: ("MPLS", 0x8847)}
GENEVE_O_BIT, GENEVE_C_BIT = 0x80, 0x40
GENEVE_CRITICAL = 0x80          # the high bit of an option's type (RFC 8926 3.5.1)
ETHERNET_BRIDGING = 0x6558      # Geneve protocol type: an Ethernet frame follows (RFC 8926 3.4)
ETHERNET_HEADER = 14
VLAN_TAGS = (0x8100, 0x88A8)    # 802.1Q, 802.1ad (one tag is read; an inner one shows as its ethertype)

ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88CC: "LLDP",
              ETHERNET_BRIDGING: "Ethernet", 0x894F: "NSH", 0x8847: "MPLS"}
# RFC 8926 7.2: Geneve option classes; the names IANA's registry gives the ones assigned so far.
GENEVE_OPTION_CLASSES = {0x0100: "Linux", 0x0101: "Open vSwitch", 0x0102: "Open Virtual Networking (OVN)",
                         0x0103: "In-band Network Telemetry (INT)", 0x0104: "VMware"}
ARP_OPS = {1: "request", 2: "reply"}
ICMP_TYPES = {0: "echo-reply", 3: "dest-unreach", 5: "redirect", 8: "echo-request", 11: "time-exceeded"}
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
ICMPV6_ECHO = {128: "echo-request", 129: "echo-reply"}


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
class VxlanGpeHeader:
    """The 8 bytes of draft-ietf-nvo3-vxlan-gpe 3.2: flags (2 reserved R bits, Ver, and I, P, B, O), 16 reserved
    bits, Next Protocol (P set: what follows; clear: Ethernet, as in VXLAN), the VNI, and 8 reserved bits."""
    flags: int
    reserved16: int
    next_protocol: int
    vni: int
    reserved8: int

    @property
    def version(self) -> int:
        return (self.flags & GPE_VERSION) >> 4

    @property
    def i_flag(self) -> bool:
        return bool(self.flags & GPE_I)

    @property
    def p_flag(self) -> bool:
        return bool(self.flags & GPE_P)

    @property
    def b_flag(self) -> bool:
        """Ingress-replicated BUM traffic (broadcast, unknown unicast, multicast)."""
        return bool(self.flags & GPE_B)

    @property
    def o_flag(self) -> bool:
        """An OAM packet."""
        return bool(self.flags & GPE_O)

    @property
    def reserved_clear(self) -> bool:
        return not (self.flags & GPE_RESERVED or self.reserved16 or self.reserved8)

    @property
    def payload(self) -> tuple[str, int | None]:
        """(name, the ethertype it is decoded as) of what follows: Next Protocol with P set, else Ethernet."""
        if not self.p_flag:
            return "Ethernet", ETHERNET_BRIDGING
        return GPE_NEXT_PROTOCOLS.get(self.next_protocol, ("unassigned", None))

    def describe(self) -> str:
        bits = [name for flag, name in ((GPE_I, "I"), (GPE_P, "P"), (GPE_B, "B"), (GPE_O, "O")) if self.flags & flag]
        text = (f"VXLAN-GPE vni={self.vni} flags=0x{self.flags:02x} ({', '.join([f'ver {self.version}', *bits])})"
                f" next={self.payload[0]}")
        text += f" ({self.next_protocol})" if self.p_flag else " (P clear)"
        if not self.i_flag:
            text += " [I flag clear: VNI not valid]"
        if not self.reserved_clear:
            parts = [f"R flags 0x{self.flags & GPE_RESERVED:02x}" if self.flags & GPE_RESERVED else "",
                     f"16-bit 0x{self.reserved16:04x}" if self.reserved16 else "",
                     f"8-bit 0x{self.reserved8:02x}" if self.reserved8 else ""]
            text += f" [reserved bits set: {', '.join(p for p in parts if p)}]"
        return text


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
    encapsulation: str          # "vxlan", "vxlan-gpe" or "geneve", by the UDP port
    ip_id: int = 0              # outer IPv4 identification (IPv6: 0, or the fragment header's)
    df: bool | None = None      # outer IPv4 DF flag; None over IPv6
    udp_checksum: int = 0
    # "zero" (RFC 7348 5: SHOULD over IPv4), "correct", "offloaded" (the pseudo-header sum a sender with
    # checksum offload leaves for its NIC: what a capture on the sending node shows), "wrong", or
    # "unverified" (the datagram is not all in the capture).
    udp_checksum_status: str = "unverified"
    header: VxlanHeader | VxlanGpeHeader | GeneveHeader | None = None
    inner: InnerFrame | None = None
    fragments: tuple[OuterFragment, ...] = ()   # the pieces it arrived in, when the outer IP fragmented it
    malformed: str | None = None                # why (part of) it could not be read

    @property
    def vni(self) -> int | None:
        return None if self.header is None else self.header.vni

    @property
    def flags(self) -> int | None:
        """VXLAN, VXLAN-GPE: the flags byte. Geneve: the second header byte (O, C and the 6 reserved bits)."""
        if isinstance(self.header, (VxlanHeader, VxlanGpeHeader)):
            return self.header.flags
        if isinstance(self.header, GeneveHeader):
            return (GENEVE_O_BIT * self.header.o_bit) | (GENEVE_C_BIT * self.header.c_bit) | self.header.reserved6
        return None

    @property
    def i_flag(self) -> bool | None:
        return self.header.i_flag if isinstance(self.header, (VxlanHeader, VxlanGpeHeader)) else None

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
    def from_pcap(cls, path, ports: Iterable[int] | Mapping[int, str] = ()) -> Wire:
        """Never raises: a missing, empty or unreadable capture is an empty Wire. `path`: a capture file, "-", or a
        harness.packets.Capture already read. `ports` adds UDP ports to read as overlay traffic: port numbers
        (VXLAN), or {port: "vxlan" | "geneve" | "vxlan-gpe"}."""
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


def decode_vxlan_gpe(data: bytes) -> VxlanGpeHeader:
    if len(data) < VXLAN_GPE_HEADER.size:
        raise _Malformed(f"VXLAN-GPE header cut short ({len(data)} of {VXLAN_GPE_HEADER.size} bytes)")
    flags, reserved16, next_protocol, word = VXLAN_GPE_HEADER.unpack_from(data)
    return VxlanGpeHeader(flags, reserved16, next_protocol, word >> 8, word & 0xFF)


def decode_inner(data: bytes, protocol: int = ETHERNET_BRIDGING) -> tuple[InnerFrame, str | None]:
    """The inner frame's summary and, if it is cut short or undecodable, why. Never raises. `protocol`: what the
    encapsulation says follows, as an ethertype (0x6558: an Ethernet frame)."""
    try:
        return _decode_inner(bytes(data), protocol)
    except Exception as exc:  # a bug of ours on bytes nobody expected
        return InnerFrame(length=len(data)), f"inner frame undecodable ({type(exc).__name__})"


def _mac(data: bytes) -> str:
    return data.hex(":")


def _decode_inner(data: bytes, protocol: int) -> tuple[InnerFrame, str | None]:
    if protocol != ETHERNET_BRIDGING:  # Geneve and VXLAN-GPE may carry IP directly: no inner Ethernet header
        inner = InnerFrame(ethertype=protocol, length=len(data))
        if protocol in (0x0800, 0x86DD):
            return _decode_ip(data, inner, protocol)
        return inner, None
    if len(data) < ETHERNET_HEADER:
        return InnerFrame(length=len(data)), f"inner Ethernet header cut short ({len(data)} of {ETHERNET_HEADER} bytes)"
    ethertype, vlan, at = (data[12] << 8) | data[13], None, ETHERNET_HEADER
    if ethertype in VLAN_TAGS and len(data) >= at + 4:
        vlan, ethertype, at = ((data[at] << 8) | data[at + 1]) & 0x0FFF, (data[at + 2] << 8) | data[at + 3], at + 4
    inner = InnerFrame(src=_mac(data[6:12]), dst=_mac(data[0:6]), ethertype=ethertype, vlan=vlan, length=len(data))
    payload = data[at:]
    if ethertype == 0x0806 and payload:
        return _decode_arp(payload, inner)
    if ethertype in (0x0800, 0x86DD) and payload:
        return _decode_ip(payload, inner, ethertype)
    if ethertype in (0x0800, 0x86DD, 0x0806):
        return inner, f"inner {ETHERTYPES[ethertype]} header cut short"
    return inner, None


def _decode_arp(data: bytes, inner: InnerFrame) -> tuple[InnerFrame, str | None]:
    """RFC 826: hardware and protocol types and lengths, the operation, then the four addresses."""
    if len(data) < 8:
        return inner, "inner ARP header cut short"
    if len(data) < 28:
        return inner, "inner ARP packet cut short"
    hlen, plen, op = data[4], data[5], (data[6] << 8) | data[7]
    if (hlen, plen) != (6, 4):
        sha, spa, tpa = data[8:8 + hlen], data[8 + hlen:8 + hlen + plen], data[8 + 2 * hlen + plen:8 + 2 * (hlen + plen)]
        return replace(inner, arp=Arp(op, _mac(sha), spa.hex(), tpa.hex())), None
    return replace(inner, arp=Arp(op, _mac(data[8:14]), socket.inet_ntoa(data[14:18]),
                                  socket.inet_ntoa(data[24:28]))), None


def _decode_ip(data: bytes, inner: InnerFrame, ethertype: int) -> tuple[InnerFrame, str | None]:
    fields: dict = {}
    if ethertype == 0x0800 and len(data) >= 20:
        header = max((data[0] & 0x0F) * 4, 20)
        total, flags, proto = struct.unpack_from("!H2xH1xB", data, 2)
        fields["ip"] = InnerIp(4, socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), proto, total,
                               df=bool(flags & 0x4000))
        have, want = len(data), total
        upper = data[header:total] if not flags & 0x1FFF else b""   # a later fragment carries no header of its own
        icmpv6 = False
    elif ethertype == 0x86DD and len(data) >= 40:
        plen, proto = struct.unpack_from("!HB", data, 4)
        fields["ip"] = InnerIp(6, socket.inet_ntop(socket.AF_INET6, data[8:24]),
                               socket.inet_ntop(socket.AF_INET6, data[24:40]), proto, plen)
        have, want = len(data) - 40, plen
        upper = data[40:40 + plen]
        icmpv6 = proto == 58
    else:
        return inner, f"inner {ETHERTYPES[ethertype]} header cut short"
    proto = fields["ip"].proto
    if fields["ip"].version == 4 and proto == 1 and len(upper) >= 8:
        kind, code, _sum, ident, seq = struct.unpack_from("!BBHHH", upper)
        echo = kind in (0, 8)
        fields["icmp"] = Icmp(kind, code, ident if echo else None, seq if echo else None)
    elif icmpv6 and len(upper) >= 8:
        kind, code, _sum, ident, seq = struct.unpack_from("!BBHHH", upper)
        echo = kind in ICMPV6_ECHO
        fields["icmp"] = Icmp(kind, code, ident if echo else None, seq if echo else None)
    elif proto in (6, 17) and len(upper) >= 4:
        fields["sport"], fields["dport"] = struct.unpack_from("!HH", upper)
    problem = f"inner IPv{fields['ip'].version} packet cut short ({have} of {want} bytes)" if have < want else None
    return replace(inner, **fields), problem


def _port_map(extra: Iterable[int] | Mapping[int, str]) -> dict[int, str]:
    """Ports given for one capture: {port: encapsulation}; bare port numbers are VXLAN."""
    if isinstance(extra, Mapping):
        for port, kind in extra.items():
            if kind not in ENCAPSULATIONS:
                raise ValueError(f"encapsulation must be vxlan or geneve (or vxlan-gpe), not {kind!r}")
        return {int(port): kind for port, kind in extra.items()}
    return {int(port): "vxlan" for port in extra}


class _Reader:
    """Accumulates what one capture shows, datagram by datagram, in capture order."""

    def __init__(self, ports: Iterable[int] | Mapping[int, str] = ()) -> None:
        extra = _port_map(ports)
        self.dispatch: Dispatch = DISPATCH.with_ports(PROTOCOL, extra) if extra else DISPATCH
        self.frames: list[OverlayFrame] = []
        self.fragments: list[OuterFragment] = []
        self.errors: list[IcmpError] = []
        self.start: float | None = None

    def wire(self) -> Wire:
        frames = sorted(self.frames, key=lambda f: f.number)
        return Wire(OverlayFrames(frames), tuple(sorted(self.fragments, key=lambda f: f.number)), tuple(self.errors),
                    self.start or 0.0)

    def read(self, source) -> None:
        datagrams = Datagrams(source)
        for datagram in datagrams:
            if self.start is None:
                self.start = datagrams.start
            try:
                self.add(datagram)
            except Exception as exc:  # one undecodable datagram must not cost the rest of the capture
                self._add_undecodable(datagram, exc)
        if self.start is None:
            self.start = datagrams.start

    def add(self, datagram: Datagram) -> None:
        """One outer IP datagram: an overlay frame if the dispatch table gives it to this protocol, an ICMP error
        if it quotes one."""
        if datagram.proto == IPPROTO_UDP:
            kind = self._encapsulation(datagram.payload)
            if kind is not None:
                self._add_overlay(datagram, kind)
        elif datagram.complete and datagram.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            self._add_icmp_error(datagram.number, datagram.time, datagram.src, datagram.dst, datagram.version,
                                 datagram.payload)

    def _encapsulation(self, segment: bytes) -> str | None:
        """The overlay a UDP segment belongs to, by the dispatch table, or None when it is not this protocol's."""
        if len(segment) < 4:
            return None
        row = self.dispatch.claim(_Ports(struct.unpack_from("!HH", segment)))
        return row.format if row is not None and row.protocol == PROTOCOL else None

    def _add_overlay(self, datagram: Datagram, kind: str) -> None:
        df = datagram.df if datagram.version == 4 else None
        if not datagram.fragments:
            self._add_udp(datagram.number, datagram.time, datagram.src, datagram.dst, datagram.payload,
                          ip_id=datagram.ip_id, df=df)
            return
        pieces = tuple(OuterFragment(f.number, f.time, datagram.src, datagram.dst, datagram.ip_id, f.offset,
                                     f.more, f.length) for f in datagram.fragments)
        self.fragments += pieces
        head = next((f for f in pieces if f.offset == 0), None)
        time = head.time if head is not None else datagram.time
        self.frames.append(self._decode(datagram.number, time, datagram.src, datagram.dst, datagram.payload,
                                        kind, ip_id=datagram.ip_id, df=df, fragments=pieces,
                                        missing=not datagram.complete))

    def _add_udp(self, number: int, time: float, src: str, dst: str, segment: bytes, *, ip_id: int,
                 df: bool | None) -> None:
        """A UDP datagram that came whole, if it is overlay traffic."""
        kind = self._encapsulation(segment)
        if kind is not None:
            self.frames.append(self._decode(number, time, src, dst, segment, kind, ip_id=ip_id, df=df))

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
            vni = (decode_vxlan(body).vni if kind == "vxlan" else decode_vxlan_gpe(body).vni if kind == "vxlan-gpe"
                   else decode_geneve(body)[0].vni)
        except _Partial as exc:
            vni = exc.header.vni
        except _Malformed:
            pass
        self.errors.append(IcmpError(number, time, src, dst, version, icmp[0], icmp[1], sport, dport, kind, vni))

    def _decode(self, number: int, time: float, src: str, dst: str, segment: bytes, kind: str, *, ip_id: int,
                df: bool | None, fragments: tuple[OuterFragment, ...] = (), missing: bool = False) -> OverlayFrame:
        """One overlay datagram (UDP header on), whatever its bytes hold."""
        sport, dport = struct.unpack_from("!HH", segment)
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
            elif frame.encapsulation == "vxlan-gpe":
                header, start = decode_vxlan_gpe(body), VXLAN_GPE_HEADER.size
                protocol = header.payload[1]
            else:
                header, start = decode_geneve(body)
                protocol = header.protocol
        except _Partial as exc:
            return replace(frame, header=exc.header, malformed=_join(reason, str(exc)))
        except _Malformed as exc:
            return replace(frame, malformed=_join(reason, str(exc)))
        if protocol is None:  # a VXLAN-GPE next protocol no registry names
            return replace(frame, header=header, inner=InnerFrame(length=len(body) - start), malformed=reason)
        inner, problem = decode_inner(body[start:], protocol)
        return replace(frame, header=header, inner=inner, malformed=_join(reason, problem))

    def _add_undecodable(self, datagram: Datagram, exc: Exception) -> None:
        """A datagram our decoding failed on: kept, marked, if it is plainly overlay traffic."""
        kind = self._encapsulation(datagram.payload) if datagram.proto == IPPROTO_UDP else None
        if kind is not None:
            sport, dport = struct.unpack_from("!HH", datagram.payload)
            self.frames.append(OverlayFrame(datagram.number, datagram.time, datagram.src, datagram.dst, sport, dport,
                                            kind, malformed=f"undecodable ({type(exc).__name__})"))


class _Ports:
    """A UDP datagram as the dispatch table looks at it."""
    __slots__ = ("ports",)
    proto = IPPROTO_UDP

    def __init__(self, ports: tuple[int, int]):
        self.ports = ports


def _join(*reasons: str | None) -> str | None:
    return "; ".join(r for r in reasons if r) or None
