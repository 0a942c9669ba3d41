"""The output contract other tools read:

    DIR/allure-results/                              allure-pytest output
    DIR/pairs/<protocol>/<case>/<a>__<b>/            capture.pcap, <role>-<vendor>.log, configs/
    DIR/matrix.json                                  one record per (protocol, case, a, b)

A record holds {protocol, case, a, b, verdict, reason, duration_s, pcap}, plus what the report pages group
by: `clause`, the first "RFC NNNN x.y" of the case's docstring, and `title`, the docstring's first sentence.

Verdicts: passed; failed (the implementations did not interoperate: an assertion about the wire or the
tunnel); broken (the harness or a container failed); skipped (with the reason).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath

from harness.errors import ConfigError

VERDICTS = ("passed", "failed", "broken", "skipped")
# The phases of a case, in order: the lab (network, containers, capture) is up; the daemons are configured and
# ready; the protocol negotiated (IPsec: the initiator's attempt ended; VXLAN has no negotiation); the verdict
# (traffic, wire checks); teardown (evidence collected, lab removed).
PHASES = ("lab up", "daemons ready", "negotiation", "verdict", "teardown")
MARKS = ("lab up", "daemons ready", "negotiation")  # what a protocol fixture marks when it gets there


def phase_durations(start: float, marks: dict[str, float], call_end: float, end: float) -> dict[str, float]:
    """Seconds per phase from the monotonic times a case reached each mark. A phase whose mark was never
    reached is left out (its time counts towards the next phase that was)."""
    durations, last = {}, start
    for phase in MARKS:
        if phase in marks:
            durations[phase] = round(marks[phase] - last, 3)
            last = marks[phase]
    durations["verdict"] = round(call_end - last, 3)
    durations["teardown"] = round(end - call_end, 3)
    return durations
# Worse verdicts win when a case's phases disagree (a passed call with a broken teardown is broken).
RANK = {"passed": 0, "skipped": 1, "failed": 2, "broken": 3}


@dataclass
class CaseResult:
    protocol: str
    case: str
    a: str
    b: str
    verdict: str
    reason: str
    duration_s: float
    pcap: str | None  # relative to the reports dir
    clause: str = ""  # "RFC 7296 2.6"
    title: str = ""
    # Seconds per phase of the case (PHASES), for the benchmark; only the phases the case reached.
    phases: dict[str, float] = field(default_factory=dict)
    # Figures a case measured (e.g. the overlay tax: throughput and RTT through the overlay and the underlay).
    measurements: dict[str, float] = field(default_factory=dict)
    # Against the expectations in force (harness.expectations): "expected", "unexpected", "fixed" (expected to
    # fail, passed), or None when the run had no expectations; `expectation` is the entry that matched
    # ({match, verdict, reason, note}), None for an unlisted cell (expected to pass).
    outcome: str | None = None
    expectation: dict | None = None
    # --reruns: the earlier tries of a failed or broken cell ({verdict, reason, duration_s, evidence: the folder
    # of that try's files, relative to the reports dir}); flaky when the verdict changed between tries.
    tries: list[dict] = field(default_factory=list)
    flaky: bool = False
    # Both sides are the harness's own code (its reference peers or probe): checks the harness, not interop.
    reference: bool = False
    # --compare: this cell's verdict in the run compared with; None when that run did not have the cell.
    previous: str | None = None
    # "a" or "b": the side the harness's built-in probe played (harness.pairlab); it is no vendor, so it has no
    # conformance page and the pages list it after the vendors. None in every other cell.
    probe: str | None = None
    # The vendors that ran as qemu microVMs (harness.vm) in this cell: vendor -> the VM kernel's release. Their
    # data plane is the VM kernel's under software emulation, not the host's.
    vm: dict[str, str] = field(default_factory=dict)

    def merge(self, verdict: str, reason: str, duration_s: float) -> None:
        """Fold in one more phase (setup, call, teardown) of the same case."""
        self.duration_s = round(self.duration_s + duration_s, 3)
        if RANK[verdict] > RANK[self.verdict]:
            self.verdict, self.reason = verdict, reason


CLAUSE = re.compile(r"RFC \d+(?: \d+(?:\.\d+)*)?")


def describe_case(docstring: str | None) -> tuple[str, str]:
    """(clause, title) from a case's docstring: 'RFC 7296 2.6: a responder under load ...'."""
    text = " ".join((docstring or "").split())
    clause = CLAUSE.search(text)
    title = text.split(". ")[0].rstrip(".")
    return (clause.group(0) if clause else ""), title


