"""Verdicts across runs: what changed since an earlier run (`--compare`, marked on the matrix page) and each
cell's verdict over many runs (`overlay-interop history`). A run is its reports folder: DIR/matrix.json, and
DIR/run.json for its id.

Runs are ordered by the time in their run id (`20261205-231344-3278`), which says when the run started; a
folder whose run.json is missing or has no such id falls back to when its matrix.json was written.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.results import CaseResult, read_matrix

FAILING = ("failed", "broken")
# What a change of verdict means to someone gating on the matrix, worst news first.
CHANGES = ("new failure", "fixed", "newly skipped", "newly run", "changed")


def cell_key(result: CaseResult) -> str:
    """'vxlan/unicast/linux->ovs': the name of a cell in every run (and in expectations' globs)."""
    return f"{result.protocol}/{result.case}/{result.a}->{result.b}"


def change(previous: str | None, current: str) -> str | None:
    """What it means that a cell's verdict went from `previous` to `current`; None when it did not change or the
    earlier run did not have the cell."""
    if previous is None or previous == current:
        return None
    if current in FAILING:
        return "new failure" if previous not in FAILING else "changed"  # failed <-> broken: still not working
    if current == "skipped":
        return "newly skipped"
    return "fixed" if previous in FAILING else "newly run"


@dataclass
class RunFolder:
    folder: Path
    id: str
    when: float  # seconds since the epoch: the run id's time, else when matrix.json was written
    results: dict[str, CaseResult]  # by cell_key

    @property
    def compared_with(self) -> dict[str, str]:
        """What run.json records of the run a run was compared with."""
        return {"run": self.id, "folder": str(self.folder)}


_STAMP = re.compile(r"(\d{8}-\d{6})")


def run_id(folder: Path) -> str:
    """The id in the folder's run.json, else the folder's name."""
    try:
        facts = json.loads((folder / "run.json").read_text())
        return str(facts["run"])
    except (OSError, ValueError, TypeError, KeyError):
        return folder.name


def _when(folder: Path, ident: str) -> tuple[float, float]:
    written = (folder / "matrix.json").stat().st_mtime
    stamp = _STAMP.match(ident)
    if stamp:
        try:
            return time.mktime(time.strptime(stamp.group(1), "%Y%m%d-%H%M%S")), written
        except ValueError:  # twelve digits that are no date
            pass
    return written, written


def _sort_key(folder: Path) -> tuple[float, float, str]:
    return (*_when(folder, run_id(folder)), folder.name)


def load(folder: Path) -> RunFolder:
    """One run, from its reports folder. A folder without matrix.json, or with one that cannot be read, is one
    ConfigError line."""
    folder = Path(folder).resolve()
    if not (folder / "matrix.json").is_file():
        raise ConfigError(str(folder / "matrix.json"), "(file)", "not found; a run's reports folder holds one")
    try:
        results = read_matrix(folder)
    except (ValueError, TypeError) as exc:  # read_matrix validates and says which record; this is the fallback
        raise ConfigError(str(folder / "matrix.json"), "(records)", f"not a matrix the harness wrote: {exc}") from None
    ident = run_id(folder)
    return RunFolder(folder, ident, _when(folder, ident)[0], {cell_key(r): r for r in results})


def ordered(runs) -> list[RunFolder]:
    """Oldest first; one entry per folder (reports/latest and the folder it points to are one run)."""
    unique = {run.folder: run for run in runs}
    return sorted(unique.values(), key=lambda run: _sort_key(run.folder))


def run_folders(root: Path) -> list[Path]:
    """Every run under `root` (a reports/ folder): its sub-folders holding a matrix.json, oldest first. The
    `latest` link is not a run of its own."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / "matrix.json").is_file()]
    return sorted(found, key=_sort_key)


def previous_run(reports_dir: Path) -> Path | None:
    """The run a new run in `reports_dir` compares with by default: the newest other run beside it, when it sits
    in a folder named reports/ (where `overlay-interop run` puts every run); else None."""
    reports_dir = Path(reports_dir).resolve()
    if reports_dir.parent.name != "reports":
        return None
    others = [p for p in run_folders(reports_dir.parent) if p.resolve() != reports_dir]
    return others[-1] if others else None


def compare(results: list[CaseResult], earlier: RunFolder) -> None:
    """Set each result's `previous` to that cell's verdict in the earlier run (None where it had no such cell)."""
    for result in results:
        known = earlier.results.get(cell_key(result))
        result.previous = known.verdict if known else None


def changes(results: list[CaseResult]) -> list[tuple[CaseResult, str]]:
    """The results whose verdict changed since the run they were compared with, with what the change means;
    worst news first, then in matrix order."""
    found = [(r, what) for r in results if (what := change(r.previous, r.verdict))]
    return sorted(found, key=lambda item: (CHANGES.index(item[1]), item[0].protocol, item[0].case,
                                           item[0].a, item[0].b))


@dataclass
class Step:
    """One cell in one run of a history: its result there (None: the run did not have the cell) and, where its
    verdict differs from the cell's last verdict in an earlier run, what the change means."""
    run: RunFolder
    result: CaseResult | None
    change: str | None


def timeline(runs: list[RunFolder]) -> dict[str, list[Step]]:
    """Each cell seen in any of the runs (oldest first) -> one Step per run. A run without the cell does not
    break the line: the next run that has it is compared with the last one that had it."""
    keys = sorted({key for run in runs for key in run.results})
    lines = {}
    for key in keys:
        steps, last = [], None
        for run in runs:
            result = run.results.get(key)
            steps.append(Step(run, result, change(last, result.verdict) if result else None))
            last = result.verdict if result else last
        lines[key] = steps
    return lines
