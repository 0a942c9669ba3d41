"""Does harness.protocols.vxlan.wire read a capture as Wireshark does? Frame by frame: the VNI, the inner IPv4
addresses (or the ARP sender and target addresses) and the inner source MAC.

    python tests/vxlan_tshark.py CAPTURE.pcap [...]      # prints the disagreements; exit 1 if there are any

    from vxlan_tshark import disagreements              # from a test (tests/ is on sys.path)
    assert not disagreements(pcap), ...

An ICMP error quoting an overlay datagram is compared on the quoted VNI. Where the two may rightly differ,
the harness's frame is left out: a datagram whose outer fragments are not
all in the capture (the harness decodes the first fragment, Wireshark shows nothing), and inner addresses of
a frame the harness marks malformed (Wireshark shows whatever part of a cut-short header it could read).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.protocols.vxlan.wire import GENEVE_PORTS, VXLAN_PORTS, OverlayFrame, Wire  # noqa: E402

TSHARK = shutil.which("tshark")
FIELDS = ("frame.number", "vxlan.vni", "geneve.vni", "ip.src", "ip.dst", "arp.src.proto_ipv4",
          "arp.dst.proto_ipv4", "eth.src")
WIRESHARK_DEFAULTS = {4789: "vxlan", 6081: "geneve"}


@dataclass(frozen=True)
class TsharkFrame:
    number: int
    vni: int | None
    ip_src: tuple[str, ...]     # every IPv4 header's, outer first
    ip_dst: tuple[str, ...]
    arp_src: str | None
    arp_dst: str | None
    eth_src: tuple[str, ...]


def _values(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)


def tshark_frames(pcap: str | Path, ports: dict[int, str] | None = None) -> dict[int, TsharkFrame]:
    """What tshark shows of each frame, by frame number. `ports`: {port: "vxlan" | "geneve"} beyond
    Wireshark's own 4789 and 6081 (8472 is always added)."""
    wanted = {port: "vxlan" for port in VXLAN_PORTS} | {port: "geneve" for port in GENEVE_PORTS} | (ports or {})
    command = [TSHARK, "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for port, kind in sorted(wanted.items()):
        if WIRESHARK_DEFAULTS.get(port) != kind:
            command += ["-d", f"udp.port=={port},{kind}"]
    for name in FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    frames = {}
    for line in out.splitlines():
        number, vxlan_vni, geneve_vni, ip_src, ip_dst, arp_src, arp_dst, eth_src = line.split("|")
        vni = vxlan_vni or geneve_vni
        frames[int(number)] = TsharkFrame(int(number), int(vni, 0) if vni else None, _values(ip_src),
                                          _values(ip_dst), arp_src or None, arp_dst or None, _values(eth_src))
    return frames


def _incomplete(frame: OverlayFrame) -> bool:
    return bool(frame.fragments) and bool(frame.malformed)


def compare(frame: OverlayFrame | None, seen: TsharkFrame | None) -> list[str]:
    """What the harness and tshark disagree on in one frame."""
    number = frame.number if frame is not None else seen.number
    if frame is None:
        return [f"frame {number}: tshark shows VNI {seen.vni}, the harness no overlay frame"]
    if seen is None or seen.vni is None:
        return [] if frame.vni is None else [f"frame {number}: the harness shows VNI {frame.vni}, tshark none"]
    problems = []
    if frame.vni != seen.vni:
        problems.append(f"frame {number}: VNI {frame.vni} (harness) vs {seen.vni} (tshark)")
    inner = frame.inner
    if inner is None or frame.malformed:
        return problems
    outer_ipv4 = 0 if ":" in frame.src else 1   # tshark's ip.* lists hold the outer header too over IPv4
    if inner.ip is not None and inner.ip.version == 4:
        theirs = (seen.ip_src[outer_ipv4:outer_ipv4 + 1], seen.ip_dst[outer_ipv4:outer_ipv4 + 1])
        if theirs != ((inner.ip.src,), (inner.ip.dst,)):
            problems.append(f"frame {number}: inner {inner.ip.src} > {inner.ip.dst} (harness) vs "
                            f"{','.join(theirs[0]) or '-'} > {','.join(theirs[1]) or '-'} (tshark)")
    elif len(seen.ip_src) > outer_ipv4:
        problems.append(f"frame {number}: tshark shows an inner IPv4 {seen.ip_src[outer_ipv4]}, the harness none")
    if inner.arp is not None and (seen.arp_src, seen.arp_dst) != (inner.arp.sender_ip, inner.arp.target_ip):
        problems.append(f"frame {number}: ARP {inner.arp.sender_ip} > {inner.arp.target_ip} (harness) vs "
                        f"{seen.arp_src} > {seen.arp_dst} (tshark)")
    # Any occurrence: a Linux cooked capture has no outer Ethernet header.
    if inner.src is not None and inner.src not in seen.eth_src:
        problems.append(f"frame {number}: inner MAC {inner.src} (harness), tshark {','.join(seen.eth_src) or '-'}")
    return problems


def disagreements(pcap: str | Path, ports: dict[int, str] | None = None) -> list[str]:
    """Every disagreement between the harness's Wire and tshark on `pcap`; empty when they agree."""
    wire = Wire.from_pcap(pcap, ports or {})
    ours = {f.number: f for f in wire.frames() if not _incomplete(f)}
    quoted = {e.number: e for e in wire.icmp_errors()}   # Wireshark dissects the datagram an ICMP error quotes
    theirs = {n: f for n, f in tshark_frames(pcap, ports).items() if f.vni is not None}
    problems = []
    for number in sorted(ours.keys() | theirs.keys()):
        if number in quoted:
            error, seen = quoted[number], theirs.get(number)
            if error.vni is not None and (seen is None or seen.vni != error.vni):
                problems.append(f"frame {number}: ICMP error quoting VNI {error.vni} (harness) vs "
                                f"{seen.vni if seen else 'none'} (tshark)")
            continue
        problems += compare(ours.get(number), theirs.get(number))
    return problems


def main(paths: list[str]) -> int:
    if TSHARK is None:
        print("tshark is not installed", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        problems = disagreements(path)
        failed = failed or bool(problems)
        print(f"{path}: " + ("agrees with tshark" if not problems else f"{len(problems)} disagreement(s)"))
        for problem in problems:
            print(f"    {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
