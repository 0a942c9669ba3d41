"""L2TPv2 AVPs (RFC 2661 4): one scapy layer per attribute of section 4.4, the hiding of section 4.3 and the
tunnel authentication of section 5.1.1.

Every AVP starts with the same 6 bytes: M and H bits, 4 reserved bits, a 10-bit length (header included),
the vendor id and the attribute type. `Avp(raw)` picks the typed layer for an IETF attribute whose value has
a legal size; anything else (vendor-specific, unknown, a size the attribute cannot have) stays an `Avp`, the
value kept as bytes and the M bit visible. A hidden AVP dissects as `AvpHidden` until `unhide` is given the
tunnel secret and the Random Vector that precedes it.

Builders, one per attribute, take the value positionally: `host_name("lac")`, `result_code(2, 6, "busy")`,
`protocol_version()`; `mandatory=` overrides the M bit RFC 2661 gives the attribute.

How a value reads (`Avp.text()`, for the transcript and the ladder alike) is declared with it: each value field's
class says whether it is text, binary (hex), flags (their names) or a number with its RFC 2661 meaning, and an
AVP with several values names them in `labels`.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Callable

from scapy.fields import (BitField, ByteField, ConditionalField, FlagsField, IntField, LongField,
                          ShortEnumField, ShortField, StrLenField)
from scapy.packet import Packet

from harness.protocols.l2tp.ppp import LCP, describe_options, octets, printable, quoted

HEADER_LEN = 6
HEADER_FIELDS = 6       # M, H, reserved, length, vendor_id, attr_type
MAX_LENGTH = 0x3FF

MESSAGE_TYPES = {1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 6: "HELLO", 7: "OCRQ", 8: "OCRP", 9: "OCCN",
                 10: "ICRQ", 11: "ICRP", 12: "ICCN", 14: "CDN", 15: "WEN", 16: "SLI"}
MESSAGE_CODES = {name: code for code, name in MESSAGE_TYPES.items()}

AVP_NAMES = {0: "Message Type", 1: "Result Code", 2: "Protocol Version", 3: "Framing Capabilities",
             4: "Bearer Capabilities", 5: "Tie Breaker", 6: "Firmware Revision", 7: "Host Name", 8: "Vendor Name",
             9: "Assigned Tunnel ID", 10: "Receive Window Size", 11: "Challenge", 12: "Q.931 Cause Code",
             13: "Challenge Response", 14: "Assigned Session ID", 15: "Call Serial Number", 16: "Minimum BPS",
             17: "Maximum BPS", 18: "Bearer Type", 19: "Framing Type", 21: "Called Number", 22: "Calling Number",
             23: "Sub-Address", 24: "Tx Connect Speed", 25: "Physical Channel ID",
             26: "Initial Received LCP CONFREQ", 27: "Last Sent LCP CONFREQ", 28: "Last Received LCP CONFREQ",
             29: "Proxy Authen Type", 30: "Proxy Authen Name", 31: "Proxy Authen Challenge", 32: "Proxy Authen ID",
             33: "Proxy Authen Response", 34: "Call Errors", 35: "ACCM", 36: "Random Vector",
             37: "Private Group ID", 38: "Rx Connect Speed", 39: "Sequencing Required"}

# Result Code meanings depend on the message carrying the AVP (RFC 2661 4.4.2).
STOPCCN_RESULTS = {0: "Reserved", 1: "General request to clear control connection",
                   2: "General error, Error Code indicates the problem", 3: "Control channel already exists",
                   4: "Requester is not authorized to establish a control channel",
                   5: "The protocol version of the requester is not supported", 6: "Requester is being shut down",
                   7: "Finite State Machine error"}
CDN_RESULTS = {0: "Reserved", 1: "Call disconnected due to loss of carrier",
               2: "Call disconnected for the reason indicated in error code",
               3: "Call disconnected for administrative reasons",
               4: "Call failed due to lack of appropriate facilities being available (temporary condition)",
               5: "Call failed due to lack of appropriate facilities being available (permanent condition)",
               6: "Invalid destination", 7: "Call failed due to no carrier detected",
               8: "Call failed due to detection of a busy signal", 9: "Call failed due to lack of a dial tone",
               10: "Call was not established within time allotted by LAC",
               11: "Call was connected but no appropriate framing was detected"}
ERROR_CODES = {0: "No general error", 1: "No control connection exists yet for this LAC-LNS pair",
               2: "Length is wrong", 3: "One of the field values was out of range or reserved field was non-zero",
               4: "Insufficient resources to handle this operation now", 5: "The Session ID is invalid in this context",
               6: "A generic vendor-specific error occurred in the LAC", 7: "Try another",
               8: "Session or tunnel was shutdown due to receipt of an unknown AVP with the M-bit set"}
PROXY_AUTHEN_TYPES = {0: "Reserved", 1: "Textual username/password exchange", 2: "PPP CHAP", 3: "PPP PAP",
                      4: "No Authentication", 5: "Microsoft CHAP Version 1 (MSCHAPv1)"}
FRAMING = ["sync", "async"]         # bit 31 is S, bit 30 is A (RFC 2661 4.4.3, 4.4.5)
BEARER = ["digital", "analog"]      # bit 31 is D, bit 30 is A


def _octets(x) -> bytes:
    """A value as bytes: a built AVP may still hold the str it was given."""
    return x.encode() if isinstance(x, str) else bytes(x or b"")


class TextField(StrLenField):
    """A value that is text (a host name, a number to dial): shown as text, non-printables escaped."""

    def i2repr(self, pkt, x):
        return printable(_octets(x)) or "(empty)"


class MessageField(StrLenField):
    """Free text inside a value with other fields (an error message): shown quoted, so it reads apart."""

    def i2repr(self, pkt, x):
        return quoted(_octets(x))


class OctetsField(StrLenField):
    """A binary value (a challenge, a digest, a hidden body): shown as hex."""

    def i2repr(self, pkt, x):
        return octets(_octets(x))


class LcpOptionsField(StrLenField):
    """LCP options as a CONFREQ carries them (RFC 2661 4.4.5: the body from the first option on)."""

    def i2repr(self, pkt, x):
        return ", ".join(describe_options(LCP, _octets(x))) or "(no options)"


class MeaningEnumField(ShortEnumField):
    """A number RFC 2661 gives meanings to: shown as the number and, where it has one, its meaning."""

    def i2repr(self, pkt, x):
        meaning = self.i2s.get(x) if isinstance(x, int) else None
        return f"{x} ({meaning})" if meaning else str(x)


class NamedFlagsField(FlagsField):
    """A bit mask: the names of the bits set ("sync, async"), any other bit as a number, "none" for 0."""

    def i2repr(self, pkt, x):
        value = int(x or 0)
        names = [name for bit, name in enumerate(self.names) if value >> bit & 1]
        other = value & ~((1 << len(self.names)) - 1)
        if other:
            names.append(f"other bits 0x{other:0{self.size // 4}x}")
        return ", ".join(names) or "none"


class HexIntField(IntField):
    """An opaque 32-bit value (a character map): hex, all 8 digits."""

    def i2repr(self, pkt, x):
        return f"0x{(x or 0):08x}"


class HexLongField(LongField):
    """An opaque 64-bit value (the tie breaker): hex, all 16 digits."""

    def i2repr(self, pkt, x):
        return f"0x{(x or 0):016x}"


class HexShortField(ShortField):
    """A 16-bit value in a vendor's own format (the firmware revision, RFC 2661 4.4.3): hex, all 4 digits."""

    def i2repr(self, pkt, x):
        return f"0x{(x or 0):04x}"


