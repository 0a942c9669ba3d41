"""What a CI gates on: the run's exit status against the expectations (0 as expected, 1 not, 3 broken), the
verdict of a case however it raises its failure, and --reruns with flaky cells. The cells are made to order by a
small out-of-tree suite and vendor folder (tmp_path), run by the real plugin through pytest on the real Docker
engine (the plugin reaps and probes the host there); the cases start no container, so each run takes seconds."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = '''
import os
from pathlib import Path

import pytest

from harness.errors import CaptureError, HarnessError

pytestmark = pytest.mark.protocol("vxlan")


def test_passes(pair_lab):
    """RFC 7348 5: a cell that passes."""
    (pair_lab.dir / "evidence.txt").write_text("passed")


def test_asserts(pair_lab):
    """RFC 7348 5: a cell whose wire check fails with an assert."""
    assert False, "linux sent to 8472, not 4789"


def test_fails_by_pytest_fail(pair_lab):
    """RFC 7348 5: a cell whose wire check fails with pytest.fail."""
    pytest.fail("no VXLAN frame to 4789 on the wire")


def test_breaks(pair_lab):
    """RFC 7348 5: a cell the harness cannot complete."""
    raise HarnessError("timed out after 1s waiting for the daemon to start")


def test_unusable_capture(pair_lab):
    """RFC 7348 5: a cell whose case passed without reading the wire, but whose capture lost packets."""
    def stop():
        raise CaptureError("capture.pcap (tcpdump on vtep1 eth0): 3 packets dropped by kernel")
    pair_lab.on_teardown(stop)


def test_flaky(pair_lab):
    """RFC 7348 5: a cell that fails on its first try only."""
    counter = Path(os.environ["OI_TRIES"])
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    (pair_lab.dir / "evidence.txt").write_text(f"try {n}")
    assert n > 1, "the first try fails on purpose"
'''

VENDOR = '''
name = "alpha"
description = "a stand-in vendor for the harness's gating tests"
adapter = "adapter:Alpha"

[protocols.vxlan]
roles = ["vtep1", "vtep2"]
features = ["vxlan"]
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gating")
    (root / "test_cells.py").write_text(SUITE)
    vendor = root / "vendors" / "alpha"
    vendor.mkdir(parents=True)
    (vendor / "vendor.toml").write_text(VENDOR)
    (vendor / "adapter.py").write_text("class Alpha:\n    pass\n")
    return root


def run(project: Path, reports: Path, *args: str) -> tuple[int, str, dict]:
    """pytest over the made-to-order suite; (exit status, output, matrix.json records by case)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", str(project / "test_cells.py"), "--rootdir", str(project),
                           "--vendors-dir", str(project / "vendors"), "--reports-dir", str(reports), "-q",
                           "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OI_TRIES": str(reports.parent / f"{reports.name}.tries")})
    output = proc.stdout + proc.stderr
    matrix = reports / "matrix.json"
    records = {r["case"]: r for r in json.loads(matrix.read_text())} if matrix.exists() else {}
    return proc.returncode, output, records


def expect(project: Path, name: str, text: str) -> str:
    path = project / name
    path.write_text(text)
    return str(path)


def test_pytest_fail_in_a_case_is_a_failed_verdict_not_broken(project, tmp_path):
    code, output, records = run(project, tmp_path / "r", "-k", "fails_by_pytest_fail", "--expect", "none")
    assert records["fails_by_pytest_fail"]["verdict"] == "failed", output
    assert records["fails_by_pytest_fail"]["reason"] == "no VXLAN frame to 4789 on the wire"
    assert code == 1, output


def test_without_expectations_a_failure_exits_1_and_a_broken_cell_3(project, tmp_path):
    assert run(project, tmp_path / "a", "-k", "passes", "--expect", "none")[0] == 0
    assert run(project, tmp_path / "b", "-k", "asserts", "--expect", "none")[0] == 1
    code, output, records = run(project, tmp_path / "c", "-k", "asserts or breaks", "--expect", "none")
    assert records["breaks"]["verdict"] == "broken" and code == 3, output


