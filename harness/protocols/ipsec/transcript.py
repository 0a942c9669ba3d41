"""The capture read back with the keys the daemons exported: every IKE message with its payloads (opened
where it was encrypted) and every ESP packet's inner packet.

    text = transcript(pcap, ike_keys, esp_keys)              # what a person reads (attached to each case)
    auth = decrypt_ike(wire, ike_keys).ike("IKE_AUTH")       # what a suite asserts on
    assert auth[-1].notify("AUTHENTICATION_FAILED"), auth.describe()
    assert auth[-1].payload("TSr").networks() == ("198.19.2.0/24",)
    inner = esp_inner(pcap, esp_keys)                        # [InnerPacket(spi, src, dst, packet, ...)]

Keys are matched to IKE SAs by SPIs where the daemon's export names them; keys exported without SPIs (zero
SPIs: an IKE SA created by a rekey, whose SPIs travel encrypted) are tried on every IKE SA and bound to the
one whose integrity checksum they verify, which no other key can. Either side's export is enough; both
sides' exports of the same SA count once.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, replace
from typing import Iterable

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from harness.protocols.ipsec import crypto, wire
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.wire import (IKE_HEADER, PAYLOAD_TYPES, EspFlow, IkeMessage, Notify, NotifyLookup,
                                          Wire, _check_known)

NO_KEYS = "encrypted (no keys exported by either side)"
ESP_NO_KEYS = "ESP packets (no ESP keys: inner packets not shown):"
ESP_SA_NO_KEYS = "no keys for this SA: its inner packets are not shown"
UNKNOWN_SPI = bytes(8)


# --- IKE --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecryptedMessage(NotifyLookup):
    """One IKE message of the capture with its payloads: the clear ones, then those of its SK payload."""
    message: IkeMessage
    payloads: tuple[crypto.Payload, ...] = ()
    problem: str | None = None                  # why (part of) it could not be read: NO_KEYS, "undecryptable: ..."
    fragment: tuple[int, int] | None = None     # (number, total) for an IKE fragment (SKF, RFC 7383)
    keys: IkeSaKeys | None = field(default=None, repr=False, compare=False)  # what opened it

    @property
    def exchange(self) -> str:
        return self.message.exchange

    @property
    def message_id(self) -> int:
        return self.message.message_id

    @property
    def is_response(self) -> bool:
        return self.message.is_response

    @property
    def is_initiator(self) -> bool:
        return self.message.is_initiator

    @property
    def decrypted(self) -> bool:
        """Encrypted on the wire and opened (for a fragment: the one that completed the message)."""
        return self.message.encrypted and self.problem is None and self.keys is not None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.type for p in self.payloads)

    def payload(self, kind: str) -> crypto.Payload | None:
        """The first payload of this type ("IDi", "TSr", "SA", ...), or None."""
        _check_known(kind, PAYLOAD_TYPES, "payload type")
        return next((p for p in self.payloads if p.type == kind), None)

    def payloads_of(self, kind: str) -> tuple[crypto.Payload, ...]:
        _check_known(kind, PAYLOAD_TYPES, "payload type")
        return tuple(p for p in self.payloads if p.type == kind)

    @property
    def notifies(self) -> tuple[Notify, ...]:
        return tuple(p.notify for p in self.payloads if isinstance(p, crypto.NotifyPayload))

    def describe(self) -> str:
        """The wire's one-line summary, then one indented line per payload (or why there are none)."""
        lines = [self.message.describe()]
        # Clear payloads the headline already names in full (a bare "KE" is not in full: "KE MODP_2048" is).
        clear = len(self.message.payloads) - int(self.message.encrypted)
        headline = [n.describe() for n in self.message.notifies]
        named = [headline.pop(0) if p == "Notify" and headline else p for p in self.message.payloads[:clear]]
        shown = [p for i, p in enumerate(self.payloads) if i >= clear or i >= len(named) or p.describe() != named[i]]
        if self.fragment:
            number, total = self.fragment
            done = ": reassembled" if self.keys is not None and self.problem is None else ""
            lines.append(f"    fragment {number}/{total}{done}")
        lines += [f"    {p.describe()}" for p in shown]
        if self.decrypted and len(self.payloads) == clear:
            lines.append("    (empty)")   # opened, and nothing inside: a liveness check, a bare Delete answer
        if self.problem:
            lines.append(f"    {self.problem}")
        return "\n".join(lines)


