"""What the wire shows of BGP EVPN: every BGP message of every session in the capture, read from the TCP byte
stream, each decoded by the codec (bgp.py) and dated by the frame that completed it (as Wireshark dates a
reassembled message).

    wire = Wire.from_pcap(pcap)
    flood = wire.advertised(route_type=3, src=vtep2)           # [(BgpRecord, EvpnRoute)]
    assert flood and flood[0][1].ip_text == vtep2, wire.describe()
    assert wire.withdrawn(route_type=2, src=vtep2), wire.describe()

TCP is reassembled per direction by sequence number: a retransmission is read once, a segment that arrives
out of order waits for the gap to close, and a gap that never closes (a segment missing from the capture) ends
that direction's reading with a problem saying where. Nothing here raises on what a capture holds.

The data plane of the same capture (VXLAN frames) is the vxlan package's reader: `Wire.overlay`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable

from harness.packets import Datagrams
from harness.protocols.dispatch import DISPATCH
from harness.protocols.evpn import bgp
from harness.textfmt import endpoint

PROTOCOL = "evpn"  # its row in the dispatch table (TCP 179)
IPPROTO_TCP = 6
SYN, FIN, RST = 0x02, 0x01, 0x04


@dataclass(frozen=True)
class BgpRecord:
    """One BGP message on the wire: the frame that completed it, when, who sent it to whom, and what it says."""
    number: int
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    message: bgp.Message

    @property
    def type_name(self) -> str:
        return self.message.type_name

    def describe(self, t0: float = 0.0) -> str:
        return f"#{self.number} {self.time - t0:8.3f}s {self.src} > {self.dst} {describe_message(self.message)}"


def describe_message(message: bgp.Message) -> str:
    """One message in a few lines: its type, the EVPN routes it advertises or withdraws with their VNIs, the
    attributes that say how to reach them, and what is wrong with it."""
    lines = [message.text()]
    if isinstance(message.body, bgp.Update):
        pmsi = message.attribute(bgp.PmsiTunnel)
        for route in message.reached():
            vni = bgp.route_vni(route)
            if vni is None and pmsi is not None and route.route_type == 3:
                vni = pmsi.vni
            lines.append(f"  + {route.text()}" + ("" if bgp.route_vni(route) is not None or vni is None
                                                   else f" (PMSI vni {vni})"))
        for route in message.withdrawn():  # a withdrawal's label identifies nothing (RFC 7432 7.2): not a VNI here
            vni = bgp.route_vni(route)
            text = route.text()
            lines.append(f"  - {text.removesuffix(f' vni {vni}')}" if vni is not None else f"  - {text}")
        for attribute in message.attributes():
            if type(attribute) not in (bgp.MpReach, bgp.MpUnreach) or attribute.problem:
                lines.append(f"    {attribute.text()}")
            elif type(attribute) is bgp.MpReach:
                lines.append(f"    next hop {bgp._ip_text(bytes(attribute.next_hop))}")
        if message.end_of_rib:
            lines[0] = "UPDATE End-of-RIB (L2VPN/EVPN)"
    for problem in message.problems:
        lines.append(f"  ! {problem}")
    return "\n".join(lines)


@dataclass
class _Direction:
    """One direction of one TCP connection: the bytes delivered so far and the segments waiting for a gap."""
    next_seq: int | None = None
    buffer: bytes = b""
    consumed: int = 0  # stream bytes before `buffer`
    pending: dict[int, tuple[bytes, int, float]] = field(default_factory=dict)  # seq -> (data, frame, time)
    problem: str | None = None


@dataclass
class Wire:
    records: list[BgpRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    start: float = 0.0
    pcap: str | None = None

    @classmethod
    def from_pcap(cls, path) -> Wire:
        reader = _Reader()
        datagrams = Datagrams(path)
        for datagram in datagrams:
            reader.add(datagram)
        wire = reader.finish()
        wire.start = datagrams.start or 0.0
        wire.pcap = str(path)
        return wire

    # --- queries -------------------------------------------------------------------------------------------

    def messages(self, type_name: str | None = None, src: str | None = None,
                 dst: str | None = None) -> list[BgpRecord]:
        return [r for r in self.records if (type_name is None or r.type_name == type_name)
                and (src is None or r.src == src) and (dst is None or r.dst == dst)]

    def updates(self, src: str | None = None, dst: str | None = None) -> list[BgpRecord]:
        return self.messages("UPDATE", src, dst)

    def advertised(self, route_type: int | None = None, src: str | None = None, dst: str | None = None,
                   **fields) -> list[tuple[BgpRecord, bgp.EvpnRoute]]:
        """(message, route) for every EVPN route advertised (MP_REACH_NLRI), in wire order; `fields` match the
        route's attributes (e.g. mac="02:..", ip_text="198.19.100.1", vni=100)."""
        return [(r, route) for r in self.updates(src, dst) for route in r.message.reached()
                if _matches(route, route_type, fields)]

    def withdrawn(self, route_type: int | None = None, src: str | None = None, dst: str | None = None,
                  **fields) -> list[tuple[BgpRecord, bgp.EvpnRoute]]:
        """(message, route) for every EVPN route withdrawn (MP_UNREACH_NLRI), in wire order."""
        return [(r, route) for r in self.updates(src, dst) for route in r.message.withdrawn()
                if _matches(route, route_type, fields)]

    def damaged(self) -> list[BgpRecord]:
        return [r for r in self.records if r.message.problems]

    def notifications(self) -> list[BgpRecord]:
        return self.messages("NOTIFICATION")

    def describe(self, keepalives: bool = False) -> str:
        """The BGP conversation as text (the failure message of a case): keepalives left out unless asked."""
        lines = [r.describe(self.start) for r in self.records if keepalives or r.type_name != "KEEPALIVE"]
        lines += [f"! {p}" for p in self.problems]
        return "\n".join(lines) or "(no BGP message on the wire)"


