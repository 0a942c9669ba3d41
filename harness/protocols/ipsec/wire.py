"""What the wire shows of an IKEv2/ESP exchange: the IKE messages in the clear and the ESP flows.

Interop failures are judged from the capture, not from either implementation's own account: a peer that
logs "proposal mismatch" and a peer that logs nothing at all look the same on the wire -- an IKE_SA_INIT
answered by N(NO_PROPOSAL_CHOSEN) -- and that is what a verdict should rest on.

The capture reader (harness.packets) gives the IP datagrams, reassembled, and the dispatch table
(harness.protocols.dispatch) says which are IPsec's. From the IP payload on we decode the bytes ourselves: scapy
binds IKEv2 to UDP 500 only, NAT-T and ISAKMP bindings depend on which scapy modules happen to be loaded, and
rebuilding a dissected packet would recompute the very length fields whose damage we want to count. Nothing is
decrypted here.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace

from harness.packets import Datagram, Datagrams
from harness.protocols.dispatch import claim
from harness.protocols.ipsec.ikev2_names import KEY_EXCHANGE_METHODS

IKE_PORT = 500
NAT_T_PORT = 4500                      # RFC 3948: IKE behind a marker, and ESP-in-UDP, share this port
IPSEC_PORTS = (IKE_PORT, NAT_T_PORT)
IPPROTO_UDP = 17
IPPROTO_ESP = 50
PROTOCOL = "ipsec"                     # its rows in the dispatch table

NON_ESP_MARKER = bytes(4)              # RFC 3948 2.2: an ESP SPI is never zero, so four zero bytes mean IKE
NAT_KEEPALIVE = b"\xff"                # RFC 3948 2.3: keeps the NAT mapping open; neither IKE nor ESP

UDP_HEADER = struct.Struct("!HHHH")                # sport, dport, length, checksum
ESP_HEADER = struct.Struct("!II")                  # spi, sequence number
IKE_HEADER = struct.Struct("!8s8sBBBBII")          # ispi, rspi, next payload, version, exchange, flags, id, length
GENERIC_PAYLOAD_HEADER = struct.Struct("!BBH")     # next payload, critical/reserved, length
NOTIFY_HEADER = struct.Struct("!BBH")              # protocol id, spi size, notify type

IKEV2_MAJOR_VERSION = 2
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
FIRST_STATUS_NOTIFY = 16384            # RFC 7296 3.10.1: types below this are errors

# RFC 7296 3.1 and the IANA "IKEv2 Exchange Types" registry.
EXCHANGE_TYPES = {
    34: "IKE_SA_INIT",
    35: "IKE_AUTH",
    36: "CREATE_CHILD_SA",
    37: "INFORMATIONAL",
    38: "IKE_SESSION_RESUME",          # RFC 5723
    43: "IKE_INTERMEDIATE",            # RFC 9242
    44: "IKE_FOLLOWUP_KE",             # RFC 9370
}

# RFC 7296 3.2 and the IANA "IKEv2 Payload Types" registry. Names are single words so a transcript line
# can be split on spaces.
PAYLOAD_TYPES = {
    33: "SA",
    34: "KE",
    35: "IDi",
    36: "IDr",
    37: "CERT",
    38: "CERTREQ",
    39: "AUTH",
    40: "Nonce",
    41: "Notify",
    42: "Delete",
    43: "VendorID",
    44: "TSi",
    45: "TSr",
    46: "Encrypted",                   # SK
    47: "CP",
    48: "EAP",
    49: "GSPM",                        # RFC 6467
    50: "IDg",                         # G-IKEv2
    51: "GSA",
    52: "KD",
    53: "EncryptedFragment",           # SKF, RFC 7383
    54: "PS",                          # RFC 8019
}
NOTIFY_PAYLOAD = 41
# SK and SKF are always last; the next-payload field in their header names the first payload *inside* the
# ciphertext, so the chain in the clear ends with them.
ENCRYPTED_PAYLOADS = frozenset({46, 53})

# The IANA "IKEv2 Notify Message Types" registry (RFC 7296 3.10.1 and its extensions).
NOTIFY_TYPES = {
    # Error types
    1: "UNSUPPORTED_CRITICAL_PAYLOAD",
    4: "INVALID_IKE_SPI",
    5: "INVALID_MAJOR_VERSION",
    7: "INVALID_SYNTAX",
    9: "INVALID_MESSAGE_ID",
    11: "INVALID_SPI",
    14: "NO_PROPOSAL_CHOSEN",
    17: "INVALID_KE_PAYLOAD",
    24: "AUTHENTICATION_FAILED",
    34: "SINGLE_PAIR_REQUIRED",
    35: "NO_ADDITIONAL_SAS",
    36: "INTERNAL_ADDRESS_FAILURE",
    37: "FAILED_CP_REQUIRED",
    38: "TS_UNACCEPTABLE",
    39: "INVALID_SELECTORS",
    40: "UNACCEPTABLE_ADDRESSES",          # RFC 4555
    41: "UNEXPECTED_NAT_DETECTED",         # RFC 4555
    42: "USE_ASSIGNED_HoA",                # RFC 5026
    43: "TEMPORARY_FAILURE",
    44: "CHILD_SA_NOT_FOUND",
    45: "INVALID_GROUP_ID",                # RFC 6407
    46: "AUTHORIZATION_FAILED",            # RFC 6407
    47: "STATE_NOT_FOUND",                 # RFC 9370
    48: "TS_MAX_QUEUE",                    # RFC 9611
    # Status types
    16384: "INITIAL_CONTACT",
    16385: "SET_WINDOW_SIZE",
    16386: "ADDITIONAL_TS_POSSIBLE",
    16387: "IPCOMP_SUPPORTED",
    16388: "NAT_DETECTION_SOURCE_IP",
    16389: "NAT_DETECTION_DESTINATION_IP",
    16390: "COOKIE",
    16391: "USE_TRANSPORT_MODE",
    16392: "HTTP_CERT_LOOKUP_SUPPORTED",
    16393: "REKEY_SA",
    16394: "ESP_TFC_PADDING_NOT_SUPPORTED",
    16395: "NON_FIRST_FRAGMENTS_ALSO",
    16396: "MOBIKE_SUPPORTED",             # RFC 4555
    16397: "ADDITIONAL_IP4_ADDRESS",
    16398: "ADDITIONAL_IP6_ADDRESS",
    16399: "NO_ADDITIONAL_ADDRESSES",
    16400: "UPDATE_SA_ADDRESSES",
    16401: "COOKIE2",
    16402: "NO_NATS_ALLOWED",
    16403: "AUTH_LIFETIME",                # RFC 4478
    16404: "MULTIPLE_AUTH_SUPPORTED",      # RFC 4739
    16405: "ANOTHER_AUTH_FOLLOWS",
    16406: "REDIRECT_SUPPORTED",           # RFC 5685
    16407: "REDIRECT",
    16408: "REDIRECTED_FROM",
    16409: "TICKET_LT_OPAQUE",             # RFC 5723
    16410: "TICKET_REQUEST",
    16411: "TICKET_ACK",
    16412: "TICKET_NACK",
    16413: "TICKET_OPAQUE",
    16414: "LINK_ID",                      # RFC 5739
    16415: "USE_WESP_MODE",                # RFC 5840
    16416: "ROHC_SUPPORTED",               # RFC 5857
    16417: "EAP_ONLY_AUTHENTICATION",      # RFC 5998
    16418: "CHILDLESS_IKEV2_SUPPORTED",    # RFC 6023
    16419: "QUICK_CRASH_DETECTION",        # RFC 6290
    16420: "IKEV2_MESSAGE_ID_SYNC_SUPPORTED",  # RFC 6311
    16421: "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED",
    16422: "IKEV2_MESSAGE_ID_SYNC",
    16423: "IPSEC_REPLAY_COUNTER_SYNC",
    16424: "SECURE_PASSWORD_METHODS",      # RFC 6467
    16425: "PSK_PERSIST",                  # RFC 6631
    16426: "PSK_CONFIRM",
    16427: "ERX_SUPPORTED",                # RFC 6867
    16428: "IFOM_CAPABILITY",
    16429: "SENDER_REQUEST_ID",            # G-IKEv2
    16430: "IKEV2_FRAGMENTATION_SUPPORTED",  # RFC 7383
    16431: "SIGNATURE_HASH_ALGORITHMS",    # RFC 7427
    16432: "CLONE_IKE_SA_SUPPORTED",       # RFC 7791
    16433: "CLONE_IKE_SA",
    16434: "PUZZLE",                       # RFC 8019
    16435: "USE_PPK",                      # RFC 8784
    16436: "PPK_IDENTITY",
    16437: "NO_PPK_AUTH",
    16438: "INTERMEDIATE_EXCHANGE_SUPPORTED",  # RFC 9242
    16439: "IP4_ALLOWED",                  # RFC 8983
    16440: "IP6_ALLOWED",
    16441: "ADDITIONAL_KEY_EXCHANGE",      # RFC 9370
    16442: "USE_AGGFRAG",                  # RFC 9347
    16443: "SUPPORTED_AUTH_METHODS",       # RFC 9593
    16444: "SA_RESOURCE_INFO",             # RFC 9611
}

def _name(table: dict[int, str], number: int) -> str:
    return table.get(number, str(number))


def _check_known(name: str, table: dict[int, str], what: str) -> None:
    """A misspelt name would otherwise quietly match nothing, and "no such notify" would pass a test."""
    if name not in table.values() and not name.isdigit():
        raise ValueError(f"unknown {what} {name!r}")


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Notify:
    name: str
    type: int
    data: bytes

    @property
    def is_error(self) -> bool:
        return self.type < FIRST_STATUS_NOTIFY

    @property
    def group(self) -> str | None:
        """The Key Exchange Method an INVALID_KE_PAYLOAD asks for (RFC 7296 3.10.1: its two data bytes), by its
        IANA name ("MODP_2048"); None for any other notify, or data of another size."""
        if self.name != "INVALID_KE_PAYLOAD" or len(self.data) != 2:
            return None
        return _name(KEY_EXCHANGE_METHODS, int.from_bytes(self.data, "big"))

    def describe(self) -> str:
        """Error data is shown because it usually carries the answer (INVALID_KE_PAYLOAD: the group wanted)."""
        if self.is_error and self.data:
            shown = self.data[:16].hex() + ("..." if len(self.data) > 16 else "")
            return f"N({self.name}:{shown})"
        return f"N({self.name})"


class NotifyLookup:
    """notify()/errors for anything with a `notifies` tuple: a message as seen on the wire or decrypted."""
    notifies: tuple[Notify, ...]

    def notify(self, name: str) -> Notify | None:
        _check_known(name, NOTIFY_TYPES, "notify type")
        return next((n for n in self.notifies if n.name == name), None)

    @property
    def errors(self) -> tuple[Notify, ...]:
        return tuple(n for n in self.notifies if n.is_error)


@dataclass(frozen=True)
class IkeMessage(NotifyLookup):
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    ispi: bytes
    rspi: bytes
    exchange: str
    message_id: int
    is_initiator: bool
    is_response: bool
    payloads: tuple[str, ...]
    notifies: tuple[Notify, ...]
    encrypted: bool
    # The whole message as sent (IKE header on, no non-ESP marker): what the SK payload's integrity checksum
    # covers, so the transcript can decrypt it. Not compared: two sightings of a message are the same message.
    data: bytes = field(default=b"", repr=False, compare=False)

    def describe(self) -> str:
        """One line; "(I)"/"(R)" is the sender's role in the IKE SA (the I flag), not the request/response."""
        kind = "response" if self.is_response else "request"
        role = "I" if self.is_initiator else "R"
        notifies = iter(self.notifies)
        payloads = [next(notifies).describe() if p == "Notify" else p for p in self.payloads]
        return " ".join([f"{self.time:.3f}", _endpoint(self.src, self.sport), "->", _endpoint(self.dst, self.dport),
                         self.exchange, f"#{self.message_id}", f"{kind}({role})", *payloads])


