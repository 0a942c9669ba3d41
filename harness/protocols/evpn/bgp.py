"""BGP as BGP EVPN over VXLAN uses it: one scapy layer per wire structure, used to decode a capture (wire.py,
the transcript) and to build what the harness sends (a reference speaker's UPDATEs, the unit tests' bytes).

- Messages (RFC 4271 4): the 19-byte header, OPEN with its optional parameters and capabilities (RFC 5492;
  multiprotocol RFC 4760 8, four-octet AS RFC 6793), UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH (RFC 2918).
- Path attributes (RFC 4271 4.3): ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, MP_REACH_NLRI and MP_UNREACH_NLRI
  (RFC 4760 3, 4), EXTENDED COMMUNITIES (RFC 4360), PMSI tunnel (RFC 6514 5); any other stays an attribute with
  its bytes.
- EVPN NLRI (AFI 25, SAFI 70): route types 1-4 (RFC 7432 7), 5 (RFC 9136 3); route distinguishers of type 0, 1, 2
  (RFC 4364 4.2).
- Extended communities: route target (RFC 4360 4, RFC 5668 for four-octet AS), encapsulation (RFC 9012 4.1;
  tunnel type 8 = VXLAN), MAC mobility with its sticky flag (RFC 7432 7.7), default gateway (RFC 7432 7.8), router's
  MAC (RFC 9135 8.1), ESI label (RFC 7432 7.5).
- Labels are VNIs: RFC 8365 5.1.3 puts the 24-bit VNI in the 3-byte label field of route types 1, 2, 5 and of the
  PMSI tunnel attribute; `vni` reads all 24 bits. (Wireshark reads those bytes as a 20-bit MPLS label plus 4 bits:
  VNI 100 shows as 6 there.)

Why not scapy.contrib.bgp: it decodes MP_REACH NLRI for AFI 1 and 2 only (EVPN routes stay bytes), has no PMSI
tunnel attribute, keeps EVPN extended communities as opaque values, and reads AS numbers by a process-wide
setting (`bgp_module_conf.use_2_bytes_asn`) rather than by the session. The layers here follow its shape.

`decode(data)` never raises: a structure whose declared length does not fit what it must hold, or runs past its
container, is kept as bytes with a problem saying why (`problems(message)` lists them all, outermost first).
"""
from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterator

from scapy.fields import (ByteEnumField, ByteField, ConditionalField, FieldLenField, FlagsField, IntField, IPField,
                          MACField, MultipleTypeField, PacketListField, ShortEnumField, ShortField, StrField,
                          StrFixedLenField, StrLenField, ThreeBytesField, XByteField)
from scapy.packet import NoPayload, Packet, Padding, Raw

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE = 4096  # RFC 4271 4.1 (RFC 8654 raises it to 65535 where both sides agree)
PORT = 179

AFI_L2VPN, SAFI_EVPN = 25, 70
AFIS = {1: "IPv4", 2: "IPv6", 25: "L2VPN"}
SAFIS = {1: "unicast", 2: "multicast", 70: "EVPN", 128: "MPLS VPN"}

MESSAGE_TYPES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}
NOTIFICATION_CODES = {1: "Message Header Error", 2: "OPEN Message Error", 3: "UPDATE Message Error",
                      4: "Hold Timer Expired", 5: "Finite State Machine Error", 6: "Cease",
                      7: "ROUTE-REFRESH Message Error"}
# RFC 4271 6.3 (and 4.5): the subcodes of an UPDATE Message Error.
UPDATE_ERRORS = {1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute",
                 3: "Missing Well-known Attribute", 4: "Attribute Flags Error", 5: "Attribute Length Error",
                 6: "Invalid ORIGIN Attribute", 8: "Invalid NEXT_HOP Attribute", 9: "Optional Attribute Error",
                 10: "Invalid Network Field", 11: "Malformed AS_PATH"}
ATTRIBUTE_TYPES = {1: "ORIGIN", 2: "AS_PATH", 3: "NEXT_HOP", 4: "MULTI_EXIT_DISC", 5: "LOCAL_PREF",
                   6: "ATOMIC_AGGREGATE", 7: "AGGREGATOR", 8: "COMMUNITIES", 9: "ORIGINATOR_ID", 10: "CLUSTER_LIST",
                   14: "MP_REACH_NLRI", 15: "MP_UNREACH_NLRI", 16: "EXTENDED_COMMUNITIES", 17: "AS4_PATH",
                   22: "PMSI_TUNNEL", 32: "LARGE_COMMUNITY"}
ORIGINS = {0: "IGP", 1: "EGP", 2: "INCOMPLETE"}
ROUTE_TYPES = {1: "Ethernet A-D", 2: "MAC/IP", 3: "Inclusive Multicast", 4: "Ethernet Segment", 5: "IP Prefix"}
PMSI_TUNNEL_TYPES = {0: "no tunnel information", 1: "RSVP-TE P2MP", 2: "mLDP P2MP", 3: "PIM-SSM", 4: "PIM-SM",
                     5: "BIDIR-PIM", 6: "Ingress Replication", 7: "mLDP MP2MP"}
TUNNEL_TYPES = {8: "VXLAN", 9: "NVGRE", 10: "MPLS", 11: "MPLS in GRE", 12: "VXLAN GPE", 13: "MPLS in UDP",
                19: "Geneve"}
CAPABILITIES = {1: "multiprotocol", 2: "route refresh", 6: "extended message", 64: "graceful restart",
                65: "four-octet AS", 69: "ADD-PATH", 70: "enhanced route refresh", 71: "long-lived graceful restart",
                73: "FQDN", 128: "route refresh (pre-standard)"}
# Attribute flags (RFC 4271 4.3), high bit first as FlagsField lists them low bit first.
FLAG_NAMES = ["b0", "b1", "b2", "b3", "extended", "partial", "transitive", "optional"]
OPTIONAL, TRANSITIVE, EXTENDED = 0x80, 0x40, 0x10

# Extended community (type, subtype) -> name (RFC 4360 3, RFC 7153).
RT_SUBTYPE = 0x02
EXT_NAMES = {(0x00, 0x02): "route target", (0x01, 0x02): "route target", (0x02, 0x02): "route target",
             (0x00, 0x03): "route origin", (0x01, 0x03): "route origin", (0x02, 0x03): "route origin",
             (0x03, 0x0C): "encapsulation", (0x03, 0x0D): "default gateway", (0x06, 0x00): "MAC mobility",
             (0x06, 0x01): "ESI label", (0x06, 0x02): "ES-import route target", (0x06, 0x03): "router's MAC"}


