"""What the wire shows of an IKE/ESP exchange: the IKE messages (IKEv2 and IKEv1) in the clear and the ESP flows.

Interop failures are judged from the capture, not from either implementation's own account: a peer that
logs "proposal mismatch" and a peer that logs nothing at all look the same on the wire -- an IKE_SA_INIT
answered by N(NO_PROPOSAL_CHOSEN) -- and that is what a verdict should rest on.

The capture reader (harness.packets) gives the IP datagrams, reassembled, and the dispatch table
(harness.protocols.dispatch) says which are IPsec's. From the IP payload on we decode the bytes ourselves: scapy
binds IKEv2 to UDP 500 only, NAT-T and ISAKMP bindings depend on which scapy modules happen to be loaded. An IKE
message is read by the one description of IKE (harness.protocols.ipsec.ike), which checks every length against the
bytes: a damaged message keeps what could be read and says why the rest could not. Nothing is decrypted here.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace
from functools import cached_property

from harness.packets import Datagram, Datagrams
from harness.textfmt import message_line
from harness.protocols.dispatch import claim
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.ike import KNOWN_EXCHANGES, PayloadLookup, check_known

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

FLAG_INITIATOR = ike.FLAG_INITIATOR
FLAG_RESPONSE = ike.FLAG_RESPONSE



def nat_detection_hash(ispi: bytes, rspi: bytes, address: str, port: int) -> bytes:
    """RFC 7296 2.23: NAT_DETECTION_SOURCE_IP/_DESTINATION_IP carry SHA-1(SPIi | SPIr | IP address | port), the
    address and port the message was sent from (source) or to (destination). A receiver that computes another
    value for what it saw knows a NAT is between (or the sender faked it to force UDP encapsulation)."""
    import hashlib
    import ipaddress
    return hashlib.sha1(ispi + rspi + ipaddress.ip_address(address).packed + struct.pack("!H", port)).digest()


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class IkeMessage(PayloadLookup):
    """One IKE message as the wire shows it: where it was seen, and its bytes, read by the IKE description
    (harness.protocols.ipsec.ike) the first time a field is asked for. IKEv2 and IKEv1 alike; the payloads are
    typed layers (`payload("KE").group`, `notify("COOKIE").cookie`), those in the clear: SK/SKF and IKEv1's
    encrypted body are opened by the transcript (decrypt_ike). A damaged message is still a message: `problem`
    says what could not be read, and the payloads before the damage are there."""
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    # The whole message as sent (IKE header on, no non-ESP marker): what the SK payload's integrity checksum
    # covers, so the transcript can decrypt it; two sightings are the same message when these bytes are.
    data: bytes = field(repr=False)
    frame: int | None = field(default=None, compare=False)  # as Wireshark numbers it
    start: float | None = field(default=None, compare=False)  # the capture's first frame: times count from it

    @cached_property
    def decoded(self) -> ike.Isakmp:
        return ike.decode(self.data)

    @cached_property
    def problem(self) -> str | None:
        """Why (part of) the message could not be read, or None when all of it was."""
        return ike.said(ike.problems(self.decoded))

    @property
    def version(self) -> int:
        return self.decoded.major

    @property
    def ispi(self) -> bytes:
        """IKEv2's initiator SPI, IKEv1's initiator cookie."""
        return self.decoded.ispi

    @property
    def rspi(self) -> bytes:
        return self.decoded.rspi

    icookie, rcookie = ispi, rspi

    @property
    def exchange(self) -> ike.Name:
        """"IKE_SA_INIT", "Main Mode", "Quick Mode", ... (the number itself when no registry names it)."""
        return self.decoded.exchange

    @property
    def message_id(self) -> int:
        return self.decoded.message_id

    @property
    def flags(self) -> int:
        return int(self.decoded.flags)

    @property
    def flag_names(self) -> tuple[str, ...]:
        """The header flags set, by their names in this version: IKEv1 E, C, A (RFC 2408 3.1); IKEv2 I, V, R."""
        names = ("E", "C", "A") if self.version == ike.IKEV1 else ("I", "V", "R")
        return tuple(name for name in names if self.flags & (1 << ike.HEADER_FLAGS.index(name)))

    @property
    def is_initiator(self) -> bool | None:
        """IKEv2's I flag: sent by the original initiator of the IKE SA. None for IKEv1, which has no such flag."""
        return bool(self.flags & FLAG_INITIATOR) if self.version == ike.IKEV2 else None

    @property
    def is_response(self) -> bool | None:
        """IKEv2's R flag. None for IKEv1, which has no such flag."""
        return bool(self.flags & FLAG_RESPONSE) if self.version == ike.IKEV2 else None

    @property
    def payloads(self) -> tuple:
        return tuple(self.decoded.payloads)

    @property
    def encrypted(self) -> bool:
        """IKEv2: an SK or SKF payload ends the chain; IKEv1: the E flag (the body is ciphertext)."""
        return self.decoded.encrypted

    @property
    def fragment(self) -> tuple[int, int] | None:
        """(number, total) of an IKEv2 fragment (SKF, RFC 7383: in the clear), else None."""
        found = next((p for p in self.payloads if isinstance(p, ike.EncryptedFragment)), None)
        return None if found is None else (found.fragment_number, found.total_fragments)

    def headline_tokens(self) -> list[str]:
        """A word per payload (a notify with its error's data); IKEv1's encrypted body is "encrypted"."""
        tokens = [p.summary() if isinstance(p, ike.NOTIFY_CLASSES) else str(p.kind) for p in self.payloads]
        if self.version == ike.IKEV1:
            if self.encrypted:
                tokens.append("encrypted")
            tokens += [f"({name}: {meaning})" for name, meaning in (("C", "commit"), ("A", "authentication only"))
                       if name in self.flag_names]
        return tokens

    def _headline_words(self) -> list[str]:
        """headline_tokens() with long runs of one word said once with their count ("Notify x200")."""
        words: list[str] = []
        tokens = self.headline_tokens()
        start = 0
        while start < len(tokens):
            end = start
            while end < len(tokens) and tokens[end] == tokens[start]:
                end += 1
            words += [tokens[start]] * (end - start) if end - start <= 3 else [f"{tokens[start]} x{end - start}"]
            start = end
        return words

    def headline(self) -> str:
        """One line, in the layout every transcript shares (harness.textfmt: frame, time since the capture's first
        frame, endpoints), then the exchange, the message ID, request/response and "(I)"/"(R)" (the sender's role
        in the IKE SA, IKEv2's I flag), the SPIs (IKEv1: the cookies) and a word per payload. IKEv1 has neither
        flag, and shows its message ID in hex (phase 2 IDs are random)."""
        if self.version == ike.IKEV2:
            kind = "response" if self.is_response else "request"
            role = "I" if self.is_initiator else "R"
            what = [f"mid={self.message_id}", f"{kind}({role})", f"ispi=0x{self.ispi.hex()}",
                    f"rspi=0x{self.rspi.hex()}"]
        else:
            what = [f"mid=0x{self.message_id:08x}" if self.message_id else "mid=0", f"icookie=0x{self.ispi.hex()}",
                    f"rcookie=0x{self.rspi.hex()}"]
        return message_line(self.frame or 0, self.time, self.time if self.start is None else self.start, self.src,
                            self.dst, " ".join([str(self.exchange), *what, *self._headline_words()]),
                            self.sport, self.dport)

    def describe(self) -> str:
        """The headline, and for a damaged message a line saying what could not be read."""
        return f"{self.headline()}\n    malformed: {self.problem}" if self.problem else self.headline()


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
class Keepalive:
    """A NAT-keepalive (RFC 3948 2.3): one 0xFF byte on the NAT-T port, neither IKE nor ESP."""
    time: float
    src: str
    dst: str
    sport: int
    dport: int

    def describe(self) -> str:
        return f"NAT-keepalive {_endpoint(self.src, self.sport)} > {_endpoint(self.dst, self.dport)}"


