"""One pcap per pair and case: tcpdump in a sidecar that shares a node's network namespace.

The capture is stopped with SIGINT and the sidecar waited for before the file is copied out, so the pcap
is complete (tcpdump has flushed and closed it) before any verdict reads it. Stopping also judges it: a verdict
that something is absent would pass on a capture that lost it, so a capture tcpdump could not keep whole (it
exited badly, dropped packets, or left the file missing, empty or damaged) raises CaptureError instead.
"""
from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Sized
from pathlib import Path

import docker.errors

from harness.errors import CaptureError, HarnessError
from harness.lab import Lab, Node
from harness.packets import damage
from harness.waiting import wait_for

PCAP_IN_SIDECAR = "/capture.pcap"
# tcpdump's closing summary: "0 packets dropped by kernel" always, "N packets dropped by interface" where known.
DROPPED = re.compile(r"^(\d+) packets? dropped by (kernel|interface)\s*$", re.MULTILINE)


class Capture:
    def __init__(self, lab: Lab, node: Node, tools_image: str, interface: str = "eth0"):
        from harness.devices import captured_node
        node = captured_node(node)  # a device under test: the harness's side of its link
        self.node = node
        self.interface = interface
        # --immediate-mode: hand over each packet at once (libpcap's default block buffering loses the
        # packets still in the ring when tcpdump is stopped); -U: write each packet as it arrives;
        # -s 0: whole packets; -Z root: keep write access to "/".
        self._sidecar = lab.sidecar(
            f"capture-{node.name}", tools_image, of=node, cap_add=["NET_ADMIN", "NET_RAW"],
            command=["tcpdump", "-i", interface, "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root", "-w", PCAP_IN_SIDECAR])
        self.path: Path | None = None
        self.problem: str | None = None  # why the stopped capture cannot back a verdict
        self.started = False

    def start(self, timeout: float = 10, wait: bool = True) -> "Capture":
        """Start tcpdump; with `wait`, return once it listens (else call `listening()` before any traffic,
        and start other nodes meanwhile)."""
        try:
            self._sidecar.start()
        except docker.errors.APIError as exc:
            self.node.ensure_running()  # a daemon that died at start: report its exit and log, not Docker's
            raise HarnessError(f"could not start the capture on {self.node.name}: {exc.explanation or exc}") from None
        self.started = True
        return self.listening(timeout) if wait else self

    def listening(self, timeout: float = 10) -> "Capture":
        wait_for(lambda: b"listening on" in self._sidecar.logs(), interval=0.05,
                 timeout=timeout, what=f"tcpdump to listen on {self.node.name} {self.interface}")
        return self

    def stop(self, dest: Path, timeout: float = 10) -> Path | None:
        """Stop tcpdump, wait until it has closed the file, copy it to `dest` (kept as evidence whatever it holds)
        and judge it: CaptureError, on this call and every later one, when the capture cannot back a verdict.
        Idempotent; None if the capture never started (the case broke before any traffic)."""
        if not self.started:
            return None
        if self.path is None:
            self._sidecar.kill(signal="SIGINT")
            try:
                status = self._sidecar.wait(timeout=timeout)
            except Exception:
                raise HarnessError(f"timed out after {timeout:g}s waiting for tcpdump on {self.node.name} "
                                   f"to flush and exit") from None
            self.problem = self._judge(dest, status.get("StatusCode") if isinstance(status, dict) else None)
            self.path = dest
        if self.problem:
            raise CaptureError(self.problem)
        return self.path

    def _judge(self, dest: Path, status: int | None) -> str | None:
        """Copy the file out; what makes it unfit to judge from, in words, or None."""
        where = f"{dest} (tcpdump on {self.node.name} {self.interface})"
        summary = self.summary()
        last = summary.splitlines()[-1] if summary else "no output"
        try:
            self._copy(dest)
        except docker.errors.NotFound:
            return f"{where}: tcpdump wrote no capture file ({last})"
        problems = []
        if status:
            problems.append(f"tcpdump exited with status {status} ({last})")
        drops = {kind: int(count) for count, kind in DROPPED.findall(summary)}
        lost = [f"{count} packets dropped by {kind}" for kind, count in drops.items() if count]
        if lost:
            problems.append(f"tcpdump lost packets: {', '.join(lost)}")
        elif "kernel" not in drops and not status:
            problems.append(f"tcpdump gave no closing summary, so what it dropped is unknown ({last})")
        problems.append(damage(dest))
        problems = [p for p in problems if p]
        return f"{where}: {'; '.join(problems)}" if problems else None

    def confirm(self, seen: Sized, what: str, at_least: int = 1) -> None:
        """A positive control: `seen` is what the capture shows of traffic known to have crossed it (echoes that
        were answered). Fewer than `at_least`: the capture missed traffic, and nothing missing from it proves that
        something was absent, so CaptureError (the cell is broken, not passed)."""
        if len(seen) < at_least:
            raise CaptureError(f"{self.path} (tcpdump on {self.node.name} {self.interface}): {len(seen)} of "
                               f"{at_least} {what} on the wire, though they crossed it: the capture missed traffic")

    def peek(self, dest: Path) -> Path:
        """A copy of the capture so far, tcpdump going on (-U writes each packet as it comes; the last record may
        be cut short, which the wire readers take as the end). Not judged: only the stopped capture is."""
        return self._copy(dest)

    def _copy(self, dest: Path) -> Path:
        stream, _ = self._sidecar.get_archive(PCAP_IN_SIDECAR)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            data = tar.extractfile(tar.next()).read()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def summary(self) -> str:
        """tcpdump's own closing lines ("N packets captured", "N packets dropped by kernel")."""
        return self._sidecar.logs().decode(errors="replace").strip()
