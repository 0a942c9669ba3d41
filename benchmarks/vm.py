"""What does a microVM node (harness.vm) cost on this machine? Prints, for the Libreswan image:

- with --builds: building the kit image from nothing and a vendor's VM image (root disk) from nothing, each into a
  throw-away tag (the cached images in use stay);
- per boot variant (the default: pc machine + vmlinux through PVH; with --variants also the bzImage and the
  microvm machine): container created to agent ready, median of --boots boots;
- on one VM: an exec round trip (median of 20 `true`), the first ESP SA (crypto modules preloaded), the daemon
  (pluto) from start() to listening, a restart (reboot to listening again), the container's memory, and the lab's
  close (stop and removal).

Usage: python benchmarks/vm.py [--builds] [--variants] [--boots 3]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from harness import vm  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.images import Images  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.run import Run, new_run_id, owner_of  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

ESP_SA = "ip xfrm state add src {a} dst 198.18.0.99 proto esp spi 0x200 mode tunnel aead rfc4106(gcm(aes)) 0x{k} 128"
PLUTO_CONF = "config setup\n    uniqueids=yes\n"


def timed(fn):
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def build_once(client, **kwargs) -> float:
    tag = f"overlay-interop/vm-bench:{os.getpid()}"
    started = time.monotonic()
    for chunk in client.api.build(tag=tag, rm=True, forcerm=True, nocache=True, decode=True, **kwargs):
        if "error" in chunk:
            raise SystemExit(f"benchmark: build failed: {chunk['error']}")
    took = time.monotonic() - started
    client.images.remove(tag, force=True)
    return took


def lab_for(client, folder: Path) -> Lab:
    return Lab(client, Run(new_run_id(), owner_of(os.getpid()), "main", folder), "vm/benchmark")


def boot(client, images, image, folder, **kwargs) -> float:
    with lab_for(client, folder) as lab:
        network = lab.network()
        started = time.monotonic()
        node = lab.vm_node("vm", image, network, images=images, boot_timeout=60, **kwargs)
        node.wait_ready()
        return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", action="store_true", help="also time both image builds from nothing")
    parser.add_argument("--variants", action="store_true", help="also boot the bzImage and the microvm machine")
    parser.add_argument("--boots", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    images = Images(client)
    libreswan = images.ensure("libreswan", ROOT / "vendors" / "libreswan")
    took, tags = timed(lambda: vm.prepare(images, [libreswan]))
    print(f"kit + VM image ready (cached unless changed): {took:.1f} s")
    if args.builds:
        kit_s = build_once(client, path=str(vm.KIT_DIR), buildargs={"BASE_IMAGE": images.base})
        print(f"build the kit image from nothing: {kit_s:.1f} s")
        root_s = build_once(client, fileobj=io.BytesIO(vm.ROOT_DOCKERFILE.encode()), buildargs={
            "KIT": client.images.get(vm.kit(images)).id, "VENDOR": client.images.get(libreswan).id})
        print(f"build the Libreswan VM image (root disk) from nothing: {root_s:.1f} s")
        print(f"VM image size: {client.images.get(tags[libreswan]).attrs['Size'] / 2**20:.0f} MiB")
    folder = Path(tempfile.mkdtemp(prefix="vm-bench-"))
    variants = {"pc + vmlinux (PVH), the default": {}}
    if args.variants:
        variants["pc + bzImage"] = {"kernel": "vmlinuz"}
        variants["microvm + vmlinux"] = {"machine": "microvm"}
    for label, kwargs in variants.items():
        times = []
        for _ in range(args.boots):
            try:
                times.append(boot(client, images, libreswan, folder, **kwargs))
            except HarnessError as exc:
                print(f"boot {label}: failed: {str(exc).splitlines()[0]}")
        if times:
            print(f"boot to agent ready, {label}: median {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})")
    lab = lab_for(client, folder)
    try:
        network = lab.network()
        node = lab.vm_node("vm", libreswan, network, images=images)
        node.wait_ready()
        print(f"kernel in the VM: {node.kernel}")
        rtts = [timed(lambda: node.exec(["true"], timeout=10, check=True))[0] for _ in range(20)]
        print(f"exec round trip: median {statistics.median(rtts) * 1000:.0f} ms (max {max(rtts) * 1000:.0f})")
        esp, _ = timed(lambda: node.exec(ESP_SA.format(a=node.address, k="22" * 20), timeout=30, check=True))
        print(f"first ESP SA (ip xfrm state add, AES-GCM): {esp:.2f} s")
        node.put_files({"/etc/ipsec.conf": PLUTO_CONF, "/etc/ipsec.secrets": ""})

        def listening():
            return node.ensure_running() or ":500" in node.exec(["ss", "-uln"], timeout=10).output
        started = time.monotonic()
        node.start()
        wait_for(listening, timeout=60, what="pluto to listen")
        print(f"daemon start() to pluto listening: {time.monotonic() - started:.2f} s")
        memory = client.api.stats(node.qemu.id, stream=False)["memory_stats"].get("usage", 0) / 2**20
        print(f"memory of the VM's container: {memory:.0f} MiB")
        started = time.monotonic()
        node.restart(60)
        wait_for(listening, timeout=60, what="pluto to listen again")
        print(f"restart (reboot, files put again, daemon) to listening: {time.monotonic() - started:.2f} s")
    finally:
        close_s, _ = timed(lab.close)
    print(f"stop and remove the VM (lab close): {close_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