def test_a_failure_as_expected_exits_0_and_another_reason_exits_1_naming_the_cell(project, tmp_path):
    as_expected = expect(project, "as-expected.toml", '[[cell]]\nmatch = "vxlan/asserts/alpha->alpha"\n'
                                                      'verdict = "failed"\nreason = "8472"\nnote = "Linux default"\n')
    code, output, records = run(project, tmp_path / "a", "-k", "asserts or passes", "--expect", as_expected)
    assert code == 0, output
    assert records["asserts"]["outcome"] == "expected" and records["passes"]["outcome"] == "expected"
    assert records["asserts"]["expectation"] == {"match": "vxlan/asserts/alpha->alpha", "verdict": "failed",
                                                 "reason": "8472", "note": "Linux default"}

    other_reason = expect(project, "other.toml", '[[cell]]\nmatch = "vxlan/*/alpha->alpha"\nverdict = "failed"\n'
                                                 'reason = "no answer"\n')
    code, output, records = run(project, tmp_path / "b", "-k", "asserts", "--expect", other_reason)
    assert code == 1 and records["asserts"]["outcome"] == "unexpected", output
    assert "UNEXPECTED vxlan/asserts/alpha->alpha: failed (expected failed with a reason matching /no answer/)" in output
    page = (tmp_path / "b" / "matrix.html").read_text()
    assert page.index('data-outcome="unexpected"') < page.index('id="problems"'), "unexpected cells come first"


def test_a_broken_cell_exits_3_whatever_the_expectations(project, tmp_path):
    anything = expect(project, "anything.toml", '[[cell]]\nmatch = "vxlan/*"\nverdict = "failed"\n')
    code, output, records = run(project, tmp_path / "r", "-k", "breaks or asserts", "--expect", anything)
    assert records["breaks"]["outcome"] == "unexpected" and code == 3, output


def test_a_fixed_cell_says_so_and_fails_only_when_strict(project, tmp_path):
    stale = expect(project, "stale.toml", '[[cell]]\nmatch = "vxlan/passes/*"\nverdict = "failed"\n')
    code, output, records = run(project, tmp_path / "a", "-k", "passes", "--expect", stale)
    assert code == 0 and records["passes"]["outcome"] == "fixed", output
    assert "FIXED vxlan/passes/alpha->alpha: passed, expected failed (vxlan/passes/*): update the expectations" in output
    assert run(project, tmp_path / "b", "-k", "passes", "--expect", stale, "--expect-strict")[0] == 1


def test_a_cell_whose_capture_is_unusable_is_broken_though_the_case_passed(project, tmp_path):
    code, output, records = run(project, tmp_path / "r", "-k", "unusable_capture", "--expect", "none")
    assert records["unusable_capture"]["verdict"] == "broken", output
    assert "3 packets dropped by kernel" in records["unusable_capture"]["reason"] and code == 3


def test_a_cell_flaky_on_purpose_keeps_both_tries_and_their_evidence(project, tmp_path):
    code, output, records = run(project, tmp_path / "r", "-k", "flaky", "--expect", "none", "--reruns", "2")
    cell = records["flaky"]
    assert cell["verdict"] == "passed" and cell["flaky"] is True, output
    assert [t["verdict"] for t in cell["tries"]] == ["failed"]
    assert cell["tries"][0]["reason"] == "the first try fails on purpose\nassert 2 > 1" or \
        cell["tries"][0]["reason"].startswith("the first try fails on purpose")
    folder = tmp_path / "r" / "pairs" / "vxlan" / "flaky" / "alpha__alpha"
    assert (tmp_path / "r" / cell["tries"][0]["evidence"] / "evidence.txt").read_text() == "try 1"
    assert (folder / "evidence.txt").read_text() == "try 2"
    assert code == 0, output
    allure = [json.loads(p.read_text()) for p in (tmp_path / "r" / "allure-results").glob("*-result.json")]
    mine = [r for r in allure if r["name"].startswith("test_flaky")]
    assert mine and all(r["statusDetails"]["flaky"] is True for r in mine)
    assert "FLAKY vxlan/flaky/alpha->alpha: failed -> passed" in output
    assert 'data-flaky="1"' in (tmp_path / "r" / "matrix.html").read_text()


def test_a_failure_as_expected_is_not_rerun(project, tmp_path):
    as_expected = expect(project, "rerun.toml", '[[cell]]\nmatch = "vxlan/asserts/*"\nverdict = "failed"\n')
    code, output, records = run(project, tmp_path / "r", "-k", "asserts", "--expect", as_expected, "--reruns", "2")
    assert records["asserts"]["tries"] == [] and code == 0, output
    other = expect(project, "rerun-other.toml", "")
    code, output, records = run(project, tmp_path / "s", "-k", "asserts", "--expect", other, "--reruns", "2")
    assert [t["verdict"] for t in records["asserts"]["tries"]] == ["failed", "failed"]
    assert records["asserts"]["flaky"] is False and code == 1, output
