"""Expected results: what a run should give, so a CI gates on "as expected" rather than on "all passed".

An expectations file is TOML, one `[[cell]]` table per entry:

    [[cell]]
    match = "vxlan/port_default/linux->ovs"   # a glob over "protocol/case/a->b" (fnmatch: * ? [...])
    verdict = "failed"                        # passed | failed | skipped (broken is never expected)
    reason = "8472"                           # optional: a regular expression the cell's reason must contain
    note = "Linux's vxlan default port is 8472; RFC 7348 5"   # optional: why, a bug link
    host = ["!kernel-esp"]                    # optional: applies only where the host lacks kernel ESP

The first entry that matches a cell (glob and host conditions) wins; a cell no entry matches is expected to pass.
Each cell then has an outcome:
- expected:   its verdict is the expected one (and its reason matches the pattern, when there is one);
- fixed:      expected to fail or to be skipped, it passed: the expectations are out of date;
- unexpected: anything else, a broken cell always.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.tomlfile import read_toml

EXPECTABLE = ("passed", "failed", "skipped")
ENTRY_KEYS = ("match", "verdict", "reason", "note", "host")
OUTCOMES = ("expected", "unexpected", "fixed")


def cell_key(protocol: str, case: str, a: str, b: str) -> str:
    """The name a cell is matched by: "protocol/case/a->b"."""
    return f"{protocol}/{case}/{a}->{b}"


@dataclass(frozen=True)
class Entry:
    match: str
    verdict: str
    reason: re.Pattern | None = None
    note: str = ""
    host: tuple[str, ...] = ()  # "cap" (the host has it) or "!cap" (the host lacks it)

    def holds_on(self, host: dict[str, bool]) -> bool:
        """Whether the entry's host conditions hold on a host with these capabilities."""
        return all(host.get(cond.lstrip("!"), False) != cond.startswith("!") for cond in self.host)

    def applies(self, key: str, host: dict[str, bool]) -> bool:
        return fnmatch.fnmatchcase(key, self.match) and self.holds_on(host)

    def describe(self) -> dict:
        """The entry as matrix.json keeps it (`expectation`)."""
        return {"match": self.match, "verdict": self.verdict, "reason": self.reason.pattern if self.reason else "",
                "note": self.note}


@dataclass(frozen=True)
class Expectations:
    source: str  # the file they came from, for messages
    entries: tuple[Entry, ...]

    def entry_for(self, key: str, host: dict[str, bool]) -> Entry | None:
        return next((e for e in self.entries if e.applies(key, host)), None)

    def judge(self, key: str, verdict: str, reason: str, host: dict[str, bool]) -> tuple[str, Entry | None]:
        """(outcome, the entry that matched or None) for a cell with this verdict and reason."""
        entry = self.entry_for(key, host)
        expected = entry.verdict if entry else "passed"
        if verdict == "broken":
            return "unexpected", entry
        if verdict == expected and (entry is None or entry.reason is None or entry.reason.search(reason or "")):
            return "expected", entry
        if verdict == "passed" and expected in ("failed", "skipped"):
            return "fixed", entry
        return "unexpected", entry


def host_answers(host: dict[str, str]) -> dict[str, bool]:
    """run.json / record style host answers ("yes", "no (why)") as booleans."""
    return {name: str(answer).startswith("yes") for name, answer in host.items()}


# A `host` condition that is no capability of the host's kernel: vendor nodes may run as qemu microVMs in this run
# (--kernel auto or vm; harness.vm), so a vendor's kernel needs are met even where the host lacks them.
VM_CONDITION = "vm"


def load(path: Path, capabilities: set[str] | None = None) -> Expectations:
    """Read and validate an expectations file; every problem is one ConfigError naming the file, entry and field.
    `capabilities`: the host capability names a `host` condition may use besides VM_CONDITION (None: any name)."""
    where = str(path)
    capabilities = None if capabilities is None else set(capabilities) | {VM_CONDITION}
    data = read_toml(Path(path), folder="is a folder, not an expectations file")
    unknown = sorted(set(data) - {"cell"})
    if unknown:
        raise ConfigError(where, unknown[0], "unknown key; an expectations file holds [[cell]] tables only")
    cells = data.get("cell", [])
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ConfigError(where, "cell", "must be an array of tables ([[cell]])")
    return Expectations(where, tuple(_entry(where, index, table, capabilities) for index, table in enumerate(cells, 1)))


def _entry(where: str, index: int, table: dict, capabilities: set[str] | None) -> Entry:
    def fail(field: str, problem: str) -> ConfigError:
        label = f"cell {index}" + (f" ({table['match']})" if isinstance(table.get("match"), str) else "")
        return ConfigError(where, f"{label}: {field}", problem)

    unknown = sorted(set(table) - set(ENTRY_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key; known: {', '.join(ENTRY_KEYS)}")
    for key in ("match", "verdict"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise fail(key, "required, a non-empty string")
    literal = not any(c in table["match"] for c in "*?[")
    if literal and not re.fullmatch(r"[^/]+/[^/]+/[^/]+->[^/]+", table["match"]):
        raise fail("match", f"{table['match']!r} is not a glob over protocol/case/a->b (e.g. 'vxlan/*/linux->*')")
    if table["verdict"] not in EXPECTABLE:
        raise fail("verdict", f"{table['verdict']!r} is not one of {', '.join(EXPECTABLE)} (a broken cell is never "
                              f"expected: it means the harness or the lab failed)")
    for key in ("reason", "note"):
        if key in table and not isinstance(table[key], str):
            raise fail(key, "must be a string")
    pattern = None
    if table.get("reason"):
        if table["verdict"] == "passed":
            raise fail("reason", "a passed cell has no reason to match")
        try:
            pattern = re.compile(table["reason"])
        except re.error as exc:
            raise fail("reason", f"not a regular expression: {exc}") from None
    host = table.get("host", [])
    if not isinstance(host, list) or not all(isinstance(c, str) and c.lstrip("!") for c in host):
        raise fail("host", 'must be a list of capability names, each optionally negated ("!kernel-esp")')
    if capabilities is not None:
        bad = sorted(c for c in host if c.lstrip("!") not in capabilities)
        if bad:
            raise fail("host", f"unknown host capability {bad[0].lstrip('!')!r}; known: {', '.join(sorted(capabilities))}")
    return Entry(table["match"], table["verdict"], pattern, table.get("note", ""), tuple(host))


def draft(results) -> str:
    """An expectations file that pins a run as it is: one entry per failed or skipped cell, its reason's first
    line (escaped, cut at 80 characters) as the pattern. A start for a user's own file: group cells that share a
    cause under one glob, add host conditions and say why in each note."""
    lines = ["# Drafted from a run by `overlay-interop expectations draft`: every failed and skipped cell as it was.",
             "# Group cells with one cause under a glob, add host conditions, and say why in each note.", ""]
    for r in sorted(results, key=lambda r: (r.protocol, r.case, r.a, r.b)):
        if r.verdict not in ("failed", "skipped"):
            continue
        first = (r.reason or "").splitlines()[0] if r.reason else ""
        lines += ["[[cell]]", f"match = {_toml_string(cell_key(r.protocol, r.case, r.a, r.b))}",
                  f'verdict = "{r.verdict}"']
        if first:
            lines.append(f"reason = {_toml_string(re.escape(first[:80]))}")
        lines += ['note = ""', ""]
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    """A TOML literal string when it can be one (no escapes to read), else a basic string."""
    if "'" not in text and "\n" not in text:
        return f"'{text}'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
