"""The capture as text a person reads: a short summary (frames per encapsulation, per VNI, per VTEP pair, and
what is wrong), then one line per overlay frame, as harness.protocols.vxlan.wire describes it:

    overlay frames: 8 (VXLAN 8)
    VNI 100: 8 frame(s)
    198.18.0.2 > 198.18.0.3: 4 frame(s), UDP port 4789, 2 source port(s)
    ...
    #4 0.003000 198.18.0.2:51000 > 198.18.0.3:4789 VXLAN vni=100 flags=0x08 (I) | 02:4f:49:64:00:01 >
        02:4f:49:64:00:02 IPv4 198.19.100.1 > 198.19.100.2 ICMP echo-request id=20297 seq=1 len=84 DF   (one line)

A frame that came in outer IP fragments is followed by its fragments, indented; an ICMP error about an
overlay datagram (port unreachable) has a line of its own, in capture order.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Iterable, Mapping

from harness.protocols.vxlan.wire import Wire
from harness.textfmt import DETAIL


def summary(wire: Wire) -> list[str]:
    frames = wire.frames()
    kinds = Counter(f.encapsulation.upper() for f in frames)
    lines = [f"overlay frames: {len(frames)}"
             + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else "")]
    for vni in wire.vnis():
        lines.append(f"VNI {vni}: {len(wire.frames(vni=vni))} frame(s)")
    for (src, dst), count in wire.vtep_pairs().items():
        between = wire.frames(src=src, dst=dst)
        ports = ", ".join(str(p) for p in sorted({f.dport for f in between}))
        lines.append(f"{src} > {dst}: {count} frame(s), UDP port {ports}, "
                     f"{len(wire.outer_source_ports(src=src, dst=dst))} source port(s)")
    reserved = sum(f.reserved_clear is False for f in frames)
    if reserved:
        lines.append(f"reserved bits set: {reserved} frame(s)")
    no_i_flag = sum(f.i_flag is False for f in frames)
    if no_i_flag:
        lines.append(f"I flag clear: {no_i_flag} frame(s)")
    if wire.fragments():
        lines.append(f"outer IP fragments: {len(wire.fragments())} "
                     f"(of {sum(f.fragmented for f in frames)} overlay datagram(s))")
    if wire.icmp_errors():
        kinds = Counter(e.kind for e in wire.icmp_errors())
        lines.append(f"ICMP errors about overlay datagrams: {len(wire.icmp_errors())} "
                     f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    if wire.malformed():
        lines.append(f"malformed: {len(wire.malformed())} frame(s)")
    return lines


def transcript(capture: Wire | str | os.PathLike, ports: Iterable[int] | Mapping[int, str] = ()) -> str:
    """Never raises on what the capture holds; an unreadable capture reads "no overlay frames on the wire"."""
    wire = capture if isinstance(capture, Wire) else Wire.from_pcap(capture, ports)
    if not wire.frames() and not wire.icmp_errors():
        return "no overlay frames on the wire"
    lines = summary(wire) + [""]
    for event in sorted([*wire.frames(), *wire.icmp_errors()], key=lambda e: e.number):
        lines.append(event.describe(wire.start))
        lines += [f"{DETAIL}{piece.describe(wire.start)}" for piece in getattr(event, "fragments", ())]
    return "\n".join(lines)
