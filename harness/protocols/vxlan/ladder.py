"""A VXLAN or Geneve capture as a ladder diagram: one lifeline per VTEP (outer address), one arrow per overlay
frame, drawn by the protocol-agnostic harness.report.ladder.

    svg = ladder(pcap, nodes=[Lifeline("vtep1 linux", "198.18.0.2"), Lifeline("vtep2 frr", "198.18.0.3")],
                 title="vxlan / ping / linux -> frr")
    write_ladder(pair_lab, pcap, {"vtep1": "198.18.0.2", "vtep2": "198.18.0.3"})   # ladder.svg in the pair's folder

An arrow's label is the VNI and what the inner frame carries ("VNI 100: ICMP echo-request seq=1", "VNI 100:
ARP who-has 198.19.100.2 tell 198.19.100.1"); its notes are the inner addresses and MACs, the outer UDP
ports, Geneve options, and in red what is wrong (reserved bits set, the I flag clear, a critical option,
outer fragmentation, damage). Replies (ICMP echo reply, ARP reply) are
dashed. An ICMP error about an overlay datagram (port unreachable) is a red arrow of its own. Never raises
on what a capture holds.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

from harness.report.ladder import Arrow, Lifeline, Note, Remark, render
from harness.protocols.vxlan.wire import IP_PROTOCOLS, GeneveHeader, OverlayFrame, VxlanGpeHeader, VxlanHeader, Wire


def frame_notes(frame: OverlayFrame) -> list[Note]:
    notes = []
    if frame.inner is not None and frame.inner.ip is not None and frame.inner.arp is None:
        notes.append(Note(f"{frame.inner.ip.src} > {frame.inner.ip.dst}"))
    if frame.inner is not None and frame.inner.src is not None:
        notes.append(Note(f"{frame.inner.src} > {frame.inner.dst}"))
    notes.append(Note(f"{frame.encapsulation.upper()} UDP {frame.sport} > {frame.dport}", dim=True))
    header = frame.header
    if isinstance(header, VxlanHeader):
        if not header.i_flag:
            notes.append(Note(f"I flag clear (flags 0x{header.flags:02x}): VNI not valid", error=True))
        if not header.reserved_clear:
            notes.append(Note(f"reserved bits set: flags 0x{header.flags:02x}, 24-bit 0x{header.reserved24:06x}, "
                              f"8-bit 0x{header.reserved8:02x}", error=True))
    elif isinstance(header, VxlanGpeHeader):
        notes.append(Note(f"next protocol: {header.payload[0]}" + ("" if header.p_flag else " (P clear)"), dim=True))
        if header.version:
            notes.append(Note(f"VXLAN-GPE version {header.version}", error=True))
        if not header.i_flag:
            notes.append(Note(f"I flag clear (flags 0x{header.flags:02x}): VNI not valid", error=True))
        if not header.reserved_clear:
            notes.append(Note(f"reserved bits set: flags 0x{header.flags:02x}, 16-bit 0x{header.reserved16:04x}, "
                              f"8-bit 0x{header.reserved8:02x}", error=True))
        notes += [Note(text, dim=True) for flag, text in ((header.b_flag, "B: BUM traffic"),
                                                          (header.o_flag, "O: OAM packet")) if flag]
    elif isinstance(header, GeneveHeader):
        if header.version:
            notes.append(Note(f"Geneve version {header.version}", error=True))
        if not header.reserved_clear:
            notes.append(Note("reserved bits set", error=True))
        if header.critical_options and not header.c_bit:
            notes.append(Note("C bit clear with a critical option", error=True))
        notes += [Note(option.describe(), error=option.critical) for option in header.options]
    if frame.fragments:
        notes.append(Note(f"outer IP: {len(frame.fragments)} fragment(s)", error=True))
    if frame.malformed:
        notes.append(Note(f"malformed: {frame.malformed}", error=True))
    return notes


def frame_label(frame: OverlayFrame) -> str:
    """The VNI and, short enough for one line, what the inner frame is (its addresses go in the notes)."""
    vni = f"VNI {frame.vni}" if frame.vni is not None else frame.encapsulation.upper()
    inner = frame.inner
    if inner is None:
        carried = ""
    elif inner.arp is not None:
        carried = inner.arp.describe()
    elif inner.icmp is not None:
        carried = f"ICMP{'v6' if inner.ip.version == 6 else ''} {inner.icmp_kind}"
        carried += f" seq={inner.icmp.seq}" if inner.icmp.seq is not None else ""
    elif inner.ip is not None:
        name = IP_PROTOCOLS.get(inner.ip.proto, f"IP proto={inner.ip.proto}")
        carried = f"{name} {inner.sport} > {inner.dport}" if inner.sport is not None else name
    else:
        carried = inner.summary()
    return f"{vni}: {carried}" if carried else vni


def _only_critical_options(frame: OverlayFrame, notes: list[Note]) -> bool:
    """A critical option is shown in red (a receiver that does not know it must drop the frame), but a frame
    that is otherwise in order is not an error."""
    critical = {o.describe() for o in frame.options if o.critical}
    return all(note.text in critical for note in notes if note.error)


def ladder_events(wire: Wire, nodes: Sequence[Lifeline] = ()) -> tuple[list[Lifeline], list]:
    """Lifelines (`nodes` first, then any other VTEP address in order of appearance) and one arrow per frame."""
    lifelines = list(nodes)
    column = {node.address: i for i, node in enumerate(lifelines)}

    def at(address: str) -> int:
        if address not in column:
            column[address] = len(lifelines)
            lifelines.append(Lifeline(f"VTEP {address}", address))
        return column[address]

    events: list = []
    for frame in wire.frames():
        src, dst = at(frame.src), at(frame.dst)
        notes = frame_notes(frame)
        reply = frame.inner is not None and (frame.inner.echo == "reply"
                                             or (frame.inner.arp is not None and frame.inner.arp.op == 2))
        problem = any(note.error for note in notes) and not _only_critical_options(frame, notes)
        events.append(Arrow(frame.time, src, dst, frame_label(frame), notes, error=problem,
                            dashed=reply, number=frame.number))
    for error in wire.icmp_errors():
        vni = f", VNI {error.vni}" if error.vni is not None else ""
        events.append(Arrow(error.time, at(error.src), at(error.dst), f"ICMP {error.kind}",
                            [Note(f"about UDP {error.quoted_sport} > {error.quoted_dport} "
                                  f"({error.encapsulation.upper()}{vni})", error=True)], error=True, dashed=True,
                            number=error.number))
    if not events:
        events.append(Remark("no overlay frames on the wire"))
    return lifelines, events


def ladder(capture: Wire | str | os.PathLike, nodes: Sequence[Lifeline] = (), title: str = "",
           ports: Iterable[int] | Mapping[int, str] = ()) -> str:
    """The capture as an SVG ladder diagram."""
    wire = capture if isinstance(capture, Wire) else Wire.from_pcap(capture, ports)
    lifelines, events = ladder_events(wire, nodes)
    return render(lifelines, events, title, start=wire.start)


def write_ladder(pair_lab, capture: Wire | str | os.PathLike, addresses: dict[str, str],
                 ports: Iterable[int] | Mapping[int, str] = ()) -> None:
    """ladder.svg in the pair's folder: lifelines named by role and vendor ("vtep1 linux") at the underlay
    addresses the roles had (`addresses`, by role; "vtep3" is a second instance of the second vendor),
    titled with the case and the pair."""
    pair = pair_lab.pair
    nodes = [Lifeline(f"{role} {pair.vendor(role).name}", address) for role, address in addresses.items()]
    title = f"{pair.protocol} / {pair.case} / {pair.a.name} -> {pair.b.name}"
    (pair_lab.dir / "ladder.svg").write_text(ladder(capture, nodes=nodes, title=title, ports=ports))
