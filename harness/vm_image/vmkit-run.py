#!/usr/bin/python3
"""PID 1 of a VM node's container: bridge the container's lab interface to a tap, run qemu on it, and broker the
exec channel. The VM takes the address Docker gave this container (eth0 is emptied and becomes a bridge port), so
the lab sees one node at one address and a capture on this container's eth0 sees all the VM sends and receives.

Exec requests come from `vm-exec` (run with `docker exec`) on a Unix socket; each goes to a free agent in the VM
over a virtio-serial port of its own (never over the lab's network, so the capture shows only test traffic). The
broker holds every port open all the time: a port without a host side reads as end-of-file in the guest.

Configuration (environment): OI_VM_NAME, OI_VM_MEMORY (MiB), OI_VM_SLOTS (concurrent execs), OI_VM_MACHINE
(pc, the default, or microvm), OI_VM_KERNEL (vmlinux: PVH entry, or vmlinuz: the bzImage), OI_VM_APPEND (more kernel arguments).
"""
import ipaddress
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

RUN = "/run/vm"
EXEC_SOCKET = f"{RUN}/exec.sock"
BOOT_TIMEOUT_S = 300


def say(text: str) -> None:
    print(f"oi-vm: {text}", flush=True)


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def bridge() -> tuple[str, str]:
    """Move eth0's address off this container (the VM takes it) and bridge eth0 with a tap for qemu; return the
    address (with prefix) and the VM's MAC (made from the address: eth0's own MAC is the bridge's, and frames to it
    would stay in this container)."""
    address = sh("ip", "-o", "-4", "address", "show", "dev", "eth0").split()[3]
    ip = ipaddress.ip_interface(address).ip
    mac = "52:54:00:%02x:%02x:%02x" % tuple(ip.packed[1:])
    # Nothing of this container's own may reach the wire: no IGMP report as eth0 loses its address (multicast
    # off first), no IPv6 link-local address (so no router solicitation or MLD) on the bridge and the tap, which
    # Docker's disable_ipv6 default does not cover, and no multicast snooping queries from the bridge.
    sh("ip", "link", "set", "eth0", "multicast", "off")
    sh("ip", "address", "flush", "dev", "eth0")
    sh("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
    sh("ip", "tuntap", "add", "tap0", "mode", "tap")
    for dev in ("br0", "tap0"):
        sh("ip", "link", "set", dev, "addrgenmode", "none", "multicast", "off")
    for dev in ("eth0", "tap0"):
        sh("ip", "link", "set", dev, "master", "br0")
        sh("ip", "link", "set", dev, "up")
    sh("ip", "link", "set", "br0", "up")
    return address, mac


class Slot:
    def __init__(self, index: int, sock: socket.socket):
        self.index, self.sock = index, sock
        self.file = sock.makefile("rb")


class Broker:
    def __init__(self):
        self.name = os.environ.get("OI_VM_NAME", "vm")
        self.slots = int(os.environ.get("OI_VM_SLOTS", "4"))
        self.free: queue.Queue = queue.Queue()
        self.qemu: subprocess.Popen | None = None
        self.rebooting = threading.Event()
        self.address, self.mac = bridge()

    def qemu_argv(self) -> list[str]:
        machine = os.environ.get("OI_VM_MACHINE", "pc")
        kernel = os.environ.get("OI_VM_KERNEL", "vmlinux")
        bus = "device" if machine == "microvm" else "pci"
        append = (f"console=ttyS0 quiet panic=-1 ipv6.disable=1 cryptomgr.notests=1 oi.name={self.name} "
                  f"oi.addr={self.address} " + os.environ.get("OI_VM_APPEND", ""))
        argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-M", "microvm,rtc=on" if machine == "microvm" else machine,
                "-accel", "tcg,tb-size=64", "-cpu", "max", "-smp", "1",
                "-m", os.environ.get("OI_VM_MEMORY", "512"),
                "-serial", "stdio", "-kernel", f"/vm/{kernel}", "-initrd", "/vm/initramfs.cpio", "-append", append,
                "-drive", "id=root,file=/vm/root.qcow2,format=qcow2,if=none,snapshot=on",
                "-device", f"virtio-blk-{bus},drive=root",
                "-drive", "id=mods,file=/vm/modules.img,format=raw,if=none,readonly=on",
                "-device", f"virtio-blk-{bus},drive=mods",
                "-netdev", "tap,id=lab,ifname=tap0,script=no,downscript=no",
                "-device", f"virtio-net-{bus},netdev=lab,mac={self.mac}",
                "-device", f"virtio-serial-{bus},max_ports={self.slots + 1}"]
        for i in range(self.slots):
            argv += ["-chardev", f"socket,id=agent{i},path={RUN}/agent{i}.sock,server=on,wait=off",
                     "-device", f"virtserialport,chardev=agent{i},name=oi.agent.{i}"]
        return argv

    def boot(self) -> None:
        for i in range(self.slots):
            try:
                os.unlink(f"{RUN}/agent{i}.sock")
            except FileNotFoundError:
                pass
        self.qemu = subprocess.Popen(self.qemu_argv(), stdin=subprocess.DEVNULL)
        for i in range(self.slots):
            threading.Thread(target=self.attach, args=(i, self.qemu), daemon=True).start()

    def attach(self, index: int, qemu: subprocess.Popen) -> None:
        """Connect to agent port `index` and offer it once its agent says "ready"."""
        path = f"{RUN}/agent{index}.sock"
        deadline = time.monotonic() + 30
        while qemu.poll() is None:
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(path)
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    say(f"agent port {index}: qemu never offered {path}")
                    return
                time.sleep(0.02)
        else:
            return
        slot = Slot(index, sock)
        if slot.file.readline().strip() == b"ready":
            self.free.put(slot)

    def run(self, request: dict, body: bytes) -> tuple[dict, bytes]:
        timeout = float(request["timeout"])
        try:
            slot = self.free.get(timeout=timeout + 60)
        except queue.Empty:
            return {"error": "no agent in the VM answered (it is busy, not booted, or dead)"}, b""
        try:
            slot.sock.settimeout(timeout + 15)
            slot.sock.sendall(b"%d %d %d\n" % (max(1, round(timeout)), request["script"], request["stdin"]) + body)
            code, timed_out, length = slot.file.readline().split()
            output = slot.file.read(int(length))
            if len(output) != int(length):
                raise OSError("the agent's answer was cut short")
        except (OSError, ValueError) as exc:
            slot.sock.close()  # the VM went away or the agent is wedged: this port is not offered again
            return {"error": f"agent port {slot.index} failed: {exc}"}, b""
        self.free.put(slot)
        return {"code": int(code), "timed_out": timed_out == b"1"}, output

    def serve(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            request = json.loads(f.readline())
            if request.get("reboot"):
                self.reboot()
                conn.sendall(b'{"code": 0}\n')
                return
            body = f.read(request["script"] + request["stdin"])
            answer, output = self.run(request, body)
            answer["length"] = len(output)
            conn.sendall(json.dumps(answer).encode() + b"\n" + output)

    def reboot(self) -> None:
        """Power the VM off hard and boot it again: a fresh kernel and root (-snapshot), the same address."""
        self.rebooting.set()
        self.qemu.kill()
        self.qemu.wait()
        while not self.free.empty():
            self.free.get_nowait().sock.close()
        say("rebooting")
        self.boot()
        self.rebooting.clear()

    def main(self) -> int:
        os.makedirs(RUN, exist_ok=True)
        server = socket.socket(socket.AF_UNIX)
        server.bind(EXEC_SOCKET)
        server.listen(16)

        def accept():
            while True:
                conn, _ = server.accept()
                threading.Thread(target=self.serve, args=(conn,), daemon=True).start()
        threading.Thread(target=accept, daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: (self.qemu and self.qemu.kill(), sys.exit(143)))
        self.boot()
        while True:
            code = self.qemu.wait()
            if self.rebooting.is_set() or self.qemu.poll() is None:
                time.sleep(0.1)
                continue
            say(f"qemu exited with status {code}")
            return code


if __name__ == "__main__":
    sys.exit(Broker().main())
