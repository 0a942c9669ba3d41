"""DIR/matrix.html: the run at a glance, from DIR/matrix.json.

For each protocol a summary line, then per case a grid: initiators (a) down, responders (b) across, one cell
per pair colored by its verdict, the reason on hover, linking to the pair's files. Problems (failed, broken)
are listed first with their reasons; then, when the run was compared with an earlier one (--compare), the cells
whose verdict changed since (harness.history), also marked in the grids; then what each vendor ran as (version,
image, its Debian packages, from run.json). Where cases measured the overlay tax (harness.tax), a table per protocol
lists the figures per pair: relative to the host that ran them, never a benchmark. One static page: inline
CSS, no script, nothing fetched, so it works offline and from an archived reports folder.

What both pages share lives here too: the jinja2 environment (autoescaped), the run's facts, vendor order,
and `Cell`, one record with the links to the files that exist in its pair folder. Everything comes from the
records: a page needs no vendor registry (the side the harness's built-in probe played is the record's `probe`).
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2

from harness import history
from harness.errors import ConfigError
from harness.results import VERDICTS, CaseResult, pair_dir

PROBLEMS = ("failed", "broken")

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Order:
    """Vendors alphabetical, the harness's built-in probe last: the same order on every page and every run. The
    probe is known by the records alone (`probe`: the side it played), never by a name."""
    probes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, results) -> "Order":
        return cls(frozenset(getattr(r, r.probe) for r in results if r.probe))

    def key(self, name: str) -> tuple[bool, str]:
        return name in self.probes, name

    def sorted(self, names) -> list[str]:
        return sorted(set(names), key=self.key)


def vendors(results: list[CaseResult]) -> list[str]:
    """The vendors the records name, in page order: not the sides the harness's built-in probe played."""
    return Order.of(results).sorted(getattr(r, side) for r in results for side in ("a", "b") if side != r.probe)


@dataclass(frozen=True)
class Link:
    label: str
    href: str


@dataclass
class Cell:
    """One pair-case: its record and links (relative to the page) to the files its pair folder holds."""
    result: CaseResult
    main: Link | None  # the transcript, else the first daemon log
    files: list[Link] = field(default_factory=list)  # capture.pcap, ladder.svg
    logs: list[Link] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def change(self) -> str | None:
        """What the change of verdict since the compared run means ("new failure", "fixed", ...), or None."""
        return history.change(self.result.previous, self.result.verdict)

    @property
    def tip(self) -> str:
        """The hover text: the reason (or how long a passed case took), then how it stands against the
        expectations, its tries and whether it is a reference cell."""
        r = self.result
        parts = [r.reason or f"{r.verdict} in {r.duration_s:.1f} s"]
        if r.outcome:
            parts.append(f"{r.outcome} ({self.expected_text})")
        if r.tries:
            parts.append("tries: " + " -> ".join([t["verdict"] for t in r.tries] + [r.verdict]))
        if r.reference:
            parts.append("reference cell: the harness's own peers on both sides")
        return "; ".join(parts)

    @property
    def expected_text(self) -> str:
        """'expected failed with a reason matching /8472/: why' or 'expected passed'."""
        e = self.result.expectation
        if not e:
            return "expected passed"
        text = f"expected {e['verdict']}" + (f" with a reason matching /{e['reason']}/" if e["reason"] else "")
        return text + (f": {e['note']}" if e["note"] else "")


def cell(reports_dir: Path, result: CaseResult, prefix: str = "") -> Cell:
    folder = pair_dir(reports_dir, result.protocol, result.case, result.a, result.b)

    def link(label: str, path: Path) -> Link:
        return Link(label, prefix + quote(path.relative_to(reports_dir).as_posix()))

    files = [link(label, folder / name) for label, name in (("pcap", "capture.pcap"), ("ladder", "ladder.svg"))
             if (folder / name).is_file()]
    logs = [link(path.name, path) for path in sorted(folder.glob("*.log")) if path.is_file()]
    transcript = folder / "transcript.txt"
    main = link("transcript", transcript) if transcript.is_file() else (logs[0] if logs else None)
    return Cell(result, main, files, logs)


def summary(name: str, results: list[CaseResult]) -> str:
    """'ipsec: 26/27 pair-cases interoperate, 1 failed, 30 skipped' (skipped cases don't count as run); reference
    cells (the harness's own peers on both sides) check the harness, not interop: counted apart."""
    interop = [r for r in results if not r.reference]
    counts = Counter(r.verdict for r in interop)
    ran = len(interop) - counts["skipped"]
    rest = "".join(f", {counts[v]} {v}" for v in VERDICTS[1:] if counts[v])
    line = f"{name}: {counts['passed']}/{ran} pair-cases interoperate{rest}"
    reference = Counter(r.verdict for r in results if r.reference)
    if reference:
        line += (f"; {sum(reference.values())} reference cells (the harness's own peers on both sides): "
                 + ", ".join(f"{reference[v]} {v}" for v in VERDICTS if reference[v]))
    return line


