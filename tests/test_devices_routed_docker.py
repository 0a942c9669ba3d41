"""A routed device under test (`via` + `gateway`): the test makes a namespace router between two veth pairs, the
host end of the first as the link the harness moves into its peer (`via`), the device (a Linux vxlan device in a
namespace of its own, as in tests/test_devices_docker.py) behind the router's other side. The peer gets one host
route to the device through the gateway, no NAT: the wire on the peer's side shows the device's own address.
Needs root and a Docker engine on this host's kernel."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.devices import on_host

from test_devices_docker import ROOT, RUN_TIMEOUT_S, SCRIPT, run, sh

DEVICE, ROUTER_DEVICE_SIDE = "198.18.254.10/24", "198.18.254.254/24"
PEER, GATEWAY = "198.18.253.1/24", "198.18.253.254"


@pytest.fixture
def routed_vtep(tmp_path):
    pid = os.getpid() % 100000
    router, ns, nic = f"oirtr{pid}", f"oirdut{pid}", f"oirn{pid}"
    for name in (router, ns):
        sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", nic, "type", "veth", "peer", "name", "up0", "netns", router)
        sh("ip", "-n", router, "link", "add", "dn0", "type", "veth", "peer", "name", "dut", "netns", ns)
        for where in ([], ["ip", "netns", "exec", router], ["ip", "netns", "exec", ns]):
            sh(*where, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # routes; no NAT rule anywhere
        sh("ip", "-n", router, "address", "add", f"{GATEWAY}/24", "dev", "up0")
        sh("ip", "-n", router, "address", "add", ROUTER_DEVICE_SIDE, "dev", "dn0")
        sh("ip", "-n", ns, "address", "add", DEVICE, "dev", "dut")
        for name, links in ((router, ("lo", "up0", "dn0")), (ns, ("lo", "dut"))):
            for link in links:
                sh("ip", "-n", name, "link", "set", link, "up")
        sh("ip", "-n", ns, "route", "add", "198.18.253.0/24", "via", ROUTER_DEVICE_SIDE.split("/")[0])
        sh("ip", "link", "set", nic, "up")
        inventory = tmp_path / "devices.toml"
        inventory.write_text(f"""
[[device]]
name = "routed-vtep"
description = "a Linux vxlan device behind a namespace router"
version = "test {os.uname().release}"
via = "{nic}"
gateway = "{GATEWAY}"
address = "{DEVICE}"
peer_address = "{PEER}"
control = "command"
command = "{sys.executable} {SCRIPT} {ns}"
timeout = 30

[device.protocols.vxlan]
roles = ["vtep1", "vtep2"]
features = ["vxlan"]
""")
        yield nic, router, inventory
    finally:
        if not on_host(nic):
            subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=ROOT, capture_output=True)
        subprocess.run(["ip", "link", "del", nic], capture_output=True)
        for name in (ns, router):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_docker_vxlan_unicast_with_a_routed_device(routed_vtep, tmp_path):
    nic, router, inventory = routed_vtep
    reports = tmp_path / "r"
    process = run(reports, inventory, "--vendors", "linux,routed-vtep", "-k", "test_unicast and routed-vtep")
    out, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    matrix = {(r["case"], r["a"], r["b"]): r for r in json.loads((reports / "matrix.json").read_text())}
    for a, b in (("linux", "routed-vtep"), ("routed-vtep", "linux")):
        cell = matrix["unicast", a, b]
        assert cell["verdict"] == "passed", f"unicast {a}->{b}: {cell['reason']}\n{out[-3000:]}"
    from harness.protocols.vxlan.wire import Wire
    wire = Wire.from_pcap(reports / matrix["unicast", "linux", "routed-vtep"]["pcap"], ports={4789: "vxlan"})
    device, peer = DEVICE.split("/")[0], PEER.split("/")[0]
    # routed, not NATed: the device's frames arrive from its own address, off the peer's link
    assert wire.echoes(src=device, dst=peer), wire.describe()
    assert {f.src for f in wire.frames()} <= {device, peer}, wire.describe()
    assert on_host(nic), f"{nic} was not given back to the host"
    assert "198.18.254.0/24" in sh("ip", "-n", router, "route"), "the router lost its side to the device"
