"""The default interop matrix, run as a user runs it (`overlay-interop run`), on this host's real daemons.

What CI holds it to: no broken cell (harness or lab trouble), a reason on every skip, complete pair
folders, and failed cells exactly the known findings listed in tests/data/known_findings.txt, so that
both a new interop failure and a fixed one are noticed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from support import DATA, ROOT
from test_report_browser import Visit, browser, pages  # noqa: F401 (browser is a fixture)
from l2tp_tshark import disagreements as l2tp_disagreements
from vxlan_tshark import disagreements

RUN_TIMEOUT_S = 900


def known_findings() -> set[str]:
    lines = (DATA / "known_findings.txt").read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_the_default_matrix(tmp_path, browser):
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--reports-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    records = json.loads((tmp_path / "matrix.json").read_text())
    output = result.stdout[-3000:] + result.stderr[-2000:]
    broken = [f"{r['case']} {r['a']}->{r['b']}: {r['reason']}" for r in records if r["verdict"] == "broken"]
    assert not broken, "\n".join(broken)
    assert all(r["reason"] for r in records if r["verdict"] in ("skipped", "failed")), output
    failed = {f"{r['protocol']}/{r['case']}/{r['a']}->{r['b']}" for r in records if r["verdict"] == "failed"}
    assert failed == known_findings(), output
    assert result.returncode == (1 if failed else 0), output
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

    # The pages of this real run, in a real browser: no errors, one cell per record, every link a file.
    visit = Visit(browser, tmp_path / "matrix.html")
    cells = visit.page.eval_on_selector_all("td[data-verdict]", "cells => cells.map(td => "
                                            "[td.dataset.case, td.dataset.a, td.dataset.b, td.dataset.verdict])")
    assert sorted(map(tuple, cells)) == sorted((r["case"], r["a"], r["b"], r["verdict"]) for r in records)
    for path in pages(tmp_path):
        links = Visit(browser, path).links()
        missing = [href for href in links if "#" not in href and not Path(unquote(urlparse(href).path)).is_file()]
        assert not missing, f"{path.name} links to missing files: {missing[:5]}"