# A protocol, case or vendor name becomes a path component (pairs/<protocol>/<case>/<a>__<b>,
# conformance/<vendor>.html): it must stay one component, inside its folder. Vendor ids carry versions
# ("strongswan@6.0"); the length bound keeps "<a>__<b>" under the file systems' 255 bytes.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


def name_problem(value) -> str | None:
    """What makes `value` unfit to be a path component, or None when it is a safe name."""
    if not isinstance(value, str):
        return f"a name (text) expected, found {_kind(value)}"
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        return (f"{_shown(value)} is not a safe name (a letter or digit, then letters, digits and . _ @ + -; "
                f"no '..'; at most 100 characters)")
    return None


def check_name(value, where: str, field: str) -> str:
    if problem := name_problem(value):
        raise ConfigError(where, field, problem)
    return value


def pair_dir(reports_dir: Path, protocol: str, case: str, a: str, b: str) -> Path:
    where = str(reports_dir / "pairs")
    for field_name, value in (("protocol", protocol), ("case", case), ("a", a), ("b", b)):
        check_name(value, where, field_name)
    return reports_dir / "pairs" / protocol / case / f"{a}__{b}"


def phase_verdict(outcome: str, is_assertion: bool, when: str) -> str:
    """Map a pytest phase outcome to a verdict: only an assertion in the test body means 'failed'."""
    if outcome == "passed":
        return "passed"
    if outcome == "skipped":
        return "skipped"
    return "failed" if (is_assertion and when == "call") else "broken"


def write_matrix(reports_dir: Path, results: list[CaseResult]) -> Path:
    path = reports_dir / "matrix.json"
    ordered = sorted(results, key=lambda r: (r.protocol, r.case, r.a, r.b))
    path.write_text(json.dumps([asdict(r) for r in ordered], indent=2) + "\n")
    return path


class _Invalid(Exception):
    """A value that breaks the record schema: what is wrong, and where below the field (".key", "[2]")."""

    def __init__(self, problem: str, at: str = ""):
        super().__init__(problem)
        self.problem, self.at = problem, at


Check = Callable[[object], None]  # raises _Invalid


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _key(key) -> str:
    return key if isinstance(key, str) and key.isprintable() and len(key) <= 80 else _shown(key)


def _text(value) -> None:
    if not isinstance(value, str):
        raise _Invalid(f"text expected, found {_kind(value)}")


def _safe_name(value) -> None:
    if problem := name_problem(value):
        raise _Invalid(problem)


def _flag(value) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"true or false expected, found {_shown(value)}")


def _number(value) -> None:
    # bool is an int to Python, never a figure; NaN and infinities are valid JSON to Python's reader.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"a finite number expected, found {_shown(value)}")


def _seconds(value) -> None:
    _number(value)
    if value < 0:
        raise _Invalid(f"seconds expected, found {_shown(value)} (negative)")


def _relative_path(value) -> None:
    _text(value)
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise _Invalid(f"{_shown(value)} is not a path inside the reports folder")


def _one_of(*choices) -> Check:
    def check(value) -> None:
        if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
            raise _Invalid(f"{_shown(value)} is not one of {', '.join('null' if c is None else str(c) for c in choices)}")
    return check


def _optional(check: Check) -> Check:
    def optional(value) -> None:
        if value is not None:
            check(value)
    return optional