def _matches(route: bgp.EvpnRoute, route_type: int | None, fields: dict) -> bool:
    if route_type is not None and route.route_type != route_type:
        return False
    for name, wanted in fields.items():
        value = getattr(route, name, None) if name in ("ip_text", "prefix_text") else (
            route.getfieldval(name) if name in route.fieldtype else None)
        if isinstance(value, str) and isinstance(wanted, str):
            if value.lower() != wanted.lower():
                return False
        elif value != wanted:
            return False
    return True


class _Reader:
    def __init__(self) -> None:
        self.directions: dict[tuple, _Direction] = {}
        self.records: list[BgpRecord] = []
        self.problems: list[str] = []

    def add(self, datagram) -> None:
        if datagram.proto != IPPROTO_TCP or DISPATCH.owner(datagram) != PROTOCOL or not datagram.complete:
            return
        segment = datagram.payload
        if len(segment) < 20:
            self.problems.append(f"#{datagram.number}: a TCP header cut short ({len(segment)} bytes)")
            return
        sport, dport, seq, _, offset_flags = struct.unpack("!HHIIH", segment[:14])
        header = (offset_flags >> 12) * 4
        flags = offset_flags & 0x3F
        key = (datagram.src, sport, datagram.dst, dport)
        direction = self.directions.setdefault(key, _Direction())
        if flags & SYN:
            direction.next_seq = (seq + 1) & 0xFFFFFFFF
            direction.buffer, direction.pending = b"", {}
            return
        data = segment[header:]
        if not data or direction.problem:
            return
        if direction.next_seq is None:  # the capture began mid-connection: read from the first segment seen
            direction.next_seq = seq
        direction.pending[seq] = (data, datagram.number, datagram.time)
        self._deliver(key, direction, datagram.number, datagram.time)

    def _deliver(self, key: tuple, direction: _Direction, number: int, time: float) -> None:
        """Read what the pending segments now give in order; a message is dated by the frame that completed it
        (this one: it closed a gap or brought the last bytes)."""
        progressed = True
        while progressed:
            progressed = False
            for seq in list(direction.pending):
                data = direction.pending[seq][0]
                skip = (direction.next_seq - seq) & 0xFFFFFFFF
                if skip >= 0x80000000:  # starts after the next byte wanted: wait for the gap
                    continue
                del direction.pending[seq]
                if skip >= len(data):  # a retransmission of bytes already read
                    continue
                direction.buffer += data[skip:]
                direction.next_seq = (direction.next_seq + len(data) - skip) & 0xFFFFFFFF
                self._messages(key, direction, number, time)
                progressed = True

    def _messages(self, key: tuple, direction: _Direction, number: int, time: float) -> None:
        found, rest, why = bgp.split(direction.buffer)
        src, sport, dst, dport = key
        for _, raw in found:
            self.records.append(BgpRecord(number, time, src, sport, dst, dport, bgp.decode(raw)))
        direction.consumed += len(direction.buffer) - len(rest)
        direction.buffer = rest
        if why:
            where = why.split(":", 1)[1].strip()
            direction.problem = (f"{endpoint(src, sport)} > {endpoint(dst, dport)}: the BGP stream breaks at byte "
                                 f"{direction.consumed}: {where}")
            self.problems.append(direction.problem)

    def finish(self) -> Wire:
        for (src, sport, dst, dport), direction in self.directions.items():
            if direction.pending and not direction.problem:
                first = min(number for _, number, _ in direction.pending.values())
                self.problems.append(f"{endpoint(src, sport)} > {endpoint(dst, dport)}: TCP bytes missing before "
                                     f"frame #{first}: {len(direction.pending)} segment(s) after the gap not read")
        return Wire(records=self.records, problems=self.problems)


def read(path) -> Wire:
    return Wire.from_pcap(path)


def routes_text(routes: Iterable[tuple[BgpRecord, bgp.EvpnRoute]]) -> str:
    return "\n".join(f"#{r.number} {r.src}: {route.text()}" for r, route in routes) or "(none)"
