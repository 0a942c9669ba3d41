"""The capture read back with the keys the daemons exported (or a person gave): every IKE message with its
payloads (opened where it was encrypted) and every ESP packet's inner packet.

    text = transcript(pcap, ike_keys, esp_keys)              # what a person reads (attached to each case)
    auth = decrypt_ike(wire, ike_keys).ike("IKE_AUTH")       # what a suite asserts on
    assert auth[-1].notify("AUTHENTICATION_FAILED"), auth.describe()
    assert auth[-1].payload("TSr").networks() == ("198.19.2.0/24",)
    inner = esp_inner(pcap, esp_keys)                        # [InnerPacket(spi, src, dst, packet, ...)]

Keys are matched to IKE SAs by SPIs where the daemon's export names them; keys exported without SPIs (zero
SPIs: an IKE SA created by a rekey, whose SPIs travel encrypted) are tried on every IKE SA and bound to the
one whose integrity checksum they verify, which no other key can. Either side's export is enough; both
sides' exports of the same SA count once. IKEv1 SAs are opened with IkeV1SaKeys (by initiator cookie, as
Wireshark's ikev1_decryption_table gives them), the cipher and the IV chain taken from the phase 1 on the wire.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Iterable

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from harness.protocols.ipsec import crypto, ike, wire
from harness.protocols.ipsec import ikev1_names as v1names
from harness.protocols.ipsec import ikev2_names as v2names
from harness.protocols.ipsec.ike import KNOWN_EXCHANGES, PayloadLookup, check_known
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, IkeV1SaKeys
from harness.protocols.ipsec.wire import EspFlow, IkeMessage, Wire
from harness.textfmt import message_line

NO_KEYS = "encrypted (no keys exported by either side)"
ESP_NO_KEYS = "ESP packets (no ESP keys: inner packets not shown):"
ESP_SA_NO_KEYS = "no keys for this SA: its inner packets are not shown"
UNKNOWN_SPI = bytes(8)


# --- IKE --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecryptedMessage(PayloadLookup):
    """One IKE message of the capture with its payloads: the clear ones, then those opened (of its SK payload, or
    of an IKEv1 message's encrypted body). The accessors are the wire message's: payload("IDi"), notify(...)."""
    message: IkeMessage
    payloads: tuple = ()
    problem: str | None = None                  # why (part of) it could not be read: NO_KEYS, "undecryptable: ..."
    fragment: tuple[int, int] | None = None     # (number, total) for an IKE fragment (SKF, RFC 7383)
    keys: IkeSaKeys | IkeV1SaKeys | None = field(default=None, repr=False, compare=False)  # what opened it

    @property
    def version(self) -> int:
        return self.message.version

    @property
    def exchange(self) -> ike.Name:
        return self.message.exchange

    @property
    def message_id(self) -> int:
        return self.message.message_id

    @property
    def is_response(self) -> bool | None:
        return self.message.is_response

    @property
    def is_initiator(self) -> bool | None:
        return self.message.is_initiator

    @property
    def decrypted(self) -> bool:
        """Encrypted on the wire and opened (for a fragment: the one that completed the message)."""
        return self.message.encrypted and self.problem is None and self.keys is not None

    def describe(self) -> str:
        """The wire's one-line summary, then one indented line per payload (or why there are none)."""
        lines = [self.message.headline()]
        clear = _clear(self.message)
        tokens = [t for p, t in zip(self.message.payloads, self.message.headline_tokens()) if not _sealed(p)]
        if self.fragment:
            number, total = self.fragment
            done = ": reassembled" if self.keys is not None and self.problem is None else ""
            lines.append(f"    fragment {number}/{total}{done}")
        for index, payload in enumerate(self.payloads):
            # A clear payload the headline already says in full is not repeated (a bare "KE" is not in full).
            if index < len(clear) and payload.describe() == tokens[index]:
                continue
            lines.append(f"    {payload.describe()}")
        if self.decrypted and len(self.payloads) == len(clear):
            lines.append("    (empty)")   # opened, and nothing inside: a liveness check, a bare Delete answer
        if self.problem:
            lines.append(f"    {self.problem}")
        return "\n".join(lines)


def _sealed(payload) -> bool:
    return isinstance(payload, (ike.Encrypted, ike.EncryptedFragment))


def _clear(message: IkeMessage) -> tuple:
    """The payloads in the clear, without the SK/SKF payload: that one is a container, said by what it opens to."""
    return tuple(p for p in message.payloads if not _sealed(p))


class DecryptedMessages(tuple):
    """Decrypted messages in capture order; a tuple, like wire.IkeMessages."""

    def ike(self, exchange: str | None = None, *, damaged: bool = False) -> DecryptedMessages:
        """Like Wire.ike(): of one exchange type if given, each message once (retransmissions left out), messages
        damaged on the wire left out unless asked for."""
        if exchange is not None:
            check_known(exchange, KNOWN_EXCHANGES, "exchange")
        chosen = [m for m in self if (exchange is None or m.exchange == exchange)
                  and (damaged or m.message.problem is None)]
        return DecryptedMessages(wire.first_sendings(chosen, key=lambda m: m.message.data))

    def describe(self) -> str:
        return "\n".join(m.describe() for m in self) or "no IKE messages on the wire"


def _same_secrets(keys: IkeSaKeys) -> tuple:
    return keys.encryption, keys.integrity, keys.sk_ei, keys.sk_er, keys.sk_ai, keys.sk_ar


def _spis_known(keys: IkeSaKeys) -> bool:
    return keys.ispi != UNKNOWN_SPI or keys.rspi != UNKNOWN_SPI


class _Keyring:
    """The IKE SA keys from both daemons, each bound to an SPI pair once known."""

    def __init__(self, keys: Iterable[IkeSaKeys]):
        distinct: dict[tuple, IkeSaKeys] = {}
        for k in keys:
            seen = distinct.get(_same_secrets(k))
            if seen is None or (_spis_known(k) and not _spis_known(seen)):
                distinct[_same_secrets(k)] = k
        self.empty = not distinct
        self.bound: dict[tuple[bytes, bytes], list[IkeSaKeys]] = {}
        self.unbound: list[IkeSaKeys] = []
        for k in distinct.values():
            if _spis_known(k):
                self.bound.setdefault((k.ispi, k.rspi), []).append(k)
            else:
                self.unbound.append(k)

    def open(self, message: IkeMessage) -> tuple[crypto.SkPlaintext | None, IkeSaKeys | None, str | None]:
        """(plaintext, the keys that opened it, problem). Keys bound to the message's SPIs that decrypt it into
        payloads without verifying it (a damaged message, a wrong integrity key) open it with the problem
        crypto.SHOWN_UNVERIFIED, or NOT_CHECKED where there was no integrity key; keys not bound to an IKE SA
        only ever open one they verify."""
        spis = (message.ispi, message.rspi)
        known = self.bound.get(spis, [])
        first_problem = None
        unverified = None
        for keys in known:
            opened = crypto.decrypt_sk(message.data, keys)
            if opened.ok:
                return opened, keys, None
            if unverified is None and opened.unverified and _payloads_in(opened):
                unverified = opened, keys
            first_problem = first_problem or opened.problem
        for keys in list(self.unbound):
            opened = crypto.decrypt_sk(message.data, keys)
            if opened.ok:  # only this IKE SA's keys verify its checksum: these are its keys
                self.unbound.remove(keys)
                keys = replace(keys, ispi=message.ispi, rspi=message.rspi)
                self.bound.setdefault(spis, []).append(keys)
                return opened, keys, None
        if unverified is not None:
            opened, keys = unverified
            return opened, keys, crypto.SHOWN_UNVERIFIED if opened.problem == crypto.ICV_MISMATCH else opened.problem
        if first_problem:
            return None, None, f"undecryptable: {first_problem}"
        return None, None, NO_KEYS

    def all(self) -> list[IkeSaKeys]:
        return [k for ks in self.bound.values() for k in ks] + self.unbound


def _payloads_in(opened: crypto.SkPlaintext) -> bool:
    """Whether an unverified decryption reads as payloads (a wrong key gives bytes that do not). A fragment
    after the first is a piece of a chain, not one: its padding having been right is all there is to go by."""
    if opened.fragment and opened.fragment[0] > 1:
        return True
    return (opened.first_payload in v2names.PAYLOAD_TYPES
            and ike.decode_chain(opened.first_payload, opened.chain, ike.IKEV2)[1] is None)


def _messages(capture: Wire | Iterable[IkeMessage] | str | os.PathLike) -> tuple[IkeMessage, ...]:
    if isinstance(capture, (str, os.PathLike)):
        return tuple(Wire.from_pcap(capture).messages)
    if isinstance(capture, Wire):
        return tuple(capture.messages)
    return tuple(capture)


def decrypt_ike(capture: Wire | Iterable[IkeMessage] | str | os.PathLike,
                ike_keys: Iterable[IkeSaKeys | IkeV1SaKeys] = ()) -> DecryptedMessages:
    """Every IKE message of the capture with its payloads, opened where the keys allow (IkeSaKeys for IKEv2,
    IkeV1SaKeys for IKEv1). Never raises on what the capture holds."""
    keys = list(ike_keys)
    return _decrypt(_messages(capture), _Keyring(k for k in keys if isinstance(k, IkeSaKeys)),
                    _V1Keyring(k for k in keys if isinstance(k, IkeV1SaKeys)))


def bind_ike_keys(capture: Wire | Iterable[IkeMessage] | str | os.PathLike,
                  ike_keys: Iterable[IkeSaKeys]) -> list[IkeSaKeys]:
    """The distinct IKEv2 keys, with the SPIs of the IKE SA they open filled in where the export lacked them (what
    the Wireshark key file needs). Keys that open nothing on the wire keep zero SPIs."""
    keyring = _Keyring(k for k in ike_keys if isinstance(k, IkeSaKeys))
    _decrypt(_messages(capture), keyring, _V1Keyring(()))
    return keyring.all()


def _decrypt(messages: tuple[IkeMessage, ...], keyring: _Keyring, v1: _V1Keyring) -> DecryptedMessages:
    fragments: dict[tuple, dict[int, tuple[crypto.SkPlaintext, str | None]]] = {}
    out = []
    for message in messages:
        clear = _clear(message)
        if message.problem is not None:
            out.append(DecryptedMessage(message, clear, f"malformed: {message.problem}"))
            continue
        if message.version == ike.IKEV1:
            out.append(v1.open(message) if message.encrypted else v1.observe(message))
            continue
        if not message.encrypted:
            out.append(DecryptedMessage(message, clear))
            continue
        if keyring.empty:
            out.append(DecryptedMessage(message, clear, NO_KEYS, fragment=message.fragment))
            continue
        opened, keys, problem = keyring.open(message)
        if opened is None:
            out.append(DecryptedMessage(message, clear, problem, fragment=message.fragment))
            continue
        first, chain = opened.first_payload, opened.chain
        if opened.fragment:
            number, total = opened.fragment
            key = (message.ispi, message.rspi, message.message_id, message.is_response, total)
            parts = fragments.setdefault(key, {})
            parts[number] = (opened, problem)
            if set(parts) != set(range(1, total + 1)):
                out.append(DecryptedMessage(message, clear, problem, fragment=opened.fragment))
                continue
            del fragments[key]
            first, chain = parts[1][0].first_payload, b"".join(parts[n][0].chain for n in range(1, total + 1))
            problem = next((p for _, p in parts.values() if p), None)   # one unverified part: the message is
        inner, malformed = ike.decode_chain(first, chain, ike.IKEV2)
        out.append(DecryptedMessage(message, clear + inner, problem or (malformed and f"malformed: {malformed}"),
                                    fragment=opened.fragment, keys=keys))
    return DecryptedMessages(out)


class _V1Sa:
    """What opening one IKEv1 SA's messages takes, learnt from its clear phase 1: who initiated, the chosen
    phase 1 transform, g^xi and g^xr; then the IV chain, per message ID (RFC 2409 Appendix B)."""

    def __init__(self) -> None:
        self.initiator: str | None = None
        self.transform = None                     # the phase 1 transform the last SA payload of phase 1 carried
        self.gxi: bytes | None = None
        self.gxr: bytes | None = None
        self.next_iv: dict[int, bytes] = {}       # message ID -> the IV of its next message; 0 is phase 1's
        self.opened: dict[bytes, tuple] = {}      # a retransmission opens as the first sending did

    def attribute(self, name: str):
        return self.transform.attribute(name) if self.transform is not None else None


class _V1Keyring:
    """IKEv1 SAs by initiator cookie: the keys given, and what the capture's clear phase 1 says of each."""

    def __init__(self, keys: Iterable[IkeV1SaKeys]):
        self.keys = {k.icookie: k for k in keys}
        self.sas: dict[bytes, _V1Sa] = {}

    def observe(self, message: IkeMessage) -> DecryptedMessage:
        """A clear message: note the initiator, the phase 1 transform chosen, the KE public values."""
        sa = self.sas.setdefault(message.ispi, _V1Sa())
        if sa.initiator is None and message.rspi == UNKNOWN_SPI:
            sa.initiator = message.src
        if message.message_id == 0:
            offered = [t for p in getattr(message.sa, "proposals", ()) if isinstance(p, ike.V1Proposal)
                       and p.protocol == v1names.PROTO_ISAKMP for t in p.transforms if isinstance(t, ike.V1Transform)]
            if offered:   # the responder's answer names one; the last SA seen in phase 1 is the one chosen
                sa.transform = offered[0]
            ke = message.payload("KE")
            if ke is not None and sa.initiator is not None:
                if message.src == sa.initiator and sa.gxi is None:
                    sa.gxi = ke.key_data
                elif message.src != sa.initiator and sa.gxr is None:
                    sa.gxr = ke.key_data
        return DecryptedMessage(message, message.payloads)

    def open(self, message: IkeMessage) -> DecryptedMessage:
        keys = self.keys.get(message.ispi)
        if keys is None:
            return DecryptedMessage(message, (), NO_KEYS)
        sa = self.sas.setdefault(message.ispi, _V1Sa())
        if message.data in sa.opened:
            payloads, problem = sa.opened[message.data]
            return DecryptedMessage(message, payloads, problem, keys=keys)
        payloads, problem = self._open(message, keys, sa)
        sa.opened[message.data] = (payloads, problem)
        return DecryptedMessage(message, payloads, problem, keys=keys)

    def _open(self, message: IkeMessage, keys: IkeV1SaKeys, sa: _V1Sa) -> tuple[tuple, str | None]:
        encryption = keys.encryption or sa.attribute("Encryption Algorithm")
        key_length = keys.key_length or sa.attribute("Key Length")
        hash_name = str(keys.hash or sa.attribute("Hash Algorithm"))
        if encryption is None:
            return (), "undecryptable: no phase 1 SA on the wire says the cipher (give it with the keys)"
        block = crypto.v1_block_size(str(encryption))
        if block is None:
            return (), f"undecryptable: unsupported algorithm {encryption}"
        phase1_iv = keys.iv
        if phase1_iv is None and sa.gxi is not None and sa.gxr is not None:
            phase1_iv = crypto.v1_phase1_iv(hash_name, sa.gxi, sa.gxr, block)
        message_id = message.message_id
        iv = sa.next_iv.get(message_id)
        if iv is None:
            # Phase 1 starts from its IV; another exchange from its ID and the last phase 1 block -- the phase 1 IV
            # itself when no phase 1 message was encrypted (Aggressive Mode in the clear).
            last_phase1 = sa.next_iv.get(0, phase1_iv)
            if last_phase1 is None:
                return (), "undecryptable: the phase 1 IV needs both KE payloads, and the capture lacks them"
            iv = last_phase1 if message_id == 0 else crypto.v1_phase2_iv(hash_name, last_phase1, message_id, block)
        if iv is None:
            return (), f"undecryptable: unsupported hash {hash_name} for the IV"
        body = message.decoded.encrypted_body or b""
        if body and len(body) % block == 0:   # the chain goes on from the ciphertext, whatever the key
            sa.next_iv[message_id] = body[-block:]
        opened = crypto.decrypt_v1(message.data, keys.enc_key, str(encryption), iv, key_length)
        if not opened.ok:
            return (), f"undecryptable: {opened.problem}"
        payloads, problem = ike.decode_chain(opened.first_payload, opened.chain, ike.IKEV1)
        if problem is not None:   # CBC has no checksum: a wrong key or IV shows as payloads that do not read
            return payloads, f"undecryptable: the opened payloads do not read (a wrong key or IV?): {problem}"
        return payloads, None


# --- ESP --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EspPacket:
    """One ESP packet as captured (from the SPI on), where the capture reader (harness.packets) found it."""
    time: float
    src: str
    dst: str
    spi: int
    seq: int
    data: bytes = field(repr=False)
    encapsulated: bool = False
    frame: int = 0                   # the frame that completed its datagram, as Wireshark numbers it (0: not read)
    sport: int | None = None         # ESP in UDP (RFC 3948): the ports; None for plain ESP
    dport: int | None = None
    start: float | None = None       # the time of the capture's first frame

    def describe(self) -> str:
        """"#12 0.047114 198.18.1.2:4500 > 198.18.1.3:4500 ESP spi=0xe0e82121 seq=1": the line every transcript
        starts a message with (harness.textfmt)."""
        return message_line(self.frame, self.time, self.time if self.start is None else self.start, self.src,
                            self.dst, f"ESP spi=0x{self.spi:08x} seq={self.seq}", self.sport, self.dport)


class _Reader(wire._Transcript):
    """wire.py's reading of a capture (NAT-T demultiplexing, the dispatch table), also keeping each ESP packet's
    bytes, frame number, time and ports, from the datagram the capture reader gave: the Wire keeps per-flow
    counts only."""

    def __init__(self) -> None:
        super().__init__()
        self.esp_packets: list[EspPacket] = []

    def _add_esp(self, src: str, dst: str, data: bytes, *, encapsulated: bool) -> None:
        super()._add_esp(src, dst, data, encapsulated=encapsulated)
        datagram = self.datagram
        if len(data) >= wire.ESP_HEADER.size and datagram is not None:
            spi, seq = wire.ESP_HEADER.unpack_from(data)
            sport, dport = (datagram.sport, datagram.dport) if encapsulated else (None, None)
            self.esp_packets.append(EspPacket(datagram.time, src, dst, spi, seq, bytes(data), encapsulated,
                                              datagram.number, sport, dport))

    def packets(self) -> list[EspPacket]:
        """The ESP packets, their times counted from the capture's first frame (known once it is all read)."""
        return [replace(p, start=self.start) for p in self.esp_packets]


def read_capture(path) -> tuple[Wire, list[EspPacket]]:
    """The Wire of a capture and its ESP packets, in one pass. Never raises (see Wire.from_pcap). `path`: a
    capture file, "-", or a harness.packets.Capture already read."""
    reader = _Reader()
    reader.read(path)
    return reader.wire(), reader.packets()


@dataclass(frozen=True)
class InnerPacket:
    """What one ESP packet carried: `packet` is the inner packet (scapy's, built on first use) or None with the
    `problem`. An opened packet whose ICV was not verified has a problem too: crypto.NOT_CHECKED (no integrity
    key) or crypto.SHOWN_UNVERIFIED (its ICV does not verify)."""
    spi: int
    src: str
    dst: str
    plaintext: crypto.EspPlaintext | None = field(default=None, repr=False)
    seq: int = 0
    time: float = 0.0
    problem: str | None = None
    frame: int = 0

    @property
    def packet(self) -> Packet | None:
        return self.plaintext.packet if self.plaintext is not None else None

    def summary(self) -> str:
        """The inner packet in one line, or the problem."""
        return self.plaintext.summary() if self.plaintext is not None else str(self.problem)

    def describe(self) -> str:
        note = f" ({self.problem})" if self.plaintext is not None and self.problem else ""
        return f"seq={self.seq} {self.summary()}{note}"


def summarize(packet: Packet, src: str = "?", dst: str = "?") -> str:
    """One line for an inner packet as scapy dissected it: "ICMP echo-request 198.19.1.1 > 198.19.2.1 id=7
    seq=1" (crypto.summarize_payload reads the bytes; scapy only says which protocol they start with)."""
    first = {IP: 4, IPv6: 41, TCP: 6, UDP: 17, ICMP: 1}.get(type(packet))
    if first is None:
        return packet.summary()
    return crypto.summarize_payload(first, bytes(packet), src, dst)


def _distinct_esp(keys: Iterable[EspSaKeys]) -> list[EspSaKeys]:
    return list(dict.fromkeys(keys))  # both daemons export each SA: count it once


ESN_WRAP = 1 << 31   # a sequence number this far below the highest seen has wrapped (RFC 4303 2.2.1: ESN)


class _EsnHigh:
    """The high half of each SA's extended sequence numbers as a receiver infers it (RFC 4303 Appendix A, without
    its window: the capture is in order): it grows by one whenever the low half falls back by half its range or
    more. For an SA without ESN it stays 0 (such a sender rekeys before the counter wraps, RFC 4303 3.3.3)."""

    def __init__(self) -> None:
        self.sas: dict[tuple[int, str], tuple[int, int]] = {}   # (SPI, destination) -> (high half, highest low half)

    def of(self, p: EspPacket) -> int:
        high, highest = self.sas.get((p.spi, p.dst), (0, p.seq))
        if highest - p.seq >= ESN_WRAP:
            high, highest = high + 1, p.seq
        self.sas[p.spi, p.dst] = (high, max(highest, p.seq))
        return high


def open_esp(packets: Iterable[EspPacket], esp_keys: Iterable[EspSaKeys]) -> list[InnerPacket]:
    """Each packet opened with the keys of its SA. The SPI names the SA; a key for exactly these addresses is
    tried first (a NAT may have rewritten them, and a key file may wildcard them). A key whose ICV verifies wins;
    else the first that opens the packet unverified; else the first key's problem."""
    keys = _distinct_esp(esp_keys)
    inner = []
    by_sa: dict[tuple[int, str, str], list[EspSaKeys]] = {}   # the candidates, worked out once per SA
    high = _EsnHigh()
    for p in packets:
        candidates = by_sa.get((p.spi, p.src, p.dst))
        if candidates is None:
            candidates = by_sa[p.spi, p.src, p.dst] = sorted(
                (k for k in keys if k.spi == p.spi or k.matches(p.spi, p.src, p.dst)),
                key=lambda k: (not k.matches(p.spi, p.src, p.dst), not k.exact))
        chosen: crypto.EspPlaintext | None = None
        problem = NO_KEYS
        seq_high = high.of(p)
        for k in candidates:
            opened = crypto.decrypt_esp(p.data, p.src, p.dst, k, seq_high)
            if opened.opened and (chosen is None or opened.problem is None):
                chosen = opened
                if opened.problem is None:
                    break
            elif chosen is None and problem == NO_KEYS:
                problem = f"undecryptable: {opened.problem}"
        if chosen is not None:
            inner.append(InnerPacket(p.spi, p.src, p.dst, chosen, p.seq, p.time, chosen.problem, p.frame))
        else:
            inner.append(InnerPacket(p.spi, p.src, p.dst, None, p.seq, p.time, problem, p.frame))
    return inner


def esp_inner(capture: str | os.PathLike, esp_keys: Iterable[EspSaKeys]) -> list[InnerPacket]:
    """Every ESP packet of the capture, in capture order, opened where a key opens it."""
    if isinstance(capture, Wire):
        raise TypeError("esp_inner needs the capture file: a Wire keeps per-flow counts, not the packets")
    return open_esp(read_capture(capture)[1], esp_keys)


def write_decrypted(capture: str | os.PathLike, esp_keys: Iterable[EspSaKeys], out: str | os.PathLike) -> int:
    """The capture as a pcap at `out` with every ESP packet a key opens (its ICV verified) replaced by what it
    carried: the inner IP packet in tunnel mode, in transport mode the payload under the outer header's addresses
    (crypto.EspPlaintext.packet). A reader of the inner protocol (L2TP under RFC 3193) then reads it as if it were
    never encrypted; ESP that no key opens stays as it was. Returns how many packets were opened."""
    from harness.packets import write_replaced
    opened = {p.frame: bytes(p.packet) for p in esp_inner(capture, esp_keys)
              if p.packet is not None and p.problem is None}
    write_replaced(capture, out, opened)
    return len(opened)




@dataclass
class _SaSequence:
    highest: int
    frames: dict[int, int]          # sequence number -> the frame it was first seen in
    gaps: int = 0
    replays: int = 0
    late: int = 0


class EspSequence:
    """What the sequence numbers of the ESP packets say, packet by packet (RFC 4303 2.2: each SA's counter
    starts at 1 and grows by one per packet; 3.4.3: a receiver drops a number it has seen). An SA is its SPI at
    its destination (RFC 4301 4.1), so a NAT rewriting the source does not split it."""

    def __init__(self) -> None:
        self.sas: dict[tuple[str, int], _SaSequence] = {}
        self._spis: dict[tuple[str, str], list[tuple[int, int]]] = {}   # direction -> (SPI, first frame)

    def notes(self, p: EspPacket) -> list[str]:
        notes = self._spi_change(p)
        sa = self.sas.get((p.dst, p.spi))
        if sa is None:
            sa = self.sas[p.dst, p.spi] = _SaSequence(p.seq, {p.seq: p.frame})
            if p.seq == 0:
                notes.append("seq 0: the first sequence number of an SA is 1 (RFC 4303 2.2)")
            elif p.seq > 1:
                sa.gaps += 1
                notes.append(f"gap: {_numbers(1, p.seq - 1)} not seen (before this SA's first packet here)")
            return notes
        if p.seq in sa.frames:
            sa.replays += 1
            notes.append(f"replay: seq {p.seq} seen before on this SA (#{sa.frames[p.seq]})")
            return notes
        sa.frames[p.seq] = p.frame
        if p.seq > sa.highest + 1:
            sa.gaps += 1
            notes.append(f"gap: {_numbers(sa.highest + 1, p.seq - 1)} not seen")
        elif p.seq < sa.highest and sa.highest - p.seq >= ESN_WRAP:
            notes.append(f"seq wrapped from {sa.highest} to {p.seq} (extended sequence numbers, RFC 4303 2.2.1)")
            sa.frames = {p.seq: p.frame}
        elif p.seq < sa.highest:
            sa.late += 1
            notes.append(f"out of order: seq {p.seq} after seq {sa.highest}")
            return notes
        sa.highest = p.seq
        return notes

    def _spi_change(self, p: EspPacket) -> list[str]:
        spis = self._spis.setdefault((p.src, p.dst), [])
        if spis and spis[-1][0] == p.spi:
            return []
        earlier = next(((spi, frame) for spi, frame in spis if spi == p.spi), None)
        notes = []
        if spis and earlier is None:
            notes.append(f"SPI change {p.src} > {p.dst}: spi=0x{p.spi:08x} after spi=0x{spis[-1][0]:08x}")
        elif spis:
            notes.append(f"spi=0x{p.spi:08x} again {p.src} > {p.dst}, after spi=0x{spis[-1][0]:08x} "
                         f"(#{spis[-1][1]})")
        spis.append((p.spi, p.frame))
        return notes

    def describe(self, dst: str, spi: int) -> str | None:
        """What this SA's numbers showed overall, or None when nothing was out of the ordinary."""
        sa = self.sas.get((dst, spi))
        counts = [(sa.gaps, "gap"), (sa.replays, "replay"), (sa.late, "out of order")] if sa else []
        shown = [f"{n} {what}" + ("s" if n > 1 and what != "out of order" else "") for n, what in counts if n]
        return ", ".join(shown) or None


def _numbers(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}..{last}"


def esp_lines(packets: list[EspPacket], flows: Iterable[EspFlow], esp_keys: Iterable[EspSaKeys]) -> list[str]:
    """The ESP part of the transcript: one line per SA (wire.EspFlow), then every packet in capture order with
    what its sequence number says (gaps, replays, SPI changes) and, where keys open it, the inner packet. That
    an SA has no key is said once, on its line, not on each of its packets."""
    keys = _distinct_esp(esp_keys)
    sequence = EspSequence()
    notes = [sequence.notes(p) for p in packets]
    inner = open_esp(packets, keys) if keys else [None] * len(packets)
    keyless = {(p.spi, p.src, p.dst) for p, opened in zip(packets, inner) if opened and opened.problem == NO_KEYS}
    lines = []
    for flow in flows:
        lines.append(flow.describe())
        overall = [sequence.describe(flow.dst, flow.spi)]
        if (flow.spi, flow.src, flow.dst) in keyless:
            overall.append(ESP_SA_NO_KEYS)
        lines += [f"    {line}" for line in overall if line]
    if packets and not keys:
        lines.append(ESP_NO_KEYS)
    for p, opened, called_out in zip(packets, inner, notes):
        lines.append(p.describe())
        lines += [f"    {note}" for note in called_out]
        if opened is not None and opened.plaintext is not None:
            lines.append(f"    {opened.summary()}")
        if opened is not None and opened.problem and opened.problem != NO_KEYS:
            lines.append(f"    {opened.problem}")
    return lines


# --- the transcript ---------------------------------------------------------------------------------------

def transcript(capture: Wire | str | os.PathLike, ike_keys: Iterable[IkeSaKeys] = (),
               esp_keys: Iterable[EspSaKeys] = ()) -> str:
    """The capture as text: IKE messages in capture order, each with its payloads indented; then the ESP SAs
    and every ESP packet (esp_lines). Given a Wire instead of the pcap, the ESP packets themselves are not at
    hand and only the SAs are listed."""
    if isinstance(capture, Wire):
        captured, packets = capture, None
    else:
        captured, packets = read_capture(capture)
    lines = [decrypt_ike(captured, ike_keys).describe()]
    if packets is None:
        for flow in captured.flows:
            lines += [flow.describe(), "    (inner packets: transcript() needs the capture file)"]
    else:
        lines += esp_lines(packets, captured.flows, esp_keys)
    if not captured.flows:
        lines.append("no ESP on the wire")
    skipped = captured.malformed - sum(m.problem is not None for m in captured.messages)
    if skipped > 0:
        lines.append(f"{skipped} malformed packet(s) skipped")
    return "\n".join(lines)
