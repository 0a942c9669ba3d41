"""Does harness.protocols.ipsec.wire read a capture as Wireshark does? Frame by frame for IKE: exchange type, SPIs
(IKEv1: cookies), message id and the notify types in the clear; per ESP SPI: the packets, first and last sequence.

    python tests/ipsec_tshark.py CAPTURE.pcap [...]      # prints the disagreements; exit 1 if there are any

    from ipsec_tshark import disagreements              # from a test (tests/ is on sys.path)
    assert not disagreements(pcap), ...

A message the harness reads as damaged is left out of the comparison (Wireshark shows whatever part of it it
could read, the harness says why the rest could not be read).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.protocols.ipsec.wire import Wire  # noqa: E402

TSHARK = shutil.which("tshark")
FIELDS = ("frame.number", "isakmp.ispi", "isakmp.rspi", "isakmp.exchangetype", "isakmp.messageid",
          "isakmp.notify.msgtype", "esp.spi", "esp.sequence")


def tshark_view(pcap: Path) -> tuple[dict[int, tuple], dict[int, tuple[int, int, int]]]:
    """({frame: (exchange, ispi, rspi, message id, notify types)}, {spi: (packets, first seq, last seq)})."""
    command = [TSHARK, "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a",
               "-Y", "isakmp or esp"]
    for name in FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    ike, esp = {}, defaultdict(list)
    for line in out.splitlines():
        number, ispi, rspi, exchange, mid, notifies, spis, seqs = (line.split("|") + [""] * 8)[:8]
        if exchange:
            ike[int(number)] = (int(exchange), ispi, rspi, int(mid, 16),
                                tuple(sorted(int(n) for n in notifies.split(",") if n)))
        for spi, seq in zip(spis.split(","), seqs.split(",")):
            if spi and seq:
                esp[int(spi, 16)].append(int(seq))
    return ike, {spi: (len(seqs), seqs[0], seqs[-1]) for spi, seqs in esp.items()}


def harness_view(pcap: Path) -> tuple[dict[int, tuple], dict[int, tuple[int, int, int]], set[int]]:
    wire = Wire.from_pcap(pcap)
    ike, damaged = {}, set()
    for m in wire.messages:
        if m.problem is not None:
            damaged.add(m.frame)
            continue
        clear = tuple(sorted(n.type.number for n in m.notifies))
        ike[m.frame] = (m.exchange.number, m.ispi.hex(), m.rspi.hex(), m.message_id, clear)
    flows = defaultdict(lambda: [0, None, None])
    for flow in wire.flows:  # one SPI may show as two flows (plain and in UDP): Wireshark counts it once
        seen = flows[flow.spi]
        seen[0] += flow.packets
        seen[1] = flow.first_seq if seen[1] is None else min(seen[1], flow.first_seq)
        seen[2] = flow.last_seq if seen[2] is None else max(seen[2], flow.last_seq)
    return ike, {spi: tuple(v) for spi, v in flows.items()}, damaged


def disagreements(pcap: str | Path) -> list[str]:
    """Every IKE frame and ESP SPI where the harness's reading and tshark's differ; empty when they agree."""
    pcap = Path(pcap)
    ours, our_esp, damaged = harness_view(pcap)
    theirs, their_esp = tshark_view(pcap)
    problems = [f"frame {n}: harness {ours.get(n)} tshark {theirs.get(n)}"
                for n in sorted(ours.keys() | theirs.keys()) if n not in damaged and ours.get(n) != theirs.get(n)]
    problems += [f"ESP spi 0x{spi:08x}: harness {our_esp.get(spi)} tshark {their_esp.get(spi)}"
                 for spi in sorted(our_esp.keys() | their_esp.keys()) if our_esp.get(spi) != their_esp.get(spi)]
    return problems


if __name__ == "__main__":
    from support import tshark_main
    sys.exit(tshark_main(disagreements, sys.argv[1:]))
