"""An IPsec capture as a ladder diagram: one arrow per IKE message (a fragmented message is one arrow), one
band per ESP SA and direction, drawn by the protocol-agnostic harness.report.ladder.

    svg = ladder(pcap, ike_keys, esp_keys, nodes=[Lifeline("initiator strongswan", "198.18.1.2"),
                                                  Lifeline("responder libreswan", "198.18.1.3")],
                 title="ipsec / psk_tunnel / strongswan -> libreswan")
    lifelines, events = ladder_events(decrypted, wire, inner, nodes)   # the same from parts already read

An arrow's label is the message ("IKE_AUTH #1 response"); its notes are what an engineer would write next to
it: error notifies in red (N(AUTHENTICATION_FAILED), N(INVALID_KE_PAYLOAD: MODP_2048)), the notifies that
steer the exchange (N(COOKIE), N(REKEY_SA) ...), identities, AUTH method, proposals, traffic selectors,
Deletes; capability notifies in grey on one line. IKEv1 messages the same way (N(R-U-THERE), SA, Vendor IDs).
Never raises on what a capture holds.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from harness.report.ladder import Arrow, Band, Lifeline, Note, Remark, render
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.transcript import NO_KEYS, DecryptedMessage, InnerPacket, decrypt_ike, open_esp, summarize
from harness.protocols.ipsec.transcript import _Reader as _TranscriptReader
from harness.protocols.ipsec.wire import IPSEC_PORTS, Wire, _decode_ike
from harness.protocols.ipsec.wire import _Malformed as _WireMalformed

# Status notifies that steer an exchange: shown in full, in black. Other status notifies only announce
# capabilities and go on one grey line.
STEERING = frozenset({
    "COOKIE", "COOKIE2", "REKEY_SA", "USE_TRANSPORT_MODE", "REDIRECT", "REDIRECTED_FROM", "UPDATE_SA_ADDRESSES",
    "ADDITIONAL_KEY_EXCHANGE", "ANOTHER_AUTH_FOLLOWS", "PUZZLE", "CLONE_IKE_SA", "USE_PPK", "PPK_IDENTITY",
    "NO_PPK_AUTH", "IKEV2_MESSAGE_ID_SYNC", "IPSEC_REPLAY_COUNTER_SYNC", "INITIAL_CONTACT", "SET_WINDOW_SIZE",
    "AUTH_LIFETIME", "USE_AGGFRAG", "ADDITIONAL_TS_POSSIBLE", "TICKET_REQUEST", "TICKET_ACK", "TICKET_NACK",
})
NAT_DETECTION = ("NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP")
INNER_KINDS_SHOWN = 4       # distinct kinds of inner packet listed per ESP band
_VARYING = re.compile(r" (?:id|seq|len)=\d+")


def describe_notify(notify) -> str:
    """N(NAME), with what an error's data says where it is known: INVALID_KE_PAYLOAD names the group wanted."""
    return notify.summary()


def _fragment_of(message) -> tuple[int, int] | None:
    """(number, total) of an IKE fragment (SKF, RFC 7383): those two fields are in the clear."""
    return message.fragment


def _sa_note(payload: ike.SecurityAssociation) -> str:
    proposals = payload.proposals
    if len(proposals) > 2:
        return f"SA {len(proposals)} proposals: {proposals[0].describe()} | …"
    return payload.describe()


def _ts(payload) -> str:
    networks = payload.networks() if hasattr(payload, "networks") else ()
    return f"{payload.kind} {' '.join(networks)}" if networks else payload.describe()


