"""One cell's lab, as the protocol fixtures see it: `VendorPair`, the parameter of one test (a protocol, a case,
an ordered pair of vendors), and `PairLab`, that pair's lab with the folder its evidence goes to. The pytest
plugin (harness.plugin) makes both; a protocol's fixtures (`harness/protocols/<p>/fixtures.py`) take a
`PairLab` and build their pair on it.

The harness's own misbehaving peer, one model for every protocol: a case that needs a side misbehaving on
purpose (a malformed request, an unknown AVP, reserved bits set) carries `pytest.mark.probes`. In each of its
cells one role is the *prober*, which misbehaves, and the other is *judged*: the verdict is about the judged
side only (`VendorPair.prober`, `VendorPair.judged`, the same on `PairLab`). Who plays the prober is declared,
never decided by a name:

- a protocol package whose cases build the misbehaviour themselves declares `PROBE_ROLE`: the harness's
  built-in probe (`harness.vendor.HARNESS_PEER`, named "probe", a plain node of the tools image that sends what
  the case builds: `PairLab.probe_node`) plays that role, one cell per vendor in the other role, e.g.
  `probe->strongswan` (IPsec: the initiator; VXLAN: vtep1);
- a protocol package whose misbehaviours need a whole implementation (L2TP: a withheld acknowledgement in the
  middle of a handshake) lists `probes` in its FEATURES instead: a vendor declaring it (the reference peer
  scapy-l2tp) plays the prober wherever it is paired, the first role when both sides declare it; every ordered
  pair is a cell, like any declared feature, and a pair where neither side declares `probes` is skipped, saying
  so.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import devices, protocols
from harness.errors import CaptureError, ConfigError, HarnessError
from harness.images import Images
from harness.lab import Lab, Network, Node
from harness.results import MARKS
from harness.vendor import HARNESS_PEER, Companion, Vendor, in_version_matrix, ordered_pairs
from harness.waiting import wait_for

log = logging.getLogger(__name__)

PROBES = "probes"  # the mark a case carries, and the feature a vendor declares, to misbehave on purpose


@dataclass(frozen=True)
class VendorPair:
    """The parameter of one test: a protocol, a case, the ordered pair of vendors, and, in a case marked
    `probes`, which role misbehaves on purpose (None in an ordinary interop cell, or where neither side can)."""
    protocol: str
    case: str
    a: Vendor
    b: Vendor
    roles: tuple[str, str]
    prober: str | None = None

    @property
    def id(self) -> str:
        return f"{self.a.name}->{self.b.name}"

    def vendor(self, role: str) -> Vendor:
        return self.a if role == self.roles[0] else self.b

    @property
    def judged(self) -> str | None:
        """The role the verdict is about where the other one misbehaves on purpose (the prober); else None."""
        if self.prober is None:
            return None
        return self.roles[1] if self.prober == self.roles[0] else self.roles[0]

    @property
    def probe_side(self) -> str | None:
        """"a" or "b" where the harness's built-in probe plays that side (it is no vendor); else None."""
        return "a" if self.a is HARNESS_PEER else "b" if self.b is HARNESS_PEER else None

    @property
    def reference(self) -> bool:
        """Both sides are the harness's own code: the cell checks the reference peers, not interop."""
        return self.a.reference and self.b.reference


def cells(protocol: str, case: str, registry: dict[str, Vendor], probes: bool = False,
          versions: str = "default") -> list[VendorPair]:
    """The cells of one case: every ordered pair the vendors' roles allow; for a case marked `probes`, the
    pairs with a prober (see the module's docstring); of a vendor's versions, those `--versions` runs
    (harness.vendor.in_version_matrix)."""
    return [p for p in _cells(protocol, case, registry, probes)
            if in_version_matrix(p.a, p.b, registry.values(), versions)]


def _cells(protocol: str, case: str, registry: dict[str, Vendor], probes: bool) -> list[VendorPair]:
    roles = protocols.roles(protocol)
    if not probes:
        return [VendorPair(protocol, case, a, b, roles) for a, b in ordered_pairs(registry, protocol)]
    role = protocols.probe_role(protocol)
    if role is not None:  # the built-in probe against each vendor playing the other role
        other = roles[1] if role == roles[0] else roles[0]
        return [VendorPair(protocol, case, *((HARNESS_PEER, v) if role == roles[0] else (v, HARNESS_PEER)), roles,
                           prober=role)
                for v in registry.values() if v.plays(protocol, other)]
    if PROBES not in protocols.features(protocol):
        raise ConfigError(f"the case {case}", "pytest.mark.probes",
                          f"{protocol} has no prober: its package declares neither PROBE_ROLE (the harness's "
                          f"built-in probe) nor the feature {PROBES!r} (a vendor that misbehaves on request)")
    return [VendorPair(protocol, case, a, b, roles, prober=next(
                (r for r, v in zip(roles, (a, b)) if not v.missing_features(protocol, {PROBES}, r)), None))
            for a, b in ordered_pairs(registry, protocol)]


