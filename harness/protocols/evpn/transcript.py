"""transcript.txt for an EVPN pair: every BGP message in order (keepalives counted, not listed), EVPN routes with
their VNIs, then a count of the VXLAN frames the same capture holds (their detail is the vxlan package's)."""
from __future__ import annotations

from collections import Counter

from harness.protocols.evpn.wire import Wire


def transcript(wire: Wire, overlay=None) -> str:
    lines = [f"BGP: {len(wire.records)} messages " + _counts(Counter(r.type_name for r in wire.records))]
    lines += [record.describe(wire.start) for record in wire.records if record.type_name != "KEEPALIVE"]
    lines += [f"! {problem}" for problem in wire.problems]
    if overlay is not None:
        frames = overlay.frames()
        vnis = Counter(f.vni for f in frames)
        lines.append(f"VXLAN: {len(frames)} frames" + (" (" + ", ".join(f"VNI {v}: {n}" for v, n in sorted(
            vnis.items(), key=lambda item: (item[0] is None, item[0] or 0))) + ")" if frames else ""))
    return "\n".join(lines)


def _counts(counts: Counter) -> str:
    return "(" + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) + ")" if counts else ""
