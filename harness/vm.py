"""A lab node that is a qemu microVM: the kernel features this host lacks (ESP, L2TP, PPP, the openvswitch
datapath, Geneve), from Debian's generic kernel under software emulation, with a vendor's own image as the root.

`VmNode` is the second implementation of harness.lab.Node: the same name, address, network, put_files, start,
restart, status, logs, exec and ensure_running, so the vendor adapters drive it unchanged. How it is built:

- The *kit* (harness/vm_image, built like a vendor image: tagged by a hash of the folder and the base) holds qemu,
  the kernel (vmlinux for a PVH boot), a busybox initramfs, the module tree as a disk, and `vmkit-run`, the
  broker that runs qemu as the container's PID 1.
- The *VM image* of a vendor (`vm_image()`): the kit plus the vendor image's whole filesystem as an ext4 root
  (qcow2), one image layer per (kit, vendor image) pair. An image layer and not a file under a cache dir: the
  Docker engine may be another machine (DOCKER_HOST), the layer is shared by every worker and cleaned up like
  the vendor images, and `docker build` copies the vendor's files (owners, modes, links) without a round trip
  through this process. Build them up front with `prepare()`: about 15 s each, not inside a timed cell.
- The node: a container of the VM image on the lab network, created through Lab.node (same labels, address and
  removal). Its PID 1 bridges the container's eth0 to qemu's tap and moves the container's address to the VM, so
  the lab sees one host at that address and a capture on the container's eth0 (harness.capture.Capture's default
  interface) sees everything the VM sends and receives; the container's own stack has no address and stays silent.
- The VM boots as soon as the node is created (while the other side is set up). Commands reach it over
  virtio-serial ports (never the lab network, so a capture shows only test traffic): `vm-exec` in the container,
  the broker there, one shell agent per port in the VM; as many commands run at once as there are ports.
- `start()` runs the vendor image's ENTRYPOINT/CMD in the VM, with the image's environment; its output is
  `logs()`. Files put before `start()` are kept and put again after `restart()`, which reboots the VM (a fresh
  kernel and root, as a restarted container has a fresh process and network namespace).
"""
from __future__ import annotations

import base64
import json
import fcntl
import hashlib
import io
import logging
import os
import re
import shlex
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import docker.errors
import requests

from harness.errors import DaemonExited, HarnessError, LabTimeout
from harness.images import BUILD_SILENCE_S, ImageBuildError, Images
from harness.lab import EXEC_EXIT_TIMEOUT, ExecResult, Lab, Network, tail
from harness.waiting import wait_for

log = logging.getLogger(__name__)

KIT_DIR = Path(__file__).parent / "vm_image"
# How many times as long a daemon in a VM may take for the same work as in a container: a first CHILD SA (the XFRM
# states and their crypto) took 0.4 s on an idle host and 4.1 s with four VMs booting on two cores; a crash-restart
# (restart()) took 4 s to pluto answering again on a quiet host and 22 s under a load of 12. Timers a case sets for
# the host's speed are stretched by this in a cell with a VM (PairLab).
TIME_SCALE = 10.0
BOOT_TIMEOUT_S = 120  # boot to agent-ready is 4-6 s alone; a 2-core host running other VMs and builds is slower
MEMORY_MIB = 512
SLOTS = 4  # commands that may run in the VM at once (virtio-serial ports with an agent each)
READY = "oi-vm: ready"  # the VM's stage2 prints it on the console (the container's log) once its agents listen
BROKER_FAILED = 125  # vm-exec: the broker or the VM failed (the line it prints says how)
DAEMON = "/run/oi/daemon"  # in the VM: .log (the daemon's output), .exit (its status, once it has exited)
BUSYBOX = "/run/oi/bin/busybox"  # in the VM, put there by the initramfs: tools an image need not have

# The root: the vendor image's files, copied by the engine (owners, modes and links kept), made into a qcow2 by
# the kit's mkroot, then on top of the kit, so one image is all a VM node's container needs.
ROOT_DOCKERFILE = """\
ARG KIT
ARG VENDOR
FROM ${VENDOR} AS vendor
FROM ${KIT} AS mkroot
COPY --from=vendor / /rootfs/
RUN /usr/local/lib/vmkit/mkroot /rootfs /root.qcow2 && rm -rf /rootfs
FROM ${KIT}
COPY --from=mkroot /root.qcow2 /vm/root.qcow2
"""


def kit(images: Images) -> str:
    """The kit image's tag, built if missing (about 40 s the first time)."""
    return images.ensure("vmkit", KIT_DIR)