class DecryptedMessages(tuple):
    """Decrypted messages in capture order; a tuple, like wire.IkeMessages."""

    def ike(self, exchange: str | None = None) -> DecryptedMessages:
        """Like Wire.ike(): of one exchange type if given, each message once (retransmissions left out)."""
        if exchange is not None:
            _check_known(exchange, wire.EXCHANGE_TYPES, "exchange")
        chosen = [m for m in self if exchange is None or m.exchange == exchange]
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
    return opened.first_payload in PAYLOAD_TYPES and crypto.parse_payloads(opened.first_payload,
                                                                           opened.chain).problem is None


def _messages(capture: Wire | Iterable[IkeMessage] | str | os.PathLike) -> tuple[IkeMessage, ...]:
    if isinstance(capture, (str, os.PathLike)):
        return tuple(Wire.from_pcap(capture).messages)
    if isinstance(capture, Wire):
        return tuple(capture.messages)
    return tuple(capture)


def decrypt_ike(capture: Wire | Iterable[IkeMessage] | str | os.PathLike,
                ike_keys: Iterable[IkeSaKeys] = ()) -> DecryptedMessages:
    return _decrypt(_messages(capture), _Keyring(ike_keys))


def bind_ike_keys(capture: Wire | Iterable[IkeMessage] | str | os.PathLike,
                  ike_keys: Iterable[IkeSaKeys]) -> list[IkeSaKeys]:
    """The distinct keys, with the SPIs of the IKE SA they open filled in where the export lacked them (what
    the Wireshark key file needs). Keys that open nothing on the wire keep zero SPIs."""
    keyring = _Keyring(ike_keys)
    _decrypt(_messages(capture), keyring)
    return keyring.all()


def _decrypt(messages: tuple[IkeMessage, ...], keyring: _Keyring) -> DecryptedMessages:
    fragments: dict[tuple, dict[int, crypto.SkPlaintext]] = {}
    out = []
    for message in messages:
        data = message.data
        if len(data) < IKE_HEADER.size:  # an IkeMessage built without its bytes: only its names are known
            out.append(DecryptedMessage(message, problem=NO_KEYS if message.encrypted else None))
            continue
        clear = crypto.parse_payloads(data[16], data, IKE_HEADER.size)
        if clear.encrypted is None:
            out.append(DecryptedMessage(message, clear.payloads, clear.problem))
            continue
        if keyring.empty:
            out.append(DecryptedMessage(message, clear.payloads, NO_KEYS))
            continue
        opened, keys, problem = keyring.open(message)
        if opened is None:
            out.append(DecryptedMessage(message, clear.payloads, problem))
            continue
        first, chain = opened.first_payload, opened.chain
        if opened.fragment:
            number, total = opened.fragment
            key = (message.ispi, message.rspi, message.message_id, message.is_response, total)
            parts = fragments.setdefault(key, {})
            parts[number] = (opened, problem)
            if set(parts) != set(range(1, total + 1)):
                out.append(DecryptedMessage(message, clear.payloads, problem, fragment=opened.fragment))
                continue
            del fragments[key]
            first, chain = parts[1][0].first_payload, b"".join(parts[n][0].chain for n in range(1, total + 1))
            problem = next((p for _, p in parts.values() if p), None)   # one unverified part: the message is
        inner = crypto.parse_payloads(first, chain)
        out.append(DecryptedMessage(message, clear.payloads + inner.payloads, problem or inner.problem,
                                    fragment=opened.fragment, keys=keys))
    return DecryptedMessages(out)


