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

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

VERDICTS = ("passed", "failed", "broken", "skipped")
# Worse verdicts win when a case's phases disagree (a passed call with a broken teardown is broken).
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "broken": 3}


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

    def merge(self, verdict: str, reason: str, duration_s: float) -> None:
        """Fold in one more phase (setup, call, teardown) of the same case."""
        self.duration_s = round(self.duration_s + duration_s, 3)
        if _RANK[verdict] > _RANK[self.verdict]:
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


def summary_table(results: list[CaseResult]) -> str:
    """One block per protocol: a line per case with each pair's verdict, then the x/y interoperate count."""
    lines = []
    for protocol in sorted({r.protocol for r in results}):
        rows = [r for r in results if r.protocol == protocol]
        passed = sum(r.verdict == "passed" for r in rows)
        ran = sum(r.verdict != "skipped" for r in rows)
        lines.append(f"{protocol}: {passed}/{ran} pair-cases interoperate ({len(rows) - ran} skipped)")
        width = max(len(r.case) for r in rows)
        for r in sorted(rows, key=lambda r: (r.case, r.a, r.b)):
            reason = f"  {r.reason.splitlines()[0][:90]}" if r.verdict != "passed" and r.reason else ""
            lines.append(f"  {r.case:<{width}}  {r.a} -> {r.b}  {r.verdict.upper()}{reason}")
    return "\n".join(lines)