def _ip_text(raw: bytes) -> str:
    if len(raw) in (4, 16):
        return str(ipaddress.ip_address(raw))
    return raw.hex() or "-"


# --- fields ------------------------------------------------------------------------------------------------------

class RdField(StrFixedLenField):
    """A route distinguisher (RFC 4364 4.2): 2 bytes of type, 6 of value; shown as "ASN:n" (type 0 and 2) or
    "IPv4:n" (type 1), as Wireshark and the daemons write it."""

    def __init__(self, name, default=b"\x00" * 8):
        super().__init__(name, default, 8)

    def i2repr(self, pkt, x):
        return rd_text(bytes(x or b""))


def rd_text(raw: bytes) -> str:
    if len(raw) != 8:
        return f"(damaged: {raw.hex()})"
    kind = struct.unpack("!H", raw[:2])[0]
    if kind == 0:
        asn, number = struct.unpack("!HI", raw[2:])
        return f"{asn}:{number}"
    if kind == 1:
        return f"{ipaddress.IPv4Address(raw[2:6])}:{struct.unpack('!H', raw[6:])[0]}"
    if kind == 2:
        asn, number = struct.unpack("!IH", raw[2:])
        return f"{asn}:{number}"
    return f"type {kind} {raw[2:].hex()}"


def rd(text: str, kind: int | None = None) -> bytes:
    """A route distinguisher from "ASN:n" or "IPv4:n": type 1 for an address, type 0 for an AS that fits in 16 bits
    (type 2 above it); `kind` forces a type (a speaker sending a type-2 RD for a small AS)."""
    admin, number = text.rsplit(":", 1)
    if "." in admin:
        kind = 1 if kind is None else kind
        return struct.pack("!H", kind) + ipaddress.IPv4Address(admin).packed + struct.pack("!H", int(number))
    asn = int(admin)
    kind = (0 if asn <= 0xFFFF else 2) if kind is None else kind
    if kind == 0:
        return struct.pack("!HHI", 0, asn, int(number))
    return struct.pack("!HIH", kind, asn, int(number))


class EsiField(StrFixedLenField):
    """The 10-byte Ethernet Segment Identifier (RFC 7432 5): "0" for the single-homed segment (all zeros)."""

    def __init__(self, name, default=b"\x00" * 10):
        super().__init__(name, default, 10)

    def i2repr(self, pkt, x):
        raw = bytes(x or b"")
        return "0" if not any(raw) else ":".join(f"{b:02x}" for b in raw)


class VniField(ThreeBytesField):
    """A label field read as a VNI: all 24 bits (RFC 8365 5.1.3), not a 20-bit MPLS label."""


class AddressField(StrLenField):
    """An IPv4 or IPv6 address whose size its container states (a next hop, a route's IP, a PMSI tunnel id)."""

    def i2repr(self, pkt, x):
        return _ip_text(bytes(x or b""))

    def any2i(self, pkt, x):
        if isinstance(x, str):
            return ipaddress.ip_address(x).packed
        return super().any2i(pkt, x)


class OctetsField(StrLenField):
    def i2repr(self, pkt, x):
        return bytes(x or b"").hex() or "(none)"


class RestField(StrField):
    """Every byte left in the structure's slice, as hex."""

    def i2repr(self, pkt, x):
        return bytes(x or b"").hex() or "(none)"


# --- the frame of every length-prefixed structure ------------------------------------------------------------------

class Structure(Packet):
    """A structure whose container slices it: what follows it belongs to the next one. `problem` is set where
    dissection had to fall back to bytes (see `decode`)."""
    problem: str | None = None

    def extract_padding(self, s: bytes):
        return b"", s

    def own_problems(self) -> list[str]:
        """What is wrong with this structure beyond what dissection fell back on (lengths that disagree)."""
        return []


@functools.lru_cache(maxsize=1024)
def _damaged(cls, problem: str):
    """A subclass of `cls` that holds bytes and says why (scapy's dispatch picks a class, not an instance: the
    problem is the class's; cached, so a capture full of one damage makes one class)."""
    return type(cls.__name__, (cls,), {"problem": problem})


# --- extended communities ----------------------------------------------------------------------------------------

EXT_CLASSES: dict[tuple[int, int], type] = {}


def _ext(*keys):
    def register(cls):
        for key in keys:
            EXT_CLASSES[key] = cls
        return cls
    return register


class ExtCommunity(Structure):
    """One 8-byte extended community (RFC 4360 2): type, sub-type, 6 bytes of value."""
    name = "extended community"
    fields_desc = [XByteField("type", 0), XByteField("subtype", 0), OctetsField("value", b"\x00" * 6,
                                                                                   length_from=lambda p: 6)]

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt and len(_pkt) >= 8:
            return EXT_CLASSES.get((_pkt[0] & 0xBF, _pkt[1]), cls)  # 0x40 is the non-transitive bit
        return cls

    @property
    def kind(self) -> str:
        return EXT_NAMES.get((self.type & 0xBF, self.subtype), f"type 0x{self.type:02x}/0x{self.subtype:02x}")

    def text(self) -> str:
        return f"{self.kind} {bytes(self.value).hex()}"


@_ext((0x00, 0x02), (0x00, 0x03))
class ExtTwoOctetAs(ExtCommunity):
    fields_desc = [XByteField("type", 0x00), XByteField("subtype", RT_SUBTYPE), ShortField("asn", 0),
                   IntField("number", 0)]

    def text(self) -> str:
        return f"{self.kind} {self.asn}:{self.number}"


@_ext((0x01, 0x02), (0x01, 0x03))
class ExtIpv4(ExtCommunity):
    fields_desc = [XByteField("type", 0x01), XByteField("subtype", RT_SUBTYPE), IPField("address", "0.0.0.0"),
                   ShortField("number", 0)]

    def text(self) -> str:
        return f"{self.kind} {self.address}:{self.number}"


@_ext((0x02, 0x02), (0x02, 0x03))
class ExtFourOctetAs(ExtCommunity):
    fields_desc = [XByteField("type", 0x02), XByteField("subtype", RT_SUBTYPE), IntField("asn", 0),
                   ShortField("number", 0)]

    def text(self) -> str:
        return f"{self.kind} {self.asn}:{self.number}"