def _mapping(values: Check) -> Check:
    def check(value) -> None:
        if not isinstance(value, dict):
            raise _Invalid(f"an object expected, found {_kind(value)}")
        for key, item in value.items():
            try:
                values(item)
            except _Invalid as exc:
                raise _Invalid(exc.problem, f".{_key(key)}{exc.at}") from None
    return check


def _list_of(items: Check) -> Check:
    def check(value) -> None:
        if not isinstance(value, list):
            raise _Invalid(f"a list expected, found {_kind(value)}")
        for index, item in enumerate(value):
            try:
                items(item)
            except _Invalid as exc:
                raise _Invalid(exc.problem, f"[{index}]{exc.at}") from None
    return check


def _check_fields(record: dict, table: dict[str, Check], required) -> None:
    """Every key known to `table` and valid, every required key present; the first problem raises, naming
    its field."""
    for key in record:
        if key not in table:
            raise _Invalid(f"unknown field; known: {', '.join(table)}", _key(key))
    for key in table:
        if key not in record:
            if key in required:
                raise _Invalid("missing", key)
            continue
        try:
            table[key](record[key])
        except _Invalid as exc:
            raise _Invalid(exc.problem, f"{key}{exc.at}") from None


def _object(table: dict[str, Check], required) -> Check:
    def check(value) -> None:
        if not isinstance(value, dict):
            raise _Invalid(f"an object expected, found {_kind(value)}")
        try:
            _check_fields(value, table, required)
        except _Invalid as exc:
            raise _Invalid(exc.problem, f".{exc.at}") from None
    return check


_VERDICT = _one_of(*VERDICTS)
# What a matrix.json record may hold: one line per CaseResult field (tests check the two agree). Which fields are
# required comes from the dataclass: those without a default.
RECORD_SCHEMA: dict[str, Check] = {
    "protocol": _safe_name,
    "case": _safe_name,
    "a": _safe_name,
    "b": _safe_name,
    "verdict": _VERDICT,
    "reason": _text,
    "duration_s": _seconds,
    "pcap": _optional(_relative_path),
    "clause": _text,
    "title": _text,
    "phases": _mapping(_seconds),
    "measurements": _mapping(_number),
    "outcome": _one_of(None, "expected", "unexpected", "fixed"),
    "expectation": _optional(_object({"match": _text, "verdict": _VERDICT, "reason": _text, "note": _text},
                                     required={"match", "verdict"})),
    "tries": _list_of(_object({"verdict": _VERDICT, "reason": _text, "duration_s": _seconds,
                               "evidence": _optional(_relative_path)},
                              required={"verdict", "reason", "duration_s", "evidence"})),
    "flaky": _flag,
    "reference": _flag,
    "previous": _optional(_VERDICT),
    "probe": _one_of(None, "a", "b"),
    "vm": _mapping(_text),
}
REQUIRED = {f.name for f in fields(CaseResult) if f.default is MISSING and f.default_factory is MISSING}


def record_label(index: int, record) -> str:
    """'record 3 (vxlan/port_default linux->ovs)': the record's place, and its cell when that is readable."""
    names = [record.get(k) for k in ("protocol", "case", "a", "b")] if isinstance(record, dict) else []
    if len(names) == 4 and all(isinstance(n, str) and n.isprintable() and len(n) <= 100 for n in names):
        return f"record {index} ({names[0]}/{names[1]} {names[2]}->{names[3]})"
    return f"record {index}"


def read_matrix(reports_dir: Path) -> list[CaseResult]:
    """DIR/matrix.json, every record checked against RECORD_SCHEMA: bad input raises one ConfigError naming the
    file, the record and the field (its names become paths and its text becomes pages)."""
    path = reports_dir / "matrix.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "file", "not found; DIR must be a run's reports folder") from None
    except OSError as exc:
        raise ConfigError(str(path), "file", exc.strerror or str(exc)) from None
    try:
        records = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "encoding", f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
                          ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {exc.lineno} column {exc.colno}", f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(str(path), "JSON", "nested too deeply") from None
    if not isinstance(records, list):
        raise ConfigError(str(path), "top level", f"a list of records expected, found {_kind(records)}")
    results, seen = [], {}
    for index, record in enumerate(records):
        where = f"{path} {record_label(index, record)}"
        if not isinstance(record, dict):
            raise ConfigError(where, "record", f"an object expected, found {_kind(record)}")
        try:
            _check_fields(record, RECORD_SCHEMA, REQUIRED)
        except _Invalid as exc:
            raise ConfigError(where, exc.at, exc.problem) from None
        key = (record["protocol"], record["case"], record["a"], record["b"])
        if key in seen:
            raise ConfigError(where, "protocol/case/a/b", f"the same cell as record {seen[key]}")
        seen[key] = index
        results.append(CaseResult(**record))
    return results


