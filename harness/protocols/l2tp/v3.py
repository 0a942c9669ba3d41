"""L2TPv3 (RFC 3931), recognised and its header read: the harness speaks L2TPv2, but a capture an engineer brings
may hold L2TPv3 over UDP (port 1701, told apart by the version field, RFC 3931 4.1.2.1) or over IP (protocol
115, RFC 3931 4.1.1). The header fields are shown; AVPs past the Message Type and the data a session carries
are not decoded ("L2TPv3: header only").

    message = decode(udp_payload, over="UDP")        # never raises
    message.message_type, message.connection_id, message.session_id, message.ns, message.nr, message.errors
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from harness.protocols.l2tp.avp import MESSAGE_TYPES
from harness.protocols.l2tp.codec import ReadErrors

VERSION = 3
T_BIT, L_BIT, S_BIT = 0x8000, 0x4000, 0x0800
CONTROL_HEADER = struct.Struct("!HHIHH")     # flags+version, length, control connection id, Ns, Nr (RFC 3931 3.2.1)
DATA_HEADER_UDP = struct.Struct("!HHI")      # flags+version, reserved, session id (RFC 3931 4.1.2.1)
AVP_HEADER = struct.Struct("!HHH")           # M H rsvd length, vendor id, attribute type (RFC 3931 5.1)
# RFC 3931 3.1 and the IANA "Control Message Type AVP Values": L2TPv2's numbers and names, and ACK (RFC 3931 3.3)
V3_MESSAGE_TYPES = {**MESSAGE_TYPES, 20: "ACK"}
HEADER_ONLY = "L2TPv3: header only"


@dataclass
class L2tpv3Message(ReadErrors):
    """What one L2TPv3 message holds as far as its header goes; `errors` says what was wrong with it. Shaped like
    codec.L2tpMessage where the wire reader and the ladder look, but `is_control` is None: L2TPv2's rules on
    control messages (Ns, Nr, retransmission) are not applied to it."""
    data: bytes
    over: str                                 # "UDP" or "IP"
    errors: list[str] = field(default_factory=list)
    control: bool | None = None
    flags: int | None = None
    version: int | None = VERSION
    length: int | None = None
    connection_id: int | None = None          # control messages: the Control Connection ID
    session_id: int | None = None             # data messages: the Session ID
    ns: int | None = None
    nr: int | None = None
    message_code: int | None = None           # the Message Type AVP's value, when the first AVP is one
    avps: list = field(default_factory=list)
    ppp = None
    ppp_frame = b""
    offset_size = None
    is_control = None

    @property
    def tunnel_id(self) -> int | None:
        return self.connection_id

    @property
    def message_type(self) -> str:
        """"L2TPv3 SCCRQ" ... "L2TPv3 ZLB" for a control message, "L2TPv3 data" for a data message."""
        if self.control is None:
            return "L2TPv3"
        if not self.control:
            return "L2TPv3 data"
        if self.message_code is None:
            return "L2TPv3 ZLB" if self.length == CONTROL_HEADER.size and not self.errors else "L2TPv3 control"
        return f"L2TPv3 {V3_MESSAGE_TYPES.get(self.message_code, f'message type {self.message_code}')}"

    def header_text(self) -> str:
        """The ids and sequence numbers, as far as the header could be read: "control connection 0x11223344 Ns 0
        Nr 0", "session 0x1234abcd"."""
        parts = []
        if self.control and self.connection_id is not None:
            parts.append(f"control connection 0x{self.connection_id:08x}")
            if self.ns is not None:
                parts.append(f"Ns {self.ns} Nr {self.nr}")
        elif self.session_id is not None:
            parts.append(f"session 0x{self.session_id:08x}")
        return " ".join(parts)

    def describe(self) -> str:
        head = " ".join(filter(None, (self.message_type, self.header_text(), f"over {self.over} ({HEADER_ONLY})")))
        return "\n".join([head, *(f"  malformed: {e}" for e in self.errors)])


def decode(data: bytes, over: str = "UDP") -> L2tpv3Message:
    """One L2TPv3 message: a UDP payload (`over="UDP"`) or an IP payload (`over="IP"`, from the Session ID on).
    Never raises."""
    message = L2tpv3Message(data=bytes(data), over=over)
    try:
        _read(message, message.data)
    except Exception as exc:  # a bug of ours must not take the capture's transcript down
        message.errors.append(f"decoder fault: {type(exc).__name__}: {exc}")
    return message


def _read(message: L2tpv3Message, data: bytes) -> None:
    if message.over == "IP":  # RFC 3931 4.1.1.1: a Session ID of zero means a control message follows
        if len(data) < 4:
            message.errors.append(f"{len(data)} byte(s): the Session ID needs 4")
            return
        session = struct.unpack_from("!I", data)[0]
        if session:
            message.control, message.session_id = False, session
            return
        data = data[4:]
    if len(data) < 2:
        message.errors.append(f"{len(data)} byte(s): the flags and version need 2")
        return
    bits = struct.unpack_from("!H", data)[0]
    message.flags, message.version = bits & 0xFFF0, bits & 0x000F
    message.control = bool(bits & T_BIT)
    if message.version != VERSION:
        message.errors.append(f"version {message.version}, expected {VERSION}")
    if not message.control:
        if message.over == "IP":
            message.errors.append("a control header (T bit clear) after a zero Session ID")
            return
        if len(data) < DATA_HEADER_UDP.size:
            message.errors.append(f"data header cut short ({len(data)} of {DATA_HEADER_UDP.size} bytes)")
            return
        message.session_id = DATA_HEADER_UDP.unpack_from(data)[2]
        return
    missing = [name for bit, name in ((L_BIT, "L"), (S_BIT, "S")) if not bits & bit]
    if missing:
        message.errors.append(f"control message without the {' and '.join(missing)} bit (RFC 3931 3.2.1: must be set)")
    if len(data) < CONTROL_HEADER.size:
        message.errors.append(f"control header cut short ({len(data)} of {CONTROL_HEADER.size} bytes)")
        return
    _bits, message.length, message.connection_id, message.ns, message.nr = CONTROL_HEADER.unpack_from(data)
    if message.length > len(data):
        message.errors.append(f"length field {message.length} exceeds the {len(data)} bytes received")
    elif message.length < CONTROL_HEADER.size:
        message.errors.append(f"length field {message.length} is shorter than the {CONTROL_HEADER.size}-byte header")
    end = min(message.length, len(data))
    if end >= CONTROL_HEADER.size + AVP_HEADER.size + 2:
        avp_bits, vendor, attribute = AVP_HEADER.unpack_from(data, CONTROL_HEADER.size)
        if vendor == 0 and attribute == 0 and (avp_bits & 0x3FF) >= AVP_HEADER.size + 2:
            message.message_code = struct.unpack_from("!H", data, CONTROL_HEADER.size + AVP_HEADER.size)[0]
        else:
            message.errors.append("first AVP is not Message Type (RFC 3931 5.4.1)")
