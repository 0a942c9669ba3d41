"""A lab node that is a qemu microVM (harness.vm.VmNode), driven like a container node: Libreswan's own image
booted as the VM's root next to a plain container of the same image, on one lab network. The VM has what this host's kernel lacks
(ESP), its traffic is in a capture taken on its node like any other, and its exec channel is not on the wire."""
from __future__ import annotations

import os
import threading
import time

import pytest

from harness import vm
from harness.errors import DaemonExited, HarnessError, LabTimeout
from harness.lab import Lab
from harness.run import LABEL, Run, new_run_id, owner_of
from support import ROOT, vm_ready

ESP_SA = ["ip", "xfrm", "state", "add", "src", "{src}", "dst", "{dst}", "proto", "esp", "spi", "0x100", "mode",
          "tunnel", "aead", "rfc4106(gcm(aes))", "0x" + "11" * 20, "128"]
PLUTO_CONF = """config setup
    uniqueids=yes
"""


# --- without an engine ------------------------------------------------------------------------------------------

def test_exec_scripts_keep_the_arguments_and_the_images_environment():
    script = vm.shell_script(["ip", "a b", "$HOME", "it's"], {"PATH": "/x:/y", "LANG": "C U", "bad-key": "z"}, "/w d")
    assert script.splitlines() == ["export PATH=/x:/y", "export LANG='C U'", "cd '/w d' 2>/dev/null || cd /",
                                   "exec ip 'a b' '$HOME' 'it'\"'\"'s'"]


def test_the_daemon_runs_in_the_background_and_its_exit_status_is_kept():
    lines = vm.daemon_script(["/usr/sbin/d", "--x y"], {"A": "1"}, "/").splitlines()
    assert lines[0] == f"rm -f {vm.DAEMON}.exit"
    assert f"/usr/sbin/d '--x y' </dev/null >>{vm.DAEMON}.log 2>&1" in lines
    assert f"echo $? > {vm.DAEMON}.exit" in lines
    assert lines[-1].endswith("&") and "export A=1" in lines


def test_a_vm_image_follows_the_kit_and_the_vendor_image():
    tag = vm.vm_image_tag("sha256:kit1", "sha256:vendor1", "libreswan")
    assert tag.startswith("overlay-interop/vm-libreswan:")
    assert vm.vm_image_tag("sha256:kit1", "sha256:vendor1", "libreswan") == tag
    assert vm.vm_image_tag("sha256:kit2", "sha256:vendor1", "libreswan") != tag
    assert vm.vm_image_tag("sha256:kit1", "sha256:vendor2", "libreswan") != tag
    assert vm.vendor_name("overlay-interop/libreswan:39863d2599db") == "libreswan"
    assert vm.vendor_name("registry:5000/Some_Vendor@sha256:ab") == "some_vendor"


def test_the_container_callers_see_is_the_qemu_one_but_its_image_is_the_vendors():
    class Qemu:
        id = "qemu-id"
        image = "the kit"
    vendor = type("Image", (), {"id": "sha256:vendor", "tags": ["overlay-interop/libreswan:x"]})()
    seen = vm.VmContainer(Qemu(), vendor)
    assert (seen.id, seen.image.id) == ("qemu-id", "sha256:vendor")


# --- with an engine ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    images = vm_ready("libreswan")
    client = images.client
    libreswan = images.ensure("libreswan", ROOT / "vendors" / "libreswan")
    run = Run(new_run_id(), owner_of(os.getpid()), "main", tmp_path_factory.mktemp("vm"))
    lab = Lab(client, run, "vm/selftest")
    try:
        network = lab.network()
        node = lab.vm_node("responder", libreswan, network, images=images)
        # The same image as a plain container: same tools (ping, ip), only the kernel differs.
        peer = lab.node("peer", libreswan, network, command=["sleep", "infinity"])
        peer.start()
        from harness.capture import Capture
        capture = Capture(lab, node, images.tools()).start()
        node.wait_ready()
        yield lab, node, peer, capture
    finally:
        lab.close()
        left = client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL}.run={run.id}"})
        assert not left, f"left behind: {[c.name for c in left]}"


