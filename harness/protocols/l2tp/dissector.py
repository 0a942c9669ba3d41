"""L2TP for `overlay-interop transcript`: the transcript of what the dispatch table (harness.protocols.dispatch)
gives L2TP (UDP 1701 over IPv4 and IPv6; L2TPv3 over IP, protocol 115), and a ladder diagram (one lifeline per
address, one arrow per message). The tunnel secret is not in any log the command reads, so hidden AVPs stay
hidden here (the transcript shows them as such)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.protocols.dispatch import owner

PROTOCOL = "l2tp"


def claims(datagram) -> bool:
    """What the dispatch table gives this protocol."""
    return owner(datagram) == PROTOCOL


def transcript(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    """`capture`: a harness.packets.Capture already read, or a capture's path."""
    from harness.protocols.l2tp.transcript import transcript as l2tp_transcript
    return l2tp_transcript(capture)


def ladder(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    return render_ladder(capture, title=f"{PROTOCOL}: {Path(getattr(capture, 'name', capture)).name}")


def render_ladder(capture, nodes: Mapping[str, str] = {}, title: str = "") -> str:
    """One lifeline per address (named by `nodes`: address -> name, where known), one arrow per message: its
    type (data: the PPP it carries), the ids and Ns/Nr, the AVPs; ZLBs dashed, damage in red. `capture`: a
    Wire already read, or a capture's path."""
    from harness.protocols.l2tp.ppp import frame_summary
    from harness.protocols.l2tp.wire import Wire
    from harness.report.ladder import Arrow, Lifeline, Note, render
    wire = capture if isinstance(capture, Wire) else Wire.from_pcap(capture)
    lifelines = [Lifeline(name, address) for address, name in nodes.items()]
    column = {address: i for i, address in enumerate(nodes)}
    events = []

    def at(address: str) -> int:
        if address not in column:
            column[address] = len(lifelines)
            lifelines.append(Lifeline(address, address))
        return column[address]

    for d in wire.datagrams:
        message = d.message
        notes = [Note(message.header_text(), dim=True)] if message.header_text() else []
        notes += [Note(e.describe(message.message_type)) for e in message.avps[1:]]
        label = d.kind
        if d.kind == "data":
            carried, details = frame_summary(message.ppp_frame) if message.ppp_frame else ("PPP", [])
            label = f"data: {carried}"
            notes += [Note(detail) for detail in details]
        notes += [Note(f"malformed: {e}", error=True) for e in message.errors]
        events.append(Arrow(d.time, at(d.src), at(d.dst), label, notes, error=bool(message.errors),
                            dashed=d.kind == "ZLB", number=d.number))
    return render(lifelines or [Lifeline("no L2TP on the wire", "")], events, title=title, start=wire.start)
