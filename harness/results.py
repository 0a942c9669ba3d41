"""The output contract other tools read:

    DIR/allure-results/                              allure-pytest output
    DIR/pairs/<protocol>/<case>/<a>__<b>/            capture.pcap, <role>-<vendor>.log, configs/
    DIR/matrix.json                                  one record per (protocol, case, a, b)

A record holds {protocol, case, a, b, verdict, reason, duration_s, pcap}, plus what the report pages group
by: `clause`, the first "RFC NNNN x.y" of the case's docstring, and `title`, the docstring's first sentence.

Verdicts: passed; failed (the implementations did not interoperate: an assertion about the wire or the
tunnel); broken (the harness or a container failed); skipped (with the reason).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError

VERDICTS = ("passed", "failed", "broken", "skipped")
# The phases of a case, in order: the lab (network, containers, capture) is up; the daemons are configured and
# ready; the protocol negotiated (IPsec: the initiator's attempt ended; VXLAN has no negotiation); the verdict
# (traffic, wire checks); teardown (evidence collected, lab removed).
PHASES = ("lab up", "daemons ready", "negotiation", "verdict", "teardown")
MARKS = ("lab up", "daemons ready", "negotiation")  # what a protocol fixture marks when it gets there


def phase_durations(start: float, marks: dict[str, float], call_end: float, end: float) -> dict[str, float]:
    """Seconds per phase from the monotonic times a case reached each mark. A phase whose mark was never
    reached is left out (its time counts towards the next phase that was)."""
    durations, last = {}, start
    for phase in MARKS:
        if phase in marks:
            durations[phase] = round(marks[phase] - last, 3)
            last = marks[phase]
    durations["verdict"] = round(call_end - last, 3)
    durations["teardown"] = round(end - call_end, 3)
    return durations
# Worse verdicts win when a case's phases disagree (a passed call with a broken teardown is broken).
RANK = {"passed": 0, "skipped": 1, "failed": 2, "broken": 3}


@dataclass
class CaseResult:
    protocol: str
    case: str
    a: str
    b: str
    verdict: str
    reason: str
    duration_s: float
    pcap: str | None  # relative to the reports dir
    clause: str = ""  # "RFC 7296 2.6"
    title: str = ""
    # Seconds per phase of the case (PHASES), for the benchmark; only the phases the case reached.
    phases: dict[str, float] = field(default_factory=dict)
    # Figures a case measured (e.g. the overlay tax: throughput and RTT through the overlay and the underlay).
    measurements: dict[str, float] = field(default_factory=dict)
    # Against the expectations in force (harness.expectations): "expected", "unexpected", "fixed" (expected to
    # fail, passed), or None when the run had no expectations; `expectation` is the entry that matched
    # ({match, verdict, reason, note}), None for an unlisted cell (expected to pass).
    outcome: str | None = None
    expectation: dict | None = None
    # --reruns: the earlier tries of a failed or broken cell ({verdict, reason, duration_s, evidence: the folder
    # of that try's files, relative to the reports dir}); flaky when the verdict changed between tries.
    tries: list[dict] = field(default_factory=list)
    flaky: bool = False
    # Both sides are the harness's own code (its reference peers or probe): checks the harness, not interop.
    reference: bool = False
    # --compare: this cell's verdict in the run compared with; None when that run did not have the cell.
    previous: str | None = None

    def merge(self, verdict: str, reason: str, duration_s: float) -> None:
        """Fold in one more phase (setup, call, teardown) of the same case."""
        self.duration_s = round(self.duration_s + duration_s, 3)
        if RANK[verdict] > RANK[self.verdict]:
            self.verdict, self.reason = verdict, reason


CLAUSE = re.compile(r"RFC \d+(?: \d+(?:\.\d+)*)?")


def describe_case(docstring: str | None) -> tuple[str, str]:
    """(clause, title) from a case's docstring: 'RFC 7296 2.6: a responder under load ...'."""
    text = " ".join((docstring or "").split())
    clause = CLAUSE.search(text)
    title = text.split(". ")[0].rstrip(".")
    return (clause.group(0) if clause else ""), title


def pair_dir(reports_dir: Path, protocol: str, case: str, a: str, b: str) -> Path:
    return reports_dir / "pairs" / protocol / case / f"{a}__{b}"


def phase_verdict(outcome: str, is_assertion: bool, when: str) -> str:
    """Map a pytest phase outcome to a verdict: only an assertion in the test body means 'failed'."""
    if outcome == "passed":
        return "passed"
    if outcome == "skipped":
        return "skipped"
    return "failed" if (is_assertion and when == "call") else "broken"


