"""How fast is the default matrix on this machine? Runs it as a user does (`overlay-interop run`) and prints:

- per protocol and case, the median seconds of each phase (lab up, daemons ready, negotiation, verdict,
  teardown) over the pairs that ran, and the median whole case;
- the wall time of the full matrix serially (-n 0) and with two workers (-n 2), and the speed-up;
- the long poles: the cells that took longest, and the sum of all cells against the wall time;
- the floor: the harness's strongswan->strongswan psk_tunnel cell against a plain-docker pair doing the same work,
  interleaved (benchmarks/floor.py), and the ratio of the medians;
- whether repeated runs gave identical verdicts (every protocol/case/pair), and which cells differed; with
  --reference DIR also against an earlier run's matrix.json (e.g. one made by an older checkout);
- with --from-scratch: the time from no images at all to all images built, through the same set-up the
  README's commands run (a throw-away base and images, so the images in use stay).

Each figure is printed against the project's target. Usage:

    python benchmarks/matrix.py [--runs 3] [--no-serial] [--from-scratch] [--floor-rounds 5] [--reference DIR]
                                [-- extra overlay-interop run args]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.results import PHASES  # noqa: E402

import floor  # noqa: E402  (benchmarks/floor.py, beside this file)

MEDIAN_CASE_TARGET_S = 1.5
PARALLEL_TARGET_S = 180
SPEEDUP_TARGET = 1.6
SCRATCH_TARGET_S = 120
LONG_POLES = 10
MEDIAN_CASES = {"ipsec": "psk_tunnel", "vxlan": "unicast", "l2tp": "tunnel_setup"}  # the yardsticks
RUN_TIMEOUT_S = 1800


def run_matrix(workers: int, extra: list[str], folder: Path) -> tuple[float, list[dict]]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "-n", str(workers), "--reports-dir", str(folder),
                    "--compare", "none", *extra], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S)
    wall = time.monotonic() - started
    matrix = folder / "matrix.json"
    if not matrix.exists():
        raise SystemExit(f"benchmark: the run with -n {workers} wrote no {matrix}")
    return wall, json.loads(matrix.read_text())


def phase_table(records: list[dict]) -> str:
    by_case: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        if record["verdict"] != "skipped" and record.get("phases"):
            by_case[(record["protocol"], record["case"])].append(record["phases"])
    width = max([len("protocol/case")] + [len(f"{p}/{c}") for p, c in by_case]) + 2
    header = f"{'protocol/case':{width}}" + "".join(f"{p:>15}" for p in PHASES) + f"{'whole case':>12}{'pairs':>7}"
    lines = [header, "-" * len(header)]
    for (protocol, case), phases in sorted(by_case.items()):
        cells = []
        for phase in PHASES:
            values = [p[phase] for p in phases if phase in p]
            cells.append(f"{statistics.median(values):15.2f}" if values else f"{'-':>15}")
        whole = statistics.median(sum(p.values()) for p in phases)
        lines.append(f"{protocol + '/' + case:{width}}{''.join(cells)}{whole:12.2f}{len(phases):7}")
    return "\n".join(lines)


def median_case(records: list[dict], protocol: str, case: str) -> float | None:
    wholes = [sum(r["phases"].values()) for r in records
              if r["protocol"] == protocol and r["case"] == case and r["verdict"] != "skipped" and r.get("phases")]
    return statistics.median(wholes) if wholes else None


def verdicts(records: list[dict]) -> dict[str, str]:
    return {f"{r['protocol']}/{r['case']}/{r['a']}->{r['b']}": r["verdict"] for r in records}


def long_poles(records: list[dict], wall: float) -> str:
    ran = [r for r in records if r["verdict"] != "skipped" and r.get("phases")]
    total = sum(sum(r["phases"].values()) for r in ran)
    lines = [f"cells that ran: {len(ran)}, their durations summed {total:.0f} s against {wall:.0f} s of wall time "
             f"with -n 2 ({total / wall:.2f} cells at once on average); the longest:"]
    in_vm = [r for r in ran if r.get("vm")]
    if in_vm:
        vm_total = sum(sum(r["phases"].values()) for r in in_vm)
        lines.append(f"  of which {len(in_vm)} cells with a microVM (--kernel auto): {vm_total:.0f} s summed, "
                     f"{vm_total / total:.0%} of all cell time, ~{vm_total / total * wall:.0f} s of the wall time")
    for r in sorted(ran, key=lambda r: -sum(r["phases"].values()))[:LONG_POLES]:
        lines.append(f"  {sum(r['phases'].values()):6.2f} s  {r['protocol']}/{r['case']}/{r['a']}->{r['b']}")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "MISSES the target"


def from_scratch() -> tuple[float, int]:
    """Time bootstrap + every image build as on a machine with no images at all, without touching the images
    in use: a base bootstrapped under a throw-away tag, every image built FROM it (a new base id: no layer of
    the build cache applies), then all of them removed."""
    base = f"overlay-interop/base:bench-{os.getpid()}"
    started = time.monotonic()
    subprocess.run(["bash", "scripts/setup-host.sh"], cwd=ROOT, env=dict(os.environ, OVERLAY_INTEROP_LOCAL_BASE=base),
                   check=True, stdout=subprocess.DEVNULL)
    built = subprocess.run([sys.executable, "-m", "harness.cli", "images", "build"], cwd=ROOT, check=True,
                           env=dict(os.environ, OVERLAY_INTEROP_BASE_IMAGE=base), capture_output=True, text=True).stdout
    elapsed = time.monotonic() - started
    tags = [line.split(": ", 1)[1] for line in built.splitlines() if ": overlay-interop/" in line]
    subprocess.run(["docker", "rmi", *tags, base], stdout=subprocess.DEVNULL, check=False)
    return elapsed, len(tags)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch-only", action="store_true", help="only the --from-scratch figure")
    parser.add_argument("--runs", type=int, default=3, help="full runs with -n 2 (verdicts compared across them)")
    parser.add_argument("--no-serial", action="store_true", help="skip the -n 0 run (no speed-up figure)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="also time bootstrap + all builds with no image cached (under throw-away tags)")
    parser.add_argument("--floor-rounds", type=int, default=5,
                        help="interleaved rounds of the psk_tunnel cell and the plain-docker floor (0: none)")
    parser.add_argument("--reference", metavar="DIR",
                        help="an earlier run's reports folder (e.g. of an older checkout) whose verdicts are compared")
    parser.add_argument("extra", nargs="*", help="arguments for overlay-interop run (after --)")
    args = parser.parse_args()

    report = []
    if args.from_scratch:
        scratch, count = from_scratch()
        report.append(f"bootstrap + all image builds ({count} images) from no images: {scratch:.0f} s "
                      f"(target <= {SCRATCH_TARGET_S} s: {verdict(scratch <= SCRATCH_TARGET_S)})")
        if args.scratch_only:
            print(report[0])
            return 0
    # the figures below are for cached images: build (or confirm) them outside the timings
    subprocess.run([sys.executable, "-m", "harness.cli", "images", "build"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)

    with tempfile.TemporaryDirectory(prefix="oi-bench-") as tmp:
        parallel = [run_matrix(2, args.extra, Path(tmp) / f"n2-{i}") for i in range(max(args.runs, 1))]
        walls = [wall for wall, _ in parallel]
        records = parallel[0][1]
        serial = None if args.no_serial else run_matrix(0, args.extra, Path(tmp) / "n0")

    print("Median seconds per phase, per case (first -n 2 run; pairs that ran, not skipped)")
    print(phase_table(serial[1] if serial else records))
    print()
    source = serial[1] if serial else records
    for protocol, case in MEDIAN_CASES.items():
        median = median_case(source, protocol, case)
        if median is None:
            print(f"median {protocol}/{case}: not in this matrix")
        else:
            print(f"median {protocol}/{case}, lab up to teardown done: {median:.2f} s "
                  f"(target <= {MEDIAN_CASE_TARGET_S} s: {verdict(median <= MEDIAN_CASE_TARGET_S)})")
    print(long_poles(records, walls[0]))
    print(f"full matrix, -n 2: {', '.join(f'{w:.0f} s' for w in walls)} "
          f"(target <= {PARALLEL_TARGET_S} s: {verdict(min(walls) <= PARALLEL_TARGET_S)})")
    if serial:
        speedup = serial[0] / statistics.median(walls)
        print(f"full matrix, -n 0: {serial[0]:.0f} s; -n 2 is {speedup:.2f}x faster "
              f"(target >= {SPEEDUP_TARGET}x: {verdict(speedup >= SPEEDUP_TARGET)})")
    if args.floor_rounds:
        cells_s, floors_s = floor.rounds(args.floor_rounds)
        ratio = statistics.median(cells_s) / statistics.median(floors_s)
        print(f"floor: median psk_tunnel cell {statistics.median(cells_s):.2f} s, median plain-docker pair "
              f"{statistics.median(floors_s):.2f} s over {args.floor_rounds} interleaved rounds: ratio {ratio:.2f} "
              f"(target <= {floor.RATIO_TARGET}: {verdict(ratio <= floor.RATIO_TARGET)})")
    runs = [verdicts(r) for _, r in parallel] + ([verdicts(serial[1])] if serial else [])
    if args.reference:
        runs.append(verdicts(json.loads((Path(args.reference) / "matrix.json").read_text())))
    cells = sorted(set().union(*runs))
    differing = [c for c in cells if len({run.get(c) for run in runs}) > 1]
    print(f"verdicts over {len(runs)} full runs{' (the last: --reference)' if args.reference else ''}: "
          f"{len(cells)} cells, "
          + ("identical in every run" if not differing else f"{len(differing)} differ:"))
    for cell in differing:
        print(f"  {cell}: " + " / ".join(run.get(cell, "absent") for run in runs))
    for line in report:
        print(line)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
