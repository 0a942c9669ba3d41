"""What the event tests share: an event folder made through the real command line, tries with evidence files
recorded as the runner records them, and a real board process on a port of its own choosing."""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import time
from pathlib import Path

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent

EVENT = """name = "Test event"
protocols = ["vxlan"]
[cases]
vxlan = ["unicast", "vni_isolation"]
"""

# Three participants of three organisations, each one built-in VXLAN vendor (nothing here starts a container).
PARTICIPANTS = """
[[participant]]
id = "kernel-team"
organisation = "Kernel Team"
contact = "kernel@example.org"
vendors = ["linux"]

[[participant]]
id = "switch-team"
organisation = "Switch Team"
contact = "switch@example.org"
vendors = ["ovs"]

[[participant]]
id = "scapy-team"
organisation = "Scapy Team"
contact = "scapy@example.org"
vendors = ["scapy-vtep"]
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def tokens_of(output: str) -> dict[str, str]:
    return dict(re.findall(r"^token (\S+): (\S+)$", output, flags=re.M))


def make_event(folder: Path, participants: str = PARTICIPANTS, event: str = EVENT) -> dict[str, str]:
    """An initialised and planned event; the tokens init printed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "event.toml").write_text(event)
    (folder / "participants.toml").write_text(participants)
    code, out, err = cli("event", "init", folder)
    assert code == 0, err
    code, _, err = cli("event", "plan", folder, "--runs", folder / "no-runs")
    assert code == 0, err
    return tokens_of(out)


def add_try(folder: Path, run: str, case: str, a: str, b: str, verdict: str, reason: str = "",
            files: dict[str, bytes] | None = None, duration_s: float = 5.0) -> int:
    """A try of cell vxlan/<case>/<a>-><b> in run `run`, with its evidence files, as the runner records it."""
    from harness.event.runner import evidence_of
    from harness.event.store import Store
    evidence = evidence_of(run, "vxlan", case, a, b)
    for name, data in (files or {"capture.pcap": b"\xd4\xc3\xb2\xa1pcap", f"vtep1-{a}.log": b"log\n"}).items():
        path = folder / evidence / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    store = Store(folder)
    try:
        owners = store.entries()
        return store.record_try(run, 1, f"vxlan/{case}/{a}->{b}", ("vxlan", case, a, b), (owners[a], owners[b]),
                                verdict, reason, evidence, duration_s)
    finally:
        store.close()


class BoardProcess:
    """`overlay-interop event board DIR --port 0` as a real process; its access log is its stderr."""

    def __init__(self, folder: Path):
        self.log_path = folder.parent / f"{folder.name}-board.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "harness.cli", "event", "board", str(folder),
                                         "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log,
                                        text=True)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"the board did not start: {line}{self.log_path.read_text()}"
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.close()

    def access_log(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


def wait_for(predicate, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