def write_matrix(reports_dir: Path, results: list[CaseResult]) -> Path:
    path = reports_dir / "matrix.json"
    ordered = sorted(results, key=lambda r: (r.protocol, r.case, r.a, r.b))
    path.write_text(json.dumps([asdict(r) for r in ordered], indent=2) + "\n")
    return path


def read_matrix(reports_dir: Path) -> list[CaseResult]:
    return [CaseResult(**record) for record in json.loads((reports_dir / "matrix.json").read_text())]


SHORT = {"passed": "pass", "failed": "FAIL", "broken": "BRKN", "skipped": "skip"}


def interop_line(protocol: str, rows: list[CaseResult]) -> str:
    """'ipsec: 26/27 pair-cases interoperate (1 failed, 0 broken, 30 skipped); 4 reference cells: 4 passed'.
    Reference cells (the harness's own peers on both sides) check the harness, not interop: counted apart."""
    interop = [r for r in rows if not r.reference]
    count = {v: sum(r.verdict == v for r in interop) for v in VERDICTS}
    ran = len(interop) - count["skipped"]
    line = (f"{protocol}: {count['passed']}/{ran} pair-cases interoperate "
            f"({count['failed']} failed, {count['broken']} broken, {count['skipped']} skipped)")
    reference = [r for r in rows if r.reference]
    if reference:
        counts = {v: sum(r.verdict == v for r in reference) for v in VERDICTS}
        line += f"; {len(reference)} reference cells: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return line


def summary_table(results: list[CaseResult]) -> str:
    """Per protocol: the x/y line, a small grid (cases down, numbered pairs across), the pairs' legend, and
    every failed or broken cell with its reason."""
    lines = []
    for protocol in sorted({r.protocol for r in results}):
        rows = [r for r in results if r.protocol == protocol]
        lines.append(interop_line(protocol, rows))
        pairs = sorted({(r.a, r.b) for r in rows})
        cases = sorted({r.case for r in rows})
        cell = {(r.case, r.a, r.b): SHORT[r.verdict] for r in rows}
        width = max(len(c) for c in cases)
        lines.append("  " + " " * width + "".join(f"{n:>6}" for n in range(1, len(pairs) + 1)))
        for case in cases:
            lines.append(f"  {case:<{width}}" + "".join(f"{cell.get((case, a, b), '-'):>6}" for a, b in pairs))
        lines.append("  pairs: " + ", ".join(f"{n} {a}->{b}" for n, (a, b) in enumerate(pairs, 1)))
        for r in sorted(rows, key=lambda r: (r.case, r.a, r.b)):
            if r.verdict in ("failed", "broken"):
                lines.append(f"  {r.verdict.upper()} {r.case} {r.a}->{r.b}: {r.reason.splitlines()[0][:100]}")
    return "\n".join(lines)


def expectation_summary(results: list[CaseResult], source: str, strict: bool = False) -> str:
    """The cells judged against the expectations: a count line, then every unexpected cell (first) and every
    fixed one, with what was expected."""
    key = lambda r: (r.protocol, r.case, r.a, r.b)  # noqa: E731
    unexpected = sorted((r for r in results if r.outcome == "unexpected"), key=key)
    fixed = sorted((r for r in results if r.outcome == "fixed"), key=key)
    lines = [f"expectations ({source}): {sum(r.outcome == 'expected' for r in results)} cells as expected, "
             f"{len(unexpected)} not as expected, {len(fixed)} fixed"]
    for r in unexpected:
        wanted = r.expectation["verdict"] if r.expectation else "passed"
        pattern = f" with a reason matching /{r.expectation['reason']}/" if r.expectation and r.expectation["reason"] else ""
        lines.append(f"  UNEXPECTED {r.protocol}/{r.case}/{r.a}->{r.b}: {r.verdict} (expected {wanted}{pattern})"
                     + (f": {r.reason.splitlines()[0][:160]}" if r.reason else ""))
    for r in fixed:
        lines.append(f"  FIXED {r.protocol}/{r.case}/{r.a}->{r.b}: passed, expected {r.expectation['verdict']} "
                     f"({r.expectation['match']}): update the expectations" + (" (--strict: not as expected)" if strict else ""))
    return "\n".join(lines)


def flaky_summary(results: list[CaseResult]) -> str:
    """One line per flaky cell (its verdict changed between --reruns tries): the verdicts in order."""
    return "\n".join(f"FLAKY {r.protocol}/{r.case}/{r.a}->{r.b}: " + " -> ".join([t["verdict"] for t in r.tries]
                                                                                  + [r.verdict])
                     for r in sorted(results, key=lambda r: (r.protocol, r.case, r.a, r.b)) if r.flaky)


