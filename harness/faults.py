"""Faults on a node's underlay: an nftables ruleset in the node's own network namespace. It knows no protocol;
a case says what to match in nftables' words ("udp dport 500") and how many packets to lose.

Each change runs `nft` in a one-shot sidecar of the tools image that joins the node's namespace, so the rules
act on that node alone (never on the host) and survive nothing but the namespace itself: a restarted node
comes back without them. Drops happen where the node receives ("in") or sends ("out"); the harness captures
on one node, so drop on the *other* one for the capture to show the packet that was lost.

A hold makes packets cross that would follow each other (two peers' requests on their own timers or commands): the
node's rules queue candidates to a holder in user space (tools image, hold.py, NFQUEUE) that keeps the first N
matching ones, wherever they go, until all N are there and then releases them together; in stages, so the answers
can be made to cross too. What it holds is said in bytes of the transport header (ByteMatch), so the protocol that
knows the offsets says it, not the core. The queue
rules are iptables' (the xtables NFQUEUE target through nft_compat): this kernel's nftables has no `queue`
expression ("Could not process rule: No such file or directory"), and so a hold works on a routed node only,
never on a VM node's bridge.
"""
from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
from dataclasses import dataclass
from itertools import count

import requests

from harness.errors import HarnessError, LabTimeout
from harness.lab import Lab, Node, tail
from harness.waiting import wait_for

TABLE = "overlay_interop_faults"
# Hooks where a packet arrives in the namespace and where it leaves it: before routing, after everything.
HOOKS = {"in": "prerouting", "out": "postrouting"}
PRIORITY = -300  # before conntrack ("raw"): a dropped packet leaves no trace in the node
ONCE = 1 << 30  # the numgen modulus for "the first k, once": far more packets than a case ever sends
RULESET_IN_SIDECAR = "/faults.nft"
NFT_TIMEOUT_S = 15
HOLD_QUEUE = 7  # one holder per node at a time: any queue number the node's own software does not use
HOLDER_READY_S = 15
HOLD_SCRIPT_IN_SIDECAR = "/hold-rules.sh"
# iptables' chains where a packet arrives in the namespace and where it leaves it (mangle: after the drops' raw
# priority, so a dropped packet is never held)
HOLD_CHAINS = {"in": "PREROUTING", "out": "POSTROUTING"}
IPTABLES_WORD = re.compile(r"[A-Za-z0-9!:,./_-]+")


@dataclass(frozen=True)
class Drop:
    """Drop packets that match `matching` (an nftables expression) in `direction`: the first `first` of every
    `every` (every=None: the first `first` only, once; first=None: all of them)."""
    matching: str
    first: int | None = None
    every: int | None = None
    direction: str = "in"

    def __post_init__(self) -> None:
        if self.direction not in HOOKS:
            raise ValueError(f"direction must be one of {', '.join(HOOKS)}, not {self.direction!r}")
        if self.first is not None and self.first < 1:
            raise ValueError(f"first must be at least 1, not {self.first}")
        if self.every is not None and (self.first is None or self.every <= self.first):
            raise ValueError(f"every={self.every} needs first= smaller than it")
        if not self.matching.strip() or any(c in self.matching for c in ";{}\n\"#"):
            raise ValueError(f"matching must be one nftables match expression, not {self.matching!r}")

    def rule(self, label: str) -> str:
        """The nftables rule; numgen's counter advances only for packets that passed `matching` before it."""
        take = "" if self.first is None else f"numgen inc mod {self.every or ONCE} < {self.first} "
        return f'{self.matching} {take}counter drop comment "{label}"'

    def describe(self) -> str:
        what = ("every packet" if self.first is None else
                f"the first {self.first} of every {self.every}" if self.every else f"the first {self.first}")
        return f"drop {what} matching {self.matching!r} ({self.direction})"


@dataclass(frozen=True)
class ByteMatch:
    """Bytes at an offset of the transport header (after the IP header: nftables' @th, in bytes), under a mask."""
    offset: int
    value: bytes
    mask: bytes | None = None  # None: every bit of value counts

    def __post_init__(self) -> None:
        if self.offset < 0 or not self.value or (self.mask is not None and len(self.mask) != len(self.value)):
            raise ValueError(f"a byte match needs an offset >= 0, a value, and a mask as long as it: {self}")

    def spec(self) -> str:
        return f"{self.offset}:{self.value.hex()}" + (f"/{self.mask.hex()}" if self.mask is not None else "")


