"""ovs@kernel: Open vSwitch on the openvswitch kernel datapath, a qemu microVM where this host's kernel lacks the
module (--kernel auto). First OVS started as a freshly booted VM starts it, then real cells against the Linux
kernel's VXLAN device in both directions, and the Linux vendor's Geneve device in a microVM (this host may lack
geneve) against Open vSwitch; judged from the wire, each 15-40 s on two shared cores (the VM boots under software
emulation). A cell may run twice (--reruns 1, as a gating CI does); one that passes only on its second try is
flagged flaky in matrix.json, and still has to pass."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from support import ROOT, vm_ready

pytestmark = pytest.mark.docker

# unicast[linux->ovs@kernel], unicast[ovs@kernel->linux], geneve[linux->ovs] (-k matches the ids' text).
CELLS = {("unicast", "linux", "ovs@kernel"), ("unicast", "ovs@kernel", "linux"), ("geneve", "linux", "ovs")}
SELECTION = ["--vendors", "ovs@kernel,linux,ovs", "--protocols", "vxlan",
             "-k", "(test_unicast and kernel and linux) or (test_geneve and not options and linux- and ovs])"]
# What OVS 3.1 logs when it started in the first 10 s of a boot with no upcall handler (vendors/ovs/NOTES.md).
NO_HANDLER = "Overriding n-handler-threads to 0"


# --- OVS started within seconds of a boot ------------------------------------------------------------------------

# A microVM on an idle host starts the daemon 5-9 s into its boot; on a loaded one later. A time namespace whose
# monotonic and boot clocks read under 1 s gives run-ovs a fresh boot on any host (even a slow run-ovs reaches
# vswitchd well within 10 s of it), so the case cannot pass by luck.
FRESH_BOOT = ["bash", "-c", 'off=$((0 - $(cut -d. -f1 /proc/uptime))); '
                            'exec unshare --time --monotonic=$off --boottime=$off --fork /usr/local/sbin/run-ovs']


@pytest.fixture(scope="module")
def fresh_boot(tmp_path_factory):
    from harness.lab import Lab
    from harness.run import LABEL, Run, new_run_id, owner_of
    images = vm_ready("ovs")
    image = images.ensure("ovs", ROOT / "vendors" / "ovs")
    run = Run(new_run_id(), owner_of(os.getpid()), "main", tmp_path_factory.mktemp("ovs-fresh-boot"))
    lab = Lab(images.client, run, "vm/ovs-fresh-boot")
    try:
        network = lab.network()
        node = lab.vm_node("vtep1", image, network, images=images, command=FRESH_BOOT)
        node.wait_ready()
        node.start()
        yield node, network
    finally:
        lab.close()
        left = images.client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL}.run={run.id}"})
        assert not left, f"left behind: {[c.name for c in left]}"


def test_ovs_started_right_after_a_boot_reads_the_kernel_datapaths_upcalls(fresh_boot):
    import importlib.util

    from harness.host import HostCapabilities
    from harness.protocols.vxlan.scenario import DEFAULT_SEGMENT, Scenario, Side
    node, network = fresh_boot
    spec = importlib.util.spec_from_file_location("ovs_adapter", ROOT / "vendors" / "ovs" / "adapter.py")
    adapter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(adapter)
    ovs = adapter.OpenVSwitch(node, HostCapabilities({"openvswitch": True}, {}))
    peer = str(network.subnet.network_address + 250)  # a tunnel port needs a remote; nothing is sent to it
    side = Side("vtep1", 1, node.address, network.subnet.prefixlen, (peer,), 4789, (DEFAULT_SEGMENT,))
    # The adapter's own setup: on the kernel datapath it ends by waiting for a frame to cross a private bridge
    # (a miss, an upcall, a flow put), and breaks saying how many upcalls the kernel lost if none does.
    ovs.setup(Scenario(), side, timeout=120)
    logs = node.logs()
    # When vswitchd started on the daemon's clock: its start (clock ticks after boot) plus the namespace's offset.
    started = node.exec(["sh", "-c", "p=$(pidof ovs-vswitchd); echo $(cut -d' ' -f22 /proc/$p/stat) "
                                     "$(getconf CLK_TCK) $(cat /proc/$p/timens_offsets)"], timeout=30).output
    logs += f"\n(vswitchd: start ticks, ticks/s, time namespace offsets: {started.strip()})"
    assert "system@ovs-system" in logs, logs[-2000:]
    assert NO_HANDLER not in logs, f"OVS started with no upcall handler:\n{logs[-3000:]}"
    shown = node.exec(["ovs-dpctl", "show"], timeout=30, check=True).output
    assert re.search(r"\blost:0\b", shown), shown
    # The daemon did run on the fresh boot's clock: its time namespace sets the monotonic clock back.
    offsets = node.exec(["sh", "-c", "cat /proc/$(pidof ovs-vswitchd)/timens_offsets"], timeout=30, check=True).output
    assert int(re.search(r"monotonic\s+(-?\d+)", offsets).group(1)) < 0, offsets


# --- real cells --------------------------------------------------------------------------------------------------

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
        # Where this host lacks the module the variant runs in a VM; either way on the kernel datapath, and with an
        # upcall handler from its start in every try (a first try without one is no flake: see fresh_boot above).
        role = "vtep1" if a == "ovs@kernel" else "vtep2"
        log = (folder / f"{role}-ovs@kernel.log").read_text()
        assert "system@ovs-system" in log, f"ovs@kernel did not use the kernel datapath:\n{log[-2000:]}"
        assert "netdev@ovs-netdev" not in log
        for tried in folder.rglob(f"{role}-ovs@kernel.log"):
            assert NO_HANDLER not in tried.read_text(), f"{tried}: OVS started with no upcall handler"
    if "vm" in record:
        assert set(record["vm"]) <= {"ovs@kernel", "linux"} and "ovs" not in record["vm"], record["vm"]
