"""The ovs adapter's kernel-datapath branch, driven through a fake node (what it runs, in which order)."""
from __future__ import annotations

import importlib.util
import ipaddress
import subprocess

import pytest

from harness.errors import HarnessError
from harness.host import HostCapabilities
from harness.lab import ExecResult
from harness.protocols.vxlan.scenario import DEFAULT_SEGMENT, Scenario, Side
from support import ROOT


def _adapter():
    spec = importlib.util.spec_from_file_location("ovs_adapter", ROOT / "vendors" / "ovs" / "adapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeNode:
    name = "vtep1"

    def __init__(self, fail: str | None = None):
        self.scripts: list[str] = []
        self.fail = fail

    def ensure_running(self):
        pass

    def exec(self, argv, *, timeout, what=None, check=False):
        script = argv[-1]
        self.scripts.append(script)
        if self.fail and self.fail in script:
            if check:
                raise HarnessError(f"{self.name}: {what} failed")
            return ExecResult(1, "")
        return ExecResult(0, "ovs-vswitchd (Open vSwitch) 3.1.0")


SIDE = Side("vtep1", 1, "198.18.0.2", 24, ("198.18.0.3",), 4789, (DEFAULT_SEGMENT,))


def _setup(node):
    adapter = _adapter()
    ovs = adapter.OpenVSwitch(node, HostCapabilities({"openvswitch": True}, {}))
    ovs.setup(Scenario(), SIDE, timeout=5)
    return adapter


def test_on_the_kernel_datapath_setup_waits_for_a_first_frame_through_a_private_bridge():
    node = FakeNode()
    adapter = _setup(node)
    built = [i for i, s in enumerate(node.scripts) if "add-br br100" in s]
    assert built and "datapath_type=system" in node.scripts[built[0]]
    assert node.scripts[-1] == adapter.WARM_UPCALLS, "the wait comes after the segments' bridges"
    assert not any("br-phy" in s for s in node.scripts), "no netdev underlay on the kernel datapath"


def test_a_datapath_that_never_forwards_breaks_setup_saying_so():
    with pytest.raises(HarnessError, match="first frame through br-warm"):
        _setup(FakeNode(fail="warm1"))


def test_the_wait_is_valid_bash_that_keeps_off_the_scenarios_inner_addresses():
    adapter = _adapter()
    assert subprocess.run(["bash", "-n", "-c", adapter.WARM_UPCALLS]).returncode == 0
    assert "198.19.255.253/30" in adapter.WARM_UPCALLS
    assert not DEFAULT_SEGMENT.subnet.overlaps(ipaddress.ip_network("198.19.255.252/30"))


def test_a_datapath_that_loses_every_upcall_says_how_many_it_lost(tmp_path):
    """The check's failure names its evidence: the kernel's lost-upcall count and vswitchd's handler count. Stand-ins:
    nothing crosses (`cat` of the counter reads 0), `ping`, `ip` and `ovs-vsctl` do nothing."""
    adapter = _adapter()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {
        "ovs-vsctl": "true",
        "ip": "true",
        "ping": "exit 1",
        "cat": '[ "$1" = /sys/class/net/warm1/statistics/rx_packets ] && { echo 0; exit 0; }; exec /bin/cat "$@"',
        "ovs-dpctl": 'echo "system@ovs-system:"; echo "  lookups: hit:0 missed:20 lost:20"; echo "  flows: 0"',
        "ovs-appctl": 'echo "handlers:1 idl-cells-Open_vSwitch:210 ports:3 revalidators:1 rules:5"',
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", adapter.WARM_UPCALLS], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 1
    assert "no frame crossed br-warm" in proc.stderr and "lost:20" in proc.stderr and "handlers:1" in proc.stderr, \
        proc.stderr