class IkeMessages(tuple):
    """IKE messages in capture order; a tuple, so tests can index, slice and compare it."""

    def describe(self) -> str:
        return "\n".join(m.describe() for m in self) or "no IKE messages on the wire"


def first_sendings(messages, key):
    """Messages without their retransmissions: the first of each run of byte-identical messages."""
    seen, kept = set(), []
    for message in messages:
        data = key(message)
        if not data or data not in seen:
            kept.append(message)
            seen.add(data)
    return kept


# RFC 4303 2: what ESP adds to the packet it carries, per transform (IANA names, as the scenario spells them).
OUTER_IP = {4: 20, 6: 40}               # the outer header of a tunnel-mode SA, without options
UDP_ENCAPSULATION = 8                   # RFC 3948 2.1: ESP in UDP, after NAT detection or where ESP cannot go
ESP_TRAILER = 2                         # RFC 4303 2.5, 2.6: Pad Length and Next Header
ESP_MAX_PADDING = 255                   # RFC 4303 2.4: the Pad Length field is one byte
ESP_ALIGNMENT = 4                       # RFC 4303 2.4: the trailer ends on a 4-byte boundary whatever the cipher
_AES_BITS = (128, 192, 256)
# Encryption transform -> (IV bytes, cipher block bytes the padding fills up to, ICV of a combined-mode cipher).
ESP_CIPHERS: dict[str, tuple[int, int, int]] = {
    "ENCR_NULL": (0, 1, 0),                                                             # RFC 2410
    "ENCR_3DES": (8, 8, 0),                                                             # RFC 2451
    **{f"ENCR_AES_CBC_{bits}": (16, 16, 0) for bits in _AES_BITS},                      # RFC 3602
    **{f"ENCR_AES_CTR_{bits}": (8, 1, 0) for bits in _AES_BITS},                        # RFC 3686
    **{f"ENCR_AES_GCM_{icv}_{bits}": (8, 1, icv) for icv in (8, 12, 16) for bits in _AES_BITS},  # RFC 4106
    **{f"ENCR_AES_CCM_{icv}_{bits}": (8, 1, icv) for icv in (8, 12, 16) for bits in _AES_BITS},  # RFC 4309
    **{f"ENCR_NULL_AUTH_AES_GMAC_{bits}": (8, 1, 16) for bits in _AES_BITS},            # RFC 4543
    "ENCR_CHACHA20_POLY1305": (8, 1, 16),                                               # RFC 7634
}
# Integrity transform -> ICV bytes (the truncated length the transform's name carries).
ESP_INTEGRITY_ICV: dict[str | None, int] = {
    None: 0, "NONE": 0,                                 # a combined-mode cipher brings its own ICV
    "AUTH_HMAC_MD5_96": 12, "AUTH_HMAC_SHA1_96": 12,    # RFC 2403, 2404
    "AUTH_AES_XCBC_96": 12, "AUTH_AES_CMAC_96": 12,     # RFC 3566, 4494
    "AUTH_HMAC_SHA2_256_128": 16, "AUTH_HMAC_SHA2_384_192": 24, "AUTH_HMAC_SHA2_512_256": 32,  # RFC 4868
}


