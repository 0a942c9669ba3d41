"""A device under test the harness knows nothing of: the test makes it itself, a network namespace holding a Linux
vxlan device, reached through one end of a veth pair left on the host as the device's "NIC", and configured by
`control = "command"` (tests/data/devices/vxlan-netns.py, iproute2 in that namespace). Real cases run against the
harness's vendors, verdicts from the wire; the interface comes back to the host afterwards, also after a SIGKILL
of the run (then `overlay-interop clean` gives it back). Needs root and a Docker engine on this host's kernel."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.devices import on_host

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "data" / "devices" / "vxlan-netns.py"
DEVICE, PEER = "198.18.250.10/24", "198.18.250.1/24"
RUN_TIMEOUT_S = 900


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def netns_vtep(tmp_path):
    """The device: namespace `oidut<pid>` with the veth end "dut" at DEVICE; the host keeps the other end as the
    NIC, `oinic<pid>`, with no address (the harness gives its peer one, inside the peer's namespace)."""
    ns, nic = f"oidut{os.getpid()}", f"oinic{os.getpid() % 100000}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", nic, "type", "veth", "peer", "name", "dut", "netns", ns)
        for where in ([], ["ip", "netns", "exec", ns]):
            sh(*where, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", ns, "address", "add", DEVICE, "dev", "dut")
        sh("ip", "-n", ns, "link", "set", "dut", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "set", nic, "up")
        inventory = tmp_path / "devices.toml"
        inventory.write_text(f"""
[[device]]
name = "netns-vtep"
description = "a Linux vxlan device in a namespace the test made"
version = "test {os.uname().release}"
interface = "{nic}"
address = "{DEVICE}"
peer_address = "{PEER}"
control = "command"
command = "{sys.executable} {SCRIPT} {ns}"
timeout = 30

[device.protocols.vxlan]
roles = ["vtep1", "vtep2"]
features = ["vxlan"]
""")
        yield ns, nic, inventory
    finally:
        if not on_host(nic):  # the harness did not give it back: take it down with the namespace anyway
            subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=ROOT, capture_output=True)
        subprocess.run(["ip", "link", "del", nic], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run(reports: Path, inventory: Path, *args: str, **popen):
    return subprocess.Popen([sys.executable, "-m", "pytest", "suites/vxlan", "-p", "no:randomly", "-n", "0",
                             "--devices", str(inventory), "--reports-dir", str(reports), "--expect", "none",
                             "--compare", "none", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def test_docker_vxlan_cases_against_a_device_in_a_namespace(netns_vtep, tmp_path):
    ns, nic, inventory = netns_vtep
    vendors = os.environ.get("OI_DEVICE_VENDORS", "linux,ovs,scapy-vtep")
    reports = tmp_path / "r"
    process = run(reports, inventory, "--vendors", f"{vendors},netns-vtep",
                  "-k", "(test_unicast or test_vni_isolation) and netns-vtep")
    out, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    matrix = {(r["case"], r["a"], r["b"]): r for r in json.loads((reports / "matrix.json").read_text())}
    for vendor in vendors.split(","):
        for case in ("unicast", "vni_isolation"):
            cell = matrix[case, vendor, "netns-vtep"]
            assert cell["verdict"] == "passed", f"{case} {vendor}->netns-vtep: {cell['reason']}\n{out[-3000:]}"
            assert cell["pcap"], cell
        cell = matrix["unicast", "netns-vtep", vendor]
        assert cell["verdict"] == "passed", f"unicast netns-vtep->{vendor}: {cell['reason']}\n{out[-3000:]}"
        # the device cannot send the harness's frames from its own address: that case skips, saying so
        cell = matrix["vni_isolation", "netns-vtep", vendor]
        assert cell["verdict"] == "skipped" and "runs nothing on it" in cell["reason"], cell
    # the wire: the device's frames were seen on the harness's side of its link, from its declared address
    from harness.protocols.vxlan.wire import Wire
    folder = reports / matrix["unicast", vendors.split(",")[0], "netns-vtep"]["pcap"]
    wire = Wire.from_pcap(folder, ports={4789: "vxlan"})
    assert wire.echoes(src=DEVICE.split("/")[0], dst=PEER.split("/")[0]), wire.describe()
    assert {f.src for f in wire.frames()} <= {DEVICE.split("/")[0], PEER.split("/")[0]}, wire.describe()
    run_json = json.loads((reports / "run.json").read_text())
    assert run_json["versions"]["netns-vtep"].startswith("test "), run_json["versions"]
    assert on_host(nic), f"{nic} was not given back to the host"
    assert "dut" in sh("ip", "-n", ns, "-br", "link"), "the device's end of the link is gone"


def test_docker_a_killed_run_gives_the_interface_back_on_clean(netns_vtep, tmp_path):
    ns, nic, inventory = netns_vtep
    hold = tmp_path / "hold"  # the device script waits while this exists: the run is killed mid-case
    hold.touch()
    reports = tmp_path / "r"
    process = run(reports, inventory, "--vendors", "linux,netns-vtep", "-k", "test_unicast and linux-",
                  env={**os.environ, "OI_TEST_DEVICE_HOLD": str(hold)}, start_new_session=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while on_host(nic):
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never took the device's interface"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    hold.unlink()
    assert not on_host(nic), "the interface came back without the reaper: this test proves nothing"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert on_host(nic), f"clean did not give {nic} back: {done.stdout}{done.stderr}"
    assert "dut" in sh("ip", "-n", ns, "-br", "link"), "the device's end of the link is gone"
    assert "UP" in sh("ip", "-br", "link", "show", nic)
