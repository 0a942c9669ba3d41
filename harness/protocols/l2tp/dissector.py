"""L2TP for `overlay-interop transcript`: which frames are L2TP (UDP 1701), their transcript, and a ladder
diagram (one lifeline per address, one arrow per message). The tunnel secret is not in any log the command
reads, so hidden AVPs stay hidden here (the transcript shows them as such)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.protocols.l2tp.scenario import L2TP_PORT

PROTOCOL = "l2tp"
IPPROTO_UDP = 17


def claims(datagram) -> bool:
    return datagram.ip_proto == IPPROTO_UDP and L2TP_PORT in (datagram.sport, datagram.dport)


def transcript(path: Path, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    from harness.protocols.l2tp.transcript import transcript as l2tp_transcript
    return l2tp_transcript(path)


def ladder(path: Path, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    return render_ladder(path, title=f"{PROTOCOL}: {Path(path).name}")


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