class _Length(BitField):
    """The 10-bit AVP length; None until post_build counts the built AVP."""

    def i2m(self, pkt, x):
        return 0 if x is None else x


def _header(attr_type: int, mandatory: int, hidden: int = 0) -> list:
    return [BitField("M", mandatory, 1), BitField("H", hidden, 1), BitField("reserved", 0, 4),
            _Length("length", None, 10), ShortField("vendor_id", 0),
            ShortEnumField("attr_type", attr_type, AVP_NAMES)]


def _rest(skip: int = 0) -> Callable[[Packet], int | None]:
    """Bytes left for a variable value after `skip` fixed value bytes (everything when building)."""
    return lambda pkt: None if pkt.length is None else max(pkt.length - HEADER_LEN - skip, 0)


AVP_CLASSES: dict[int, type] = {}


def _typed(low: int, high: int | None = None, *, never: tuple[int, ...] = ()):
    """Registers a typed AVP layer and the value sizes (bytes) it accepts: low..high, None for no limit."""
    def register(cls):
        cls.sizes = (low, low if high is None else high, never)
        AVP_CLASSES[cls.fields_desc[5].default] = cls
        return cls
    return register


def _unbounded() -> int:
    return MAX_LENGTH - HEADER_LEN


class Avp(Packet):
    """An AVP as the wire has it: typed layers subclass this, and an AVP no typed layer fits stays one."""
    name = "L2TP AVP"
    fields_desc = _header(0, 1) + [OctetsField("value", b"", length_from=_rest())]
    labels: dict[str, str] = {}     # value field -> its name in text() when the AVP has several ("": none)

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if not _pkt or len(_pkt) < HEADER_LEN:
            return cls
        bits, vendor_id, attr_type = struct.unpack("!HHH", _pkt[:HEADER_LEN])
        if bits & 0x4000:
            return AvpHidden
        typed = AVP_CLASSES.get(attr_type) if vendor_id == 0 else None
        size = min(bits & MAX_LENGTH, len(_pkt)) - HEADER_LEN
        return typed if typed is not None and typed.fits(size) else cls

    @classmethod
    def fits(cls, size: int) -> bool:
        low, high, never = getattr(cls, "sizes", (0, _unbounded(), ()))
        return low <= size <= high and size not in never

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            bits = (struct.unpack("!H", pkt[:2])[0] & ~MAX_LENGTH) | (len(pkt) & MAX_LENGTH)
            pkt = struct.pack("!H", bits) + pkt[2:]
        return pkt + pay

    def extract_padding(self, s: bytes):
        return b"", s           # what follows is the next AVP

    @property
    def attr_name(self) -> str:
        if self.vendor_id:
            return f"vendor {self.vendor_id} attribute {self.attr_type}"
        return AVP_NAMES.get(self.attr_type, f"attribute {self.attr_type}")

    def _value_fields(self) -> list[tuple]:
        """(field, value) of each value field present: no header fields, no reserved padding."""
        present = []
        for f in self.fields_desc[HEADER_FIELDS:]:
            if isinstance(f, ConditionalField):
                if not f._evalcond(self):
                    continue
                f = f.fld
            if f.name != "pad":
                present.append((f, self.getfieldval(f.name)))
        return present

    def values(self) -> dict:
        """The value fields present in this AVP, by name (no header fields, no reserved padding)."""
        return {f.name: value for f, value in self._value_fields()}

    @property
    def avp_value(self):
        """The value: the one value field's, a dict when the attribute has several, None when it has none."""
        values = self.values()
        if len(values) == 1:
            return next(iter(values.values()))
        return values or None

    def text(self, message_type: str | None = None) -> str:
        """The value as an engineer reads it, from how each value field is declared: one value alone, several
        as "label value, ..."; "" when the attribute has none. `message_type` (the carrying message's, e.g.
        "CDN") is for values whose meaning depends on it."""
        shown = self._value_fields()
        if len(shown) == 1:
            f, value = shown[0]
            return f.i2repr(self, value)
        return ", ".join(" ".join(filter(None, (self.labels.get(f.name, f.name.replace("_", " ")), f.i2repr(self, v))))
                         for f, v in shown)


