"""`event run`: a slot's cells through the normal run (harness.cli.cmd_run: pytest over suites/ with the plugin),
into DIR/runs/<run id>/, each cell's verdict then a new try in the store.

Only the slot's cells run: the run is asked for the two participants' implementations, and the cells pytest
collects that are not the slot's (an implementation against itself or its own participant's, a case outside
the event) are deselected by node id, so nothing else spends lab time.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import ConfigError, HarnessError
from harness.history import cell_key
from harness.results import read_matrix

RUNS = "runs"


def evidence_of(run: str, protocol: str, case: str, a: str, b: str) -> str:
    """The cell's evidence folder, relative to the event folder (the board resolves it under that folder)."""
    return f"{RUNS}/{run}/pairs/{protocol}/{case}/{a}__{b}"


def record(store, folder: Path, run: str, slot: int | None, results) -> int:
    """Each result of an event cell as its try in `run`; the cells of no two participants are left out."""
    owners = store.entries()
    count = 0
    for result in results:
        a, b = owners.get(result.a), owners.get(result.b)
        if a is None or b is None or a == b:
            continue
        evidence = evidence_of(run, result.protocol, result.case, result.a, result.b)
        store.record_try(run, slot, cell_key(result), (result.protocol, result.case, result.a, result.b), (a, b),
                         result.verdict, result.reason, evidence if (folder / evidence).is_dir() else None,
                         result.duration_s)
        count += 1
    return count


def _fresh_run_id(folder: Path) -> str:
    from harness.run import new_run_id
    while True:  # the id has a one-second resolution: two slots in one second from one process would share it
        run = new_run_id()
        if not (folder / RUNS / run).exists():
            return run
        time.sleep(0.2)


def collected(root: Path, options: list[str]) -> list[str]:
    """The node ids the run would collect with these options."""
    done = subprocess.run([sys.executable, "-m", "pytest", str(root / "suites"), "--rootdir", str(root),
                           "--collect-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *options],
                          cwd=root, capture_output=True, text=True)
    ids = [line for line in done.stdout.splitlines() if "::" in line and "[" in line]
    if done.returncode not in (0, 5) or (done.returncode == 5 and ids):
        raise HarnessError(f"collecting the slot's cells failed: {(done.stdout + done.stderr).strip()[-600:]}")
    return ids


def cell_of(node_id: str) -> tuple[str, str, str] | None:
    """(case, a, b) of 'suites/<p>/test_x.py::test_<case>[<a>-><b>]'."""
    name = node_id.split("::")[-1]
    if not name.startswith("test_") or "[" not in name or not name.endswith("]") or "->" not in name:
        return None
    case, pair = name[len("test_"):-1].split("[", 1)
    a, b = pair.split("->", 1)
    return case, a, b


def deselected(root: Path, options: list[str], cells) -> list[str]:
    """The node ids the run would collect that are not the slot's `cells` ((case, a, b)): --deselect them."""
    wanted = set(cells)
    return [node for node in collected(root, options) if cell_of(node) not in wanted]


def run_slot(event, store, slot, cells: list[tuple[str, str, str]], root: Path,
             numprocesses: str | None) -> tuple[int, bool]:
    """Run one slot: its exit status as `overlay-interop run` gives it, and whether the run wrote its matrix.
    Every cell that ran is in the store."""
    from harness.cli import add_run_parser, cmd_run, _Parser
    from harness.event.live import ENV_DIR, ENV_RUN, ENV_SLOT
    folder = event.folder.resolve()
    entries = sorted({e for _, a, b in cells for e in (a, b)})
    run = _fresh_run_id(folder)
    reports = folder / RUNS / run
    options = ["--vendors", ",".join(entries), "--protocols", slot.protocol]
    if event.inventory is not None and any(event.owner(e).devices for e in entries):
        options += ["--devices", str(event.inventory.resolve())]
        # one link per device: its cells one after another (docs/devices.md)
        numprocesses = "0" if numprocesses is None else numprocesses
    unwanted = deselected(root, options, cells)
    parser = _Parser(prog="overlay-interop")
    add_run_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", *options, "--reports-dir", str(reports), "--expect", "none",
                              "--compare", "none", *(["-n", numprocesses] if numprocesses is not None else [])])
    store.start_run(run, slot.number)
    saved = {k: os.environ.get(k) for k in (ENV_DIR, ENV_RUN, ENV_SLOT)}
    os.environ.update({ENV_DIR: str(folder), ENV_RUN: run, ENV_SLOT: str(slot.number)})
    code = 3
    try:
        print(f"slot {slot.number}: {slot.protocol} {slot.a} <-> {slot.b}, {len(cells)} cells -> {reports}",
              flush=True)
        code = cmd_run(args, ["-p", "harness.event.live", *[f"--deselect={node}" for node in unwanted]])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        wrote = (reports / "matrix.json").is_file()
        if wrote:
            recorded = record(store, folder, run, slot.number, read_matrix(reports))
            print(f"slot {slot.number}: {recorded} tries recorded", flush=True)
        store.finish_run(run, code)
    return code, wrote


def chosen_slots(store, slot_number: int | None, pair: str | None) -> list:
    slots = store.slots()
    if not slots:
        raise ConfigError("event run", "(plan)", "no plan yet: run `overlay-interop event plan DIR` first")
    if slot_number is not None:
        chosen = [s for s in slots if s["number"] == slot_number]
        if not chosen:
            raise ConfigError("--slot", str(slot_number), f"no such slot; the plan has 1 to {len(slots)}")
        return chosen
    if pair is not None:
        names = [n.strip() for n in pair.split(",")]
        if len(names) != 2 or not all(names):
            raise ConfigError("--pair", pair, "two participant ids expected, e.g. acme,example-org")
        chosen = [s for s in slots if {s["a"], s["b"]} == set(names)]
        if not chosen:
            raise ConfigError("--pair", pair, "no slot of the plan pairs these participants")
        return chosen
    running, done = store.slot_progress()
    return [s for s in slots if s["number"] not in running | done]