@dataclass(frozen=True)
class Stage:
    """Hold the first `count` candidates that satisfy one of `alternatives` (each a tuple of ByteMatch, all of which
    must hold), then release them together."""
    alternatives: tuple[tuple[ByteMatch, ...], ...]
    count: int = 2

    def __post_init__(self) -> None:
        if self.count < 1 or not self.alternatives or not all(self.alternatives):
            raise ValueError(f"a hold stage needs count >= 1 and at least one non-empty alternative: {self}")

    def spec(self) -> str:
        """The holder's MATCH argument (hold.py)."""
        return "|".join(",".join(m.spec() for m in alternative) for alternative in self.alternatives)


@dataclass(frozen=True)
class Hold:
    """Queue packets matching `matching` (iptables match options: the candidates) in every one of `directions`
    to the holder, which does its `stages` in order (the next begins once one has released); `timeout_s` after
    a stage began it releases what it holds all the same. IPv4 (iptables)."""
    matching: tuple[str, ...]
    stages: tuple[Stage, ...]
    directions: tuple[str, ...] = ("in", "out")
    timeout_s: float = 20

    def __post_init__(self) -> None:
        if not self.matching or not all(IPTABLES_WORD.fullmatch(word) for word in self.matching):
            raise ValueError(f"matching must be iptables match options (plain words), not {self.matching!r}")
        if not self.stages:
            raise ValueError("a hold needs at least one stage")
        if not self.directions or set(self.directions) - set(HOOKS):
            raise ValueError(f"directions must be among {', '.join(HOOKS)}, not {self.directions!r}")

    def argv(self, queue: int) -> list[str]:
        """The holder's command line (hold.py)."""
        return ["hold", str(queue), f"{self.timeout_s:g}",
                *(word for stage in self.stages for word in (str(stage.count), stage.spec()))]

    def done(self, account: str) -> bool:
        """Whether the holder's account says its last stage has released."""
        last = f"stage {len(self.stages)}: "
        return any(line.startswith(last) and "released" in line for line in account.splitlines())

    def describe(self) -> str:
        return ", then ".join(f"hold {s.count} matching {s.spec()}" for s in self.stages) + \
            f" ({'+'.join(self.directions)})"

    def rules(self, action: str) -> str:
        """A shell script that adds (action "-A") or deletes ("-D") the queue rules. bypass: while no holder
        listens (not yet, or gone) packets pass instead of being dropped."""
        return "set -e\n" + "".join(
            shlex.join(["iptables", "-t", "mangle", action, HOLD_CHAINS[direction], *self.matching,
                        "-j", "NFQUEUE", "--queue-num", str(HOLD_QUEUE), "--queue-bypass"]) + "\n"
            for direction in self.directions)