def vm_image_tag(kit_id: str, vendor_image_id: str, vendor: str) -> str:
    digest = hashlib.sha256(f"{kit_id}\0{vendor_image_id}\0{ROOT_DOCKERFILE}".encode()).hexdigest()[:12]
    return f"overlay-interop/vm-{vendor}:{digest}"


def vendor_name(image: str) -> str:
    """"overlay-interop/libreswan:39863d2599db" -> "libreswan" (for the VM image's name)."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return re.sub(r"[^a-z0-9_.-]", "-", name.lower()) or "vendor"


def vm_image(images: Images, vendor_image: str) -> str:
    """The VM image of `vendor_image` (a tag or id): the kit with that image's files as the root disk. Cached by
    the kit's and the vendor image's ids: built only when one of them changed."""
    client = images.client
    kit_image = client.images.get(kit(images))
    try:
        vendor = client.images.get(vendor_image)
    except docker.errors.ImageNotFound:
        raise HarnessError(f"no image {vendor_image} to boot as a VM") from None
    tag = vm_image_tag(kit_image.id, vendor.id, vendor_name(vendor_image))
    if _exists(client, tag):
        return tag
    lock_path = Path(tempfile.gettempdir()) / f"overlay-interop-build-{tag.replace('/', '_')}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _exists(client, tag):
            _build_root(client, tag, kit_image.id, vendor.id)
    return tag


def prepare(images: Images, vendor_images: list[str]) -> dict[str, str]:
    """Build the kit and every vendor's VM image now (call it before the first case): {vendor image: VM image}."""
    return {image: vm_image(images, image) for image in vendor_images}


def _exists(client, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _build_root(client, tag: str, kit_id: str, vendor_id: str) -> None:
    output = []
    try:
        for chunk in client.api.build(fileobj=io.BytesIO(ROOT_DOCKERFILE.encode()), tag=tag, rm=True, forcerm=True,
                                      buildargs={"KIT": kit_id, "VENDOR": vendor_id}, decode=True,
                                      timeout=BUILD_SILENCE_S, labels={"overlay-interop.vm-root": vendor_id}):
            if chunk.get("stream", "").strip():
                output.append(chunk["stream"].strip())
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ImageBuildError(f"{tag}: VM root build failed: {detail.strip()}\n  " + "\n  ".join(output[-8:]))
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"{tag}: VM root build failed: {exc.explanation or exc}") from None
    except requests.exceptions.RequestException:
        raise ImageBuildError(f"{tag}: VM root build timed out waiting for output for {BUILD_SILENCE_S}s") from None


class _VendorImage:
    def __init__(self, image):
        self.id = image.id
        self.tags = image.tags


class VmContainer:
    """What callers of Node.container get from a VmNode: the qemu container (its id, for sidecars that join its
    network namespace, e.g. the capture) except `image`, which is the vendor's image (what was tested)."""

    def __init__(self, qemu, vendor_image):
        self._qemu = qemu
        self.image = _VendorImage(vendor_image)

    def __getattr__(self, name):
        return getattr(self._qemu, name)


def _prologue(env: dict[str, str], workdir: str) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if re.fullmatch(r"\w+", k))
    return f"{exports}cd {shlex.quote(workdir or '/')} 2>/dev/null || cd /\n"


def shell_script(argv: list[str], env: dict[str, str], workdir: str) -> str:
    """A /bin/sh script running `argv` as `docker exec` would: the image's environment, its working directory."""
    return f"{_prologue(env, workdir)}exec {shlex.join(argv)}\n"


def daemon_script(argv: list[str], env: dict[str, str], workdir: str) -> str:
    """A script starting `argv` in the background, as a container's main process (environment, working
    directory, no input), its output to DAEMON.log and its exit status, once it exits, to DAEMON.exit."""
    # The agent runs each script in a session of its own (setsid): the daemon and all it starts stay in this one,
    # whose id ($$, the session leader) is kept for restart() to end them all at once.
    return (f"rm -f {DAEMON}.exit\necho $$ > {DAEMON}.sid\n"
            f"(\n{_prologue(env, workdir)}{shlex.join(argv)} </dev/null >>{DAEMON}.log 2>&1\n"
            f"echo $? > {DAEMON}.exit\n) </dev/null >/dev/null 2>&1 &\n")