def message_notes(message: DecryptedMessage) -> list[Note]:
    """What the arrow of one IKE message says under its label, most telling first."""
    errors: list[Note] = []
    details: list[Note] = []          # in payload order
    capabilities: list[str] = []
    selectors: list[str] = []
    for payload in message.payloads:
        if isinstance(payload, ike.NOTIFY_CLASSES):
            if payload.is_error:
                errors.append(Note(describe_notify(payload), error=True))
            elif payload.type in STEERING:
                spi = f" {payload.protocol} spi=0x{payload.spi.hex()}" if payload.spi else ""
                details.append(Note(payload.summary() + spi))
            elif payload.type in NAT_DETECTION:
                if "NAT-D" not in capabilities:
                    capabilities.append("NAT-D")
            else:
                capabilities.append(str(payload.type).removesuffix("_SUPPORTED"))
        elif payload.kind in ("TSi", "TSr"):
            selectors.append(_ts(payload))
        elif isinstance(payload, ike.SecurityAssociation):
            details.append(Note(_sa_note(payload)))
        elif payload.kind in ("Nonce", "HASH", "NAT-D") or isinstance(payload, (ike.Encrypted, ike.EncryptedFragment)):
            continue
        elif payload.kind in ("CERTREQ", "CR", "VendorID"):
            details.append(Note(payload.describe(), dim=True))
        elif type(payload) is ike.Opaque:  # a payload shown by name only
            details.append(Note(str(payload.kind), dim=True))
        else:
            details.append(Note(payload.describe()))
    if selectors:
        details.append(Note(", ".join(selectors)))
    notes = errors + details
    if capabilities:
        notes.append(Note(f"+ N({', '.join(capabilities)})", dim=True))
    if message.decrypted and not message.payloads:
        liveness = message.exchange == "INFORMATIONAL" and not message.is_response
        notes.append(Note("(empty: liveness check)" if liveness else "(empty)", dim=True))
    if message.problem == NO_KEYS:
        notes.append(Note("encrypted (no keys)", dim=True))
    elif message.problem:
        notes.append(Note(message.problem, error=True))
    return notes


def _label(message: DecryptedMessage) -> str:
    if message.version == ike.IKEV1:   # no request/response flag; phase 2 message IDs are random: hex
        return f"{message.exchange} #0x{message.message_id:08x}" if message.message_id else f"{message.exchange}"
    kind = "response" if message.is_response else "request"
    return f"{message.exchange} #{message.message_id} {kind}"


class _Lifelines:
    """The given nodes, then any other address on the wire as it first appears."""

    def __init__(self, nodes: Sequence[Lifeline], initiator: str | None, responder: str | None):
        self.lifelines = list(nodes)
        self.by_address = {n.address: i for i, n in enumerate(self.lifelines)}
        self.roles = {a: r for a, r in ((initiator, "IKE initiator"), (responder, "IKE responder")) if a}
        for address in (initiator, responder):
            if address:
                self.index(address)

    def index(self, address: str) -> int:
        if address not in self.by_address:
            self.by_address[address] = len(self.lifelines)
            self.lifelines.append(Lifeline(self.roles.get(address, "peer"), address))
        return self.by_address[address]


def _first_exchange(messages: Iterable[DecryptedMessage]) -> tuple[str | None, str | None]:
    """The addresses of the first IKE_SA_INIT's initiator and responder (or of the first message)."""
    messages = list(messages)
    first = next((m for m in messages if m.exchange == "IKE_SA_INIT" and not m.is_response), None)
    first = first or (messages[0] if messages else None)
    if first is None:
        return None, None
    wire_message = first.message
    if first.is_response:
        return wire_message.dst, wire_message.src
    return wire_message.src, wire_message.dst


def _purpose(message: DecryptedMessage) -> str | None:
    """What a CREATE_CHILD_SA is for, from its payloads (RFC 7296 1.3): None when they do not say."""
    sa = message.payload("SA") if message.payloads else None
    if sa is None:
        return None
    if any(p.protocol == "IKE" for p in getattr(sa, "proposals", ()) if isinstance(p, ike.Proposal)):
        return "rekey IKE SA"
    if message.notify("REKEY_SA"):
        return "rekey CHILD SA"
    return "new CHILD SA"


def _groups(messages: Sequence[DecryptedMessage]) -> list[list[DecryptedMessage]]:
    """The messages, with the fragments of one message (RFC 7383) together, in order of their first fragment.
    A fragment number seen again starts a new message: a retransmission."""
    groups: list[list[DecryptedMessage]] = []
    open_groups: dict[tuple, list[DecryptedMessage]] = {}
    numbers: dict[int, set[int]] = {}
    for message in messages:
        fragment = _fragment_of(message.message)
        if fragment is None or not 1 <= fragment[0] <= fragment[1]:  # no fragment, or one numbered nonsense
            groups.append([message])
            continue
        m = message.message
        key = (m.ispi, m.rspi, m.message_id, m.is_response, m.src, m.dst, fragment[1])
        group = open_groups.get(key)
        if group is None or fragment[0] in numbers[id(group)]:
            group = open_groups[key] = []
            numbers[id(group)] = set()
            groups.append(group)
        group.append(message)
        numbers[id(group)].add(fragment[0])
    return groups