SHORT = {"passed": "pass", "failed": "FAIL", "broken": "BRKN", "skipped": "skip"}


def interop_line(protocol: str, rows: list[CaseResult]) -> str:
    """'ipsec: 26/27 pair-cases interoperate (1 failed, 0 broken, 30 skipped); 4 reference cells: 4 passed'.
    Reference cells (the harness's own peers on both sides) check the harness, not interop: counted apart."""
    interop = [r for r in rows if not r.reference]
    count = {v: sum(r.verdict == v for r in interop) for v in VERDICTS}
    ran = len(interop) - count["skipped"]
    line = (f"{protocol}: {count['passed']}/{ran} pair-cases interoperate "
            f"({count['failed']} failed, {count['broken']} broken, {count['skipped']} skipped)")
    reference = [r for r in rows if r.reference]
    if reference:
        counts = {v: sum(r.verdict == v for r in reference) for v in VERDICTS}
        line += f"; {len(reference)} reference cells: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return line


def summary_table(results: list[CaseResult]) -> str:
    """Per protocol: the x/y line, a small grid (cases down, numbered pairs across), the pairs' legend, and
    every failed or broken cell with its reason."""
    lines = []
    for protocol in sorted({r.protocol for r in results}):
        rows = [r for r in results if r.protocol == protocol]
        lines.append(interop_line(protocol, rows))
        pairs = sorted({(r.a, r.b) for r in rows})
        cases = sorted({r.case for r in rows})
        cell = {(r.case, r.a, r.b): SHORT[r.verdict] for r in rows}
        width = max(len(c) for c in cases)
        lines.append("  " + " " * width + "".join(f"{n:>6}" for n in range(1, len(pairs) + 1)))
        for case in cases:
            lines.append(f"  {case:<{width}}" + "".join(f"{cell.get((case, a, b), '-'):>6}" for a, b in pairs))
        lines.append("  pairs: " + ", ".join(f"{n} {a}->{b}" for n, (a, b) in enumerate(pairs, 1)))
        for r in sorted(rows, key=lambda r: (r.case, r.a, r.b)):
            if r.verdict in ("failed", "broken"):
                lines.append(f"  {r.verdict.upper()} {r.case} {r.a}->{r.b}: {r.reason.splitlines()[0][:100]}")
    return "\n".join(lines)


def expectation_summary(results: list[CaseResult], source: str, strict: bool = False) -> str:
    """The cells judged against the expectations: a count line, then every unexpected cell (first) and every
    fixed one, with what was expected."""
    key = lambda r: (r.protocol, r.case, r.a, r.b)  # noqa: E731
    unexpected = sorted((r for r in results if r.outcome == "unexpected"), key=key)
    fixed = sorted((r for r in results if r.outcome == "fixed"), key=key)
    lines = [f"expectations ({source}): {sum(r.outcome == 'expected' for r in results)} cells as expected, "
             f"{len(unexpected)} not as expected, {len(fixed)} fixed"]
    for r in unexpected:
        wanted = r.expectation["verdict"] if r.expectation else "passed"
        pattern = f" with a reason matching /{r.expectation['reason']}/" if r.expectation and r.expectation["reason"] else ""
        lines.append(f"  UNEXPECTED {r.protocol}/{r.case}/{r.a}->{r.b}: {r.verdict} (expected {wanted}{pattern})"
                     + (f": {r.reason.splitlines()[0][:160]}" if r.reason else ""))
    for r in fixed:
        lines.append(f"  FIXED {r.protocol}/{r.case}/{r.a}->{r.b}: passed, expected {r.expectation['verdict']} "
                     f"({r.expectation['match']}): update the expectations" + (" (--strict: not as expected)" if strict else ""))
    return "\n".join(lines)


