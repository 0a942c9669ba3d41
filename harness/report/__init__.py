"""The pages people read, written from DIR/matrix.json next to it:

    DIR/matrix.html                  every protocol, case and pair at a glance; problems first
    DIR/conformance/<vendor>.html    one vendor's verdicts grouped by RFC, in both roles: a page to hand on

Static and self-contained (inline CSS, no scripts, nothing fetched): they open offline, from an archive.
"""
from __future__ import annotations

from pathlib import Path


def write_pages(reports_dir: Path) -> list[Path]:
    """(Re)write matrix.html and the conformance pages of the run in `reports_dir`; returns their paths."""
    # Imported here: `harness.report.ladder` users (protocol packages) need neither jinja2 nor the registry.
    from harness.report import conformance, matrix
    from harness.results import read_matrix

    reports_dir = Path(reports_dir).resolve()  # reports/latest: the run id is the folder it points to
    results = read_matrix(reports_dir)
    return [matrix.write(reports_dir, results), *conformance.write(reports_dir, results)]
