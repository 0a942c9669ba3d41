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
from dataclasses import dataclass, field, replace
from typing import Iterable

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Packet

from harness.protocols.ipsec import crypto, wire
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.wire import (IKE_HEADER, PAYLOAD_TYPES, EspFlow, IkeMessage, Notify, NotifyLookup,
                                          Wire, _check_known)

NO_KEYS = "encrypted (no keys exported by either side)"
UNKNOWN_SPI = bytes(8)
INNER_PACKETS_SHOWN = 20   # per ESP flow; a long flow is summarised by its count


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
        """(plaintext, the keys that opened it, problem)."""
        spis = (message.ispi, message.rspi)
        known = self.bound.get(spis, [])
        first_problem = None
        for keys in known:
            opened = crypto.decrypt_sk(message.data, keys)
            if opened.ok:
                return opened, keys, None
            first_problem = first_problem or opened.problem
        for keys in list(self.unbound):
            opened = crypto.decrypt_sk(message.data, keys)
            if opened.ok:  # only this IKE SA's keys verify its checksum: these are its keys
                self.unbound.remove(keys)
                keys = replace(keys, ispi=message.ispi, rspi=message.rspi)
                self.bound.setdefault(spis, []).append(keys)
                return opened, keys, None
        if first_problem:
            return None, None, f"undecryptable: {first_problem}"
        return None, None, NO_KEYS

    def all(self) -> list[IkeSaKeys]:
        return [k for ks in self.bound.values() for k in ks] + self.unbound


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
            parts[number] = opened
            if set(parts) != set(range(1, total + 1)):
                out.append(DecryptedMessage(message, clear.payloads, fragment=opened.fragment))
                continue
            del fragments[key]
            first, chain = parts[1].first_payload, b"".join(parts[n].chain for n in range(1, total + 1))
        inner = crypto.parse_payloads(first, chain)
        out.append(DecryptedMessage(message, clear.payloads + inner.payloads, inner.problem,
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


class _Reader(wire._Transcript):
    """wire.py's capture reader (link layers, IP reassembly, NAT-T demultiplexing), also keeping each ESP
    packet's bytes: the Wire keeps per-flow counts only."""

    def __init__(self) -> None:
        super().__init__()
        self.esp_packets: list[EspPacket] = []
        self._time = 0.0

    def _add_datagram(self, time: float, src: str, dst: str, protocol: int, payload: bytes) -> None:
        self._time = time
        super()._add_datagram(time, src, dst, protocol, payload)

    def _add_esp(self, src: str, dst: str, data: bytes, *, encapsulated: bool) -> None:
        super()._add_esp(src, dst, data, encapsulated=encapsulated)
        if len(data) >= wire.ESP_HEADER.size:
            spi, seq = wire.ESP_HEADER.unpack_from(data)
            self.esp_packets.append(EspPacket(self._time, src, dst, spi, seq, bytes(data), encapsulated))


def read_capture(path: str | os.PathLike) -> tuple[Wire, list[EspPacket]]:
    """The Wire of a capture and its ESP packets, in one pass. Never raises (see Wire.from_pcap)."""
    reader = _Reader()
    reader.read(path)
    return reader.wire(), reader.esp_packets


@dataclass(frozen=True)
class InnerPacket:
    """What one ESP packet carried: the inner IP packet (tunnel mode), or None with the problem."""
    spi: int
    src: str
    dst: str
    packet: Packet | None
    seq: int = 0
    time: float = 0.0
    problem: str | None = None

    def describe(self) -> str:
        if self.packet is None:
            return f"seq={self.seq} {self.problem}"
        return f"seq={self.seq} {summarize(self.packet, self.src, self.dst)}"


ICMP_TYPES = {0: "echo-reply", 3: "dest-unreach", 5: "redirect", 8: "echo-request", 11: "time-exceeded"}


def summarize(packet: Packet, src: str = "?", dst: str = "?") -> str:
    """One line for an inner packet: "ICMP echo-request 198.19.1.1 > 198.19.2.1 id=7 seq=1". `src` and
    `dst` stand in where the packet has no IP header of its own (ESP transport mode: the outer one's)."""
    ip = packet.getlayer(IP) or packet.getlayer(IPv6)
    if ip is not None:
        src, dst = ip.src, ip.dst
    if packet.haslayer(ICMP):
        icmp = packet[ICMP]
        kind = ICMP_TYPES.get(icmp.type, f"type={icmp.type} code={icmp.code}")
        echo = f" id={icmp.id} seq={icmp.seq}" if icmp.type in (0, 8) else ""
        return f"ICMP {kind} {src} > {dst}{echo}"
    for layer, kind in ((ICMPv6EchoRequest, "echo-request"), (ICMPv6EchoReply, "echo-reply")):
        if packet.haslayer(layer):
            return f"ICMPv6 {kind} {src} > {dst} id={packet[layer].id} seq={packet[layer].seq}"
    for layer in (TCP, UDP):
        if packet.haslayer(layer):
            segment = packet[layer]
            flags = f" [{segment.flags}]" if layer is TCP else ""
            return f"{layer.__name__} {src}:{segment.sport} > {dst}:{segment.dport}{flags} len={len(segment.payload)}"
    if ip is not None:
        protocol = ip.proto if isinstance(ip, IP) else ip.nh
        return f"IP proto={protocol} {src} > {dst} len={len(ip.payload)}"
    return packet.summary()


def _distinct_esp(keys: Iterable[EspSaKeys]) -> list[EspSaKeys]:
    return list(dict.fromkeys(keys))  # both daemons export each SA: count it once


def open_esp(packets: Iterable[EspPacket], esp_keys: Iterable[EspSaKeys]) -> list[InnerPacket]:
    keys = _distinct_esp(esp_keys)
    inner = []
    for p in packets:
        # The SPI names the SA; addresses only order the candidates (a NAT may have rewritten them).
        candidates = sorted((k for k in keys if k.spi == p.spi), key=lambda k: (k.src, k.dst) != (p.src, p.dst))
        problem = NO_KEYS
        for k in candidates:
            opened = crypto.decrypt_esp(p.data, p.src, p.dst, k)
            if opened.packet is not None:
                inner.append(InnerPacket(p.spi, p.src, p.dst, opened.packet, p.seq, p.time))
                break
            problem = f"undecryptable: {opened.problem}"
        else:
            inner.append(InnerPacket(p.spi, p.src, p.dst, None, p.seq, p.time, problem))
    return inner


def esp_inner(capture: str | os.PathLike, esp_keys: Iterable[EspSaKeys]) -> list[InnerPacket]:
    """Every ESP packet of the capture, in capture order, opened where a key verifies it."""
    if isinstance(capture, Wire):
        raise TypeError("esp_inner needs the capture file: a Wire keeps per-flow counts, not the packets")
    return open_esp(read_capture(capture)[1], esp_keys)


# --- the transcript ---------------------------------------------------------------------------------------

def _flow_lines(flow: EspFlow, inner: list[InnerPacket]) -> list[str]:
    lines = [flow.describe()]
    opened = [p for p in inner if p.packet is not None]
    if inner and len(opened) < len(inner):
        problems = sorted({p.problem for p in inner if p.problem})
        lines.append(f"    opened {len(opened)} of {len(inner)}: " + "; ".join(problems))
    lines += [f"    {p.describe()}" for p in opened[:INNER_PACKETS_SHOWN]]
    if len(opened) > INNER_PACKETS_SHOWN:
        lines.append(f"    ... and {len(opened) - INNER_PACKETS_SHOWN} more")
    return lines


def transcript(capture: Wire | str | os.PathLike, ike_keys: Iterable[IkeSaKeys] = (),
               esp_keys: Iterable[EspSaKeys] = ()) -> str:
    """The capture as text: IKE messages in capture order, each with its payloads indented; then each ESP
    flow with its inner packets. Given a Wire instead of the pcap, the ESP packets themselves are not at hand
    and only the flows are listed."""
    if isinstance(capture, Wire):
        captured, packets = capture, None
    else:
        captured, packets = read_capture(capture)
    lines = [decrypt_ike(captured, ike_keys).describe()]
    inner = open_esp(packets, esp_keys) if packets is not None else []
    for flow in captured.flows:
        if packets is None:
            lines += [flow.describe(), "    (inner packets: transcript() needs the capture file)"]
        else:
            lines += _flow_lines(flow, [p for p in inner if (p.spi, p.src, p.dst) == (flow.spi, flow.src, flow.dst)])
    if not captured.flows:
        lines.append("no ESP on the wire")
    if captured.malformed:
        lines.append(f"{captured.malformed} malformed packet(s) skipped")
    return "\n".join(lines)
