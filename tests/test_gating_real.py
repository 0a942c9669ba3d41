"""The exit status a CI gates on, from `overlay-interop run` over real VTEPs (Linux and Open vSwitch): 0 with the
shipped expectations, 1 naming the cell first when an expectations file says a genuine finding passes, 3 when a
vendor's node breaks. The VXLAN cells take seconds each."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.docker
SHIPPED = ROOT / "expectations" / "default.toml"
SELECTION = ["--vendors", "linux,ovs@3.1", "-k", "unicast or port_default"]


def overlay_interop(*args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_shipped_expectations_gate_a_real_run(tmp_path):
    code, output = overlay_interop(*SELECTION, "--reports-dir", str(tmp_path / "shipped"))
    assert code == 0, output
    records = json.loads((tmp_path / "shipped" / "matrix.json").read_text())
    assert {r["verdict"] for r in records} == {"passed", "failed"}, "the selection holds a genuine finding"

    # The same run against a file whose first entry says port_default linux->ovs passes.
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[cell]]\nmatch = "vxlan/port_default/linux->ovs"\nverdict = "passed"\n'
                     'note = "wrong on purpose"\n\n' + SHIPPED.read_text())
    code, output = overlay_interop(*SELECTION, "--expect", str(wrong), "--reports-dir", str(tmp_path / "wrong"))
    assert code == 1, output
    unexpected = [line.strip() for line in output.splitlines() if line.strip().startswith("UNEXPECTED")]
    assert unexpected and unexpected[0].startswith("UNEXPECTED vxlan/port_default/linux->ovs: failed (expected "
                                                   "passed)"), output
    assert len(unexpected) == 1, output


def test_a_broken_vendor_node_exits_3(tmp_path):
    """A copy of the linux vendor whose daemon command does not exist: its node cannot start, the cell is broken."""
    vendors = tmp_path / "vendors"
    shutil.copytree(ROOT / "vendors" / "linux", vendors / "linux")
    dockerfile = vendors / "linux" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + '\nENTRYPOINT ["/no/such/daemon"]\n')
    # --no-project-vendors: the copy keeps the name linux, which vendors/ would clash with
    code, output = overlay_interop("--no-project-vendors", "--vendors-dir", str(vendors), "--vendors", "linux",
                                   "-k", "unicast",
                                   "--reports-dir", str(tmp_path / "r"), "-n", "0")
    records = json.loads((tmp_path / "r" / "matrix.json").read_text())
    assert [r["verdict"] for r in records] == ["broken"], output
    assert code == 3, output