_VERSIONS: dict[tuple[str, str], str] = {}  # (vendor, image id) -> version: asked once per worker
_PACKAGES: dict[str, dict[str, str]] = {}  # image id -> its Debian packages: listed once per worker


@dataclass
class PairLab:
    """A pair's lab plus the folder its artifacts go to. Protocol fixtures build on it."""
    lab: Lab
    pair: VendorPair
    dir: Path
    images: Images
    nodes: dict[str, Node] = field(default_factory=dict)  # by role
    finalizers: list = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # vendor -> version, read from its running daemon
    # vendor -> {"id": image id, "packages": {name: version}}; packages only the first time this worker saw the
    # image (the controller keeps them per image: sent once, not with every cell's record)
    image_facts: dict[str, dict] = field(default_factory=dict)
    # The vendors of this cell that run as qemu microVMs (harness.vm), with what that VM's kernel can do.
    vm: set[str] = field(default_factory=set)
    vm_kernel: object = None  # harness.vm.VmKernel where `vm` is not empty
    marks: dict[str, float] = field(default_factory=dict)  # phase (results.MARKS) -> when it was reached
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def prober(self) -> str | None:
        """The role that misbehaves on purpose in a case marked `probes` (VendorPair.prober)."""
        return self.pair.prober

    @property
    def judged(self) -> str | None:
        """The role the verdict is about in a case marked `probes` (VendorPair.judged)."""
        return self.pair.judged

    def mark(self, phase: str) -> None:
        """The case reached `phase` (one of results.MARKS) now: the benchmark's per-phase times."""
        if phase not in MARKS:
            raise ValueError(f"unknown phase {phase!r}; known: {', '.join(MARKS)}")
        self.marks[phase] = time.monotonic()

    def measure(self, name: str, value: float) -> None:
        """A figure the case measured, kept in matrix.json (and shown on the matrix page)."""
        self.measurements[name] = round(float(value), 3)

    def node(self, role: str, **kwargs) -> Node:
        vendor = self.pair.vendor(role)
        if vendor is HARNESS_PEER:
            raise ConfigError(f"the case {self.pair.case}", role, "is played by the harness's built-in probe, "
                                                                  "which has no image: use PairLab.probe_node")
        if devices.cell_device(self.pair):  # a device under test on one side: its link, not a lab network
            return devices.node(self, role, lambda v: v.image(self.images), **kwargs)
        image = vendor.image(self.images)
        if vendor.name in self.vm:  # the kernel this host lacks, from a qemu microVM (harness.vm)
            node = self.lab.vm_node(role, image, images=self.images, **kwargs)
        else:
            node = self.lab.node(role, image, **kwargs)
        self.nodes[role] = node
        return node

    @property
    def time_scale(self) -> float:
        """How many times as long the cell's daemons may take as on the host: harness.vm.TIME_SCALE where a vendor
        runs as a microVM (software emulation), else 1. Protocol fixtures stretch the scenario's timers by it."""
        if not self.vm:
            return 1.0
        from harness.vm import TIME_SCALE
        return TIME_SCALE

    def patience(self, seconds: float, most: float | None = None) -> float:
        """How long to wait for what takes `seconds` on the host, in this cell (time_scale), at `most`."""
        stretched = seconds * self.time_scale
        return stretched if most is None else max(seconds, min(stretched, most))

    def kernel(self, role: str, host):
        """What the kernel under the role's node can do: the host's (harness.host.HostCapabilities), or the VM's
        where the role's vendor runs as a microVM. An adapter takes its kernel paths from this."""
        return self.vm_kernel.capabilities if self.pair.vendor(role).name in self.vm else host

    def probe_node(self, network: Network) -> Node:
        """The node of the harness's built-in probe, where it is the prober: a plain node of the tools image
        that only sends what the case builds (harness.peer.UdpPeer). Its account is the fixture's to write."""
        if self.prober is None or self.pair.vendor(self.prober) is not HARNESS_PEER:
            raise ConfigError(f"the case {self.pair.case}", "pytest.mark.probes",
                              f"{self.pair.protocol} cases with the harness's built-in probe carry the mark (and "
                              f"their protocol declares PROBE_ROLE); this cell has no built-in probe")
        if devices.cell_device(self.pair):  # against a device: on its link, where the probe can reach it
            return devices.probe_peer(self, HARNESS_PEER.name, self.images.tools())
        return self.lab.node(HARNESS_PEER.name, self.images.tools(), network, command=["sleep", "infinity"])

    def companion(self, role: str, companion: Companion, network, timeout: float = 30) -> Node:
        """Create, fill and start a companion node of the role's vendor (vendor.Companion); return it once its
        log shows `ready_log`. Its log is collected with the pair's."""
        vendor = self.pair.vendor(role)
        image = self.images.ensure(f"{vendor.image_name}-{companion.name}", companion.folder)
        name = f"{role}-{companion.name}"
        node = self.lab.node(name, image, network)
        node.put_files(companion.files)
        node.start()
        self.nodes[name] = node
        if companion.ready_log:
            wait_for(lambda: node.ensure_running() or companion.ready_log in node.logs(), timeout=timeout,
                     interval=0.1, what=f"{vendor.name}'s {companion.name} to log {companion.ready_log!r}")
        return node

    def log_name(self, role: str) -> str:
        return f"{role}-{self.pair.vendor(role).name}"

    def install(self, role: str, files: dict[str, str]) -> None:
        """Put rendered configs into the role's node and keep a copy under configs/ for the report."""
        self.nodes[role].put_files(files)
        folder = self.dir / "configs" / self.log_name(role)
        for path, content in files.items():
            copy = folder / path.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(content)

    def record_version(self, role: str, read) -> None:
        """Note the version of the role's daemon (`read()` asks the running daemon) and what its image is made
        of (its id and Debian packages), once per image."""
        vendor = self.pair.vendor(role)
        if isinstance(self.nodes[role], devices.DeviceNode):  # no image: the version its inventory states
            self.versions[vendor.name] = self.nodes[role].device.version
            return
        image_id = self.nodes[role].container.image.id
        key = (vendor.name, image_id)
        if key not in _VERSIONS:
            text = read().strip()
            _VERSIONS[key] = text.splitlines()[0] if text else "unknown"
        self.versions[vendor.name] = _VERSIONS[key]
        facts = self.image_facts.setdefault(vendor.name, {"id": image_id})  # both roles may be one vendor
        if vendor.supplied_image:  # the user's own build (--image), not the folder's
            facts["supplied"] = vendor.supplied_image
        if image_id not in _PACKAGES:
            _PACKAGES[image_id] = debian_packages(self.nodes[role])
            facts["packages"] = _PACKAGES[image_id]

    def on_teardown(self, fn) -> None:
        """Run `fn` before logs are collected and the lab closes (e.g. stop a capture)."""
        self.finalizers.append(fn)

    def collect(self) -> None:
        """Run the teardown steps and write every node's log. An unusable capture (CaptureError) is raised once
        the rest is collected: a cell whose evidence cannot back its verdict is broken, even if the case never
        read the wire itself."""
        unusable = None
        for fn in reversed(self.finalizers):
            try:
                fn()
            except CaptureError as exc:
                unusable = unusable or exc
            except Exception as exc:  # keep collecting: the rest of the evidence still matters
                log.warning("%s: teardown step failed: %s", self.pair.id, exc)
        for role, node in self.nodes.items():
            name = self.log_name(role) if role in self.pair.roles else role  # a companion: "<role>-<name>"
            (self.dir / f"{name}.log").write_text(node.logs())
        if unusable:
            raise unusable


def debian_packages(node: Node) -> dict[str, str]:
    """Name -> version of every Debian package installed in the node's image: what was tested, beyond what the
    daemon says of itself. Empty (and a warning) for an image without dpkg."""
    try:
        out = node.exec(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], timeout=30, check=True,
                        what="the image's Debian packages (dpkg-query)").output
    except HarnessError as exc:  # a user's image need not be Debian's; the case itself goes on
        log.warning("%s: no package list: %s", node.name, exc)
        return {}
    return dict(sorted(line.split("\t", 1) for line in out.splitlines() if "\t" in line))
