"""`overlay-interop report DIR` over a matrix.json that is damaged or hand-made: one line naming the file, the
record and the field, exit 2, and no file written, least of all outside DIR."""
import json
import os
import subprocess
import sys

import pytest

from harness.errors import ConfigError
from harness.report import conformance
from harness.results import CaseResult
from support import ROOT

GOOD = {"protocol": "vxlan", "case": "port_default", "a": "linux", "b": "ovs", "verdict": "failed",
        "reason": "sent to 8472", "duration_s": 2.5, "pcap": None}


def files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def report(tmp_path, content: bytes) -> subprocess.CompletedProcess:
    run = tmp_path / "a" / "b" / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "matrix.json").write_bytes(content)
    return subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("vendor", ["../../x", "../../../x", "/tmp/x", "x/../../y"])
def test_a_vendor_name_cannot_write_outside_the_reports_folder(tmp_path, vendor):
    records = [GOOD, dict(GOOD, a=vendor, b="linux")]
    result = report(tmp_path, json.dumps(records).encode())
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    matrix = tmp_path / "a/b/run/matrix.json"
    assert line == (f"overlay-interop: error: {matrix} record 1 (vxlan/port_default {vendor}->linux): a: "
                    f"{vendor!r} is not a safe name (a letter or digit, then letters, digits and . _ @ + -; no '..'; "
                    f"at most 100 characters)")
    assert files(tmp_path) == {"a", "a/b", "a/b/run", "a/b/run/matrix.json"}


@pytest.mark.parametrize("content, problem", [
    (b'[{"protocol": "vxlan", "case": "port_de', "line 1 column 32: not JSON: Unterminated string starting at"),
    (json.dumps({"records": [GOOD]}).encode(), "top level: a list of records expected, found an object"),
    (json.dumps([dict(GOOD, verdict="great")]).encode(),
     "record 0 (vxlan/port_default linux->ovs): verdict: 'great' is not one of passed, failed, broken, skipped"),
    (json.dumps([dict(GOOD, duration_s="2.5 s")]).encode(),
     "record 0 (vxlan/port_default linux->ovs): duration_s: a finite number expected, found '2.5 s'"),
    (json.dumps([dict(GOOD, verdit="failed")]).encode(), "record 0 (vxlan/port_default linux->ovs): verdit: "
                                                         "unknown field; known: protocol, case, a, b, verdict"),
    (json.dumps([GOOD]).encode().replace(b"8472", b"\xff8472"), "encoding: not UTF-8 (byte 0xff at offset 113)"),
])
def test_a_damaged_matrix_is_one_line_and_writes_no_page(tmp_path, content, problem):
    result = report(tmp_path, content)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    matrix = tmp_path / "a/b/run/matrix.json"
    assert line.startswith(f"overlay-interop: error: {matrix}") and problem in line, line
    assert files(tmp_path) == {"a", "a/b", "a/b/run", "a/b/run/matrix.json"}


def test_the_conformance_pages_refuse_a_vendor_name_that_is_not_a_file_name(tmp_path):
    """Results handed over by any caller, not only read_matrix's checked ones."""
    results = [CaseResult("vxlan", "port_default", "linux", "linux", "passed", "", 1.0, None),
               CaseResult("vxlan", "port_default", "linux", "../../escaped", "passed", "", 1.0, None)]
    with pytest.raises(ConfigError) as raised:
        conformance.write(tmp_path, results)
    assert raised.value.where == f"{tmp_path / 'matrix.json'} record 1 (vxlan/port_default linux->../../escaped)"
    assert raised.value.field == "b"
    assert not (tmp_path / "conformance").exists() and not (tmp_path.parent / "escaped.html").exists()


@pytest.mark.parametrize("run_json, problem", [
    (b"[1, 2]", "(file): must be a JSON object"),
    (b'{"host": "x"}', "host: must be an object"),
    (b'{"compared_with": "x"}', "compared_with: must be an object or null"),
    (b'{"compared_with": {"run": 1}}', "compared_with: must name the run"),
    (b'{"images": {"linux": 3}}', "images.linux: must be an object"),
    (b'{"run": "x", "versions"', "(file): not readable JSON"),
])
def test_a_damaged_run_json_is_one_line_not_a_traceback(tmp_path, run_json, problem):
    run = tmp_path / "a" / "b" / "run"
    run.mkdir(parents=True)
    (run / "run.json").write_bytes(run_json)
    result = report(tmp_path, json.dumps([GOOD]).encode())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"overlay-interop: error: {run / 'run.json'}: ") and problem in line, line
