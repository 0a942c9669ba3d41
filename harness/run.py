"""Who is running: the run id, the process that owns it, the xdist worker, where its files go.

Every container and network carries these as labels, so a later run can tell a live run's lab
(leave it alone) from a dead run's leftovers (remove them).
"""
from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

LABEL = "overlay-interop"


def _start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses; everything after the last ')' is positional.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


def owner_of(pid: int) -> str:
    return f"{socket.gethostname()}/{_boot_id()}/{pid}/{_start_ticks(pid)}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it belongs to another host (we cannot tell)."""
    try:
        host, boot, pid, ticks = owner.split("/")
    except ValueError:
        return False  # not written by us: treat as leftovers
    if host != socket.gethostname():
        return None
    if boot != _boot_id():
        return False
    return _start_ticks(int(pid)) == ticks


# "20261205-231344-3278": when the run started, and the pid of the process that named it. Run.short and the
# pages' run date read it back, so an id handed in from outside (--run-id) must have exactly this shape.
RUN_ID = re.compile(r"\d{8}-\d{6}-\d+")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


def check_run_id(text: str) -> str:
    if not RUN_ID.fullmatch(text):
        raise ConfigError("--run-id", text, "not a run id (YYYYmmdd-HHMMSS-pid, e.g. 20261205-231344-3278)")
    return text


@dataclass(frozen=True)
class Run:
    id: str
    owner: str
    worker: str  # "main" without xdist, else the xdist worker id ("gw0", "gw1", ...)
    reports_dir: Path
    keep_lab: bool = False

    @property
    def worker_index(self) -> int:
        match = re.fullmatch(r"gw(\d+)", self.worker)
        return int(match.group(1)) if match else 0

    @property
    def short(self) -> str:
        """A compact id for Docker object names (they stay readable in `docker ps`)."""
        return self.id.rsplit("-", 1)[-1] + self.id[9:15]

    def labels(self, pair: str) -> dict[str, str]:
        return {
            f"{LABEL}.run": self.id,
            f"{LABEL}.owner": self.owner,
            f"{LABEL}.worker": self.worker,
            f"{LABEL}.pair": pair,
        }