# --- ESP --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EspPacket:
    """One ESP packet as captured (from the SPI on)."""
    time: float
    src: str
    dst: str
    spi: int
    seq: int
    data: bytes = field(repr=False)
    encapsulated: bool = False
    frame: int = 0              # as Wireshark numbers it (0: not read from a capture)
    sport: int = 0              # ESP in UDP (RFC 3948): the ports; 0 for plain ESP
    dport: int = 0
    start: float = 0.0          # the time of the capture's first frame

    def describe(self) -> str:
        """"0.047114 #12 198.18.1.2:4500 > 198.18.1.3:4500 ESP spi=0xe0e82121 seq=1", as Wireshark numbers frames."""
        ends = (f"{self.src}:{self.sport} > {self.dst}:{self.dport}" if self.encapsulated
                else f"{self.src} > {self.dst}")
        return f"{self.time - self.start:.6f} #{self.frame} {ends} ESP spi=0x{self.spi:08x} seq={self.seq}"


class _Reader(wire._Transcript):
    """wire.py's capture reader (link layers, IP reassembly, NAT-T demultiplexing), also keeping each ESP
    packet's bytes, frame number and ports: the Wire keeps per-flow counts only."""

    def __init__(self) -> None:
        super().__init__()
        self.esp_packets: list[EspPacket] = []
        self._time = 0.0
        self._frame = 0
        self._start: float | None = None
        self._ports = (0, 0)

    def add_frame(self, time: float, frame) -> None:
        self._frame += 1    # called once per frame of the file, in file order: Wireshark's numbering
        self._start = time if self._start is None else self._start
        super().add_frame(time, frame)

    def _add_datagram(self, time: float, src: str, dst: str, protocol: int, payload: bytes) -> None:
        self._time = time
        self._ports = (0, 0)
        super()._add_datagram(time, src, dst, protocol, payload)

    def _add_udp(self, time: float, src: str, dst: str, segment: bytes) -> None:
        if len(segment) >= 4:
            self._ports = struct.unpack_from("!HH", segment)
        super()._add_udp(time, src, dst, segment)

    def _add_esp(self, src: str, dst: str, data: bytes, *, encapsulated: bool) -> None:
        super()._add_esp(src, dst, data, encapsulated=encapsulated)
        if len(data) >= wire.ESP_HEADER.size:
            spi, seq = wire.ESP_HEADER.unpack_from(data)
            sport, dport = self._ports if encapsulated else (0, 0)
            self.esp_packets.append(EspPacket(self._time, src, dst, spi, seq, bytes(data), encapsulated,
                                              self._frame, sport, dport, self._start or 0.0))


def read_capture(path: str | os.PathLike) -> tuple[Wire, list[EspPacket]]:
    """The Wire of a capture and its ESP packets, in one pass. Never raises (see Wire.from_pcap)."""
    reader = _Reader()
    reader.read(path)
    return reader.wire(), reader.esp_packets


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


def open_esp(packets: Iterable[EspPacket], esp_keys: Iterable[EspSaKeys]) -> list[InnerPacket]:
    """Each packet opened with the keys of its SA. The SPI names the SA; a key for exactly these addresses is
    tried first (a NAT may have rewritten them, and a key file may wildcard them). A key whose ICV verifies wins;
    else the first that opens the packet unverified; else the first key's problem."""
    keys = _distinct_esp(esp_keys)
    inner = []
    by_sa: dict[tuple[int, str, str], list[EspSaKeys]] = {}   # the candidates, worked out once per SA
    for p in packets:
        candidates = by_sa.get((p.spi, p.src, p.dst))
        if candidates is None:
            candidates = by_sa[p.spi, p.src, p.dst] = sorted(
                (k for k in keys if k.spi == p.spi or k.matches(p.spi, p.src, p.dst)),
                key=lambda k: (not k.matches(p.spi, p.src, p.dst), not k.exact))
        chosen: crypto.EspPlaintext | None = None
        problem = NO_KEYS
        for k in candidates:
            opened = crypto.decrypt_esp(p.data, p.src, p.dst, k)
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


ESN_WRAP = 1 << 31   # a sequence number this far below the highest seen has wrapped (RFC 4303 2.2.1: ESN)


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
    if captured.malformed:
        lines.append(f"{captured.malformed} malformed packet(s) skipped")
    return "\n".join(lines)