def reset_script(address: str) -> str:
    """What a crash and a fresh container namespace leave behind, in the VM, without a reboot: every process of
    the daemon's session killed (SIGKILL: no word to its peers), then the kernel's network state as stage2 left it
    (XFRM states and policies, links other than lo and eth0, OVS datapaths, nftables, policy rules, the main and
    strongSwan's table 220 routes, addresses; eth0 with `address` again) and /run emptied as a boot empties it.
    iproute2 where the image has it, else busybox's ip (which has no XFRM: nothing to flush then)."""
    return f"""\
sid=$(cat {DAEMON}.sid 2>/dev/null)
# The live members of the session, read with shell builtins only: a fork per process costs ~50 ms emulated.
members() {{ for p in /proc/[0-9]*; do {{ read -r line < "$p/stat"; }} 2>/dev/null || continue
  set -- ${{line##*) }}; [ "$4" = "$sid" ] && [ "$1" != Z ] && echo "${{p#/proc/}}"; done; }}
if [ -n "$sid" ]; then
  kill -9 $(members) 2>/dev/null
  n=0; while [ -n "$(members)" ] && [ $n -lt 50 ]; do {BUSYBOX} sleep 0.1; n=$((n+1)); done
fi
IP=$(command -v ip || echo "{BUSYBOX} ip")
$IP xfrm state flush 2>/dev/null; $IP xfrm policy flush 2>/dev/null
if command -v ovs-dpctl >/dev/null; then for dp in $(ovs-dpctl dump-dps 2>/dev/null); do ovs-dpctl del-dp "$dp"; done; fi
for l in $(ls /sys/class/net); do case $l in lo|eth0) ;; *) $IP link del "$l" 2>/dev/null;; esac; done
if command -v nft >/dev/null; then nft flush ruleset; fi
$IP rule flush 2>/dev/null && $IP rule add pref 32766 lookup main && $IP rule add pref 32767 lookup default
$IP route flush table 220 2>/dev/null; $IP route flush table main
$IP address flush dev lo; $IP address add 127.0.0.1/8 dev lo
$IP address flush dev eth0; $IP address add {address} dev eth0
for f in /run/* /run/.[!.]*; do case $f in /run/oi|'/run/*'|'/run/.[!.]*') ;; *) rm -rf "$f";; esac; done
"""


