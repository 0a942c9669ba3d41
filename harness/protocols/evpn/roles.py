"""The interface a vendor adapter implements to be a BGP EVPN VTEP (vendors/<name>/adapter.py).

The harness owns the lab: it creates the VTEP's node from the vendor's image, puts the rendered files in place
before it starts, creates the inner hosts (one container per segment, cabled to the VTEP by a veth pair whose
VTEP end the adapter puts into the segment's bridge: `host_port`), captures the underlay and judges. The adapter
knows its own implementation: the BGP configuration, how to build the VTEP, how to read back what the kernel
forwards with.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from harness.host import HostCapabilities
from harness.lab import Node
from harness.protocols.evpn.scenario import Scenario, Side
from harness.protocols.vxlan.scenario import Segment


class EvpnVtep(ABC):
    # True for a speaker that never connects, only accepts: two of them never form a session (the fixture waits
    # for no session between them).
    listens_only: bool = False

    def __init__(self, node: Node, host: HostCapabilities):
        self.node = node
        self.host = host

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        """Files to put in the node before it starts, keyed by absolute path."""
        return {}

    @staticmethod
    def bridge(segment: Segment) -> str:
        return f"br{segment.vni}"

    @staticmethod
    def host_port(segment: Segment) -> str:
        """The VTEP's end of the veth pair to the segment's inner host (the harness creates it, the adapter puts
        it into the segment's bridge)."""
        return f"h{segment.vni}"

    def bridge_host_ports(self, side: Side, timeout: float) -> None:
        """A bridge per segment holding only the inner host's port: for a speaker with no VTEP of its own, so the
        inner host is cabled all the same (the cases that need a data plane skip such a vendor)."""
        commands = []
        for segment in side.segments:
            commands += [f"ip link add {self.bridge(segment)} type bridge",
                         f"ip link set {self.host_port(segment)} master {self.bridge(segment)}",
                         f"ip link set {self.bridge(segment)} up"]
        self.node.exec(["bash", "-euxc", "\n".join(commands)], timeout=timeout, check=True,
                       what="the inner hosts' bridges")

    @abstractmethod
    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        """In the started node: build the VTEP for every segment (the host ports exist by then) and return once the
        BGP daemon runs (not waiting for peers: the case waits for what it needs)."""

    @abstractmethod
    def established(self) -> set[str]:
        """The peer addresses whose BGP session is Established now (the daemon's word: for waiting only)."""

    @abstractmethod
    def fdb(self, segment: Segment) -> list[dict]:
        """The kernel's forwarding entries for the segment's VXLAN device and bridge, as `bridge -j fdb show`
        gives them (dicts with mac, dst, master, flags, state); [] where the vendor has no kernel data plane."""

    def routes(self, prefix: str) -> list[dict]:
        """The kernel's routes for `prefix` (`ip -j route show PREFIX`); [] where the vendor has no data plane."""
        return []

    def host_left(self, segment: Segment) -> None:
        """The segment's inner host went away (its link is down). A VTEP that learns MACs from its bridge sees that
        itself (nothing to do); one whose host routes are configured withdraws them here."""

    @abstractmethod
    def withdraw_vni(self, segment: Segment) -> None:
        """Stop serving the segment's VNI (its routes are to be withdrawn), the BGP session staying up."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the BGP daemon at once (a peer going down: no NOTIFICATION is required of it)."""

    @abstractmethod
    def version(self) -> str:
        """The implementation's version, read from the running node."""


class RouteSender(ABC):
    """What a vendor declaring the feature `probes` also implements: it sends, as they are, the BGP messages a case
    built with the codec (harness/protocols/evpn/bgp.py) to its peers, in order, once each session is up."""

    @abstractmethod
    def send(self, raw: bytes, name: str, once: bool = False) -> None:
        """Queue `raw` (whole BGP messages) for every peer; `name` says what it is, for the speaker's log. Sent to a
        session established later too, unless `once` (a message that may reset the session)."""