@_ext((0x03, 0x0C))
class ExtEncapsulation(ExtCommunity):
    """RFC 9012 4.1 (was RFC 5512 4.5): the tunnel type; 8 is VXLAN (RFC 8365 5.1.3)."""
    fields_desc = [XByteField("type", 0x03), XByteField("subtype", 0x0C), IntField("reserved", 0),
                   ShortEnumField("tunnel_type", 8, TUNNEL_TYPES)]

    def text(self) -> str:
        return f"encapsulation {TUNNEL_TYPES.get(self.tunnel_type, self.tunnel_type)}"


@_ext((0x03, 0x0D))
class ExtDefaultGateway(ExtCommunity):
    fields_desc = [XByteField("type", 0x03), XByteField("subtype", 0x0D), OctetsField("value", b"\x00" * 6,
                                                                                         length_from=lambda p: 6)]

    def text(self) -> str:
        return "default gateway"


@_ext((0x06, 0x00))
class ExtMacMobility(ExtCommunity):
    """RFC 7432 7.7: flags (low bit: sticky/static), a reserved byte, the 32-bit sequence number."""
    fields_desc = [XByteField("type", 0x06), XByteField("subtype", 0x00), FlagsField("flags", 0, 8, ["sticky"]),
                   ByteField("reserved", 0), IntField("sequence", 0)]

    @property
    def sticky(self) -> bool:
        return bool(int(self.flags) & 1)

    def text(self) -> str:
        return f"MAC mobility seq {self.sequence}" + (" sticky" if self.sticky else "")


@_ext((0x06, 0x01))
class ExtEsiLabel(ExtCommunity):
    fields_desc = [XByteField("type", 0x06), XByteField("subtype", 0x01), FlagsField("flags", 0, 8, ["single-active"]),
                   ShortField("reserved", 0), VniField("label", 0)]

    def text(self) -> str:
        return f"ESI label {self.label}"


@_ext((0x06, 0x03))
class ExtRouterMac(ExtCommunity):
    fields_desc = [XByteField("type", 0x06), XByteField("subtype", 0x03), MACField("mac", "00:00:00:00:00:00")]

    def text(self) -> str:
        return f"router's MAC {self.mac}"


def route_target(text: str) -> ExtCommunity:
    """A route target from "ASN:n" or "IPv4:n" (RFC 4360 4; four-octet AS, RFC 5668, above 65535)."""
    admin, number = text.rsplit(":", 1)
    if "." in admin:
        return ExtIpv4(address=admin, number=int(number))
    if int(admin) > 0xFFFF:
        return ExtFourOctetAs(asn=int(admin), number=int(number))
    return ExtTwoOctetAs(asn=int(admin), number=int(number))


# --- EVPN routes (the NLRI of AFI 25 / SAFI 70) --------------------------------------------------------------------

ROUTE_CLASSES: dict[int, type] = {}


def _route(route_type: int, *sizes: int):
    """Registers a route type's layer and the lengths (bytes after the type and length) it can have."""
    def register(cls):
        cls.sizes = sizes
        ROUTE_CLASSES[route_type] = cls
        return cls
    return register


def _route_header(route_type: int) -> list:
    return [ByteEnumField("route_type", route_type, ROUTE_TYPES), ByteField("length", None)]


def _ip_len(name: str, what: str):
    """A length in bits before an address of that many bits (0, 32 or 128)."""
    return FieldLenField(name, None, length_of=what, fmt="B", adjust=lambda pkt, x: x * 8)


class EvpnRoute(Structure):
    """An EVPN route (RFC 7432 7): type, length, value. A type no layer knows, or a length its type cannot have,
    stays one of these with the value as bytes."""
    name = "EVPN route"
    fields_desc = _route_header(0) + [OctetsField("value", b"", length_from=lambda p: p.length)]
    sizes: tuple[int, ...] = ()

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt is None:  # building: the class asked for
            return cls
        if len(_pkt) < 2:
            return _damaged(EvpnRouteBytes, "an EVPN route cut short before its length")
        route_type, length = _pkt[0], _pkt[1]
        if length > len(_pkt) - 2:
            return _damaged(EvpnRouteBytes, f"route type {route_type}: length {length} runs past the NLRI "
                                            f"({len(_pkt) - 2} bytes left)")
        typed = ROUTE_CLASSES.get(route_type)
        if typed is None:
            return cls
        if length not in typed.sizes:
            return _damaged(cls, f"route type {route_type} ({ROUTE_TYPES[route_type]}): length {length} is none "
                                 f"it can have ({', '.join(map(str, typed.sizes))})")
        misfit = typed.misfit(_pkt[2:2 + length])
        return _damaged(cls, f"route type {route_type} ({ROUTE_TYPES[route_type]}): {misfit}") if misfit else typed

    # Where the route states an IP length in bits (types 2, 3, 4): its offset in the value, and the value's length
    # without the address (type 2: with one label; a second may follow).
    route_type_code = 0
    ip_len_at: int | None = None
    base_len = 0
    labels: tuple[int, ...] = (0,)

    @classmethod
    def misfit(cls, value: bytes) -> str | None:
        """Why a value of a legal length still cannot be this route (its IP length disagrees), or None."""
        if cls.ip_len_at is None:
            return None
        bits = value[cls.ip_len_at]
        allowed = (0, 32, 128) if cls.route_type_code == 2 else (32, 128)
        if bits not in allowed:
            return f"IP length {bits} bits (RFC 7432 7: {', '.join(map(str, allowed))})"
        if len(value) not in (cls.base_len + bits // 8 + extra for extra in cls.labels):
            return f"IP length {bits} bits does not fit a route length of {len(value)}"
        if cls.route_type_code == 2 and value[22] != 48:
            return f"MAC length {value[22]} bits (RFC 7432 7.2: 48)"
        return None

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:1] + bytes([len(pkt) - 2]) + pkt[2:]
        return pkt + pay

    @property
    def type_name(self) -> str:
        return ROUTE_TYPES.get(self.route_type, f"type {self.route_type}")

    def text(self) -> str:
        text = f"type {self.route_type} ({self.type_name})"
        if self.problem:
            return f"{text} DAMAGED: {self.problem}; bytes {bytes(self.value).hex()}"
        return f"{text} {bytes(self.value).hex()}"

    def key(self) -> tuple:
        """What identifies the route in a withdrawal: its type and bytes."""
        return (self.route_type, bytes(self)[2:])


