"""The `evpn_pair` fixture: BGP EVPN VTEPs from two vendors on one lab underlay network, each with an inner host
per segment, vtep1's underlay captured (BGP and VXLAN both). Suites call `start(scenario)`, wait for what the
control plane should do, send traffic between the inner hosts, and judge from the wire and the kernel's fdb.

Inner hosts are containers of their own (no network namespaces inside a VTEP's node, which would need
SYS_ADMIN): a host container joins its VTEP's PID namespace and no network, and the VTEP creates a veth pair whose
far end it moves into the host's network namespace by the PID it sees there. The host's IPv6 is off (duplicate
address detection between hosts made MACs flap between VTEPs, issue 20)."""
from __future__ import annotations

import re
from functools import cached_property

import pytest

from harness.capture import Capture
from harness.errors import CaptureError, HarnessError, LabTimeout
from harness.host import HostCapabilities
from harness.images import Images
from harness.lab import NODE_CAPABILITIES, Node, start_all, together
from harness.pairlab import PairLab
from harness.ping import Ping, ping
from harness.protocols.evpn import ROLES, bgp
from harness.protocols.evpn.roles import EvpnVtep, RouteSender
from harness.protocols.evpn.scenario import Peer, Scenario, Side
from harness.protocols.evpn.transcript import transcript
from harness.protocols.evpn.wire import Wire
from harness.protocols.vxlan.fixtures import Segments
from harness.protocols.vxlan.scenario import Segment
from harness.protocols.vxlan.wire import Wire as OverlayWire
from harness.waiting import wait_for

SETUP_TIMEOUT_S = 30
NAMES = ("vtep1", "vtep2", "vtep3")
ZERO_MAC = "00:00:00:00:00:00"
NO_IPV6 = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