# Allure's own split of results, named for what they mean here (see the verdicts above).
ALLURE_CATEGORIES = [
    {"name": "Did not interoperate", "matchedStatuses": ["failed"],
     "description": "An assertion about the wire or the tunnel failed: the implementations disagree."},
    {"name": "Harness or lab trouble", "matchedStatuses": ["broken"],
     "description": "A container, a daemon start, a config or the harness failed; not an interop verdict."},
    {"name": "Not run: unsupported by a vendor or the host", "matchedStatuses": ["skipped"]},
]


def write_run_facts(run, versions: dict[str, str], host: dict[str, str], allure_dir: Path,
                    images: dict[str, dict] | None = None, compared_with: dict[str, str] | None = None) -> None:
    """DIR/run.json (run id, vendor versions, host capabilities; the image each vendor ran, {"id", "packages":
    {Debian package: version}}; the run this one was compared with, {"run", "folder"}) and, for allure,
    environment.properties and categories.json."""
    facts = {"run": run.id, "versions": dict(sorted(versions.items())), "host": dict(sorted(host.items()))}
    if images is not None:
        facts["images"] = {vendor: {"id": image["id"], "packages": dict(sorted(image.get("packages", {}).items()))}
                           for vendor, image in sorted(images.items())}
    if compared_with is not None:
        facts["compared_with"] = compared_with
    (run.reports_dir / "run.json").write_text(json.dumps(facts, indent=2) + "\n")
    allure_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"run={run.id}"] + [f"vendor.{name}={version}" for name, version in facts["versions"].items()] + \
            [f"image.{name}={image['id']}" for name, image in facts.get("images", {}).items()] + \
            [f"host.{name}={answer}" for name, answer in facts["host"].items()]
    (allure_dir / "environment.properties").write_text("\n".join(_properties_escape(line) for line in lines) + "\n")
    (allure_dir / "categories.json").write_text(json.dumps(ALLURE_CATEGORIES, indent=2) + "\n")


CELL_LABEL = "overlay-interop.cell"  # the allure label naming a result's cell ("protocol/case/a->b")


def mark_flaky(allure_dir: Path, flaky: list[CaseResult]) -> None:
    """Set allure's flaky flag on the results of the flaky cells (found by their cell label)."""
    wanted = {f"{r.protocol}/{r.case}/{r.a}->{r.b}" for r in flaky}
    if not wanted or not allure_dir.is_dir():
        return
    for path in allure_dir.glob("*-result.json"):
        data = json.loads(path.read_text())
        if any(label.get("name") == CELL_LABEL and label.get("value") in wanted for label in data.get("labels", [])):
            data.setdefault("statusDetails", {})["flaky"] = True
            path.write_text(json.dumps(data))


def _properties_escape(line: str) -> str:
    key, _, value = line.partition("=")
    return f"{key}={value.replace(chr(92), chr(92) * 2)}"


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Whether the pair-case `key` ("protocol/case/a->b") belongs to shard i of n: the same answer on every
    run and machine (a hash of the key, not of collection order), so CI jobs split a matrix without talking."""
    index, count = shard
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % count == index - 1


def parse_shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ValueError(f"{text!r} is not i/n with 1 <= i <= n (e.g. 1/4)")
    return int(index), int(count)


def merge_runs(out: Path, runs: list[Path]) -> list[CaseResult]:
    """Join the reports folders of shards into `out`: one matrix.json, the pair folders, one allure-results,
    and run.json with every vendor version and host answer seen. A pair-case in two shards is an error."""
    from harness.run import Run
    merged: dict[tuple, tuple[CaseResult, Path]] = {}
    versions, host, ids = {}, {}, []
    for run in runs:
        if not (run / "matrix.json").is_file():
            raise HarnessError(f"{run / 'matrix.json'}: not found; each DIR must be a run's reports folder")
        for result in read_matrix(run):
            key = (result.protocol, result.case, result.a, result.b)
            if key in merged:
                raise HarnessError(f"{'/'.join(key[:2])} {key[2]}->{key[3]} is in both {merged[key][1]} and {run}: "
                                   f"shards must not overlap")
            merged[key] = (result, run)
        facts = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        versions.update(facts.get("versions", {}))
        host.update(facts.get("host", {}))
        ids.append(facts.get("run", run.name))
        for part in ("pairs", "allure-results"):
            if (run / part).is_dir():
                shutil.copytree(run / part, out / part, dirs_exist_ok=True)
    results = [result for result, _ in merged.values()]
    out.mkdir(parents=True, exist_ok=True)
    write_matrix(out, results)
    write_run_facts(Run("+".join(ids), "", "main", out), versions, host, out / "allure-results")
    return results