def flaky_summary(results: list[CaseResult]) -> str:
    """One line per flaky cell (its verdict changed between --reruns tries): the verdicts in order."""
    return "\n".join(f"FLAKY {r.protocol}/{r.case}/{r.a}->{r.b}: " + " -> ".join([t["verdict"] for t in r.tries]
                                                                                  + [r.verdict])
                     for r in sorted(results, key=lambda r: (r.protocol, r.case, r.a, r.b)) if r.flaky)


# Allure's own split of results, named for what they mean here (see the verdicts above).
ALLURE_CATEGORIES = [
    {"name": "Did not interoperate", "matchedStatuses": ["failed"],
     "description": "An assertion about the wire or the tunnel failed: the implementations disagree."},
    {"name": "Harness or lab trouble", "matchedStatuses": ["broken"],
     "description": "A container, a daemon start, a config or the harness failed; not an interop verdict."},
    {"name": "Not run: unsupported by a vendor or the host", "matchedStatuses": ["skipped"]},
]


def write_run_facts(run, versions: dict[str, str], host: dict[str, str], allure_dir: Path,
                    images: dict[str, dict] | None = None, compared_with: dict[str, str] | None = None,
                    vm: dict[str, str] | None = None) -> None:
    """DIR/run.json (run id, vendor versions, host capabilities; the image each vendor ran, {"id", "packages":
    {Debian package: version}, and "supplied": the --image REF where the user supplied it}; the run this one was compared with, {"run", "folder"}) and, for allure,
    environment.properties and categories.json."""
    facts = {"run": run.id, "versions": dict(sorted(versions.items())), "host": dict(sorted(host.items()))}
    if images is not None:
        facts["images"] = {vendor: {"id": image["id"], "packages": dict(sorted(image.get("packages", {}).items())),
                                    **({"supplied": image["supplied"]} if image.get("supplied") else {})}
                           for vendor, image in sorted(images.items())}
    if compared_with is not None:
        facts["compared_with"] = compared_with
    if vm:  # vendors that ran as microVMs in some cell, with the VM kernel's release
        facts["vm"] = dict(sorted(vm.items()))
    (run.reports_dir / "run.json").write_text(json.dumps(facts, indent=2) + "\n")
    allure_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"run={run.id}"] + [f"vendor.{name}={version}" for name, version in facts["versions"].items()] + \
            [f"image.{name}={image['id']}" for name, image in facts.get("images", {}).items()] + \
            [f"host.{name}={answer}" for name, answer in facts["host"].items()] + \
            [f"vm.{name}={release}" for name, release in facts.get("vm", {}).items()]
    (allure_dir / "environment.properties").write_text("\n".join(_properties_escape(line) for line in lines) + "\n")
    (allure_dir / "categories.json").write_text(json.dumps(ALLURE_CATEGORIES, indent=2) + "\n")


CELL_LABEL = "overlay-interop.cell"  # the allure label naming a result's cell ("protocol/case/a->b")


def mark_flaky(allure_dir: Path, flaky: list[CaseResult]) -> None:
    """Set allure's flaky flag on the results of the flaky cells (found by their cell label)."""
    wanted = {f"{r.protocol}/{r.case}/{r.a}->{r.b}" for r in flaky}
    if not wanted or not allure_dir.is_dir():
        return
    for path in allure_dir.glob("*-result.json"):
        data = json.loads(path.read_text())
        if any(label.get("name") == CELL_LABEL and label.get("value") in wanted for label in data.get("labels", [])):
            data.setdefault("statusDetails", {})["flaky"] = True
            path.write_text(json.dumps(data))


