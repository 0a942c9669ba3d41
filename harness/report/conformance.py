"""DIR/conformance/<vendor>.html: one vendor's results, a page it can hand to a customer.

The cases are grouped by RFC (a record's clause "RFC 7296 2.6" is section 2.6 of RFC 7296), each with its title
and the verdict against every peer in both roles: as initiator against each responder, as responder against
each initiator, the harness's probe included. Failures and skips show their reason; the header names the run,
the vendor's version and what this host lacks (when the run recorded them in DIR/run.json).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.report.matrix import ENV, Cell, Order, cell, run_facts, split_title, summary, vendors
from harness.results import CaseResult, name_problem, record_label

CLAUSE = re.compile(r"(RFC (\d+))\s*(.*)")
NO_RFC = "Other cases"


def split_clause(clause: str) -> tuple[str, str]:
    """'RFC 7296 2.6' -> ('RFC 7296', '2.6'); 'RFC 6023' -> ('RFC 6023', ''); '' -> ('Other cases', '')."""
    match = CLAUSE.match(clause)
    return (match.group(1), match.group(3)) if match else (NO_RFC, "")


def _rfc_key(rfc: str) -> tuple[int, str]:
    match = CLAUSE.match(rfc)
    return (int(match.group(2)), "") if match else (1 << 30, rfc)


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(part) for part in section.split(".") if part.isdigit())


@dataclass
class Row:
    case: str
    section: str
    refs: str
    text: str
    as_initiator: list[tuple[str, Cell]]  # (responder, cell)
    as_responder: list[tuple[str, Cell]]  # (initiator, cell)


@dataclass
class Group:
    protocol: str
    rfc: str
    rows: list[Row]


def groups(reports_dir: Path, vendor: str, results: list[CaseResult]) -> list[Group]:
    by_rfc: dict[tuple[str, str], list[Row]] = {}
    order = Order.of(results)
    for protocol, case in sorted({(r.protocol, r.case) for r in results}):
        records = [r for r in results if (r.protocol, r.case) == (protocol, case)]
        clause, title = records[0].clause, records[0].title
        rfc, section = split_clause(clause)
        refs, text = split_title(clause, title)
        row = Row(case, section, refs, text,
                  [(r.b, cell(reports_dir, r, "../")) for r in sorted(records, key=lambda r: order.key(r.b))
                   if r.a == vendor],
                  [(r.a, cell(reports_dir, r, "../")) for r in sorted(records, key=lambda r: order.key(r.a))
                   if r.b == vendor])
        by_rfc.setdefault((protocol, rfc), []).append(row)
    return [Group(protocol, rfc, sorted(rows, key=lambda row: (_section_key(row.section), row.case)))
            for (protocol, rfc), rows in sorted(by_rfc.items(), key=lambda item: (item[0][0], _rfc_key(item[0][1])))]


def _check_vendors(reports_dir: Path, results: list[CaseResult]) -> None:
    """A vendor name becomes a file name here: refuse one that would leave conformance/ (results read from
    matrix.json are checked already; these may come from anywhere)."""
    for index, r in enumerate(results):
        for side in ("a", "b"):
            if problem := name_problem(getattr(r, side)):
                raise ConfigError(f"{reports_dir / 'matrix.json'} {record_label(index, vars(r))}", side, problem)


def write(reports_dir: Path, results: list[CaseResult]) -> list[Path]:
    _check_vendors(reports_dir, results)
    folder = reports_dir / "conformance"
    folder.mkdir(exist_ok=True)
    facts = run_facts(reports_dir)
    # run.json's host answers are "yes" or "no (what the kernel said)".
    lacks = {name: str(answer).removeprefix("no").strip().removeprefix("(").removesuffix(")")
             for name, answer in facts["host"].items() if not str(answer).startswith("yes")}
    written = []
    for vendor in vendors(results):
        mine = [r for r in results if vendor in (r.a, r.b)]
        skips = Counter(r.reason for r in mine if r.verdict == "skipped")
        page = ENV.get_template("conformance.html.j2").render(
            vendor=vendor, version=facts["versions"].get(vendor, ""), facts=facts, lacks=lacks,
            probes=sorted(Order.of(mine).probes),
            summaries=[summary(p, [r for r in mine if r.protocol == p]) for p in sorted({r.protocol for r in mine})],
            skips=skips.most_common(), groups=groups(reports_dir, vendor, mine))
        path = folder / f"{vendor}.html"
        path.write_text(page)
        written.append(path)
    for stale in set(folder.glob("*.html")) - set(written):  # a vendor no longer in this matrix.json
        stale.unlink()
    return written