@dataclass(frozen=True)
class Wire:
    messages: IkeMessages = IkeMessages()
    flows: tuple[EspFlow, ...] = ()
    malformed: int = 0
    keepalives: tuple[Keepalive, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", IkeMessages(self.messages))  # so .describe() works on any input
        object.__setattr__(self, "flows", tuple(self.flows))
        object.__setattr__(self, "keepalives", tuple(self.keepalives))

    @classmethod
    def from_pcap(cls, path) -> Wire:
        """Never raises: a missing, empty or unreadable capture is an empty Wire, so a verdict can say
        "nothing on the wire" instead of the harness crashing on the evidence. `path`: a capture file, "-", or a
        harness.packets.Capture already read."""
        transcript = _Transcript()
        transcript.read(path)
        return transcript.wire()

    def ike(self, exchange: str | None = None, *, retransmissions: bool = False,
            damaged: bool = False) -> IkeMessages:
        """The IKE messages in capture order (of one exchange type, if given: "IKE_AUTH", "Quick Mode"), each
        message once: a retransmission is the same message byte for byte (RFC 7296 2.1) and is left out unless
        asked for, so a case judges the conversation, not how often a busy peer had to repeat itself. Damaged
        messages (`problem`) are left out too unless asked for: they are counted in `malformed`."""
        if exchange is not None:
            check_known(exchange, KNOWN_EXCHANGES, "exchange")
        chosen = [m for m in self.messages if (exchange is None or m.exchange == exchange)
                  and (damaged or m.problem is None)]
        return IkeMessages(chosen if retransmissions else first_sendings(chosen, key=lambda m: m.data))

    def esp(self) -> tuple[EspFlow, ...]:
        return self.flows

    def esp_between(self, src: str, dst: str) -> tuple[EspFlow, ...]:
        return tuple(f for f in self.flows if f.src == src and f.dst == dst)

    def describe(self) -> str:
        """Every IKE message, damaged ones with why; the ESP flows; what was neither shown nor readable."""
        lines = [self.messages.describe()]
        lines += [f.describe() for f in self.flows] or ["no ESP on the wire"]
        if self.keepalives:
            lines.append(f"{len(self.keepalives)} NAT-keepalive(s), the first: {self.keepalives[0].describe()}")
        skipped = self.malformed - sum(m.problem is not None for m in self.messages)
        if skipped > 0:
            lines.append(f"{skipped} malformed packet(s) skipped")
        return "\n".join(lines)


class _Malformed(Exception):
    """Not even an IKE header: fewer bytes than the 28 every ISAKMP and IKEv2 message starts with."""


def _decode_ike(data: bytes, *, time: float, src: str, dst: str, sport: int, dport: int,
                frame: int | None = None) -> IkeMessage:
    """The IKE message in a datagram (without any non-ESP marker), IKEv1 or IKEv2, damaged or not (its `problem`
    says); raises _Malformed only for fewer bytes than a header. The message ends where its header's length says
    when the datagram holds that much (what follows is not the message's)."""
    if len(data) < IKE_HEADER.size:
        raise _Malformed(f"{len(data)} byte(s), shorter than an IKE header")
    length = IKE_HEADER.unpack_from(data)[-1]
    whole = bytes(data[:length]) if IKE_HEADER.size <= length <= len(data) else bytes(data)
    return IkeMessage(time=time, src=src, dst=dst, sport=sport, dport=dport, data=whole, frame=frame)


class _Transcript:
    """Accumulates what one capture shows, datagram by datagram, in capture order. The capture reader
    (harness.packets) gives whole IP datagrams (reassembled: an IKE_AUTH carrying certificates outgrows the MTU
    when IKE fragmentation, RFC 7383, is not negotiated, and the kernel fragments it at the IP layer); the
    dispatch table (harness.protocols.dispatch) says which are IPsec's."""

    def __init__(self) -> None:
        self.messages: list[IkeMessage] = []
        self.flows: dict[tuple[int, str, str], EspFlow] = {}
        self.malformed = 0
        self.keepalives: list[Keepalive] = []
        self.datagram: Datagram | None = None  # the one being read (its frame number, its fragments)
        self.start: float | None = None  # the time of the capture's first frame

    def wire(self) -> Wire:
        start = self.start if self.start is not None else (self.messages[0].time if self.messages else None)
        messages = [replace(m, start=start) for m in self.messages]
        return Wire(IkeMessages(messages), tuple(self.flows.values()), self.malformed, tuple(self.keepalives))

    def read(self, source) -> None:
        """A capture: a path, "-", or a harness.packets.Capture already read."""
        datagrams = Datagrams(source)
        for datagram in datagrams:
            try:
                self.add(datagram)
            except Exception:  # one undecodable datagram must not cost the rest of the transcript
                self.malformed += 1
        self.malformed += datagrams.damaged
        self.start = datagrams.start

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
            self.keepalives.append(Keepalive(time, src, dst, sport, dport))
        elif body[:len(NON_ESP_MARKER)] == NON_ESP_MARKER:
            self._add_ike(body[len(NON_ESP_MARKER):], time=time, src=src, dst=dst, sport=sport, dport=dport)
        else:
            self._add_esp(src, dst, body, encapsulated=True)

    def _add_ike(self, data: bytes, **where) -> None:
        """A damaged message is kept (the transcript shows what could be read) and counted as malformed."""
        try:
            message = _decode_ike(data, frame=self.datagram.number if self.datagram else None, **where)
        except _Malformed:
            self.malformed += 1
            return
        self.messages.append(message)
        if message.problem is not None:
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