class EvpnPair(Segments):
    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        super().__init__(pair_lab, host, tools_image)
        self.hosts: dict[tuple[str, int], Node] = {}  # (vtep, vni) -> the inner host's node
        self.endpoints: dict[str, EvpnVtep] = {}
        self.scenario: Scenario | None = None
        self._stopped: set[str] = set()  # the VTEPs whose BGP daemon a case stopped

    def start(self, scenario: Scenario) -> "EvpnPair":
        """Create the VTEPs and their inner hosts, capture vtep1's underlay from its first packet, build every
        VTEP. Returns before BGP is up: cases wait for what they check (`wait_established`, `until`...)."""
        if self.pair_lab.judged and self.pair_lab.pair.vendor(self.pair_lab.judged).reference:
            pytest.skip("both sides are the harness's reference speaker, which only listens: no session to judge")
        self.scenario = scenario
        names = NAMES[:scenario.vtep_count]
        for name in names:
            self.nodes[name] = self.pair_lab.node(name, network=self.network)
            self.endpoints[name] = self.pair_lab.pair.vendor(name).adapter_class()(
                self.nodes[name], self.pair_lab.kernel(name, self.host))
        for index, name in enumerate(names, start=1):
            # a vendor that derives no RTs (RFC 8365 5.1.2.1) is given the ones it would have derived
            explicit = scenario.explicit or not self.has(name, "auto_rt")
            self.sides[name] = Side(
                name=name, index=index, address=self.nodes[name].address, asn=scenario.asn(index),
                peers=tuple(Peer(self.nodes[n].address, scenario.asn(i)) for i, n in enumerate(names, start=1)
                            if n != name),
                segments=scenario.segments,
                route_targets={s.vni: scenario.route_target(s, index) for s in scenario.segments},
                explicit_route_targets=explicit, svi=scenario.svi, arp_suppression=scenario.arp_suppression,
                l3vni=scenario.l3vni, prefix=scenario.prefix(index) if scenario.l3vni else None)
            self.pair_lab.install(name, self.endpoints[name].render(scenario, self.sides[name]))
        self.capture = Capture(self.pair_lab.lab, self.nodes[ROLES[0]], self.tools_image)
        start_all(self.nodes.values())
        self.capture.start()
        self.pair_lab.mark("lab up")
        together(self._cable, [(name, segment) for name in names for segment in scenario.segments])
        together(lambda name: self.endpoints[name].setup(scenario, self.sides[name], SETUP_TIMEOUT_S), self.endpoints)
        for name, endpoint in self.endpoints.items():
            if name in ROLES:
                self.pair_lab.record_version(name, endpoint.version)
        self.pair_lab.mark("daemons ready")
        return self

    # --- inner hosts --------------------------------------------------------------------------------------

    def _cable(self, item: tuple[str, Segment]) -> None:
        """An inner host for `segment` behind VTEP `name`: its own container, linked to the VTEP by a veth pair
        (the VTEP's end named EvpnVtep.host_port), holding the side's inner address and MAC."""
        name, segment = item
        vtep = self.nodes[name]
        host_name = f"{name}-host{segment.vni}"
        lab = self.pair_lab.lab
        host_config = lab.client.api.create_host_config(
            cap_add=NODE_CAPABILITIES, network_mode="none", pid_mode=f"container:{vtep.container.id}",
            sysctls=NO_IPV6)
        container = lab.container(self.pair_lab.pair.vendor(name).image(self.pair_lab.images), host_name,
                                  host_config=host_config, command=["sleep", "infinity"])
        host = Node(container, host_name, self.sides[name].inner_address(segment), self.network)
        host.start()
        self.hosts[(name, segment.vni)] = host
        self.pair_lab.nodes[host_name] = host
        out = host.exec(["stat", "-L", "-c", "%i", "/proc/self/ns/net"], timeout=10, check=True,
                        what="the inner host's network namespace").output
        inodes = re.findall(r"^\d+$", out, re.MULTILINE)  # the exec's output may carry more than stat's line
        if not inodes:
            raise HarnessError(f"{host_name}: no network namespace inode in {out!r}")
        inode = inodes[-1]
        port = EvpnVtep.host_port(segment)
        vtep.exec(["bash", "-ec", f"""
for p in /proc/[0-9]*; do
  if [ "$(stat -L -c %i $p/ns/net 2>/dev/null)" = "{inode}" ]; then pid=${{p#/proc/}}; break; fi
done
[ -n "${{pid:-}}" ] || {{ echo "no process of the inner host's namespace {inode} is visible" >&2; exit 1; }}
ip link add {port} type veth peer name eth0 netns $pid
ip link set {port} up"""], timeout=15, check=True, what=f"cabling {host_name} to {name}")
        side = self.sides[name]
        host.exec(["bash", "-ec", f"ip link set eth0 address {side.inner_mac(segment)}\n"
                                  f"ip address add {side.inner_address(segment)}/{segment.prefix_len} dev eth0\n"
                                  f"ip link set eth0 up"], timeout=10, check=True, what=f"addressing {host_name}")

    def inner_host(self, name: str, segment: Segment | None = None) -> Node:
        return self.hosts[(name, (segment or self.segments[0]).vni)]

    def ping(self, src: str, dst: str, segment: Segment | None = None, **kwargs) -> Ping:
        """ICMP echo from `src`'s inner host to `dst`'s inner address in `segment` (the first by default)."""
        segment = segment or self.segments[0]
        return ping(self.inner_host(src, segment), self.inner_address(dst, segment), **kwargs)

    def host_link(self, name: str, up: bool, segment: Segment | None = None) -> None:
        """Take `name`'s inner host off its VTEP's bridge port (its MAC ages out at once) or back."""
        self.inner_host(name, segment).exec(["ip", "link", "set", "eth0", "up" if up else "down"], timeout=10,
                                            check=True, what=f"{name}'s inner host link {'up' if up else 'down'}")
        if not up:
            self.endpoints[name].host_left(segment or self.segments[0])

    def has(self, name: str, feature: str) -> bool:
        """Whether `name`'s vendor declares `feature` (vtep3 plays the second role, as the second vendor)."""
        role = name if name in ROLES else ROLES[1]
        return not self.pair_lab.pair.vendor(name).missing_features("evpn", {feature}, role)

    def data_planes(self) -> list[str]:
        """The VTEPs whose kernel forwards from what they learn (the `data_plane` feature)."""
        return [name for name in self.nodes if self.has(name, "data_plane")]

    # --- the control plane and the kernel --------------------------------------------------------------------

    def wait_established(self, timeout: float = 30) -> None:
        """Until every VTEP has every peer Established (each daemon's word: only for waiting; verdicts read the
        wire). Sessions that never come up are the pair's failure (AssertionError naming them), a daemon that died
        the lab's (DaemonExited)."""
        for name, endpoint in self.endpoints.items():
            if name in self._stopped:
                continue
            others = {self.nodes[n].address: n for n in self.nodes if n != name}
            wanted = {address for address, other in others.items() if other not in self._stopped
                      and not (endpoint.listens_only and self.endpoints[other].listens_only)}
            def up() -> bool:
                self.nodes[name].ensure_running()
                return wanted <= endpoint.established()
            if not self.until(up, timeout):
                raise AssertionError(f"{name}'s BGP sessions with {', '.join(sorted(wanted - endpoint.established()))}"
                                     f" not Established after {timeout:g}s:\n{self.explain()}")

    def fdb(self, name: str, segment: Segment | None = None) -> list[dict]:
        return self.endpoints[name].fdb(segment or self.segments[0])

    def routes(self, name: str, prefix: str) -> list[dict]:
        """The kernel's routes for `prefix` in `name`'s node, as `ip -j route show` gives them."""
        return self.endpoints[name].routes(prefix)

    def flood_list(self, name: str, segment: Segment | None = None) -> set[str]:
        """The remote VTEPs `name` floods BUM traffic to in `segment`: its all-zeros fdb entries' destinations."""
        return {e["dst"] for e in self.fdb(name, segment) if e.get("mac") == ZERO_MAC and e.get("dst")}

    def remote_macs(self, name: str, segment: Segment | None = None) -> dict[str, str]:
        """Inner MAC -> remote VTEP, from the VXLAN device's entries (`dst`); the all-zeros flood entries left out."""
        return {e["mac"].lower(): e["dst"] for e in self.fdb(name, segment)
                if e.get("dst") and e.get("mac") != ZERO_MAC}

    def bridge_macs(self, name: str, segment: Segment | None = None) -> dict[str, str]:
        """Inner MAC -> the bridge port it is forwarded to (`master` entries): what forwarding follows (issue 20:
        a stale `self` entry may stay on the vxlan device after a move; the bridge's entry is the one that counts)."""
        return {e["mac"].lower(): e.get("ifname", "") for e in self.fdb(name, segment)
                if e.get("master") and e.get("mac") != ZERO_MAC and "permanent" not in e.get("state", "")}

    @staticmethod
    def until(check, timeout: float = 20):
        """Poll `check` until it gives something truthy, and give that; None after `timeout`. What an
        implementation should do and did not is the case's assertion (failed), not a timeout of the lab (broken)."""
        try:
            return wait_for(check, timeout=timeout, interval=0.2, what="")
        except LabTimeout:
            return None

    def send(self, name: str, raw: bytes, what: str, once: bool = False) -> None:
        """`name`'s speaker (a vendor declaring `probes`: roles.RouteSender) sends `raw` as built."""
        endpoint = self.endpoints[name]
        if not isinstance(endpoint, RouteSender):
            raise HarnessError(f"{self.vendor_name(name)} declares probes but its adapter is no RouteSender")
        endpoint.send(raw, what, once=once)

    def update(self, name: str, **kwargs) -> bytes:
        """An UPDATE as `name` originates it (bgp.update): next hop its address, and what its sessions require
        (Side.session_attributes) unless the case gives them."""
        return bgp.update(**{"next_hop": self.address(name), **self.sides[name].session_attributes(), **kwargs})

    def rd(self, name: str, segment: Segment | None = None) -> str:
        """An RD of `name`'s for routes a case builds (type 1: its address and the VNI)."""
        return f"{self.address(name)}:{(segment or self.segments[0]).vni}"

    def withdraw_vni(self, name: str, segment: Segment | None = None) -> None:
        """`name` stops serving the segment's VNI (its BGP sessions stay up)."""
        self.endpoints[name].withdraw_vni(segment or self.segments[0])

    def stop(self, name: str) -> None:
        """Stop `name`'s BGP daemon (a peer going down)."""
        self.endpoints[name].stop()
        self._stopped.add(name)

    # --- the wire -------------------------------------------------------------------------------------------

    def until_wire(self, check, timeout: float = 20):
        """`until` on the capture so far (read while tcpdump goes on: for waiting only; the verdict reads the
        stopped capture, `wire()`)."""
        peek = self.pair_lab.dir / "capture.peek.pcap"
        try:
            return self.until(lambda: check(Wire.from_pcap(self.capture.peek(peek))), timeout)
        finally:
            peek.unlink(missing_ok=True)

    def wire(self) -> Wire:
        """Stop the capture (complete from here on) and read its BGP. All traffic must come before."""
        return self._wire

    def overlay(self) -> OverlayWire:
        """The same capture's VXLAN frames (the vxlan package's reader)."""
        self._wire  # the capture stops once, here or in wire()
        return OverlayWire.from_pcap(self._pcap)

    @cached_property
    def _wire(self) -> Wire:
        path = self.capture.stop(self._pcap)
        wire = Wire.from_pcap(path)
        if wire.problems:  # a BGP stream with a hole cannot back a verdict on what was or was not sent
            raise CaptureError(f"the capture's BGP cannot be read whole: {'; '.join(wire.problems)}")
        return wire

    def _write_transcript(self) -> None:
        if self._pcap.exists():
            wire = Wire.from_pcap(self._pcap)
            try:
                overlay = OverlayWire.from_pcap(self._pcap)
            except HarnessError:
                overlay = None
            (self.pair_lab.dir / "transcript.txt").write_text(transcript(wire, overlay) + "\n")


@pytest.fixture
def evpn_pair(pair_lab: PairLab, host: HostCapabilities, images: Images) -> EvpnPair:
    return EvpnPair(pair_lab, host, images.tools())
