"""The history page (`overlay-interop history`): each cell's verdict across runs, oldest to newest.

One row per cell (protocol / case / a -> b), one column per run; each verdict links to that run's evidence for
the cell (relative links from the page, so a folder holding the page and the runs can be archived or moved as
one). The run where a cell's verdict changed is highlighted and says what the change means; cells whose verdict
never changed follow, folded. Static like matrix.html: inline CSS, no script, nothing fetched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness.history import RunFolder, Step, timeline
from harness.report.matrix import ENV, Cell, Order, cell, run_facts


@dataclass(frozen=True)
class Column:
    """One run: its id and date, and its matrix page relative to the history page."""
    id: str
    date: str
    matrix: str | None


@dataclass
class Entry:
    step: Step
    cell: Cell | None  # None: the run did not have the cell

    @property
    def link(self):
        """The evidence the verdict links to: the transcript, else a daemon log, else the capture."""
        if self.cell is None:
            return None
        return self.cell.main or (self.cell.files[0] if self.cell.files else None)


@dataclass
class Row:
    protocol: str
    case: str
    a: str
    b: str
    key: str
    entries: list[Entry]

    @property
    def changed(self) -> bool:
        return any(e.step.change for e in self.entries)


def _prefix(run: RunFolder, page_dir: Path) -> str:
    """The run's folder as a link from the page's folder, ending in '/'."""
    return quote(Path(os.path.relpath(run.folder, page_dir.resolve())).as_posix()) + "/"


def rows(runs: list[RunFolder], page_dir: Path) -> list[Row]:
    prefixes = [_prefix(run, page_dir) for run in runs]
    out, results = [], []
    for key, steps in timeline(runs).items():
        first = next(step.result for step in steps if step.result)
        entries = [Entry(step, cell(run.folder, step.result, prefix) if step.result else None)
                   for step, run, prefix in zip(steps, runs, prefixes)]
        out.append(Row(first.protocol, first.case, first.a, first.b, key, entries))
        results += [step.result for step in steps if step.result]
    order = Order.of(results)
    return sorted(out, key=lambda row: (row.protocol, row.case, order.key(row.a), order.key(row.b)))


def write(out: Path, runs: list[RunFolder]) -> Path:
    """Write the history of `runs` (oldest first) to the file `out`; returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    page_dir = out.parent.resolve()
    columns = []
    for run in runs:
        matrix = run.folder / "matrix.html"
        columns.append(Column(run.id, run_facts(run.folder)["date"],
                              _prefix(run, page_dir) + "matrix.html" if matrix.is_file() else None))
    all_rows = rows(runs, page_dir)
    changed = [row for row in all_rows if row.changed]
    page = ENV.get_template("history.html.j2").render(
        columns=columns, changed=changed, unchanged=[row for row in all_rows if not row.changed])
    out.write_text(page)
    return out
