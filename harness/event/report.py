"""What an event leaves: the public report (`event report`) and each participant's bundle (`event bundle`).

The public report judges each feature (a protocol's case) from the latest try of every pair: interoperates
(pairs passed, none failed), interoperates with issues (some passed, some failed), no pair interoperates, or not
tested (no pair reached a verdict). Its problem table counts failing pairs per case and names no participant,
not even by label: a label joined with a failure across features would point at someone.

A bundle is a zip of one participant's cells: a conformance page (every cell with names, reasons, tries and
sign-offs) and the evidence files of those cells' tries, nothing of pairs it is not in.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import jinja2

from harness.errors import ConfigError
from harness.event.board import evidence_files
from harness.event.store import Store, cell_state

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
DECIDED = ("passed", "failed", "broken")


def _latest(store: Store) -> dict[int, object]:
    latest = {}
    for row in store.tries():
        latest[row["cell"]] = row  # ordered by cell, number: the last one stays
    return latest


def features(store: Store, cases: dict[str, tuple[str, ...]]) -> list[dict]:
    latest, signoffs = _latest(store), store.signoffs()
    by_case: dict[tuple[str, str], list] = {(p, c): [] for p, named in cases.items() for c in named}
    for cell in store.cells():
        if cell.id in latest:
            by_case.setdefault((cell.protocol, cell.case), []).append(cell)
    rows = []
    for (protocol, case), cells in by_case.items():
        verdicts = [latest[c.id]["verdict"] for c in cells]
        passed = verdicts.count("passed")
        failed = sum(v in ("failed", "broken") for v in verdicts)
        if passed and not failed:
            result, css = "interoperates", "interoperates"
        elif passed:
            result, css = "interoperates with issues", "issues"
        elif failed:
            result, css = "no pair interoperates", "none"
        else:
            result, css = "not tested", "untested"
        rows.append({"protocol": protocol, "case": case, "result": result, "css": css, "passed": passed,
                     "failed": failed, "undecided": len(verdicts) - passed - failed,
                     "verified": sum(cell_state(c, latest[c.id]["id"], signoffs) == "verified" for c in cells)})
    return rows


def problems(store: Store) -> list[dict]:
    latest, signoffs = _latest(store), store.signoffs()
    table: dict[tuple[str, str, str], dict] = {}
    for cell in store.cells():
        row = latest.get(cell.id)
        if row is None or row["verdict"] not in ("failed", "broken"):
            continue
        entry = table.setdefault((cell.protocol, cell.case, row["verdict"]), {"pairs": 0, "states": {}})
        entry["pairs"] += 1
        state = cell_state(cell, row["id"], signoffs)
        entry["states"][state] = entry["states"].get(state, 0) + 1
    return [{"protocol": p, "case": c, "verdict": v, "pairs": e["pairs"],
             "states": ", ".join(f"{n} {s}" for s, n in sorted(e["states"].items()))}
            for (p, c, v), e in sorted(table.items())]


def write_report(event, store: Store) -> list[Path]:
    rows, trouble = features(store, event.config.cases), problems(store)
    facts = {"event": event.config.name, "participants": len(store.participants()),
             "cells": len(_latest(store)), "tries": len(store.tries())}
    html = event.folder / "report.html"
    html.write_text(ENV.get_template("report.html.j2").render(features=rows, problems=trouble, **facts))
    data = event.folder / "report.json"
    data.write_text(json.dumps({**facts, "features": [{k: v for k, v in r.items() if k != "css"} for r in rows],
                                "problems": trouble}, indent=2) + "\n")
    return [html, data]


def write_bundle(event, store: Store, participant: str, out: Path | None = None) -> Path:
    rows = store.participants()
    if participant not in rows:
        raise ConfigError("event bundle", participant, f"no such participant; known: {', '.join(sorted(rows))}")
    latest, signoffs = _latest(store), store.signoffs()
    entries = sorted(e for e, p in store.entries().items() if p == participant)
    cells, files = [], []
    partners = set()
    for cell in store.cells():
        if participant not in (cell.a_participant, cell.b_participant):
            continue
        other = cell.b_participant if cell.a_participant == participant else cell.a_participant
        if other in rows and rows[other]["organisation"] != rows[participant]["organisation"]:
            partners.add(rows[other]["organisation"])
        tries = []
        for row in store.tries(cell.id):
            names = [f"evidence/{row['evidence']}/{name}" for name in evidence_files(event.folder, row["evidence"])]
            files += [(event.folder / name.removeprefix("evidence/"), name) for name in names]
            tries.append({"number": row["number"], "verdict": row["verdict"], "files": names})
        now = latest.get(cell.id)
        cells.append({"key": cell.key, "verdict": now["verdict"] if now else "not run",
                      "reason": now["reason"] if now else "", "tries": tries,
                      "state": cell_state(cell, now["id"] if now else None, signoffs),
                      "signoffs": [(p, signoffs[cell.id, p]["state"]) for p in (cell.a_participant, cell.b_participant)
                                   if (cell.id, p) in signoffs]})
    page = ENV.get_template("conformance.html.j2").render(
        event=event.config.name, participant={**dict(rows[participant]), "id": participant}, entries=entries,
        partners=sorted(partners), cells=cells)
    out = Path(out or event.folder / "bundles" / f"{participant}.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("conformance.html", page)
        for path, name in files:
            bundle.write(path, name)  # listed by evidence_files: regular files inside the event, no symlinks
    os.replace(temporary, out)
    return out