def esp_overheads(encryption: str, integrity: str | None, inner_length: int, *, encapsulated: bool,
                  ip_version: int = 4) -> tuple[int, ...]:
    """Every number of bytes a tunnel-mode ESP packet may add to an inner packet of `inner_length` bytes with
    these transforms, smallest (the least padding) first: the outer IP header, UDP if encapsulated, SPI and
    sequence number (8), the IV, padding, Pad Length and Next Header (2), the ICV. RFC 4303 2.4: the padding
    fills the encrypted part up to the cipher's block and puts the trailer on a 4-byte boundary, and a sender
    may add more, in whole blocks, up to 255 bytes (so from lengths alone, transforms whose fixed part differs by
    whole blocks cannot be told apart). TFC padding (2.7) is not counted: no scenario asks for it. Raises
    ValueError for a transform not in the tables: a guess would make the check pass or fail for nothing."""
    if encryption not in ESP_CIPHERS:
        raise ValueError(f"no ESP overhead known for encryption transform {encryption!r}")
    if integrity not in ESP_INTEGRITY_ICV:
        raise ValueError(f"no ESP overhead known for integrity transform {integrity!r}")
    iv, block, aead_icv = ESP_CIPHERS[encryption]
    alignment = math.lcm(block, ESP_ALIGNMENT)
    fixed = (OUTER_IP[ip_version] + (UDP_ENCAPSULATION if encapsulated else 0) + ESP_HEADER.size + iv
             + ESP_TRAILER + aead_icv + ESP_INTEGRITY_ICV[integrity])
    least = -(inner_length + ESP_TRAILER) % alignment
    return tuple(fixed + padding for padding in range(least, ESP_MAX_PADDING + 1, alignment))


