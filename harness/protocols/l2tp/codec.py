"""L2TPv2 messages (RFC 2661 3.1): the header as a scapy layer, control messages carrying AVPs (harness.protocols.
l2tp.avp) and data messages carrying PPP; `decode` for what the wire shows, builders for what a peer sends.

Scapy's own L2TP layer reads a control message's body as PPP and cannot carry AVPs, and it is what scapy binds
to UDP 1701; `L2TPv2` is deliberately not bound, so importing this module changes no one's dissection:
decode the UDP payload with `decode`, or stack `UDP(sport=1701, dport=1701) / control(...)` to send.

    msg = decode(udp_payload, secret=b"tunnel secret")       # never raises
    msg.message_type, msg.tunnel_id, msg.avp("Host Name").value, msg.malformed, msg.errors
    wire = encode(control(0, 0, 0, 0, [avp.message_type("SCCRQ"), avp.protocol_version(), avp.host_name("lac")]))
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property

from scapy.fields import (BitField, ConditionalField, FieldLenField, PacketListField, ShortField,
                          StrLenField)
from scapy.layers.ppp import PPP
from scapy.packet import Packet, Raw

from harness.protocols.l2tp.avp import (AVP_CLASSES, AVP_NAMES, HEADER_LEN, MAX_LENGTH, MESSAGE_TYPES, Avp, AvpHidden,
                                        AvpMessageType, AvpRandomVector, unhide)
from harness.protocols.l2tp.ppp import describe_frame

PORT = 1701
VERSION = 2
PPP_ADDRESS_CONTROL = b"\xff\x03"  # RFC 1662 3.1: all-stations address, unnumbered information
T_BIT, L_BIT, S_BIT, O_BIT, P_BIT = 0x8000, 0x4000, 0x0800, 0x0200, 0x0100


def header_length(bits: int, offset_size: int = 0) -> int:
    """Bytes of header the flag bits call for: flags+version, [length], tunnel, session, [Ns, Nr],
    [offset size + offset pad]."""
    return (6 + (2 if bits & L_BIT else 0) + (4 if bits & S_BIT else 0)
            + (2 + offset_size if bits & O_BIT else 0))


def _flags(pkt: Packet) -> int:
    return ((pkt.T << 15) | (pkt.L << 14) | (pkt.S << 11) | (pkt.O << 9) | (pkt.P << 8))


def _avps_length(pkt: Packet) -> int | None:
    if pkt.length is None:
        return None
    return max(pkt.length - header_length(_flags(pkt), pkt.offset_size or 0), 0)


class L2TPv2(Packet):
    """RFC 2661 3.1: T L x x S x O P x x x x Ver(4), [Length], Tunnel ID, Session ID, [Ns, Nr],
    [Offset Size, Offset pad]; then AVPs (control, T=1) or a PPP frame (data, T=0)."""
    name = "L2TPv2"
    fields_desc = [
        BitField("T", 1, 1), BitField("L", 1, 1), BitField("x1", 0, 2), BitField("S", 1, 1), BitField("x2", 0, 1),
        BitField("O", 0, 1), BitField("P", 0, 1), BitField("x3", 0, 4), BitField("version", VERSION, 4),
        ConditionalField(ShortField("length", None), lambda p: p.L),
        ShortField("tunnel_id", 0),
        ShortField("session_id", 0),
        ConditionalField(ShortField("ns", 0), lambda p: p.S),
        ConditionalField(ShortField("nr", 0), lambda p: p.S),
        ConditionalField(FieldLenField("offset_size", None, length_of="offset_pad"), lambda p: p.O),
        ConditionalField(StrLenField("offset_pad", b"", length_from=lambda p: p.offset_size), lambda p: p.O),
        ConditionalField(PacketListField("avps", [], Avp, length_from=_avps_length), lambda p: p.T),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.L and self.length is None:
            pkt = pkt[:2] + struct.pack("!H", len(pkt) + len(pay)) + pkt[4:]
        return pkt + pay

    def extract_padding(self, s: bytes):
        if self.T or self.length is None:
            return s, b""
        keep = max(self.length - header_length(_flags(self), self.offset_size or 0), 0)
        return s[:keep], s[keep:]

    def guess_payload_class(self, payload: bytes):
        return Raw if self.T else PPP


@dataclass
class AvpEntry:
    """One AVP of a decoded control message. `layer` is the typed clear AVP when it could be read (for a hidden
    AVP, once unhidden with the secret), an `AvpHidden` while it stays hidden, a plain `Avp` when no typed layer
    fits (vendor-specific, unknown, or a size the attribute cannot have)."""
    layer: Avp
    offset: int                     # where the AVP starts in the message
    length: int                     # the AVP's length on the wire
    hidden: bytes | None = None     # the hidden value as on the wire, when the H bit was set

    @property
    def attr_type(self) -> int:
        return self.layer.attr_type

    @property
    def vendor_id(self) -> int:
        return self.layer.vendor_id

    @property
    def mandatory(self) -> bool:
        return bool(self.layer.M)

    @property
    def is_hidden(self) -> bool:
        return self.hidden is not None

    @property
    def revealed(self) -> bool:
        """A hidden AVP whose clear value was recovered."""
        return self.is_hidden and not isinstance(self.layer, AvpHidden)

    @property
    def known(self) -> bool:
        return self.vendor_id == 0 and self.attr_type in AVP_CLASSES

    @property
    def name(self) -> str:
        return self.layer.attr_name

    @property
    def value(self):
        """The clear value (see Avp.avp_value); None while the AVP stays hidden."""
        return None if isinstance(self.layer, AvpHidden) else self.layer.avp_value

    def describe(self, message_type: str | None = None) -> str:
        """"Name [MH] value", the value as avp.py declares it reads (`message_type`: the carrying message's,
        for values whose meaning depends on it)."""
        flags = "M" if self.mandatory else "-"
        flags += "H" if self.is_hidden else "-"
        return f"{self.name} [{flags}] {self.layer.text(message_type)}".rstrip()


class ReadErrors:
    """What a message record that keeps an `errors` list says of it: whether it is malformed, and why."""
    errors: list[str]

    @property
    def malformed(self) -> bool:
        return bool(self.errors)

    @property
    def reason(self) -> str:
        return "; ".join(self.errors)


@dataclass
class L2tpMessage(ReadErrors):
    """What one UDP payload holds, as far as it could be read; `errors` says what was wrong with it."""
    data: bytes
    errors: list[str] = field(default_factory=list)
    flags: int | None = None
    version: int | None = None
    length: int | None = None
    tunnel_id: int | None = None
    session_id: int | None = None
    ns: int | None = None
    nr: int | None = None
    offset_size: int | None = None
    avps: list[AvpEntry] = field(default_factory=list)
    ppp_frame: bytes = b""          # a data message's PPP frame as on the wire; `ppp` is scapy's reading of it

    @cached_property
    def ppp(self) -> Packet | None:
        """scapy's dissection of the PPP frame, made on first use: a busy capture carries thousands of data
        messages, and a transcript needs only what ppp.describe_frame reads with struct."""
        if not self.ppp_frame:
            return None
        try:
            return PPP(self.ppp_frame)
        except Exception:               # scapy's HDLC/PPP layers raise on frames cut inside their header
            return Raw(self.ppp_frame)

    @property
    def ppp_protocol(self) -> int | None:
        """The PPP Protocol field of a data message (RFC 1661 2; Address and Control, RFC 1662 3.1, skipped;
        one byte when compressed: its low bit is set)."""
        frame = self.ppp_frame
        at = 2 if frame[:2] == PPP_ADDRESS_CONTROL else 0
        if len(frame) > at and frame[at] & 1:
            return frame[at]
        return struct.unpack_from("!H", frame, at)[0] if len(frame) >= at + 2 else None

    @property
    def is_control(self) -> bool | None:
        return None if self.flags is None else bool(self.flags & T_BIT)

    @property
    def message_code(self) -> int | None:
        first = self.avps[0].layer if self.avps else None
        return first.message_type if isinstance(first, AvpMessageType) else None

    @property
    def message_type(self) -> str | None:
        """SCCRQ ... SLI; ZLB for a control message with no AVPs; None for data and unreadable messages."""
        if not self.is_control or self.tunnel_id is None or self.errors and not self.avps:
            return None
        if not self.avps:
            return "ZLB"
        code = self.message_code
        if code is None:
            return None
        return MESSAGE_TYPES.get(code, f"message type {code}")

    @property
    def is_zlb(self) -> bool:
        return self.message_type == "ZLB"

    def all(self, key: int | str | type) -> list[AvpEntry]:
        """The AVPs of one attribute: its type number, its RFC name ("Host Name") or its layer class."""
        if isinstance(key, type):
            return [e for e in self.avps if isinstance(e.layer, key)]
        if isinstance(key, str):
            return [e for e in self.avps if e.vendor_id == 0 and AVP_NAMES.get(e.attr_type) == key]
        return [e for e in self.avps if e.vendor_id == 0 and e.attr_type == key]

    def avp(self, key: int | str | type) -> AvpEntry | None:
        found = self.all(key)
        return found[0] if found else None

    def header_text(self) -> str:
        """The ids and sequence numbers, as far as the header could be read: "tunnel 17 session 0 Ns 0 Nr 1"."""
        fields = (("tunnel", self.tunnel_id), ("session", self.session_id), ("Ns", self.ns), ("Nr", self.nr))
        return " ".join(f"{name} {value}" for name, value in fields if value is not None)

    def describe(self) -> str:
        kind = self.message_type or {False: "data", True: "control"}.get(self.is_control, "unreadable")
        lines = [" ".join(filter(None, (kind, self.header_text())))]
        lines += [f"  {e.describe(self.message_type)}" for e in self.avps]
        if self.ppp_frame:   # not `self.ppp`: that would have scapy dissect every data message
            lines.append(f"  PPP {describe_frame(self.ppp_frame)}")
        lines += [f"  malformed: {e}" for e in self.errors]
        return "\n".join(lines)


def decode(data: bytes, secret: bytes | str | None = None) -> L2tpMessage:
    """Reads one L2TPv2 message (a UDP payload). Never raises: what is wrong lands in `errors` and what could be
    read before it is kept. With the tunnel `secret`, hidden AVPs are unhidden (the hidden bytes are kept)."""
    message = L2tpMessage(data=bytes(data))
    if isinstance(secret, str):
        secret = secret.encode()
    try:
        _read(message, message.data, secret)
    except Exception as exc:        # a decoder bug must not take a capture's transcript down with it
        message.errors.append(f"decoder fault: {type(exc).__name__}: {exc}")
    return message


def _read(message: L2tpMessage, data: bytes, secret: bytes | None) -> None:
    if len(data) < 2:
        message.errors.append(f"truncated header: {len(data)} byte(s), the flags and version need 2")
        return
    bits = struct.unpack("!H", data[:2])[0]
    message.flags, message.version = bits & 0xFFF0, bits & 0x000F
    if message.version != VERSION:
        message.errors.append(f"version {message.version}, expected {VERSION}")
        return
    if bits & T_BIT:
        missing = [name for bit, name in ((L_BIT, "L"), (S_BIT, "S")) if not bits & bit]
        if missing:
            message.errors.append(f"control message without the {' and '.join(missing)} bit "
                                  "(RFC 2661 3.1: must be set)")
        if bits & O_BIT:
            message.errors.append("control message with the O bit (RFC 2661 3.1: must be 0)")

    fields = [name for bit, name in ((L_BIT, "length"), (0, "tunnel_id"), (0, "session_id"), (S_BIT, "ns"),
                                     (S_BIT, "nr"), (O_BIT, "offset_size")) if bit == 0 or bits & bit]
    pos = 2
    for name in fields:
        if len(data) < pos + 2:
            message.errors.append(f"truncated header: {len(data)} bytes, the flags call for "
                                  f"{header_length(bits)} (no room for {name})")
            return
        setattr(message, name, struct.unpack("!H", data[pos:pos + 2])[0])
        pos += 2
    if message.offset_size is not None:
        if len(data) < pos + message.offset_size:
            message.errors.append(f"offset size {message.offset_size} runs past the end "
                                  f"({len(data) - pos} bytes left)")
            return
        pos += message.offset_size

    end = len(data)
    if message.length is not None:
        if message.length > len(data):
            message.errors.append(f"length field {message.length} exceeds the {len(data)} bytes received")
        elif message.length < pos:
            message.errors.append(f"length field {message.length} is shorter than the {pos}-byte header")
            end = pos
        else:
            if message.length < len(data):
                message.errors.append(f"{len(data) - message.length} byte(s) after the end the length field gives")
            end = message.length

    if bits & T_BIT:
        _read_avps(message, data[pos:end], pos, secret)
    elif pos < end:
        message.ppp_frame = data[pos:end]   # dissected on first use (L2tpMessage.ppp)
        if message.ppp_protocol is None:
            message.errors.append(f"PPP frame of {end - pos} byte(s) unreadable: its Protocol field is cut "
                                  f"short (RFC 1661 2)")
    else:
        message.errors.append("data message without a PPP frame")


def _misfit(entry: AvpEntry) -> str | None:
    """A known attribute whose value size no typed layer accepts."""
    if not entry.known or type(entry.layer) is not Avp:
        return None
    low, high, never = AVP_CLASSES[entry.attr_type].sizes
    size = len(entry.layer.value)
    allowed = f"{low}" if low == high else f"{low} or more" if high >= MAX_LENGTH - HEADER_LEN else f"{low} to {high}"
    if never:
        allowed += f", not {', '.join(map(str, never))}"
    return f"{entry.name} AVP at byte {entry.offset}: a {size}-byte value, RFC 2661 allows {allowed}"


def _read_avps(message: L2tpMessage, body: bytes, base: int, secret: bytes | None) -> None:
    pos, vector = 0, None
    while pos < len(body):
        at, left = base + pos, len(body) - pos
        if left < HEADER_LEN:
            message.errors.append(f"AVP at byte {at}: {left} byte(s) left, an AVP header needs {HEADER_LEN}")
            break
        bits, vendor_id, attr_type = struct.unpack("!HHH", body[pos:pos + HEADER_LEN])
        length = bits & 0x3FF
        label = AVP_NAMES.get(attr_type, f"attribute {attr_type}") if vendor_id == 0 else \
            f"vendor {vendor_id} attribute {attr_type}"
        if length < HEADER_LEN:
            message.errors.append(f"{label} AVP at byte {at}: length {length}, less than its {HEADER_LEN}-byte header")
            break
        if length > left:
            message.errors.append(f"{label} AVP at byte {at}: length {length} runs past the end ({left} bytes left)")
            message.avps.append(AvpEntry(Avp(body[pos:]), at, length))    # what there is of it, raw
            break
        layer = Avp(body[pos:pos + length])
        entry = AvpEntry(layer, at, length)
        if isinstance(layer, AvpHidden):
            entry.hidden = layer.hidden
            if vector is None:
                message.errors.append(f"hidden {label} AVP at byte {at} without a preceding Random Vector AVP")
            elif secret is not None:
                try:
                    entry.layer = unhide(layer, secret, vector)
                except ValueError as exc:
                    message.errors.append(f"hidden {label} AVP at byte {at}: {exc}")
        elif isinstance(layer, AvpRandomVector):
            vector = layer.random_vector
        misfit = _misfit(entry)
        if misfit:
            message.errors.append(misfit)
        message.avps.append(entry)
        pos += length

    if message.avps:
        first = message.avps[0]
        if first.vendor_id != 0 or first.attr_type != 0:
            message.errors.append(f"first AVP is {first.name}, not Message Type (RFC 2661 4.4.1)")
        elif first.is_hidden:
            message.errors.append("Message Type AVP hidden (RFC 2661 4.4.1: must not be)")


def control(tunnel_id: int, session_id: int = 0, ns: int = 0, nr: int = 0, avps=()) -> L2TPv2:
    """A control message (T, L and S set); with no AVPs it is a ZLB acknowledgement."""
    return L2TPv2(T=1, L=1, S=1, tunnel_id=tunnel_id, session_id=session_id, ns=ns, nr=nr, avps=list(avps))


def zlb(tunnel_id: int, ns: int, nr: int, session_id: int = 0) -> L2TPv2:
    return control(tunnel_id, session_id, ns, nr)


def data(tunnel_id: int, session_id: int, ppp: Packet | bytes, *, ns: int | None = None, nr: int = 0,
         with_length: bool = False, offset_pad: bytes | None = None, priority: bool = False) -> Packet:
    """A data message carrying one PPP frame; Ns/Nr only when `ns` is given, an offset pad only when given."""
    header = L2TPv2(T=0, L=int(with_length), S=int(ns is not None), O=int(offset_pad is not None),
                    P=int(priority), tunnel_id=tunnel_id, session_id=session_id, ns=ns or 0, nr=nr,
                    offset_pad=offset_pad or b"")
    return header / (ppp if isinstance(ppp, Packet) else Raw(ppp))


def encode(message: Packet) -> bytes:
    """The bytes of a built message (control(), zlb(), data()): the UDP payload."""
    return bytes(message)