class AvpHidden(Avp):
    """An AVP with the H bit (RFC 2661 4.3): the value is the MD5-hidden subformat, readable with the secret."""
    name = "L2TP hidden AVP"
    fields_desc = _header(0, 1, hidden=1) + [OctetsField("hidden", b"", length_from=_rest())]

    def text(self, message_type: str | None = None) -> str:
        return f"hidden {octets(self.hidden)}"


@_typed(2)
class AvpMessageType(Avp):
    name = "Message Type"
    fields_desc = _header(0, 1) + [MeaningEnumField("message_type", 1, MESSAGE_TYPES)]


@_typed(2, _unbounded(), never=(3,))
class AvpResultCode(Avp):
    """2 bytes result code, then optionally 2 bytes error code, then optionally an error message."""
    name = "Result Code"
    fields_desc = _header(1, 1) + [
        ShortField("result_code", 0),
        ConditionalField(MeaningEnumField("error_code", None, ERROR_CODES),
                         lambda p: p.fields.get("error_code") is not None if p.length is None else p.length >= 10),
        ConditionalField(MessageField("error_message", b"", length_from=_rest(4)),
                         lambda p: bool(p.fields.get("error_message")) if p.length is None else p.length > 10)]
    labels = {"result_code": "", "error_code": "error", "error_message": "message"}

    def text(self, message_type: str | None = None) -> str:
        """RFC 2661 4.4.2: the result code's meaning is the StopCCN's or the CDN's, by the message carrying it."""
        shown = super().text(message_type)
        meaning = {"StopCCN": STOPCCN_RESULTS, "CDN": CDN_RESULTS}.get(message_type or "", {}).get(self.result_code)
        if not meaning:
            return shown
        head, comma, rest = shown.partition(", ")
        return f"{head} ({meaning}){comma}{rest}"