def _ike_arrows(messages: Sequence[DecryptedMessage], lines: _Lifelines, t0: float) -> list[Arrow]:
    arrows: list[Arrow] = []
    first_seen: dict[tuple, float] = {}
    purposes: dict[tuple, str] = {}
    for group in _groups(messages):
        first = group[0].message
        complete = next((g for g in group if g.payloads or g.problem), group[-1])
        notes = message_notes(complete) if len(group) == 1 or complete.payloads or complete.problem else []
        label = _label(group[0])
        exchange_key = (first.ispi, first.rspi, first.message_id, frozenset((first.src, first.dst)))
        if first.exchange == "CREATE_CHILD_SA":
            # A response says what it answers: its request's purpose (a rekey's response carries no REKEY_SA).
            purpose = (purposes.get(exchange_key) if first.is_response else None) or _purpose(complete)
            if purpose:
                purposes[exchange_key] = purpose
                label += f": {purpose}"
        fragment = _fragment_of(first)
        if first.problem is not None:   # the notes say what could not be read (a fragment numbered 0 of 2, ...)
            label += f", malformed ({len(first.data)} bytes)"
        elif fragment is not None:
            total = fragment[1]
            label += f" ({total} fragment{'s' if total != 1 else ''})"
            got = len({_fragment_of(g.message) for g in group})
            if got < total:
                notes.append(Note(f"only {got} of {total} fragments captured", error=True))
        if first.sport not in IPSEC_PORTS or first.dport not in IPSEC_PORTS:
            notes.append(Note(f"UDP port {first.sport} -> {first.dport}", dim=True))
        signature = (first.src, first.dst, tuple(g.message.data for g in group))
        if signature in first_seen:  # the same bytes again: say so, and only repeat what is red
            notes = [Note(f"retransmission of the message at {first_seen[signature] - t0:.3f}", dim=True),
                     *(n for n in notes if n.error)]
        first_seen.setdefault(signature, first.time)
        error = first.problem is not None or any(n.is_error for g in group for n in g.notifies)
        arrows.append(Arrow(first.time, lines.index(first.src), lines.index(first.dst), label, notes,
                            error=error, dashed=group[0].is_response))
    return arrows


@dataclass(frozen=True)
class MalformedIke:
    """A datagram on an IKE port too short to hold an IKE header."""
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    data: bytes = field(repr=False)
    reason: str = ""


class _Reader(_TranscriptReader):
    """The transcript's capture reader, also keeping the datagrams on IKE ports too short for an IKE header: on
    a ladder they are arrows too (damaged messages with a header are IKE messages, with their `problem`)."""

    def __init__(self) -> None:
        super().__init__()
        self.malformed_ike: list[MalformedIke] = []

    def _add_ike(self, data: bytes, **where) -> None:
        try:
            _decode_ike(data, **where)
        except _WireMalformed as why:
            self.malformed_ike.append(MalformedIke(data=bytes(data), reason=str(why),
                                                   **{k: v for k, v in where.items() if k != "frame"}))
        super()._add_ike(data, **where)


def _malformed_arrows(datagrams: Sequence[MalformedIke], lines: _Lifelines) -> list[Arrow]:
    arrows = []
    for d in datagrams:
        notes = [Note(f"malformed: {d.reason}", error=True)]
        if d.sport not in IPSEC_PORTS or d.dport not in IPSEC_PORTS:
            notes.append(Note(f"UDP port {d.sport} -> {d.dport}", dim=True))
        arrows.append(Arrow(d.time, lines.index(d.src), lines.index(d.dst),
                            f"malformed IKE message ({len(d.data)} bytes)", notes, error=True))
    return arrows