def ruleset(drops: list[Drop], bridged: tuple[str, str] | None = None) -> str:
    """One table, replaced whole on every change (declared, flushed, filled) so a re-install never stacks rules.

    `bridged`: the node's namespace only bridges its frames (a VM node's container: harness.vm), as (the port
    towards the lab, the port towards the node); the drops then act on the bridge, "in" on frames arriving from
    the lab port, "out" on frames arriving from the node's port, before they are forwarded."""
    family = "bridge" if bridged else "inet"
    lines = [f"table {family} {TABLE}", f"delete table {family} {TABLE}", f"table {family} {TABLE} {{"]
    if bridged:
        ports = dict(zip(HOOKS, bridged))
        rules = [f'iifname "{ports[drop.direction]}" {drop.rule(f"drop-{n}")}' for n, drop in enumerate(drops)]
        if rules:
            lines += ["    chain prerouting {", f"        type filter hook prerouting priority {PRIORITY}; policy accept;",
                      *(f"        {rule}" for rule in rules), "    }"]
    for direction, hook in ({} if bridged else HOOKS).items():
        rules = [drop.rule(f"drop-{n}") for n, drop in enumerate(drops) if drop.direction == direction]
        if rules:
            lines += [f"    chain {hook} {{", f"        type filter hook {hook} priority {PRIORITY}; policy accept;",
                      *(f"        {rule}" for rule in rules), "    }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def dropped_counts(listing: str) -> dict[str, int]:
    """Packets dropped per rule label, from `nft --json list table`."""
    counts = {}
    for item in json.loads(listing).get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        packets = [e["counter"]["packets"] for e in rule.get("expr", []) if isinstance(e, dict) and "counter" in e]
        counts[rule["comment"]] = sum(packets)
    return counts


class Impairment:
    """Faults on one node's underlay. `drop(...)` adds a rule and installs the ruleset at once if the node
    runs; else `install()` must be called once it does (a namespace exists only while its node runs)."""

    _sequence = count()  # one-shot sidecar names, unique within the process

    def __init__(self, lab: Lab, node: Node, tools_image: str):
        self.lab, self.node, self.tools_image = lab, node, tools_image
        self.drops: list[Drop] = []
        self.holding: Hold | None = None
        self._holder = None  # the holder's sidecar, while a hold is in place
        # A VM node's container only bridges the VM's frames (harness.vm.VmNode.bridge_ports): drop on the bridge.
        self._bridged = getattr(node, "bridge_ports", None)

    def drop(self, matching: str, *, first: int | None = None, every: int | None = None,
             direction: str = "in") -> "Impairment":
        self.drops.append(Drop(matching, first, every, direction))
        if self.node.status()[0] == "running":
            self.install()
        return self

    def hold(self, hold: Hold) -> "Impairment":
        """Start the holder in the node's namespace and queue `hold`'s candidates to it (the node must run).
        One hold at a time; `held()` tells what it did."""
        if self.holding is not None:
            raise HarnessError(f"{self.node.name}: a hold is already in place ({self.holding.describe()})")
        if self._bridged:
            raise HarnessError(f"{self.node.name} only bridges a VM's frames: the NFQUEUE target there is "
                               "iptables', which sees routed packets only")
        self.holding = hold
        name = f"holder-{self.node.name}-{next(Impairment._sequence)}"
        self._holder = self.lab.sidecar(name, self.tools_image, of=self.node, cap_add=["NET_ADMIN"],
                                        command=hold.argv(HOLD_QUEUE))
        self._holder.start()
        wait_for(self._holder_bound, timeout=HOLDER_READY_S, interval=0.1,
                 what=f"the packet holder to bind its queue on {self.node.name}")
        self._nft(["sh", HOLD_SCRIPT_IN_SIDECAR], file=(HOLD_SCRIPT_IN_SIDECAR, hold.rules("-A")),
                  what="adding the queue rules")
        return self

    def _holder_bound(self) -> bool:
        output = self.held()
        if "error:" in output or "usage:" in output:
            raise HarnessError(f"{self.node.name}: the packet holder failed: {tail(output, 3)}")
        self._holder.reload()
        if self._holder.status == "exited":
            raise HarnessError(f"{self.node.name}: the packet holder exited: {tail(output, 3)}")
        return "bound" in output.splitlines()

    def held(self) -> str:
        """The holder's account: per stage "stage s: held i/N ..." per packet it held, then "stage s: released N" (all
        of them together) or "stage s: timeout: released k of N"; "" without a hold."""
        if self._holder is None:
            return ""
        return self._holder.logs(stdout=True, stderr=True).decode(errors="replace")

    def install(self) -> None:
        """Put the ruleset for every drop so far into the node's namespace (replacing any earlier one)."""
        self._nft(["nft", "-f", RULESET_IN_SIDECAR], file=(RULESET_IN_SIDECAR, ruleset(self.drops, self._bridged)),
                  what="installing the ruleset")

    def clear(self) -> None:
        """Remove every rule (the table stays, empty), then the holder: the underlay is clean again."""
        self.drops.clear()
        self.install()
        if self.holding is not None:
            holding, self.holding = self.holding, None
            self._nft(["sh", HOLD_SCRIPT_IN_SIDECAR], file=(HOLD_SCRIPT_IN_SIDECAR, holding.rules("-D")),
                      what="deleting the queue rules")
        if self._holder is not None:
            holder, self._holder = self._holder, None
            holder.remove(force=True)

    def dropped(self) -> list[int]:
        """Packets dropped so far by each drop, in the order they were asked for."""
        listing = self._nft(["nft", "--json", "list", "table", "bridge" if self._bridged else "inet", TABLE],
                            what="reading the counters")
        counts = dropped_counts(listing)
        return [counts.get(f"drop-{n}", 0) for n in range(len(self.drops))]

    def describe(self) -> str:
        held = self.holding.describe() if self.holding else ""
        return "; ".join(filter(None, [*(d.describe() for d in self.drops), held])) or "no faults"

    def _nft(self, argv: list[str], *, what: str, file: tuple[str, str] | None = None) -> str:
        """Run `argv` (nft, or a script of iptables) in a one-shot sidecar in the node's namespace, with `file`
        (path, text) put there first."""
        name = f"faults-{self.node.name}-{next(Impairment._sequence)}"
        container = self.lab.sidecar(name, self.tools_image, of=self.node, command=argv, cap_add=["NET_ADMIN"])
        try:
            if file is not None:
                _put(container, *file)
            container.start()
            try:
                code = container.wait(timeout=NFT_TIMEOUT_S)["StatusCode"]
            except requests.exceptions.RequestException:
                raise LabTimeout(f"{self.node.name}: timed out after {NFT_TIMEOUT_S}s waiting for nft "
                                 f"({what})") from None
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        if code != 0:
            shown = f"\n{file[0]}:\n{file[1]}" if file else ""
            raise HarnessError(f"{self.node.name}: {argv[0]} exited with {code} {what}: {tail(output, 5)}{shown}")
        return output


def _put(container, path: str, text: str) -> None:
    data = text.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buf.getvalue())