def _properties_escape(line: str) -> str:
    key, _, value = line.partition("=")
    return f"{key}={value.replace(chr(92), chr(92) * 2)}"


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Whether the pair-case `key` ("protocol/case/a->b") belongs to shard i of n: the same answer on every
    run and machine (a hash of the key, not of collection order), so CI jobs split a matrix without talking."""
    index, count = shard
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % count == index - 1


def parse_shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ValueError(f"{text!r} is not i/n with 1 <= i <= n (e.g. 1/4)")
    return int(index), int(count)


def merge_runs(out: Path, runs: list[Path], finish: Callable[[Path], object] | None = None) -> list[CaseResult]:
    """Join the reports folders of shards into a new folder `out`: one matrix.json, the pair folders, one
    allure-results, and run.json with every vendor version and host answer seen; then `finish(folder)` (e.g.
    the pages). Everything is checked before anything is written, and the result is built beside `out` and
    renamed into place: `out` appears complete or not at all. Refused, with one line: an `out` that exists and
    is not empty, an `out` equal to or inside a shard, and shards that overlap (a pair-case in two)."""
    from harness.run import Run
    given, out = str(out), Path(out).absolute()
    for run in runs:
        if out.resolve() == Path(run).resolve() or Path(run).resolve() in out.resolve().parents:
            raise ConfigError("--into", given, f"is the shard {run} or inside it; merge into a folder of its own")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ConfigError("--into", given, "exists and is not an empty folder; merge writes a new one")
    merged: dict[tuple, tuple[CaseResult, Path]] = {}
    versions, host, images, ids = {}, {}, {}, []
    for run in runs:
        for result in read_matrix(run):
            key = (result.protocol, result.case, result.a, result.b)
            if key in merged:
                raise ConfigError(str(run / "matrix.json"), f"{'/'.join(key[:2])} {key[2]}->{key[3]}",
                                  f"also in {merged[key][1]}: shards must not overlap")
            merged[key] = (result, run)
        facts = _run_facts(run)
        versions.update(facts.get("versions", {}))
        host.update(facts.get("host", {}))
        images.update(facts.get("images", {}) if isinstance(facts.get("images"), dict) else {})
        ids.append(str(facts.get("run", Path(run).resolve().name)))
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.merging-", dir=out.parent))
    try:
        for run in runs:
            if (run / "pairs").is_dir():  # two shards with files in one pair folder overlap too
                shutil.copytree(run / "pairs", building / "pairs", dirs_exist_ok=True,
                                copy_function=_copy_new(run, building))
            if (run / "allure-results").is_dir():  # uuid-named results; environment and categories rewritten below
                shutil.copytree(run / "allure-results", building / "allure-results", dirs_exist_ok=True)
        results = [result for result, _ in merged.values()]
        write_matrix(building, results)
        write_run_facts(Run("+".join(ids), "", "main", building), versions, host, building / "allure-results",
                        images=images)
        if finish:
            finish(building)
        building.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; a reports folder is not
        os.rename(building, out)  # atomic; replaces `out` only if it is (still) an empty folder
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return results


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy_new(run: Path, building: Path):
    def copy(src: str, dst: str) -> None:
        if os.path.lexists(dst):
            where = Path(dst).relative_to(building)
            raise ConfigError(str(run / where), "file", "another shard has it too: shards must not overlap")
        shutil.copy2(src, dst)
    return copy


def _run_facts(run: Path) -> dict:
    """A shard's run.json (optional): {run, versions, host}, checked as far as merging relies on it."""
    path = run / "run.json"
    if not path.is_file():
        return {}
    try:
        facts = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(str(path), "file", f"not UTF-8 JSON ({exc})") from None
    if not isinstance(facts, dict):
        raise ConfigError(str(path), "top level", f"an object expected, found {_kind(facts)}")
    for key in ("versions", "host"):
        if not isinstance(facts.get(key, {}), dict):
            raise ConfigError(str(path), key, f"an object expected, found {_kind(facts[key])}")
    return facts