def _outcome_key(result: CaseResult) -> int:
    """Unexpected first, then fixed, then the rest (also when the run had no expectations)."""
    return {"unexpected": 0, "fixed": 1}.get(result.outcome or "", 2)


def split_title(clause: str, title: str) -> tuple[str, str]:
    """'RFC 7296 1.2/3.3: an IKE_SA_INIT ...' -> ('RFC 7296 1.2/3.3', 'an IKE_SA_INIT ...'): the references a
    docstring starts with, shown as the case's tag, and the sentence. Otherwise (clause, title)."""
    refs, sep, text = title.partition(": ")
    if clause and sep and refs.startswith(clause) and len(refs) <= 60:
        return refs, text
    return clause, title


def run_facts(reports_dir: Path) -> dict:
    """The run id, its date, and (when the run wrote DIR/run.json) vendor versions, their images and host
    capabilities, and the run it was compared with."""
    facts = {"run": reports_dir.name, "versions": {}, "host": {}, "images": {}, "compared_with": None, "vm": {}}
    path = reports_dir / "run.json"
    try:
        read = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        read = {}
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "(file)", f"not readable JSON: {exc}") from None
    facts.update(_checked_run_facts(str(path), read))
    stamp = re.match(r"(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)", str(facts["run"]))
    if stamp:
        y, mo, d, h, mi, s = stamp.groups()
        facts["date"] = f"{y}-{mo}-{d} {h}:{mi}:{s}"
    else:
        written = (reports_dir / "matrix.json").stat().st_mtime
        facts["date"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(written))
    return facts


# run.json's fields the pages read, and the shape each must have (a dict of strings, ...): a hand-edited or damaged
# file is one line naming the field, never a traceback from the template.
_RUN_FACTS = {"run": str, "versions": dict, "host": dict, "images": dict, "compared_with": (dict, type(None)),
              "vm": dict}


def _checked_run_facts(where: str, read) -> dict:
    if not isinstance(read, dict):
        raise ConfigError(where, "(file)", "must be a JSON object")
    for key, kind in _RUN_FACTS.items():
        if key in read and not isinstance(read[key], kind):
            raise ConfigError(where, key, f"must be {'an object' if kind is dict else 'a string' if kind is str else 'an object or null'}")
    for key in ("versions", "host", "vm"):
        if not all(isinstance(v, str) for v in read.get(key, {}).values()):
            raise ConfigError(where, key, "every value must be a string")
    for vendor, image in read.get("images", {}).items():
        if not (isinstance(image, dict) and isinstance(image.get("id", ""), str)
                and isinstance(image.get("packages", {}), dict)):
            raise ConfigError(where, f"images.{vendor}", "must be an object with an id string and a packages object")
        if not isinstance(image.get("supplied", ""), str):
            raise ConfigError(where, f"images.{vendor}.supplied", "must be a string: the image the user supplied")
    compared = read.get("compared_with")
    if compared is not None and not (isinstance(compared.get("run"), str) and isinstance(compared.get("folder"), str)):
        raise ConfigError(where, "compared_with", "must name the run (a string) and its folder (a string)")
    return read


@dataclass
class Grid:
    case: str
    refs: str
    text: str
    initiators: list[str]
    responders: list[str]
    cells: dict[tuple[str, str], Cell]


def grids(reports_dir: Path, results: list[CaseResult]) -> list[Grid]:
    out, order = [], Order.of(results)
    for case in sorted({r.case for r in results}):
        rows = [r for r in results if r.case == case]
        refs, text = split_title(rows[0].clause, rows[0].title)
        out.append(Grid(case, refs, text, order.sorted(r.a for r in rows), order.sorted(r.b for r in rows),
                        {(r.a, r.b): cell(reports_dir, r) for r in rows}))
    return out


# The measurements (CaseResult.measurements) harness.tax records; named here so the page needs no lab code.
TAX_FIGURES = ("overlay_mbps", "underlay_mbps", "overlay_rtt_ms", "underlay_rtt_ms", "overhead_bytes")
NO_FIGURE = "\u2013"
# A throughput or RTT through a vendor that ran as a microVM is qemu's software emulation, not the vendor's: shown as
# this, never as a figure beside the host's (the overhead, read from the wire, still is one).
EMULATED = "VM (emulated)"