class VmNode:
    """One microVM, driven like harness.lab.Node (see the module's docstring). Make it with create()."""

    # The ports of the bridge in the node's container: towards the lab, towards the VM. A helper that acts on the
    # node's wire from its container's namespace (harness.faults) acts on the bridge, as nothing there is routed.
    bridge_ports = ("eth0", "tap0")

    def __init__(self, qemu, name: str, address: str, network: Network, vendor_image, *,
                 command: list[str] | None = None, environment: dict[str, str] | None = None,
                 boot_timeout: float = BOOT_TIMEOUT_S):
        config = vendor_image.attrs.get("Config") or {}
        self.qemu = qemu
        self.container = VmContainer(qemu, vendor_image)
        self.name = name
        self.address = address
        self.network = network
        self.boot_timeout = boot_timeout
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        self.env.update(environment or {})
        self.workdir = config.get("WorkingDir") or "/"
        self.daemon = [*(config.get("Entrypoint") or []), *(command or config.get("Cmd") or [])]
        self.kernel = ""  # `uname -r` in the VM, once it has booted
        self._boots = 1  # READY lines to wait for: one per boot
        self._ready = False
        self._started = False
        self._files: list[tuple[dict[str, str | bytes], int]] = []  # put again after a reboot
        self._earlier_logs = ""  # the daemon's output before the last restart (a container's log keeps it too)

    def __repr__(self) -> str:
        return f"VmNode({self.name}@{self.address})"

    # -- booting -----------------------------------------------------------------------------------------------
    def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the VM's agents listen (at once after the first time); HarnessError if the VM died."""
        if self._ready:
            return

        def booted() -> bool:
            self.qemu.reload()
            if self.qemu.status not in ("running", "created"):
                raise HarnessError(f"{self.name}: the VM stopped while booting (container {self.qemu.status}); "
                                   f"console:\n{tail(self.console())}")
            return self.console().count(READY) >= self._boots
        wait_for(booted, timeout=timeout or self.boot_timeout, interval=0.1, what=f"the VM {self.name} to boot")
        self._ready = True
        if not self.kernel:
            self.kernel = self._run(f"exec {BUSYBOX} uname -r\n", b"", 10, "uname -r").output.strip()

    def console(self) -> str:
        """The VM's console and the broker's messages (the container's log)."""
        try:
            return self.qemu.logs(stdout=True, stderr=True).decode(errors="replace")
        except docker.errors.NotFound:
            return ""

    # -- the Node interface ------------------------------------------------------------------------------------
    def put_files(self, files: dict[str, str | bytes], mode: int = 0o644) -> None:
        """Write files (absolute paths in the VM); works before start(), and they are there again after restart()."""
        self._files.append((dict(files), mode))
        # The broker queues a request until an agent is up, but only once it listens: a container started a moment
        # ago (on a busy host, seconds ago) may have no exec socket yet, and vm-exec then fails with ENOENT.
        self.wait_ready()
        self._put(files, mode)

    def _put(self, files: dict[str, str | bytes], mode: int) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode, info.mtime = len(data), mode, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        result = self._run(f"exec {BUSYBOX} tar -x -C / -f -\n", buf.getvalue(), 30, "tar")
        if not result.ok:
            raise HarnessError(f"{self.name}: could not copy {', '.join(files)} into the VM: {tail(result.output, 5)}")

    def start(self) -> None:
        self.wait_ready()
        if not self.daemon:
            raise HarnessError(f"{self.name}: the image has neither ENTRYPOINT nor CMD: nothing to start in the VM")
        self._run(daemon_script(self.daemon, self.env, self.workdir), b"", 30, "starting the daemon", check=True)
        self._started = True

    def restart(self, timeout: float) -> None:
        """Crash the node and bring it back, as a restarted container: the daemon and all it started killed
        (SIGKILL, no word to its peers), the kernel's network state and /run as at boot (reset_script: what the
        daemon or a case added, SAs, routes, links, addresses, is gone), the files put again and the daemon started
        afresh. Not a reboot (a software-emulated boot takes 7 s idle, 25 s on a busy host: longer than the timers
        of a case about a crash); the kernel itself stays. `timeout` bounds the reset."""
        self._earlier_logs = self.logs()
        self._run(reset_script(f"{self.address}/{self.network.subnet.prefixlen}"), b"", timeout,
                  "killing the daemon and resetting the kernel's network state", check=True)
        self._run(f"rm -f {DAEMON}.log {DAEMON}.exit\n", b"", 10, "clearing the daemon's log")
        for files, mode in self._files:
            self._put(files, mode)
        self.start()

    def reboot(self, timeout: float) -> None:
        """Power the VM off hard and boot it again: a fresh kernel, root (snapshot) and daemon; the same address
        and files. The container, and so a capture on it, stays. `timeout` bounds the wait for the new boot."""
        self._earlier_logs = self.logs()
        try:
            code, out = self.qemu.exec_run(["vm-exec", "--reboot"])
        except docker.errors.APIError as exc:
            raise HarnessError(f"{self.name}: could not restart the VM: {exc.explanation or exc}") from None
        if code != 0:
            raise HarnessError(f"{self.name}: could not restart the VM: {out.decode(errors='replace').strip()}")
        self._boots += 1
        self._ready = False
        self.wait_ready(timeout=max(timeout, self.boot_timeout))
        for files, mode in self._files:
            self._put(files, mode)
        self.start()

    def status(self) -> tuple[str, int | None]:
        """("created", None) before start(), ("running", None) while the daemon runs, ("exited", status) once it
        (or the whole VM) has stopped."""
        self.qemu.reload()
        state = self.qemu.attrs["State"]
        if not state["Running"]:
            return state["Status"], state.get("ExitCode")
        if not self._started:
            return "created", None
        out = self._run(f"cat {DAEMON}.exit 2>/dev/null || echo running\n", b"", 10, "the daemon's status").output
        word = out.strip()
        return ("running", None) if word == "running" or not word.isdigit() else ("exited", int(word))

    def logs(self) -> str:
        """The daemon's output; the VM's console when the VM itself is gone."""
        self.qemu.reload()
        if not self.qemu.attrs["State"]["Running"]:
            return self._earlier_logs + self.console()
        if not self._started:
            return self._earlier_logs
        return self._earlier_logs + self._run(f"cat {DAEMON}.log 2>/dev/null\n", b"", 10, "the daemon's log").output

    def exec(self, cmd: list[str] | str, *, timeout: float, what: str | None = None,
             check: bool = False) -> ExecResult:
        """Run a command in the VM (as `docker exec` would: the image's environment and working directory); it is
        killed after `timeout` seconds and that is reported as a timeout."""
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        what = what or shlex.join(argv)
        self.wait_ready()
        return self._run(shell_script(argv, self.env, self.workdir), b"", timeout, what, check=check)

    def ensure_running(self) -> None:
        """Raise DaemonExited, with its exit status and last log lines, if the node's daemon (or VM) has died."""
        _, exit_code = self.status()
        if exit_code is not None:
            raise DaemonExited(f"{self.name}: daemon exited with status {exit_code}; last log lines:\n"
                               f"{tail(self.logs())}")

    # -- the channel -------------------------------------------------------------------------------------------
    def _run(self, script: str, stdin: bytes, timeout: float, what: str, check: bool = False) -> ExecResult:
        argv = ["vm-exec", f"{timeout:g}", base64.b64encode(script.encode()).decode()]
        if stdin:
            argv.append(base64.b64encode(stdin).decode())
        try:
            code, out = self.qemu.exec_run(argv, demux=False)
        except docker.errors.APIError as exc:
            self.qemu.reload()
            if not self.qemu.attrs["State"]["Running"]:
                raise DaemonExited(f"{self.name}: the VM's container exited with status "
                                   f"{self.qemu.attrs['State'].get('ExitCode')}; console:\n"
                                   f"{tail(self.console())}") from None
            raise HarnessError(f"{self.name}: could not run {what}: {exc.explanation or exc}") from None
        output = (out or b"").decode(errors="replace")  # vm-exec itself waits for a broker not listening yet
        if code == EXEC_EXIT_TIMEOUT:
            raise LabTimeout(f"{self.name}: timed out after {timeout:g}s waiting for {what}")
        if code == BROKER_FAILED and output.startswith("oi-vm:"):
            raise HarnessError(f"{self.name}: could not run {what} in the VM: {output.strip()}")
        if check and code != 0:
            raise HarnessError(f"{self.name}: {what} exited with {code}: {tail(output, 5)}")
        return ExecResult(code, output)


