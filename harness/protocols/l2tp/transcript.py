"""An L2TP capture as text a person reads: a summary (control messages per direction, the tunnels and
sessions seen, what is malformed), then every datagram with its AVPs, as harness.protocols.l2tp.wire
describes it."""
from __future__ import annotations

import os
from collections import Counter

from harness.protocols.l2tp.wire import Wire


def summary(wire: Wire) -> list[str]:
    lines = []
    for (src, dst), count in Counter((d.src, d.dst) for d in wire.control(retransmissions=True)).items():
        kinds = " ".join(d.kind + (" (retransmission)" if d.number in wire.retransmitted else "")
                         for d in wire.control(src, dst, retransmissions=True))
        lines.append(f"{src} > {dst}: {count} control message(s): {kinds}")
    for (src, dst), count in Counter((d.src, d.dst) for d in wire.data()).items():
        lines.append(f"{src} > {dst}: {count} data message(s)")
    tunnels = sorted({d.message.tunnel_id for d in wire.datagrams if d.message.tunnel_id is not None})
    sessions = sorted({d.message.session_id for d in wire.datagrams if d.message.session_id})
    lines.append(f"tunnel ids: {', '.join(map(str, tunnels)) or 'none'}; "
                 f"session ids: {', '.join(map(str, sessions)) or 'none'}")
    if wire.malformed():
        lines.append(f"malformed: {len(wire.malformed())} message(s)")
    return lines


def transcript(capture: Wire | str | os.PathLike, secret: bytes | str | None = None) -> str:
    """Never raises on what the capture holds."""
    wire = capture if isinstance(capture, Wire) else Wire.from_pcap(capture, secret)
    if not wire.datagrams:
        return "no L2TP on the wire"
    return "\n".join(summary(wire) + ["", wire.describe()])
