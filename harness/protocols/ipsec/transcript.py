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
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Packet

from harness.protocols.ipsec import crypto, ike, wire
from harness.protocols.ipsec import ikev1_names as v1names
from harness.protocols.ipsec.ike import KNOWN_EXCHANGES, PayloadLookup, check_known
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, IkeV1SaKeys
from harness.protocols.ipsec.wire import EspFlow, IkeMessage, Wire

NO_KEYS = "encrypted (no keys exported by either side)"
UNKNOWN_SPI = bytes(8)
INNER_PACKETS_SHOWN = 20   # per ESP flow; a long flow is summarised by its count


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
    fragments: dict[tuple, dict[int, crypto.SkPlaintext]] = {}
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
            parts[number] = opened
            if set(parts) != set(range(1, total + 1)):
                out.append(DecryptedMessage(message, clear, fragment=opened.fragment))
                continue
            del fragments[key]
            first, chain = parts[1].first_payload, b"".join(parts[n].chain for n in range(1, total + 1))
        inner, problem = ike.decode_chain(first, chain, ike.IKEV2)
        out.append(DecryptedMessage(message, clear + inner, problem and f"malformed: {problem}",
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
    skipped = captured.malformed - sum(m.problem is not None for m in captured.messages)
    if skipped > 0:
        lines.append(f"{skipped} malformed packet(s) skipped")
    return "\n".join(lines)
