"""The default interop matrix, run as a user runs it (`overlay-interop run`), on this host's real daemons.

What CI holds it to: the WHOLE matrix pinned through the shipped expectations (expectations/default.toml):
every cell's verdict as expected, every failed and skipped cell matched by an entry with a reason pattern, no
entry that applies here left matching nothing, exit status 0; complete pair folders; Wireshark agreeing with
the transcripts; and the pages of the run sound in a real browser."""
from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from support import ROOT
from test_report_browser import Visit, browser, pages  # noqa: F401 (browser is a fixture)
from ipsec_tshark import disagreements as ipsec_disagreements
from l2tp_tshark import disagreements as l2tp_disagreements
from vxlan_tshark import disagreements

from harness import expectations
from harness.host import declared
from harness.vendor import load_registry

RUN_TIMEOUT_S = 1800
SHIPPED = ROOT / "expectations" / "default.toml"


def key(r: dict) -> str:
    return expectations.cell_key(r["protocol"], r["case"], r["a"], r["b"])


def for_absent_rows(match: str, cells: list[str], rows: set[str], absent: list[str]) -> bool:
    """Whether an entry is for a case of this run between rows it left out: its protocol/case glob matches a case
    here and its pair glob ("a->b", "*x@y*") a pair with such a row on one side (by name, "xl2tpd@kernel", or by
    pattern, "xl2tpd@[ls]*"). Such an entry is not stale for matching no cell here; one naming no case is."""
    case, _, pair = match.rpartition("/")
    if not any(fnmatch.fnmatchcase(c.rpartition("/")[0], case) for c in cells):
        return False
    names = set(rows) | set(absent)
    return any(fnmatch.fnmatchcase(f"{x}->{y}", pair) for x in names for y in names if {x, y} & set(absent))


def test_the_default_matrix(tmp_path, browser):
    # --reruns 1, as a CI gating on the matrix would: a cell whose verdict changes on its second try is marked flaky
    # (software-emulated microVM cells on a busy 2-core host are where that happens), and still judged.
    # --versions none: the vendors' other versions (vendor.toml [versions]) would multiply the IPsec cells by five
    # and add microVM images of each (README "Versions"); CI holds the matrix of the folders' own builds, and the
    # version cells are `./dev run`'s (their expectations are left out of the stale-entry check below).
    # --kernel host: on a host without kernel ESP, Geneve, L2TP or PPP that is today's skips, each expected with its
    # reason; the microVM cells (a tenth of the cells, three fifths of the time: 39 cells, 23 of 39 minutes of cell
    # time in the run of 2026-12-06) are `./dev run`'s, and CI runs a sample of them (tests/test_vm_cells.py).
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--reruns", "1", "--versions", "none",
                             "--kernel", "host", "--reports-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    records = json.loads((tmp_path / "matrix.json").read_text())
    output = result.stdout[-3000:] + result.stderr[-2000:]
    surprises = [f"{key(r)}: {r['verdict']} ({r['outcome']}): {r['reason']}" for r in records
                 if r["outcome"] != "expected"]
    assert not surprises, "\n".join(surprises) + "\n" + output
    loose = [key(r) for r in records if r["verdict"] in ("failed", "skipped")
             and not (r["expectation"] or {}).get("reason")]
    assert not loose, f"failed or skipped cells pinned without a reason pattern: {loose}"
    host = expectations.host_answers(json.loads((tmp_path / "run.json").read_text())["host"])
    registry = load_registry(ROOT / "vendors")
    rules = expectations.load(SHIPPED, set(declared(registry.values())))
    cells = [key(r) for r in records]
    rows = {r[side] for r in records for side in ("a", "b")}
    # versions (--versions none) and variants asked for by name only (ovs@kernel) have no cell in this run
    absent = [name for name, v in registry.items() if v.label and name not in rows]
    stale = [e.match for e in rules.entries if e.holds_on(host) and not any(fnmatch.fnmatchcase(c, e.match)
                                                                             for c in cells)
             and not for_absent_rows(e.match, cells, rows, absent)]
    assert not stale, f"entries of {SHIPPED.name} that match no cell of the default matrix: {stale}"
    assert result.returncode == 0, output
    for r in records:
        if r["verdict"] == "skipped":
            continue
        folder = tmp_path / "pairs" / r["protocol"] / r["case"] / f"{r['a']}__{r['b']}"
        assert (folder / "capture.pcap").stat().st_size > 0, folder
        assert (folder / "transcript.txt").is_file() and list(folder.glob("*.log")), folder
        if r["protocol"] == "vxlan":  # Wireshark reads every pair's capture as the harness's transcript does
            assert not disagreements(folder / "capture.pcap"), folder
        if r["protocol"] == "l2tp":  # message types, tunnel/session ids, Ns/Nr as Wireshark reads them
            assert not l2tp_disagreements(folder / "capture.pcap"), folder
        if r["protocol"] == "ipsec":  # exchanges, SPIs, message ids, notifies; ESP SPIs and sequence numbers
            assert not ipsec_disagreements(folder / "capture.pcap"), folder

    # The pages of this real run, in a real browser: no errors, one cell per record, every link a file.
    visit = Visit(browser, tmp_path / "matrix.html")
    cells = visit.page.eval_on_selector_all("td[data-verdict]", "cells => cells.map(td => "
                                            "[td.dataset.case, td.dataset.a, td.dataset.b, td.dataset.verdict])")
    assert sorted(map(tuple, cells)) == sorted((r["case"], r["a"], r["b"], r["verdict"]) for r in records)
    for path in pages(tmp_path):
        links = Visit(browser, path).links()
        # an earlier try's evidence is its folder (pairs/.../tries/<n>/), every other link a file
        missing = [href for href in links if "#" not in href and not Path(unquote(urlparse(href).path)).is_file()
                   and not (href.endswith("/") and Path(unquote(urlparse(href).path)).is_dir())]
        assert not missing, f"{path.name} links to missing files: {missing[:5]}"