@_typed(2)
class AvpProtocolVersion(Avp):
    name = "Protocol Version"
    fields_desc = _header(2, 1) + [ByteField("version", 1), ByteField("revision", 0)]

    def text(self, message_type: str | None = None) -> str:
        return f"{self.version}.{self.revision}"


@_typed(4)
class AvpFramingCapabilities(Avp):
    name = "Framing Capabilities"
    fields_desc = _header(3, 1) + [NamedFlagsField("framing", 3, 32, FRAMING)]


@_typed(4)
class AvpBearerCapabilities(Avp):
    name = "Bearer Capabilities"
    fields_desc = _header(4, 1) + [NamedFlagsField("bearer", 0, 32, BEARER)]


@_typed(8)
class AvpTieBreaker(Avp):
    name = "Tie Breaker"
    fields_desc = _header(5, 0) + [HexLongField("tie_breaker", 0)]


@_typed(2)
class AvpFirmwareRevision(Avp):
    name = "Firmware Revision"
    fields_desc = _header(6, 0) + [HexShortField("firmware_revision", 0)]


@_typed(1, _unbounded())
class AvpHostName(Avp):
    name = "Host Name"
    fields_desc = _header(7, 1) + [TextField("host_name", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpVendorName(Avp):
    name = "Vendor Name"
    fields_desc = _header(8, 0) + [TextField("vendor_name", b"", length_from=_rest())]


@_typed(2)
class AvpAssignedTunnelId(Avp):
    name = "Assigned Tunnel ID"
    fields_desc = _header(9, 1) + [ShortField("tunnel_id", 0)]


@_typed(2)
class AvpReceiveWindowSize(Avp):
    name = "Receive Window Size"
    fields_desc = _header(10, 1) + [ShortField("window_size", 4)]


@_typed(1, _unbounded())
class AvpChallenge(Avp):
    name = "Challenge"
    fields_desc = _header(11, 1) + [OctetsField("challenge", b"", length_from=_rest())]


@_typed(3, _unbounded())
class AvpQ931CauseCode(Avp):
    name = "Q.931 Cause Code"
    fields_desc = _header(12, 1) + [ShortField("cause_code", 0), ByteField("cause_msg", 0),
                                    MessageField("advisory", b"", length_from=_rest(3))]
    labels = {"cause_code": "cause", "cause_msg": "message type", "advisory": "advisory"}


@_typed(16)
class AvpChallengeResponse(Avp):
    name = "Challenge Response"
    fields_desc = _header(13, 1) + [OctetsField("response", b"\0" * 16, length_from=_rest())]


@_typed(2)
class AvpAssignedSessionId(Avp):
    name = "Assigned Session ID"
    fields_desc = _header(14, 1) + [ShortField("session_id", 0)]


@_typed(4)
class AvpCallSerialNumber(Avp):
    name = "Call Serial Number"
    fields_desc = _header(15, 1) + [IntField("serial_number", 0)]


@_typed(4)
class AvpMinimumBps(Avp):
    name = "Minimum BPS"
    fields_desc = _header(16, 1) + [IntField("bps", 0)]


@_typed(4)
class AvpMaximumBps(Avp):
    name = "Maximum BPS"
    fields_desc = _header(17, 1) + [IntField("bps", 0)]


@_typed(4)
class AvpBearerType(Avp):
    name = "Bearer Type"
    fields_desc = _header(18, 1) + [NamedFlagsField("bearer", 0, 32, BEARER)]


@_typed(4)
class AvpFramingType(Avp):
    name = "Framing Type"
    fields_desc = _header(19, 1) + [NamedFlagsField("framing", 1, 32, FRAMING)]


@_typed(0, _unbounded())
class AvpCalledNumber(Avp):
    name = "Called Number"
    fields_desc = _header(21, 1) + [TextField("number", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpCallingNumber(Avp):
    name = "Calling Number"
    fields_desc = _header(22, 1) + [TextField("number", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpSubAddress(Avp):
    name = "Sub-Address"
    fields_desc = _header(23, 1) + [TextField("sub_address", b"", length_from=_rest())]


@_typed(4)
class AvpTxConnectSpeed(Avp):
    name = "Tx Connect Speed"
    fields_desc = _header(24, 1) + [IntField("bps", 0)]


@_typed(4)
class AvpPhysicalChannelId(Avp):
    name = "Physical Channel ID"
    fields_desc = _header(25, 0) + [IntField("channel_id", 0)]


@_typed(0, _unbounded())
class AvpInitialReceivedLcpConfreq(Avp):
    name = "Initial Received LCP CONFREQ"
    fields_desc = _header(26, 0) + [LcpOptionsField("lcp_options", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpLastSentLcpConfreq(Avp):
    name = "Last Sent LCP CONFREQ"
    fields_desc = _header(27, 0) + [LcpOptionsField("lcp_options", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpLastReceivedLcpConfreq(Avp):
    name = "Last Received LCP CONFREQ"
    fields_desc = _header(28, 0) + [LcpOptionsField("lcp_options", b"", length_from=_rest())]


@_typed(2)
class AvpProxyAuthenType(Avp):
    name = "Proxy Authen Type"
    fields_desc = _header(29, 0) + [MeaningEnumField("authen_type", 0, PROXY_AUTHEN_TYPES)]


@_typed(0, _unbounded())
class AvpProxyAuthenName(Avp):
    name = "Proxy Authen Name"
    fields_desc = _header(30, 0) + [TextField("authen_name", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpProxyAuthenChallenge(Avp):
    name = "Proxy Authen Challenge"
    fields_desc = _header(31, 0) + [OctetsField("authen_challenge", b"", length_from=_rest())]


@_typed(2)
class AvpProxyAuthenId(Avp):
    name = "Proxy Authen ID"
    fields_desc = _header(32, 0) + [ByteField("pad", 0), ByteField("authen_id", 0)]


@_typed(0, _unbounded())
class AvpProxyAuthenResponse(Avp):
    name = "Proxy Authen Response"
    fields_desc = _header(33, 0) + [OctetsField("authen_response", b"", length_from=_rest())]


@_typed(26)
class AvpCallErrors(Avp):
    name = "Call Errors"
    fields_desc = _header(34, 1) + [ShortField("pad", 0), IntField("crc_errors", 0), IntField("framing_errors", 0),
                                    IntField("hardware_overruns", 0), IntField("buffer_overruns", 0),
                                    IntField("timeout_errors", 0), IntField("alignment_errors", 0)]
    labels = {"crc_errors": "CRC errors", "framing_errors": "framing errors", "hardware_overruns": "hardware overruns",
              "buffer_overruns": "buffer overruns", "timeout_errors": "timeout errors",
              "alignment_errors": "alignment errors"}


@_typed(10)
class AvpAccm(Avp):
    name = "ACCM"
    fields_desc = _header(35, 1) + [ShortField("pad", 0), HexIntField("send_accm", 0xFFFFFFFF),
                                    HexIntField("receive_accm", 0xFFFFFFFF)]
    labels = {"send_accm": "send", "receive_accm": "receive"}


@_typed(1, _unbounded())
class AvpRandomVector(Avp):
    name = "Random Vector"
    fields_desc = _header(36, 1) + [OctetsField("random_vector", b"", length_from=_rest())]


@_typed(0, _unbounded())
class AvpPrivateGroupId(Avp):
    name = "Private Group ID"
    fields_desc = _header(37, 0) + [TextField("group_id", b"", length_from=_rest())]


@_typed(4)
class AvpRxConnectSpeed(Avp):
    name = "Rx Connect Speed"
    fields_desc = _header(38, 0) + [IntField("bps", 0)]


@_typed(0)
class AvpSequencingRequired(Avp):
    name = "Sequencing Required"
    fields_desc = _header(39, 1)


def _builder(cls: type, *names: str) -> Callable[..., Avp]:
    def build(*values, mandatory: bool | None = None, **fields) -> Avp:
        if len(values) > len(names):
            raise TypeError(f"{cls.name} takes at most {len(names)} values ({', '.join(names)})")
        fields.update(zip(names, values))
        if mandatory is not None:
            fields["M"] = int(mandatory)
        return cls(**fields)
    build.__doc__ = f"The {cls.name} AVP ({', '.join(names) or 'no value'})."
    return build


message_type = _builder(AvpMessageType, "message_type")
protocol_version = _builder(AvpProtocolVersion, "version", "revision")
framing_capabilities = _builder(AvpFramingCapabilities, "framing")
bearer_capabilities = _builder(AvpBearerCapabilities, "bearer")
tie_breaker = _builder(AvpTieBreaker, "tie_breaker")
firmware_revision = _builder(AvpFirmwareRevision, "firmware_revision")
host_name = _builder(AvpHostName, "host_name")
vendor_name = _builder(AvpVendorName, "vendor_name")
assigned_tunnel_id = _builder(AvpAssignedTunnelId, "tunnel_id")
receive_window_size = _builder(AvpReceiveWindowSize, "window_size")
challenge = _builder(AvpChallenge, "challenge")
q931_cause_code = _builder(AvpQ931CauseCode, "cause_code", "cause_msg", "advisory")
challenge_response_avp = _builder(AvpChallengeResponse, "response")
assigned_session_id = _builder(AvpAssignedSessionId, "session_id")
call_serial_number = _builder(AvpCallSerialNumber, "serial_number")
minimum_bps = _builder(AvpMinimumBps, "bps")
maximum_bps = _builder(AvpMaximumBps, "bps")
bearer_type = _builder(AvpBearerType, "bearer")
framing_type = _builder(AvpFramingType, "framing")
called_number = _builder(AvpCalledNumber, "number")
calling_number = _builder(AvpCallingNumber, "number")
sub_address = _builder(AvpSubAddress, "sub_address")
tx_connect_speed = _builder(AvpTxConnectSpeed, "bps")
physical_channel_id = _builder(AvpPhysicalChannelId, "channel_id")
initial_received_lcp_confreq = _builder(AvpInitialReceivedLcpConfreq, "lcp_options")
last_sent_lcp_confreq = _builder(AvpLastSentLcpConfreq, "lcp_options")
last_received_lcp_confreq = _builder(AvpLastReceivedLcpConfreq, "lcp_options")
proxy_authen_type = _builder(AvpProxyAuthenType, "authen_type")
proxy_authen_name = _builder(AvpProxyAuthenName, "authen_name")
proxy_authen_challenge = _builder(AvpProxyAuthenChallenge, "authen_challenge")
proxy_authen_id = _builder(AvpProxyAuthenId, "authen_id")
proxy_authen_response = _builder(AvpProxyAuthenResponse, "authen_response")
call_errors = _builder(AvpCallErrors, "crc_errors", "framing_errors", "hardware_overruns", "buffer_overruns",
                       "timeout_errors", "alignment_errors")
accm = _builder(AvpAccm, "send_accm", "receive_accm")
random_vector = _builder(AvpRandomVector, "random_vector")
private_group_id = _builder(AvpPrivateGroupId, "group_id")
rx_connect_speed = _builder(AvpRxConnectSpeed, "bps")
sequencing_required = _builder(AvpSequencingRequired)


def result_code(code: int, error: int | None = None, message: str | bytes = b"", *,
                mandatory: bool | None = None) -> AvpResultCode:
    """The Result Code AVP in its three sizes: code alone (8 bytes), + error code (10), + error message."""
    if message and error is None:
        error = 0       # the message sits after the error code, so a message implies one
    fields = {"result_code": code, "error_code": error, "error_message": message}
    if mandatory is not None:
        fields["M"] = int(mandatory)
    return AvpResultCode(**fields)


def vendor_avp(vendor_id: int, attr_type: int, value: bytes, *, mandatory: bool = False) -> Avp:
    """A vendor-specific (or any untyped) AVP, value as bytes."""
    return Avp(M=int(mandatory), vendor_id=vendor_id, attr_type=attr_type, value=value)


def _md5(*parts: bytes) -> bytes:
    return hashlib.md5(b"".join(parts)).digest()


def _chain(attr_type: int, secret: bytes, vector: bytes, data: bytes, *, revealing: bool) -> bytes:
    """RFC 2661 4.3: b1 = MD5(attribute type + secret + random vector), bi = MD5(secret + c(i-1)), ci = pi xor bi,
    16 bytes at a time (the last chunk may be shorter). The chaining is always on the hidden bytes c."""
    out = bytearray()
    digest = _md5(struct.pack("!H", attr_type), secret, vector)
    for start in range(0, len(data), 16):
        chunk = data[start:start + 16]
        mixed = bytes(a ^ b for a, b in zip(chunk, digest))
        out += mixed
        digest = _md5(secret, chunk if revealing else mixed)
    return bytes(out)


def _bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def hide(avp: Avp, secret: bytes | str, random_vector: bytes, padding: bytes = b"") -> AvpHidden:
    """The hidden form of `avp`: its value becomes MD5-hidden (original length (2 bytes) + value + padding).
    The message must carry a Random Vector AVP with `random_vector` before it."""
    value = bytes(avp)[HEADER_LEN:]
    subformat = struct.pack("!H", len(value)) + value + padding
    return AvpHidden(M=avp.M, vendor_id=avp.vendor_id, attr_type=avp.attr_type,
                     hidden=_chain(avp.attr_type, _bytes(secret), random_vector, subformat, revealing=False))


def reveal(attr_type: int, hidden: bytes, secret: bytes | str, random_vector: bytes) -> bytes:
    """The original value of a hidden attribute value; ValueError when the recovered original length does not fit
    (most often a wrong secret or random vector)."""
    subformat = _chain(attr_type, _bytes(secret), random_vector, hidden, revealing=True)
    if len(subformat) < 2:
        raise ValueError(f"hidden value of {len(subformat)} bytes, too short for the 2-byte original length")
    length = struct.unpack("!H", subformat[:2])[0]
    if length > len(subformat) - 2:
        raise ValueError(f"original length {length} exceeds the {len(subformat) - 2} bytes hidden "
                         "(wrong secret or random vector?)")
    return subformat[2:2 + length]


def unhide(avp: AvpHidden, secret: bytes | str, random_vector: bytes) -> Avp:
    """The clear AVP (H bit clear, typed layer when the value fits one) behind a hidden one; ValueError as
    `reveal`."""
    value = reveal(avp.attr_type, avp.hidden, secret, random_vector)
    if HEADER_LEN + len(value) > MAX_LENGTH:
        raise ValueError(f"original value of {len(value)} bytes does not fit an AVP")
    bits = (avp.M << 15) | (HEADER_LEN + len(value))
    return Avp(struct.pack("!HHH", bits, avp.vendor_id, avp.attr_type) + value)


def challenge_response(message_type: int | str, secret: bytes | str, challenge: bytes) -> bytes:
    """RFC 2661 5.1.1: MD5(CHAP id + secret + challenge), the CHAP id being the type of the message that carries
    the response: 2 (SCCRP) answering an SCCRQ's challenge, 3 (SCCCN) answering an SCCRP's."""
    code = MESSAGE_CODES[message_type] if isinstance(message_type, str) else message_type
    return _md5(bytes([code]), _bytes(secret), challenge)
