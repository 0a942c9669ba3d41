"""The schedule: pair slots, rounds, the estimated time and partner coverage.

A slot is two participants and one protocol: every case of the event between every implementation of one and
every implementation of the other, in both roles (a -> b and b -> a), where the vendors' declared roles allow.
A participant sits at one slot at a time: its team debugs one pair at a time, and its devices (one link each,
docs/devices.md) can serve only one cell at a time anyway. Slots with four different participants run side by
side in the same round; rounds are filled greedily, the participants with the most slots left first.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from harness import protocols as protocol_registry

COVERAGE_PARTNERS = 4  # IPv6 Ready's IKEv2 programme: interoperability with 4 partners of different origin
RUNS_MEASURED = 10  # the newest runs under reports/ an estimate reads


@dataclass(frozen=True)
class Slot:
    number: int
    protocol: str
    a: str  # participant ids
    b: str
    round: int
    cells: int
    estimate_s: float
    cell_list: tuple[tuple[str, str, str], ...] = ()  # (case, a entry, b entry)


@dataclass(frozen=True)
class Plan:
    slots: list[Slot]
    rounds: list[float]  # each round's estimate: its longest slot
    partners: dict[str, set[str]]  # participant -> partner organisations other than its own
    measured: set[tuple[str, str]]  # the (protocol, case) estimates taken from earlier tries

    @property
    def estimate_s(self) -> float:
        return sum(self.rounds)

    def short_of_partners(self) -> dict[str, int]:
        return {p: len(o) for p, o in sorted(self.partners.items()) if len(o) < COVERAGE_PARTNERS}


def slot_cells(event, registry, protocol: str, x: str, y: str) -> list[tuple[str, str, str]]:
    """(case, a, b) of the slot of participants x and y: a plays the protocol's first role, b its second, the
    two of different participants."""
    first, second = protocol_registry.roles(protocol)
    entries = {p: [registry[e] for e in event.participants[p].entries if e in registry] for p in (x, y)}
    pairs = [(a.name, b.name) for one, other in ((x, y), (y, x)) for a in entries[one] for b in entries[other]
             if a.plays(protocol, first) and b.plays(protocol, second)]
    return [(case, a, b) for case in event.config.cases[protocol] for a, b in pairs]


def make_plan(event, registry, measured: dict[tuple[str, str], float]) -> Plan:
    wanted = []
    for protocol in event.config.protocols:
        for x, y in itertools.combinations(event.participants, 2):
            cells = slot_cells(event, registry, protocol, x, y)
            if cells:
                seconds = sum(measured.get((protocol, case), event.config.default_case_seconds)
                              for case, _, _ in cells)
                wanted.append((protocol, x, y, tuple(cells), round(seconds, 1)))
    left = {p: sum(p in (x, y) for _, x, y, _, _ in wanted) for p in event.participants}
    placed: list[tuple[int, tuple]] = []
    rounds: list[float] = []
    todo = list(wanted)
    while todo:
        busy: set[str] = set()
        longest = 0.0
        # the busiest participants first: they bound the number of rounds
        for item in sorted(todo, key=lambda s: (-max(left[s[1]], left[s[2]]), -(left[s[1]] + left[s[2]]))):
            _, x, y, _, seconds = item
            if x in busy or y in busy:
                continue
            busy |= {x, y}
            placed.append((len(rounds) + 1, item))
            todo.remove(item)
            left[x] -= 1
            left[y] -= 1
            longest = max(longest, seconds)
        rounds.append(longest)
    slots = [Slot(number, protocol, x, y, round_, len(cells), seconds, cells)
             for number, (round_, (protocol, x, y, cells, seconds)) in enumerate(placed, 1)]
    partners = {p: set() for p in event.participants}
    for slot in slots:
        for one, other in ((slot.a, slot.b), (slot.b, slot.a)):
            mine, theirs = (event.participants[q].organisation for q in (one, other))
            if theirs != mine:
                partners[one].add(theirs)
    used = {(s.protocol, case) for s in slots for case, _, _ in s.cell_list}
    return Plan(slots, rounds, partners, used & set(measured))


def measured_in_runs(reports: Path, latest: int = RUNS_MEASURED) -> dict[tuple[str, str], float]:
    """The mean duration of each (protocol, case) over the cells that reached a verdict in the newest `latest`
    runs under `reports` (the project's reports/ folder): before an event's first try, the best estimate there
    is. A run that cannot be read is left out: an estimate is no reason to stop."""
    from harness import history
    from harness.errors import ConfigError
    seconds: dict[tuple[str, str], list[float]] = {}
    for folder in history.run_folders(reports)[-latest:]:
        try:
            results = history.load(folder).results.values()
        except ConfigError:
            continue
        for result in results:
            if result.verdict in ("passed", "failed") and result.duration_s > 0:
                seconds.setdefault((result.protocol, result.case), []).append(result.duration_s)
    return {key: sum(values) / len(values) for key, values in seconds.items()}


def describe(plan: Plan, default_case_seconds: float) -> list[str]:
    lines = [f"{len(plan.slots)} slot{'s' if len(plan.slots) != 1 else ''} in {len(plan.rounds)} "
             f"round{'s' if len(plan.rounds) != 1 else ''}, about {_duration(plan.estimate_s)} "
             f"({'measured case times where earlier tries or runs had the case, else ' if plan.measured else ''}"
             f"{default_case_seconds:g} s per case)"]
    for slot in plan.slots:
        lines.append(f"  slot {slot.number:>3}  round {slot.round:>2}  {slot.protocol:<6} {slot.a} <-> {slot.b}: "
                     f"{slot.cells} cell{'s' if slot.cells != 1 else ''}, ~{_duration(slot.estimate_s)}")
    short = plan.short_of_partners()
    if short:
        lines.append(f"partner coverage: fewer than {COVERAGE_PARTNERS} partners of other organisations:")
        lines += [f"  {p}: {n}" for p, n in short.items()]
    else:
        lines.append(f"partner coverage: every participant has {COVERAGE_PARTNERS} or more partners of other "
                     f"organisations")
    return lines


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{seconds:.0f} s" if seconds < 120 else f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 \
        else f"{minutes} min"
