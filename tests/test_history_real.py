"""History from real runs: three narrow runs of vxlan unicast linux->linux under one reports/ folder, the second
with a copy of the linux vendor made to fail the case on purpose (it sends VXLAN to UDP 4790, not 4789). Each run
compares itself with the one before it by default; `overlay-interop history` shows the change at the run that made
it. Run 1 also shows that run.json records the image each vendor ran and the Debian packages it is made of.
These start real containers: they need a Docker engine (./dev test sets one up)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from harness.cli import main
from harness.results import read_matrix

sys.path.insert(0, str(Path(__file__).parent))
from test_history import history_rows  # noqa: E402

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 600  # a first run on a clean machine also builds the images
CELL = "vxlan/unicast/linux->linux"
WRONG_PORT = '''

class WrongPort(LinuxKernel):
    """The kernel VTEP sending to (and listening on) the port after the one the scenario asks for: a verdict
    changed on purpose, by a real run."""

    def setup(self, scenario, side, timeout):
        import dataclasses
        super().setup(scenario, dataclasses.replace(side, port=side.port + 1), timeout)
'''


def broken_linux(folder: Path) -> Path:
    """A --vendors-dir holding a copy of vendors/linux whose adapter uses the wrong UDP port (run with
    --no-project-vendors: it keeps the name linux, so the history compares one cell)."""
    copy = folder / "linux"
    shutil.copytree(ROOT / "vendors" / "linux", copy)
    with (copy / "adapter.py").open("a") as adapter:
        adapter.write(WRONG_PORT)
    toml = (copy / "vendor.toml").read_text()
    (copy / "vendor.toml").write_text(re.sub(r'(?m)^adapter = ".*"$', 'adapter = "adapter:WrongPort"', toml))
    return folder


def narrow_run(reports: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites" / "vxlan"), "--rootdir", str(ROOT),
                           "-k", "unicast", "--vendors", "linux", "-n", "0", "-p", "no:randomly",
                           "--reports-dir", str(reports), "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("history")
    vendors = broken_linux(base / "vendors")
    folders = [base / "reports" / name for name in ("r1", "r2", "r3")]
    for folder, extra in zip(folders, ([], ["--no-project-vendors", "--vendors-dir", str(vendors)], [])):
        result = narrow_run(folder, *extra)
        assert (folder / "matrix.json").is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    return folders


def verdict(folder: Path):
    [result] = [r for r in read_matrix(folder) if (r.protocol, r.case, r.a, r.b) == ("vxlan", "unicast", "linux", "linux")]
    return result


def test_run_json_records_each_vendors_image_and_its_debian_packages(runs):
    facts = json.loads((runs[0] / "run.json").read_text())
    image = facts["images"]["linux"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["id"])
    # what vendors/linux/Dockerfile installs, with dpkg's versions
    assert {"iproute2", "ethtool", "iperf3", "iputils-ping", "dpkg"} <= set(image["packages"])
    assert all(re.fullmatch(r"[0-9A-Za-z.+~:-]+", v) for v in image["packages"].values()), image["packages"]
    page = (runs[0] / "matrix.html").read_text()
    assert f"<code>{image['id'][7:19]}</code>" in page and f"{len(image['packages'])} packages" in page
    assert f"image.linux={image['id']}" in (runs[0] / "allure-results" / "environment.properties").read_text()


def test_each_run_is_compared_with_the_one_before_it(runs):
    assert verdict(runs[0]).verdict == "passed"
    assert verdict(runs[1]).verdict in ("failed", "broken"), verdict(runs[1]).reason
    assert (verdict(runs[1]).previous, verdict(runs[2]).previous) == ("passed", verdict(runs[1]).verdict)
    assert verdict(runs[2]).verdict == "passed"
    ids = [json.loads((r / "run.json").read_text())["run"] for r in runs]
    compared = [json.loads((r / "run.json").read_text()).get("compared_with") for r in runs]
    assert compared == [None, {"run": ids[0], "folder": str(runs[0])}, {"run": ids[1], "folder": str(runs[1])}]
    page = (runs[1] / "matrix.html").read_text()
    assert 'data-change="new failure"' in page and f"changed since run {ids[0]}" in page


def test_history_over_three_real_runs_shows_the_change_at_the_right_run(runs, capsys):
    out = runs[0].parent / "history.html"
    assert main(["history", *map(str, runs), "--out", str(out)]) == 0
    ids = [json.loads((r / "run.json").read_text())["run"] for r in runs]
    line = history_rows(out)[CELL]
    assert [(run, change) for run, _, change, _, _ in line] == [(ids[0], None), (ids[1], "new failure"),
                                                                 (ids[2], "fixed")]
    for folder, (_, _, _, href, _) in zip(runs, line):  # each verdict opens that run's own evidence
        target = (out.parent / unquote(href)).resolve()
        assert target.is_file() and target.is_relative_to(folder / "pairs" / "vxlan" / "unicast" / "linux__linux")