@dataclass(frozen=True)
class TaxRow:
    """One pair's overlay tax, formatted; a figure the case did not reach is a dash."""
    case: str
    a: str
    b: str
    verdict: str
    overlay_mbps: str
    underlay_mbps: str
    share: str  # overlay throughput as a share of the underlay's
    overlay_rtt_ms: str
    underlay_rtt_ms: str
    overhead_bytes: str


@dataclass(frozen=True)
class TaxTable:
    measured: str  # what each throughput figure is the rate of, from what the cases recorded: "1-second TCP runs"
    show_case: bool  # more than one case measured: say which
    rows: list[TaxRow]


def _figure(value: float | None, digits: int) -> str:
    return NO_FIGURE if value is None else f"{value:,.{digits}f}"


def _mbps(value: float | None) -> str:
    return _figure(value, 0 if value is not None and value >= 100 else 1)


def tax_table(results: list[CaseResult]) -> TaxTable | None:
    """The overlay tax of every pair-case that measured some of it (in matrix order); None if none did."""
    order = Order.of(results)
    measured = sorted((r for r in results if any(k in r.measurements for k in TAX_FIGURES)),
                      key=lambda r: (r.case, order.key(r.a), order.key(r.b)))
    if not measured:
        return None
    rows = []
    for r in measured:
        m = r.measurements
        overlay, underlay = m.get("overlay_mbps"), m.get("underlay_mbps")
        share = f"{overlay / underlay:.1%}" if overlay is not None and underlay else NO_FIGURE
        overhead = m.get("overhead_bytes")
        timed = [_mbps(overlay), _mbps(underlay), share, _figure(m.get("overlay_rtt_ms"), 3),
                 _figure(m.get("underlay_rtt_ms"), 3)]
        rows.append(TaxRow(r.case, r.a, r.b, r.verdict, *([EMULATED] * len(timed) if r.vm else timed),
                           NO_FIGURE if overhead is None else str(int(overhead))))
    runs = sorted({f"{r.measurements['tax_seconds']:g}-second" for r in measured if "tax_seconds" in r.measurements})
    return TaxTable(f"{' or '.join(runs) or 'short'} TCP runs", len({r.case for r in measured}) > 1, rows)


@dataclass(frozen=True)
class Tested:
    """What one vendor ran as: the version its daemon gave, its image (short id) and the image's Debian
    packages, (name, version) in name order; `supplied`: the image the user gave (--image), not the folder's
    build."""
    vendor: str
    version: str
    image: str
    packages: list[tuple[str, str]]
    supplied: str = ""


def tested(vendors: list[str], facts: dict) -> list[Tested]:
    out = []
    for vendor in vendors:
        image = facts["images"].get(vendor) or {}
        short = str(image.get("id", "")).removeprefix("sha256:")[:12]  # as `docker images` shows it
        out.append(Tested(vendor, str(facts["versions"].get(vendor, "")), short,
                          sorted((str(k), str(v)) for k, v in (image.get("packages") or {}).items()),
                          str(image.get("supplied") or "")))
    return out


def write(reports_dir: Path, results: list[CaseResult]) -> Path:
    protocols = []
    for name in sorted({r.protocol for r in results}):
        rows = [r for r in results if r.protocol == name]
        protocols.append({"name": name, "summary": summary(name, rows), "grids": grids(reports_dir, rows),
                          "tax": tax_table(rows)})
    order = Order.of(results)
    ordered = sorted(results, key=lambda r: (_outcome_key(r), r.protocol, r.case, order.key(r.a), order.key(r.b)))
    problems = [cell(reports_dir, r) for r in ordered if r.verdict in PROBLEMS]
    judged = any(r.outcome for r in results)
    surprises = [cell(reports_dir, r) for r in ordered if r.outcome in ("unexpected", "fixed")]
    flaky = [cell(reports_dir, r) for r in ordered if r.flaky]
    names = vendors(results)
    facts = run_facts(reports_dir)
    changes = [(cell(reports_dir, r), what) for r, what in history.changes(results)]
    page = ENV.get_template("matrix.html.j2").render(
        facts=facts, protocols=protocols, problems=problems, vendors=names, probes=sorted(order.probes),
        judged=judged,
        surprises=surprises, flaky=flaky, expected=sum(r.outcome == "expected" for r in results),
        conformance={v: f"conformance/{quote(v)}.html" for v in names}, changes=changes,
        tested=[t for t in tested(names, facts) if t.version or t.image])
    path = reports_dir / "matrix.html"
    path.write_text(page)
    return path