def _esp_bands(wire: Wire, inner: Sequence[InnerPacket], lines: _Lifelines) -> list[Band]:
    by_flow: dict[tuple[int, str, str], list[InnerPacket]] = {}
    for packet in inner:
        by_flow.setdefault((packet.spi, packet.src, packet.dst), []).append(packet)
    encapsulated = {(f.spi, f.src, f.dst): f.encapsulated for f in wire.flows}
    bands = []
    for (spi, src, dst), packets in by_flow.items():
        label = f"ESP spi 0x{spi:08x}: {len(packets)} packet{'s' if len(packets) != 1 else ''}"
        if encapsulated.get((spi, src, dst)):
            label += " (in UDP)"
        opened = [p for p in packets if p.packet is not None]
        kinds = Counter(_VARYING.sub("", summarize(p.packet, p.src, p.dst)) for p in opened)
        notes = [Note(f"{count}× {kind}" if count > 1 else kind)
                 for kind, count in kinds.most_common(INNER_KINDS_SHOWN)]
        if len(kinds) > INNER_KINDS_SHOWN:
            notes.append(Note(f"… and {len(kinds) - INNER_KINDS_SHOWN} more kinds", dim=True))
        problems = Counter(p.problem for p in packets if p.packet is None)
        error = False
        for problem, count in problems.items():
            what = "encrypted (no keys)" if problem == NO_KEYS else problem
            prefix = f"{count} of {len(packets)}: " if opened or count != len(packets) else ""
            notes.append(Note(prefix + what, dim=problem == NO_KEYS, error=problem != NO_KEYS))
            error = error or problem != NO_KEYS
        seqs = [p.seq for p in packets]
        if any(b <= a for a, b in zip(seqs, seqs[1:])):
            notes.append(Note(f"sequence numbers not increasing: {' '.join(map(str, seqs[:12]))}"
                              f"{' …' if len(seqs) > 12 else ''}", error=True))
            error = True
        else:
            notes.append(Note(f"seq {seqs[0]}..{seqs[-1]}", dim=True))
        bands.append(Band(packets[0].time, lines.index(src), lines.index(dst), label, notes,
                          end_time=packets[-1].time, error=error))
    return bands


def ladder_events(decrypted: Sequence[DecryptedMessage], wire: Wire, inner: Sequence[InnerPacket] = (),
                  nodes: Sequence[Lifeline] = (), malformed_ike: Sequence[MalformedIke] = ()
                  ) -> tuple[list[Lifeline], list]:
    """Lifelines (the given nodes first, then other addresses on the wire) and the chart's events: an arrow
    per IKE message and per malformed datagram on an IKE port, a band per ESP SA and direction."""
    lines = _Lifelines(nodes, *_first_exchange(decrypted))
    times = [m.message.time for m in decrypted] + [p.time for p in inner] + [d.time for d in malformed_ike]
    t0 = min(times) if times else 0.0
    events: list = (_ike_arrows(decrypted, lines, t0) + _malformed_arrows(malformed_ike, lines)
                    + _esp_bands(wire, inner, lines))
    if not decrypted and not inner and not malformed_ike:
        events.append(Remark("no IKE or ESP on the wire"))
    elif not inner:
        events.append(Remark("no ESP on the wire"))
    drawn = len(malformed_ike) + sum(m.message.problem is not None for m in decrypted)
    others = wire.malformed - drawn
    if others > 0:
        more = " more" if drawn else ""
        events.append(Remark(f"{others}{more} malformed packet(s) skipped", error=True))
    return lines.lifelines, events


def ladder(capture: str | os.PathLike, ike_keys: Iterable[IkeSaKeys] = (), esp_keys: Iterable[EspSaKeys] = (),
           nodes: Sequence[Lifeline] = (), title: str = "") -> str:
    """The capture as an SVG ladder diagram, decrypted where the keys allow. Never raises on the capture's
    content: an unreadable capture is a chart saying nothing was on the wire."""
    reader = _Reader()
    reader.read(capture)
    wire = reader.wire()
    try:
        decrypted = decrypt_ike(wire, list(ike_keys))
    except Exception as exc:  # a payload decoder's bug must not cost the pair its picture: draw the wire
        problem = f"malformed: payloads not decodable ({type(exc).__name__}: {exc})"
        decrypted = [DecryptedMessage(m, problem=problem) for m in wire.messages]
    inner = open_esp(reader.esp_packets, list(esp_keys))
    lifelines, events = ladder_events(decrypted, wire, inner, nodes, reader.malformed_ike)
    return render(lifelines, events, title)


def write_ladder(pair_lab, pcap: str | os.PathLike, addresses: dict[str, str], ike_keys: Iterable[IkeSaKeys] = (),
                 esp_keys: Iterable[EspSaKeys] = ()) -> None:
    """ladder.svg in the pair's folder: lifelines named by role and vendor ("initiator strongswan"), at the
    addresses the roles had (`addresses`, by role), titled with the case and the pair."""
    pair = pair_lab.pair
    nodes = [Lifeline(f"{role} {pair.vendor(role).name}", addresses[role]) for role in pair.roles]
    title = f"{pair.protocol} / {pair.case} / {pair.a.name} -> {pair.b.name}"
    (pair_lab.dir / "ladder.svg").write_text(ladder(pcap, ike_keys, esp_keys, nodes=nodes, title=title))