@dataclass(frozen=True)
class EspFlow:
    """The ESP packets of one SA in one direction. first_seq/last_seq are in capture order, so a reset
    sequence counter or a replay shows up as last_seq < first_seq rather than being smoothed over."""
    spi: int
    src: str
    dst: str
    encapsulated: bool
    packets: int
    first_seq: int
    last_seq: int

    def describe(self) -> str:
        carrier = "in UDP" if self.encapsulated else "plain"
        return (f"ESP spi=0x{self.spi:08x} {self.src} -> {self.dst} {carrier} "
                f"packets={self.packets} seq={self.first_seq}..{self.last_seq}")


@dataclass(frozen=True)
class Wire:
    messages: IkeMessages = IkeMessages()
    flows: tuple[EspFlow, ...] = ()
    malformed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", IkeMessages(self.messages))  # so .describe() works on any input
        object.__setattr__(self, "flows", tuple(self.flows))

    @classmethod
    def from_pcap(cls, path) -> Wire:
        """Never raises: a missing, empty or unreadable capture is an empty Wire, so a verdict can say
        "nothing on the wire" instead of the harness crashing on the evidence. `path`: a capture file, "-", or a
        harness.packets.Capture already read."""
        transcript = _Transcript()
        transcript.read(path)
        return transcript.wire()

    def ike(self, exchange: str | None = None, *, retransmissions: bool = False) -> IkeMessages:
        """The IKE messages in capture order (of one exchange type, if given), each message once: a
        retransmission is the same message byte for byte (RFC 7296 2.1) and is left out unless asked for, so
        a case judges the conversation, not how often a busy peer had to repeat itself."""
        if exchange is not None:
            _check_known(exchange, EXCHANGE_TYPES, "exchange")
        chosen = [m for m in self.messages if exchange is None or m.exchange == exchange]
        return IkeMessages(chosen if retransmissions else first_sendings(chosen, key=lambda m: m.data))

    def esp(self) -> tuple[EspFlow, ...]:
        return self.flows

    def esp_between(self, src: str, dst: str) -> tuple[EspFlow, ...]:
        return tuple(f for f in self.flows if f.src == src and f.dst == dst)

    def describe(self) -> str:
        lines = [self.messages.describe()]
        lines += [f.describe() for f in self.flows] or ["no ESP on the wire"]
        if self.malformed:
            lines.append(f"{self.malformed} malformed packet(s) skipped")
        return "\n".join(lines)


