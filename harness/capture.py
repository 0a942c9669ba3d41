"""One pcap per pair and case: tcpdump in a sidecar that shares a node's network namespace.

The capture is stopped with SIGINT and the sidecar waited for before the file is copied out, so the pcap
is complete (tcpdump has flushed and closed it) before any verdict reads it.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker.errors

from harness.errors import HarnessError
from harness.lab import Lab, Node
from harness.waiting import wait_for

PCAP_IN_SIDECAR = "/capture.pcap"


class Capture:
    def __init__(self, lab: Lab, node: Node, tools_image: str, interface: str = "eth0"):
        self.node = node
        self.interface = interface
        # --immediate-mode: hand over each packet at once (libpcap's default block buffering loses the
        # packets still in the ring when tcpdump is stopped); -U: write each packet as it arrives;
        # -s 0: whole packets; -Z root: keep write access to "/".
        self._sidecar = lab.sidecar(
            f"capture-{node.name}", tools_image, of=node, cap_add=["NET_ADMIN", "NET_RAW"],
            command=["tcpdump", "-i", interface, "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root", "-w", PCAP_IN_SIDECAR])
        self.path: Path | None = None
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
        """Stop tcpdump, wait until it has closed the file, copy it to `dest`. Idempotent; None if the
        capture never started (the case broke before any traffic)."""
        if self.path is not None or not self.started:
            return self.path
        self._sidecar.kill(signal="SIGINT")
        try:
            self._sidecar.wait(timeout=timeout)
        except Exception:
            raise HarnessError(f"timed out after {timeout:g}s waiting for tcpdump on {self.node.name} "
                               f"to flush and exit") from None
        self.path = self._copy(dest)
        return dest

    def peek(self, dest: Path) -> Path:
        """A copy of the capture so far, tcpdump going on (-U writes each packet as it comes; the last record may
        be cut short, which the wire readers take as the end)."""
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