def create(lab: Lab, name: str, image: str, network: Network, *, images: Images,
           command: list[str] | None = None, environment: dict[str, str] | None = None,
           memory_mib: int = MEMORY_MIB, slots: int = SLOTS, boot_timeout: float = BOOT_TIMEOUT_S,
           machine: str = "pc", kernel: str = "vmlinux") -> VmNode:
    """A VM node running `image` (a vendor image) on `network`, booting already: put_files, exec and start wait
    for it. Its container is the lab's like any node's (removed when the lab closes)."""
    tag = vm_image(images, image)
    vendor = images.client.images.get(image)
    qemu = lab.node(name, tag, network, environment={
        "OI_VM_NAME": name, "OI_VM_MEMORY": str(memory_mib), "OI_VM_SLOTS": str(slots),
        "OI_VM_MACHINE": machine, "OI_VM_KERNEL": kernel})
    try:
        qemu.container.start()
    except docker.errors.APIError as exc:
        raise HarnessError(f"{name}: could not start the VM's container: {exc.explanation or exc}") from None
    return VmNode(qemu.container, name, qemu.address, network, vendor, command=command, environment=environment,
                  boot_timeout=boot_timeout)


PROBE_CACHE = Path(tempfile.gettempdir()) / "overlay-interop-vm-probe"


def probe_kernel(lab: Lab, images: Images, capabilities: dict, timeout: float = BOOT_TIMEOUT_S):
    """What the VM's kernel can do (harness.host.HostCapabilities, with `release` set to its `uname -r`): every
    declared host probe, run in a VM of the tools image exactly as harness.host.probe runs them on the host. The
    answer depends only on the kit and the tools image, so it is kept on disk by their ids and the probes: the
    first session on a machine pays one boot (~7 s), the next ones none."""
    from harness.host import parse_probe, probe_script  # the host probe's own script and reading
    script = probe_script(capabilities)
    tools = images.tools()
    key = hashlib.sha256("\0".join([images.client.images.get(kit(images)).id,
                                    images.client.images.get(tools).id, script]).encode()).hexdigest()[:16]
    cached = PROBE_CACHE / f"{key}.json"
    try:
        saved = json.loads(cached.read_text())
        return VmKernel(parse_probe(saved["output"], capabilities), str(saved["release"]))
    except (OSError, ValueError, KeyError, TypeError, HarnessError):
        pass  # none yet, or unreadable: probe again (and replace it)
    node = create(lab, "vm-probe", tools, lab.network("vm-probe"), images=images, boot_timeout=timeout)
    node.wait_ready()
    output = node.exec(["sh", "-c", script], timeout=60, check=True, what="the host probes in a VM").output
    found = parse_probe(output, capabilities)
    PROBE_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # workers of one run may probe at once: each its own
    tmp.write_text(json.dumps({"output": output, "release": node.kernel}))
    tmp.replace(cached)
    return VmKernel(found, node.kernel)


class VmKernel:
    """The capabilities a VM node's kernel has (a HostCapabilities) and its release."""

    def __init__(self, capabilities, release: str):
        self.capabilities, self.release = capabilities, release

    def missing(self, *names: str) -> list[str]:
        return self.capabilities.missing(*names)

    def reason(self, name: str) -> str:
        return self.capabilities.reason(name).replace("host lacks", "the VM's kernel lacks", 1)