class EvpnRouteBytes(EvpnRoute):
    """What is left of an NLRI that cannot hold a whole route."""
    fields_desc = [RestField("value", b"")]
    route_type = None

    def text(self) -> str:
        return f"DAMAGED: {self.problem}; bytes {bytes(self.value).hex()}"


def _rd_text(route) -> str:
    return rd_text(bytes(route.rd))


@_route(1, 25)
class EvpnEthernetAd(EvpnRoute):
    """RFC 7432 7.1: RD, ESI, Ethernet tag, MPLS label (a VNI over VXLAN)."""
    fields_desc = _route_header(1) + [RdField("rd"), EsiField("esi"), IntField("ethernet_tag", 0), VniField("vni", 0)]

    def text(self) -> str:
        return (f"type 1 (Ethernet A-D) rd {_rd_text(self)} esi {self.get_field('esi').i2repr(self, self.esi)} "
                f"tag {self.ethernet_tag} vni {self.vni}")


def _mac_ip_sizes() -> tuple[int, ...]:
    return tuple(sorted(8 + 10 + 4 + 1 + 6 + 1 + ip + label for ip in (0, 4, 16) for label in (3, 6)))


@_route(2, *_mac_ip_sizes())
class EvpnMacIp(EvpnRoute):
    """RFC 7432 7.2: RD, ESI, Ethernet tag, MAC, optional IP, label 1 (the L2 VNI), optional label 2 (the L3 VNI,
    RFC 9135 8.1)."""
    route_type_code, ip_len_at, base_len, labels = 2, 29, 8 + 10 + 4 + 1 + 6 + 1 + 3, (0, 3)
    fields_desc = _route_header(2) + [
        RdField("rd"), EsiField("esi"), IntField("ethernet_tag", 0),
        ByteField("mac_len", 48), MACField("mac", "00:00:00:00:00:00"),
        _ip_len("ip_len", "ip"), AddressField("ip", b"", length_from=lambda p: p.ip_len // 8),
        VniField("vni", 0),
        ConditionalField(VniField("vni2", 0), lambda p: p._second_label())]

    def _second_label(self) -> bool:
        if self.length is None:  # building: a second label only when one was given
            return "vni2" in self.fields
        return self.length - (8 + 10 + 4 + 1 + 6 + 1 + (self.ip_len or 0) // 8 + 3) >= 3

    @property
    def ip_text(self) -> str | None:
        return _ip_text(bytes(self.ip)) if self.ip else None

    def text(self) -> str:
        parts = [f"type 2 (MAC/IP) rd {_rd_text(self)}"]
        if any(bytes(self.esi)):
            parts.append(f"esi {self.get_field('esi').i2repr(self, self.esi)}")
        if self.ethernet_tag:
            parts.append(f"tag {self.ethernet_tag}")
        parts.append(f"mac {self.mac}")
        if self.ip:
            parts.append(f"ip {self.ip_text}")
        parts.append(f"vni {self.vni}")
        if self.getfieldval("vni2") is not None and self._second_label():
            parts.append(f"l3vni {self.vni2}")
        return " ".join(parts)

    def key(self) -> tuple:
        # RFC 7432 7.2: the labels and the ESI are not part of the route key
        return (2, bytes(self.rd), self.ethernet_tag, str(self.mac).lower(), self.ip_text)


@_route(3, 17, 29)
class EvpnInclusiveMulticast(EvpnRoute):
    """RFC 7432 7.3: RD, Ethernet tag, the originating router's IP (its VTEP address over VXLAN)."""
    route_type_code, ip_len_at, base_len = 3, 12, 8 + 4 + 1
    fields_desc = _route_header(3) + [RdField("rd"), IntField("ethernet_tag", 0), _ip_len("ip_len", "ip"),
                                      AddressField("ip", b"", length_from=lambda p: p.ip_len // 8)]

    @property
    def ip_text(self) -> str:
        return _ip_text(bytes(self.ip))

    def text(self) -> str:
        tag = f" tag {self.ethernet_tag}" if self.ethernet_tag else ""
        return f"type 3 (Inclusive Multicast) rd {_rd_text(self)}{tag} originator {self.ip_text}"

    def key(self) -> tuple:
        return (3, bytes(self.rd), self.ethernet_tag, self.ip_text)


@_route(4, 23, 35)
class EvpnEthernetSegment(EvpnRoute):
    """RFC 7432 7.4: RD, ESI, the originating router's IP."""
    route_type_code, ip_len_at, base_len = 4, 18, 8 + 10 + 1
    fields_desc = _route_header(4) + [RdField("rd"), EsiField("esi"), _ip_len("ip_len", "ip"),
                                      AddressField("ip", b"", length_from=lambda p: p.ip_len // 8)]

    @property
    def ip_text(self) -> str:
        return _ip_text(bytes(self.ip))

    def text(self) -> str:
        return (f"type 4 (Ethernet Segment) rd {_rd_text(self)} esi {self.get_field('esi').i2repr(self, self.esi)} "
                f"originator {self.ip_text}")


@_route(5, 34, 58)
class EvpnIpPrefix(EvpnRoute):
    """RFC 9136 3.1: RD, ESI, Ethernet tag, prefix length, prefix, gateway IP (both IPv4 in a 34-byte route, IPv6
    in a 58-byte one), label (the L3 VNI)."""
    fields_desc = _route_header(5) + [
        RdField("rd"), EsiField("esi"), IntField("ethernet_tag", 0), ByteField("prefix_len", 0),
        AddressField("prefix", b"\x00" * 4, length_from=lambda p: p._address_len()),
        AddressField("gateway", b"\x00" * 4, length_from=lambda p: p._address_len()),
        VniField("vni", 0)]

    def _address_len(self) -> int:
        if self.length is None:
            return len(bytes(self.prefix))
        return 4 if self.length == 34 else 16

    @property
    def prefix_text(self) -> str:
        return f"{_ip_text(bytes(self.prefix))}/{self.prefix_len}"

    def text(self) -> str:
        gateway = bytes(self.gateway)
        via = f" gateway {_ip_text(gateway)}" if any(gateway) else ""
        return f"type 5 (IP Prefix) rd {_rd_text(self)} prefix {self.prefix_text}{via} vni {self.vni}"

    def key(self) -> tuple:
        return (5, bytes(self.rd), self.ethernet_tag, self.prefix_text)


# --- path attributes ---------------------------------------------------------------------------------------------

ATTRIBUTE_CLASSES: dict[int, type] = {}


def _attribute(type_code: int, *, sizes: tuple[int, ...] | None = None):
    def register(cls):
        cls.sizes = sizes
        ATTRIBUTE_CLASSES[type_code] = cls
        return cls
    return register


def _attribute_header(type_code: int, flags: int) -> list:
    return [FlagsField("flags", flags, 8, FLAG_NAMES), ByteEnumField("type_code", type_code, ATTRIBUTE_TYPES),
            MultipleTypeField([(ShortField("length", None), lambda p: bool(int(p.flags) & EXTENDED))],
                              ByteField("length", None))]


def _value_len(skip: int = 0):
    return lambda p: None if p.length is None else max(p.length - skip, 0)


class PathAttribute(Structure):
    """A path attribute (RFC 4271 4.3): flags, type code, a 1-byte length (2 bytes with the extended-length flag),
    the value. A type no layer knows, or a length its layer cannot take, stays one of these with its bytes."""
    name = "path attribute"
    fields_desc = _attribute_header(0, OPTIONAL | TRANSITIVE) + [OctetsField("value", b"", length_from=_value_len())]
    sizes: tuple[int, ...] | None = None

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt is None:  # building: the class asked for
            return cls
        if len(_pkt) < 3:
            return _damaged(AttributeBytes, "a path attribute cut short before its length")
        header = 4 if _pkt[0] & EXTENDED else 3
        if len(_pkt) < header:
            return _damaged(AttributeBytes, "a path attribute cut short in its length")
        length = struct.unpack("!H", _pkt[2:4])[0] if header == 4 else _pkt[2]
        name = ATTRIBUTE_TYPES.get(_pkt[1], f"attribute {_pkt[1]}")
        if length > len(_pkt) - header:
            return _damaged(AttributeBytes, f"{name}: length {length} runs past the attributes "
                                            f"({len(_pkt) - header} bytes left)")
        typed = ATTRIBUTE_CLASSES.get(_pkt[1])
        if typed is None:
            return cls
        if typed.sizes is not None and length not in typed.sizes:
            return _damaged(cls, f"{name}: length {length} is none it can have ({', '.join(map(str, typed.sizes))})")
        return typed.fit(_pkt[header:header + length]) or typed

    @classmethod
    def fit(cls, value: bytes):
        """A damaged stand-in when `value` cannot hold this attribute's structure, else None."""
        return None

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            header = 4 if int(self.flags) & EXTENDED else 3
            size = len(pkt) - header
            if header == 3 and size > 255:
                raise ValueError(f"{self.type_name}: {size} bytes need the extended-length flag")
            pkt = pkt[:2] + (struct.pack("!H", size) if header == 4 else bytes([size])) + pkt[header:]
        return pkt + pay

    @property
    def type_name(self) -> str:
        return ATTRIBUTE_TYPES.get(self.type_code, f"attribute {self.type_code}")

    def text(self) -> str:
        if self.problem:
            return f"{self.type_name} DAMAGED: {self.problem}; bytes {bytes(self.value).hex()}"
        return f"{self.type_name} {bytes(self.value).hex()}"


class AttributeBytes(PathAttribute):
    """What is left of a path attribute list that cannot hold a whole attribute."""
    fields_desc = [RestField("value", b"")]
    type_code = None

    @property
    def type_name(self) -> str:
        return "path attribute"


@_attribute(1, sizes=(1,))
class Origin(PathAttribute):
    fields_desc = _attribute_header(1, TRANSITIVE) + [ByteEnumField("origin", 0, ORIGINS)]

    def text(self) -> str:
        return f"ORIGIN {ORIGINS.get(self.origin, self.origin)}"


class AsPath(PathAttribute):
    """RFC 4271 4.3 with four-octet AS numbers (RFC 6793: both speakers here announce the capability); a path
    whose segments do not fit four-octet numbers is shown as bytes."""

    def text(self) -> str:
        raw, segments = bytes(self.value), []
        while len(raw) >= 2:
            kind, count = raw[0], raw[1]
            body, raw = raw[2:2 + 4 * count], raw[2 + 4 * count:]
            if len(body) != 4 * count:
                return f"AS_PATH {bytes(self.value).hex()}"
            numbers = " ".join(str(n) for n in struct.unpack(f"!{count}I", body))
            segments.append(f"{{{numbers}}}" if kind == 1 else numbers)
        return f"AS_PATH {' '.join(segments) or '(empty)'}"


ATTRIBUTE_CLASSES[2] = AsPath


@_attribute(3, sizes=(4,))
class NextHop(PathAttribute):
    fields_desc = _attribute_header(3, TRANSITIVE) + [IPField("next_hop", "0.0.0.0")]

    def text(self) -> str:
        return f"NEXT_HOP {self.next_hop}"


@_attribute(4, sizes=(4,))
class MultiExitDisc(PathAttribute):
    fields_desc = _attribute_header(4, OPTIONAL) + [IntField("med", 0)]

    def text(self) -> str:
        return f"MED {self.med}"


@_attribute(5, sizes=(4,))
class LocalPref(PathAttribute):
    fields_desc = _attribute_header(5, TRANSITIVE) + [IntField("local_pref", 100)]

    def text(self) -> str:
        return f"LOCAL_PREF {self.local_pref}"


def _routes_field(name: str, skip) -> PacketListField:
    return PacketListField(name, [], EvpnRoute, length_from=skip)


def _nlri_len(p) -> int | None:
    if p.length is None:
        return None
    return max(p.length - 5 - (p.nh_len or 0), 0)


@_attribute(14)
class MpReach(PathAttribute):
    """RFC 4760 3: AFI, SAFI, next hop, a reserved byte, NLRI (EVPN routes for AFI 25 / SAFI 70, else bytes)."""
    fields_desc = _attribute_header(14, OPTIONAL) + [
        ShortEnumField("afi", AFI_L2VPN, AFIS), ByteEnumField("safi", SAFI_EVPN, SAFIS),
        FieldLenField("nh_len", None, length_of="next_hop", fmt="B"),
        AddressField("next_hop", b"", length_from=lambda p: p.nh_len), ByteField("reserved", 0),
        ConditionalField(_routes_field("routes", _nlri_len), lambda p: p.evpn),
        ConditionalField(OctetsField("nlri", b"", length_from=_nlri_len), lambda p: not p.evpn)]

    @property
    def evpn(self) -> bool:
        return (self.afi, self.safi) == (AFI_L2VPN, SAFI_EVPN)

    @classmethod
    def fit(cls, value: bytes):
        if len(value) < 5 or len(value) < 5 + value[3]:
            return _damaged(PathAttribute, f"MP_REACH_NLRI: {len(value)} bytes cannot hold AFI, SAFI and a next hop "
                                           f"of {value[3] if len(value) > 3 else '?'} bytes")
        return None

    def text(self) -> str:
        family = f"{AFIS.get(self.afi, self.afi)}/{SAFIS.get(self.safi, self.safi)}"
        return f"MP_REACH_NLRI {family} next hop {_ip_text(bytes(self.next_hop))}"


@_attribute(15)
class MpUnreach(PathAttribute):
    """RFC 4760 4: AFI, SAFI, the withdrawn routes."""
    fields_desc = _attribute_header(15, OPTIONAL) + [
        ShortEnumField("afi", AFI_L2VPN, AFIS), ByteEnumField("safi", SAFI_EVPN, SAFIS),
        ConditionalField(_routes_field("routes", _value_len(3)), lambda p: p.evpn),
        ConditionalField(OctetsField("nlri", b"", length_from=_value_len(3)), lambda p: not p.evpn)]

    evpn = MpReach.evpn

    @classmethod
    def fit(cls, value: bytes):
        if len(value) < 3:
            return _damaged(PathAttribute, f"MP_UNREACH_NLRI: {len(value)} bytes cannot hold AFI and SAFI")
        return None

    def text(self) -> str:
        return f"MP_UNREACH_NLRI {AFIS.get(self.afi, self.afi)}/{SAFIS.get(self.safi, self.safi)}"


@_attribute(16)
class ExtCommunities(PathAttribute):
    """RFC 4360 2: a list of 8-byte communities."""
    fields_desc = _attribute_header(16, OPTIONAL | TRANSITIVE) + [
        PacketListField("communities", [], ExtCommunity, length_from=_value_len())]

    @classmethod
    def fit(cls, value: bytes):
        if len(value) % 8:
            return _damaged(PathAttribute, f"EXTENDED_COMMUNITIES: length {len(value)} is not a multiple of 8")
        return None

    def text(self) -> str:
        return "EXTENDED_COMMUNITIES " + (", ".join(c.text() for c in _only(self.communities, ExtCommunity))
                                          or "(none)")


@_attribute(22)
class PmsiTunnel(PathAttribute):
    """RFC 6514 5: flags, tunnel type (6 = ingress replication, RFC 8365 9), label (the VNI, RFC 8365 5.1.3),
    tunnel identifier (for ingress replication: the VTEP's address)."""
    fields_desc = _attribute_header(22, OPTIONAL | TRANSITIVE) + [
        FlagsField("pmsi_flags", 0, 8, ["leaf info required"]), ByteEnumField("tunnel_type", 6, PMSI_TUNNEL_TYPES),
        VniField("vni", 0), AddressField("tunnel_id", b"", length_from=_value_len(5))]

    @classmethod
    def fit(cls, value: bytes):
        if len(value) < 5:
            return _damaged(PathAttribute, f"PMSI_TUNNEL: length {len(value)} cannot hold flags, type and label")
        return None

    def text(self) -> str:
        kind = PMSI_TUNNEL_TYPES.get(self.tunnel_type, f"type {self.tunnel_type}")
        return f"PMSI_TUNNEL {kind} vni {self.vni} endpoint {_ip_text(bytes(self.tunnel_id))}"


# --- OPEN's optional parameters and capabilities -----------------------------------------------------------------

class Capability(Structure):
    """RFC 5492 4: code, length, value."""
    name = "capability"
    fields_desc = [ByteEnumField("code", 0, CAPABILITIES), FieldLenField("length", None, length_of="value", fmt="B"),
                   OctetsField("value", b"", length_from=lambda p: p.length)]

    def text(self) -> str:
        raw = bytes(self.value)
        if self.code == 1 and len(raw) == 4:
            afi, safi = struct.unpack("!H", raw[:2])[0], raw[3]
            return f"multiprotocol {AFIS.get(afi, afi)}/{SAFIS.get(safi, safi)}"
        if self.code == 65 and len(raw) == 4:
            return f"four-octet AS {struct.unpack('!I', raw)[0]}"
        return CAPABILITIES.get(self.code, f"capability {self.code}")


class OptionalParameter(Structure):
    """RFC 4271 4.2: type (2 = capabilities, RFC 5492), length, value."""
    name = "optional parameter"
    fields_desc = [ByteField("type", 2), FieldLenField("length", None, length_of="capabilities", fmt="B"),
                   ConditionalField(PacketListField("capabilities", [], Capability, length_from=lambda p: p.length),
                                    lambda p: p.type == 2),
                   ConditionalField(OctetsField("value", b"", length_from=lambda p: p.length), lambda p: p.type != 2)]


def multiprotocol(afi: int = AFI_L2VPN, safi: int = SAFI_EVPN) -> Capability:
    return Capability(code=1, value=struct.pack("!HBB", afi, 0, safi))


def four_octet_as(asn: int) -> Capability:
    return Capability(code=65, value=struct.pack("!I", asn))


# --- messages ----------------------------------------------------------------------------------------------------

BODY_CLASSES: dict[int, type] = {}


def _body(message_type: int):
    def register(cls):
        BODY_CLASSES[message_type] = cls
        cls.message_type = message_type
        return cls
    return register


class Body(Packet):
    message_type = 0

    def extract_padding(self, s: bytes):
        return b"", s

    def own_problems(self) -> list[str]:
        return []


@_body(1)
class Open(Body):
    name = "OPEN"
    fields_desc = [ByteField("version", 4), ShortField("my_as", 0), ShortField("hold_time", 90),
                   IPField("bgp_id", "0.0.0.0"), FieldLenField("opt_len", None, length_of="parameters", fmt="B"),
                   PacketListField("parameters", [], OptionalParameter, length_from=lambda p: p.opt_len)]

    def capabilities(self) -> list[Capability]:
        return [c for p in self.parameters if isinstance(p, OptionalParameter) and p.type == 2
                for c in _only(p.capabilities, Capability)]

    def text(self) -> str:
        caps = ", ".join(c.text() for c in self.capabilities())
        return f"OPEN v{self.version} AS {self.my_as} hold {self.hold_time}s id {self.bgp_id}" + (
            f" capabilities: {caps}" if caps else "")


@_body(2)
class Update(Body):
    """RFC 4271 4.3: withdrawn IPv4 routes, path attributes, IPv4 NLRI (EVPN routes ride in MP_REACH/MP_UNREACH)."""
    name = "UPDATE"
    fields_desc = [FieldLenField("withdrawn_len", None, length_of="withdrawn", fmt="!H"),
                   OctetsField("withdrawn", b"", length_from=lambda p: p.withdrawn_len),
                   FieldLenField("attributes_len", None, length_of="attributes", fmt="!H"),
                   PacketListField("attributes", [], PathAttribute, length_from=lambda p: p.attributes_len),
                   RestField("nlri", b"")]

    def own_problems(self) -> list[str]:
        raw = bytes(self.original or b"")
        if not raw:
            return []
        if len(raw) < 4:
            return [f"UPDATE: {len(raw)} bytes cannot hold the two length fields"]
        if 2 + self.withdrawn_len > len(raw):
            return [f"UPDATE: withdrawn routes length {self.withdrawn_len} runs past the message"]
        if 4 + self.withdrawn_len + self.attributes_len > len(raw):
            return [f"UPDATE: path attributes length {self.attributes_len} runs past the message"]
        return []

    def text(self) -> str:
        return "UPDATE"


@_body(3)
class Notification(Body):
    name = "NOTIFICATION"
    fields_desc = [ByteEnumField("code", 0, NOTIFICATION_CODES), ByteField("subcode", 0),
                   RestField("data", b"")]

    def text(self) -> str:
        subcode = UPDATE_ERRORS.get(self.subcode) if self.code == 3 else None
        return (f"NOTIFICATION {NOTIFICATION_CODES.get(self.code, self.code)} subcode {self.subcode}"
                + (f" ({subcode})" if subcode else "")
                + (f" data {bytes(self.data).hex()}" if self.data else ""))


@_body(4)
class Keepalive(Body):
    name = "KEEPALIVE"
    fields_desc = []

    def text(self) -> str:
        return "KEEPALIVE"


@_body(5)
class RouteRefresh(Body):
    name = "ROUTE-REFRESH"
    fields_desc = [ShortEnumField("afi", AFI_L2VPN, AFIS), ByteField("subtype", 0),
                   ByteEnumField("safi", SAFI_EVPN, SAFIS)]

    def text(self) -> str:
        return f"ROUTE-REFRESH {AFIS.get(self.afi, self.afi)}/{SAFIS.get(self.safi, self.safi)}"


class Header(Packet):
    """RFC 4271 4.1: marker (all ones), length (header included), type; the body is the message type's layer."""
    name = "BGP"
    fields_desc = [StrFixedLenField("marker", MARKER, 16), ShortField("length", None),
                   ByteEnumField("type", 4, MESSAGE_TYPES)]

    def guess_payload_class(self, payload: bytes):
        return BODY_CLASSES.get(self.type, Packet.guess_payload_class(self, payload))

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:16] + struct.pack("!H", len(pkt) + len(pay)) + pkt[18:]
        return pkt + pay


def _only(items, cls) -> list:
    """The items of a dissected list that are `cls`: where scapy fell back to Raw, `problems` says so."""
    return [item for item in items or () if isinstance(item, cls)]


# --- decoding ----------------------------------------------------------------------------------------------------

@dataclass
class Message:
    """One BGP message as read: its bytes, the layers (None where even the header was unreadable) and what was wrong
    with it, outermost first."""
    raw: bytes
    layers: Header | None
    problems: list[str]

    @property
    def type(self) -> int | None:
        return self.raw[18] if len(self.raw) >= HEADER_LEN else None

    @property
    def type_name(self) -> str:
        return MESSAGE_TYPES.get(self.type, f"type {self.type}")

    @property
    def body(self) -> Body | None:
        if self.layers is None:
            return None
        body = self.layers.payload
        return body if isinstance(body, Body) else None

    def attributes(self) -> list[PathAttribute]:
        return _only(self.body.attributes, PathAttribute) if isinstance(self.body, Update) else []

    def attribute(self, cls) -> PathAttribute | None:
        return next((a for a in self.attributes() if type(a) is cls), None)

    def reached(self) -> list[EvpnRoute]:
        """The EVPN routes this message advertises (MP_REACH_NLRI, AFI 25 / SAFI 70)."""
        return [r for a in self.attributes() if type(a) is MpReach and a.evpn for r in _only(a.routes, EvpnRoute)]

    def withdrawn(self) -> list[EvpnRoute]:
        """The EVPN routes this message withdraws (MP_UNREACH_NLRI)."""
        return [r for a in self.attributes() if type(a) is MpUnreach and a.evpn for r in _only(a.routes, EvpnRoute)]

    def communities(self) -> list[ExtCommunity]:
        attribute = self.attribute(ExtCommunities)
        return _only(attribute.communities, ExtCommunity) if attribute else []

    def community(self, cls) -> ExtCommunity | None:
        return next((c for c in self.communities() if type(c) is cls), None)

    def route_targets(self) -> list[str]:
        return [c.text().split(" ", 2)[2] for c in self.communities()
                if c.kind == "route target" and type(c) is not ExtCommunity]

    @property
    def end_of_rib(self) -> bool:
        """An UPDATE with nothing but an empty MP_UNREACH_NLRI (RFC 4724 2): the sender's initial table is sent."""
        attributes = self.attributes()
        return (isinstance(self.body, Update) and len(attributes) == 1 and type(attributes[0]) is MpUnreach
                and not attributes[0].routes and not attributes[0].nlri)

    def text(self) -> str:
        if self.body is None:
            return f"{self.type_name} " + "; ".join(self.problems)
        return self.body.text()


def decode(raw: bytes) -> Message:
    """One message (header included) as layers; never raises: what cannot be read is a problem of the message."""
    problems = []
    if len(raw) < HEADER_LEN:
        return Message(raw, None, [f"{len(raw)} bytes cannot hold the {HEADER_LEN}-byte header"])
    if raw[:16] != MARKER:
        problems.append("the marker is not all ones (RFC 4271 4.1)")
    length = struct.unpack("!H", raw[16:18])[0]
    if length != len(raw):
        problems.append(f"the header says {length} bytes, the message has {len(raw)}")
    try:
        layers = Header(raw)
    except Exception as exc:  # scapy's own failure on bytes no check above foresaw: still a message, damaged
        return Message(raw, None, problems + [f"unreadable: {exc}"])
    message = Message(raw, layers, problems)
    message.problems += list(_walk_problems(layers))
    return message


def _walk_problems(layer) -> Iterator[str]:
    """Every problem in a dissected message, outermost first: fallbacks to bytes, lengths that disagree, bytes left
    over that no structure accounts for."""
    if layer is None or isinstance(layer, NoPayload):
        return
    if isinstance(layer, (Raw, Padding)):
        yield f"{len(bytes(layer))} bytes no structure accounts for: {bytes(layer).hex()}"
        return
    if getattr(layer, "problem", None):
        yield layer.problem
    if hasattr(layer, "own_problems"):
        yield from layer.own_problems()
    for f in layer.fields_desc:
        value = layer.getfieldval(f.name)
        for item in value if isinstance(value, list) else ():
            if isinstance(item, Packet):
                yield from _walk_problems(item)
    yield from _walk_problems(layer.payload)


def split(stream: bytes) -> tuple[list[tuple[int, bytes]], bytes, str | None]:
    """A TCP byte stream cut into messages by their header's length: ([(offset, message bytes)], what is left over
    (a message still arriving), and why the rest cannot be cut, if it cannot: a length below the header's or a
    lost marker leaves nothing to resynchronise on)."""
    messages, at = [], 0
    while len(stream) - at >= HEADER_LEN:
        length = struct.unpack("!H", stream[at + 16:at + 18])[0]
        if stream[at:at + 16] != MARKER or length < HEADER_LEN:
            return messages, stream[at:], (f"at byte {at}: " + ("no marker" if stream[at:at + 16] != MARKER
                                                                  else f"length {length} is below {HEADER_LEN}"))
        if len(stream) - at < length:
            break
        messages.append((at, stream[at:at + length]))
        at += length
    return messages, stream[at:], None


# --- building ----------------------------------------------------------------------------------------------------

def message(body: Body) -> bytes:
    """A whole message: header plus body."""
    return bytes(Header(type=body.message_type) / body)


def open_message(asn: int, bgp_id: str, hold_time: int = 90) -> bytes:
    """OPEN for the EVPN family with a four-octet AS (RFC 6793: AS_TRANS in My AS above 65535)."""
    parameters = [OptionalParameter(capabilities=[multiprotocol(), four_octet_as(asn)])]
    return message(Open(my_as=asn if asn <= 0xFFFF else 23456, hold_time=hold_time, bgp_id=bgp_id,
                        parameters=parameters))


def keepalive() -> bytes:
    return message(Keepalive())


def update(*, reach: list[EvpnRoute] = (), withdraw: list[EvpnRoute] = (), next_hop: str = "0.0.0.0",
           communities: list[ExtCommunity] = (), pmsi: PmsiTunnel | None = None, as_path: list[int] = (),
           local_pref: int | None = None, extra: list[PathAttribute] = ()) -> bytes:
    """An UPDATE carrying EVPN routes: what a reference speaker sends (every attribute as given: nothing is
    derived, so a case can leave out what an implementation should insist on)."""
    attributes: list[PathAttribute] = []
    if reach:
        attributes += [Origin(), AsPath(flags=TRANSITIVE, type_code=2, value=_as_path(as_path))]
        if local_pref is not None:
            attributes.append(LocalPref(local_pref=local_pref))
        if communities:
            attributes.append(ExtCommunities(communities=list(communities)))
        if pmsi is not None:
            attributes.append(pmsi)
        attributes.append(MpReach(flags=OPTIONAL | EXTENDED, next_hop=ipaddress.ip_address(next_hop).packed,
                                  routes=list(reach)))
    if withdraw:
        attributes.append(MpUnreach(flags=OPTIONAL | EXTENDED, routes=list(withdraw)))
    attributes += list(extra)
    return message(Update(attributes=attributes))


def end_of_rib() -> bytes:
    """RFC 4724 2 for the EVPN family: an UPDATE with an empty MP_UNREACH_NLRI."""
    return message(Update(attributes=[MpUnreach(flags=OPTIONAL, routes=[])]))


def _as_path(asns) -> bytes:
    asns = list(asns)
    return bytes([2, len(asns)]) + struct.pack(f"!{len(asns)}I", *asns) if asns else b""


def mac_ip_route(rd_: str, mac: str, vni: int, ip: str | None = None, *, esi: bytes = b"\x00" * 10,
                 ethernet_tag: int = 0, vni2: int | None = None) -> EvpnMacIp:
    route = EvpnMacIp(rd=rd(rd_), esi=esi, ethernet_tag=ethernet_tag, mac=mac,
                      ip=ipaddress.ip_address(ip).packed if ip else b"", vni=vni)
    if vni2 is not None:
        route.vni2 = vni2
    return route


def inclusive_multicast_route(rd_: str, originator: str, ethernet_tag: int = 0) -> EvpnInclusiveMulticast:
    return EvpnInclusiveMulticast(rd=rd(rd_), ethernet_tag=ethernet_tag, ip=ipaddress.ip_address(originator).packed)


def ip_prefix_route(rd_: str, prefix: str, vni: int, gateway: str | None = None) -> EvpnIpPrefix:
    network = ipaddress.ip_network(prefix)
    zero = b"\x00" * len(network.network_address.packed)
    return EvpnIpPrefix(rd=rd(rd_), prefix_len=network.prefixlen, prefix=network.network_address.packed,
                        gateway=ipaddress.ip_address(gateway).packed if gateway else zero, vni=vni)


def ingress_replication(vni: int, endpoint: str) -> PmsiTunnel:
    return PmsiTunnel(tunnel_type=6, vni=vni, tunnel_id=ipaddress.ip_address(endpoint).packed)


def route_vni(route: EvpnRoute) -> int | None:
    """The VNI a route carries in its label (types 1, 2, 5), or None (types 3, 4: the PMSI tunnel attribute
    carries theirs)."""
    return route.getfieldval("vni") if "vni" in route.fieldtype else None
