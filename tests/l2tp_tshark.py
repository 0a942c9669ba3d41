"""Does harness.protocols.l2tp.wire read a capture as Wireshark does? Frame by frame: the message type, tunnel
and session ids, Ns and Nr of every L2TP datagram (UDP 1701).

    python tests/l2tp_tshark.py CAPTURE.pcap [...]      # prints the disagreements; exit 1 if there are any
    from l2tp_tshark import disagreements               # from a test (tests/ is on sys.path)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.protocols.l2tp.wire import Wire  # noqa: E402

TSHARK = shutil.which("tshark")
FIELDS = ("frame.number", "l2tp.avp.message_type", "l2tp.tunnel", "l2tp.session", "l2tp.Ns", "l2tp.Nr")


def _number(text: str) -> int | None:
    return int(text, 0) if text else None


def tshark_view(pcap: Path) -> dict[int, tuple]:
    out = subprocess.run([TSHARK, "-r", str(pcap), "-Y", "l2tp", "-T", "fields", "-E", "separator=|",
                          "-E", "occurrence=f", *sum((["-e", f] for f in FIELDS), [])],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    view = {}
    for line in out.splitlines():
        number, kind, tunnel, session, ns, nr = (line.split("|") + [""] * 6)[:6]
        view[int(number)] = (_number(kind), _number(tunnel), _number(session), _number(ns), _number(nr))
    return view


def disagreements(pcap: str | Path) -> list[str]:
    """Every frame where the harness's reading and tshark's differ; empty when they agree."""
    ours = {d.number: (d.message.message_code, d.message.tunnel_id, d.message.session_id, d.message.ns,
                       d.message.nr) for d in Wire.from_pcap(pcap).datagrams if not d.message.malformed}
    theirs = tshark_view(Path(pcap))
    return [f"frame {n}: harness {ours.get(n)} tshark {theirs.get(n)}"
            for n in sorted(ours.keys() | theirs.keys()) if ours.get(n) != theirs.get(n)]


if __name__ == "__main__":
    from support import tshark_main
    sys.exit(tshark_main(disagreements, sys.argv[1:]))