class _Malformed(Exception):
    """The bytes contradict themselves (a length overruns the message) or are not IKEv2 at all."""


def _decode_ike(data: bytes, *, time: float, src: str, dst: str, sport: int, dport: int) -> IkeMessage:
    """Decode an IKEv2 message (without any non-ESP marker); raises _Malformed rather than guessing."""
    if len(data) < IKE_HEADER.size:
        raise _Malformed("shorter than an IKE header")
    ispi, rspi, next_payload, version, exchange, flags, message_id, length = IKE_HEADER.unpack_from(data)
    if version >> 4 != IKEV2_MAJOR_VERSION:
        raise _Malformed(f"IKE major version {version >> 4}")
    if not IKE_HEADER.size <= length <= len(data):
        raise _Malformed(f"message length {length} with {len(data)} bytes on the wire")
    payloads: list[str] = []
    notifies: list[Notify] = []
    offset = IKE_HEADER.size
    while next_payload:
        if offset + GENERIC_PAYLOAD_HEADER.size > length:
            raise _Malformed("payload chain runs past the message")
        following, _critical, payload_length = GENERIC_PAYLOAD_HEADER.unpack_from(data, offset)
        if payload_length < GENERIC_PAYLOAD_HEADER.size or offset + payload_length > length:
            raise _Malformed(f"payload length {payload_length} at offset {offset} overruns the message")
        payloads.append(_name(PAYLOAD_TYPES, next_payload))
        if next_payload == NOTIFY_PAYLOAD:
            notifies.append(_decode_notify(data[offset + GENERIC_PAYLOAD_HEADER.size:offset + payload_length]))
        if next_payload in ENCRYPTED_PAYLOADS:
            break
        next_payload = following
        offset += payload_length
    return IkeMessage(time=time, src=src, dst=dst, sport=sport, dport=dport, ispi=ispi, rspi=rspi,
                      exchange=_name(EXCHANGE_TYPES, exchange), message_id=message_id,
                      is_initiator=bool(flags & FLAG_INITIATOR), is_response=bool(flags & FLAG_RESPONSE),
                      payloads=tuple(payloads), notifies=tuple(notifies),
                      encrypted=next_payload in ENCRYPTED_PAYLOADS, data=bytes(data[:length]))