@pytest.mark.docker
def test_the_vm_and_a_container_ping_each_other_and_the_capture_on_the_vm_node_sees_only_that(lab, tmp_path):
    _, node, peer, capture = lab
    assert node.exec(["ping", "-n", "-c", "2", "-W", "2", peer.address], timeout=15).ok
    assert peer.exec(["ping", "-n", "-c", "2", "-W", "2", node.address], timeout=15).ok
    node.exec(["true"], timeout=10, check=True)  # the exec channel in use during the capture: it must not show
    from harness.packets import read
    frames = read(capture.stop(tmp_path / "vm.pcap")).frames
    # The VM's MAC is made from its address; the qemu container's own interfaces must stay silent.
    vm_mac = bytes.fromhex("525400") + bytes(int(b) for b in node.address.split(".")[1:])
    _, out = node.qemu.exec_run(["sh", "-c", "cat /sys/class/net/eth0/address /sys/class/net/br0/address "
                                             "/sys/class/net/tap0/address"])
    container_macs = {bytes.fromhex(line.replace(":", "")) for line in out.decode().split()}
    assert container_macs  # the bridge takes a port's MAC: two or three distinct ones
    assert not [f.number for f in frames if f.data[6:12] in container_macs]
    from_vm = [f for f in frames if f.data[6:12] == vm_mac]
    assert {f.data[12:14] for f in from_vm} == {b"\x08\x06", b"\x08\x00"}  # ARP and IPv4, nothing else
    ipv4 = [f.data[14:] for f in frames if f.data[12:14] == b"\x08\x00"]
    # The host's own bridge (the network's .1) may send an IGMP report of its own: no lab node's traffic.
    bridge = str(next(node.network.subnet.hosts()))
    pairs = {(".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20])), ip[9]) for ip in ipv4
             if ".".join(map(str, ip[12:16])) != bridge}
    assert pairs == {(node.address, peer.address, 1), (peer.address, node.address, 1)}  # ICMP, both ways


@pytest.mark.docker
def test_the_vm_has_kernel_esp_which_a_container_here_may_lack(lab):
    _, node, peer, _ = lab
    argv = [a.format(src=node.address, dst=peer.address) for a in ESP_SA]
    in_vm = node.exec(argv, timeout=20)
    assert in_vm.ok, in_vm.output
    assert "proto esp spi 0x00000100" in node.exec(["ip", "xfrm", "state"], timeout=10, check=True).output
    in_container = peer.exec(argv, timeout=20)
    if not in_container.ok:  # this host's kernel lacks ESP: the VM is what gives it
        assert "not found" in in_container.output.lower() or "not supported" in in_container.output.lower(), \
            in_container.output


@pytest.mark.docker
def test_exec_returns_status_and_output_times_out_and_runs_commands_at_once(lab):
    _, node, _, _ = lab
    result = node.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.exit_code, sorted(result.output.split())) == (3, ["err", "out"])
    with pytest.raises(HarnessError, match="exited with 3"):
        node.exec(["sh", "-c", "exit 3"], timeout=10, check=True)
    started = time.monotonic()
    with pytest.raises(LabTimeout, match="timed out after 1s"):
        node.exec(["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 10
    results, started = [], time.monotonic()
    threads = [threading.Thread(target=lambda: results.append(node.exec(["sleep", "2"], timeout=10)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.exit_code for r in results] == [0, 0, 0]
    assert time.monotonic() - started < 5.5, "the three sleeps ran one after another"


@pytest.mark.docker
def test_pluto_runs_as_the_vm_daemon_with_files_put_before_start_and_again_after_restart(lab):
    _, node, _, _ = lab
    assert node.status() == ("created", None)
    node.put_files({"/etc/ipsec.conf": PLUTO_CONF, "/etc/ipsec.secrets": ""})
    node.start()
    from harness.waiting import wait_for
    wait_for(lambda: node.ensure_running() or ":500" in node.exec(["ss", "-uln"], timeout=10).output,
             timeout=60, what="pluto to listen on UDP 500 in the VM")
    assert node.status() == ("running", None)
    assert "pluto" in node.logs().lower()
    node.exec(["ip", "address", "add", "198.19.7.7/32", "dev", "lo"], timeout=10, check=True)
    # What a crash and a fresh namespace leave behind: none of what the daemon or a case added to the kernel.
    node.exec(["sh", "-c", "ip xfrm state add src 198.18.255.1 dst 198.18.255.2 proto esp spi 0x200 enc 'cbc(aes)' "
                           "0x00112233445566778899aabbccddeeff && ip link add leftover up type dummy && "
                           "ip route add 198.19.9.0/24 dev leftover && touch /run/leftover"], timeout=10, check=True)
    before = node.exec(["pidof", "pluto"], timeout=10, check=True).output.split()
    node.restart(60)
    assert "198.19.7.7" not in node.exec(["ip", "address"], timeout=10, check=True).output
    state = node.exec(["sh", "-c", "ip xfrm state; ip link; ip route; ls -a /run"], timeout=10, check=True).output
    assert "spi 0x00000200" not in state and "leftover" not in state and "198.19.9.0" not in state
    assert f"{node.address}/{node.network.subnet.prefixlen}" in node.exec(["ip", "-4", "address", "show", "eth0"],
                                                                          timeout=10, check=True).output
    assert node.exec(["cat", "/etc/ipsec.conf"], timeout=10, check=True).output == PLUTO_CONF
    wait_for(lambda: node.ensure_running() or ":500" in node.exec(["ss", "-uln"], timeout=10).output,
             timeout=60, what="pluto to listen again after the restart")
    assert not set(before) & set(node.exec(["pidof", "pluto"], timeout=10, check=True).output.split())
    node.exec(["kill", "-9", "$(pidof pluto)"], timeout=10)  # a literal argument: must not be expanded
    node.exec(["sh", "-c", "kill -9 $(pidof pluto)"], timeout=10, check=True)
    with pytest.raises(DaemonExited, match="status 137"):
        wait_for(lambda: node.ensure_running(), timeout=20, what="pluto's death to show")


def test_the_vm_kernel_probe_is_kept_on_disk_and_a_damaged_copy_is_probed_again(tmp_path, monkeypatch):
    from types import SimpleNamespace
    from harness.host import declared
    capabilities = {name: c for name, c in declared().items() if name in ("kernel-esp", "tun")}
    booted = []

    class Node:
        kernel = "6.1.0-50-amd64"

        def wait_ready(self):
            pass

        def exec(self, argv, **kwargs):
            return SimpleNamespace(output="kernel-esp yes\ntun yes\n")
    monkeypatch.setattr(vm, "PROBE_CACHE", tmp_path)
    monkeypatch.setattr(vm, "kit", lambda images: "kit")
    monkeypatch.setattr(vm, "create", lambda *a, **k: booted.append(1) or Node())
    images = SimpleNamespace(tools=lambda: "tools", client=SimpleNamespace(images=SimpleNamespace(
        get=lambda ref: SimpleNamespace(id=f"sha256:{ref}"))))
    lab = SimpleNamespace(network=lambda name: None)
    first = vm.probe_kernel(lab, images, capabilities)
    assert first.missing("kernel-esp", "tun") == [] and first.release == "6.1.0-50-amd64" and booted == [1]
    assert vm.probe_kernel(lab, images, capabilities).release == "6.1.0-50-amd64" and booted == [1]  # from disk
    (cached,) = tmp_path.glob("*.json")
    cached.write_text("{not json")
    assert vm.probe_kernel(lab, images, capabilities).missing("kernel-esp") == [] and booted == [1, 1]
    assert not list(tmp_path.glob("*.tmp"))