def _decode_notify(body: bytes) -> Notify:
    if len(body) < NOTIFY_HEADER.size:
        raise _Malformed("notify payload shorter than its header")
    _protocol, spi_size, notify_type = NOTIFY_HEADER.unpack_from(body)
    if NOTIFY_HEADER.size + spi_size > len(body):
        raise _Malformed("notify SPI overruns the payload")
    return Notify(name=_name(NOTIFY_TYPES, notify_type), type=notify_type,
                  data=bytes(body[NOTIFY_HEADER.size + spi_size:]))


class _Transcript:
    """Accumulates what one capture shows, datagram by datagram, in capture order. The capture reader
    (harness.packets) gives whole IP datagrams (reassembled: an IKE_AUTH carrying certificates outgrows the MTU
    when IKE fragmentation, RFC 7383, is not negotiated, and the kernel fragments it at the IP layer); the
    dispatch table (harness.protocols.dispatch) says which are IPsec's."""

    def __init__(self) -> None:
        self.messages: list[IkeMessage] = []
        self.flows: dict[tuple[int, str, str], EspFlow] = {}
        self.malformed = 0
        self.datagram: Datagram | None = None  # the one being read (its frame number, its fragments)

    def wire(self) -> Wire:
        return Wire(IkeMessages(self.messages), tuple(self.flows.values()), self.malformed)

    def read(self, source) -> None:
        """A capture: a path, "-", or a harness.packets.Capture already read."""
        datagrams = Datagrams(source)
        for datagram in datagrams:
            try:
                self.add(datagram)
            except Exception:  # one undecodable datagram must not cost the rest of the transcript
                self.malformed += 1
        self.malformed += datagrams.damaged

    def add(self, datagram: Datagram) -> None:
        """One IP datagram of the capture: read if the dispatch table gives it to IPsec. One whose fragments did
        not all come is truncated evidence: counted malformed."""
        row = claim(datagram)
        if row is None or row.protocol != PROTOCOL:
            return
        self.datagram = datagram
        if not datagram.complete:
            self.malformed += 1
            return
        self._add_datagram(datagram.time, datagram.src, datagram.dst, datagram.proto, datagram.payload)

    def _add_datagram(self, time: float, src: str, dst: str, protocol: int, payload: bytes) -> None:
        if protocol == IPPROTO_ESP:
            self._add_esp(src, dst, payload, encapsulated=False)
        elif protocol == IPPROTO_UDP:
            self._add_udp(time, src, dst, payload)

    def _add_udp(self, time: float, src: str, dst: str, segment: bytes) -> None:
        if len(segment) < 4:
            return  # not even the ports: nothing says this was IPsec
        sport, dport = struct.unpack_from("!HH", segment)
        # As the dispatch table decides (harness.protocols.dispatch): the lower port first. A NAT may have
        # rewritten either, but one side of NAT-T always talks from or to 4500 itself.
        ours = [port for port in sorted((sport, dport)) if port in IPSEC_PORTS]
        if not ours:
            return
        port = ours[0]
        if len(segment) < UDP_HEADER.size:
            self.malformed += 1
            return
        udp_length = UDP_HEADER.unpack_from(segment)[2]
        if not UDP_HEADER.size <= udp_length <= len(segment):
            self.malformed += 1
            return
        body = segment[UDP_HEADER.size:udp_length]
        if port == IKE_PORT:
            self._add_ike(body, time=time, src=src, dst=dst, sport=sport, dport=dport)
        elif body == NAT_KEEPALIVE:
            return
        elif body[:len(NON_ESP_MARKER)] == NON_ESP_MARKER:
            self._add_ike(body[len(NON_ESP_MARKER):], time=time, src=src, dst=dst, sport=sport, dport=dport)
        else:
            self._add_esp(src, dst, body, encapsulated=True)

    def _add_ike(self, data: bytes, **where) -> None:
        try:
            self.messages.append(_decode_ike(data, **where))
        except _Malformed:
            self.malformed += 1

    def _add_esp(self, src: str, dst: str, data: bytes, *, encapsulated: bool) -> None:
        if len(data) < ESP_HEADER.size:
            self.malformed += 1
            return
        spi, seq = ESP_HEADER.unpack_from(data)
        key = (spi, src, dst)
        flow = self.flows.get(key)
        if flow is None:
            self.flows[key] = EspFlow(spi, src, dst, encapsulated, packets=1, first_seq=seq, last_seq=seq)
        else:
            self.flows[key] = replace(flow, packets=flow.packets + 1, last_seq=seq,
                                      encapsulated=flow.encapsulated or encapsulated)

