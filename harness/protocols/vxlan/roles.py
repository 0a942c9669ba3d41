"""The interface a vendor adapter implements to be a VTEP (vendors/<name>/adapter.py).

The harness owns the lab: it creates the node from the vendor's image (whose default command keeps the
container up, and runs the vendor's daemons if it has any), puts the rendered files in place before the
node starts, captures the underlay and judges. The adapter knows only its own implementation: how to build
the VTEP for a scenario and how to read back what it learned.

Inner hosts: for every segment the VTEP has one interface in the node holding the side's inner address and
MAC for that segment (`inner_interface`); the harness pings from it, and changes its MAC for a MAC move.
Vendor images need iproute2 and iputils-ping.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from harness.host import HostCapabilities
from harness.lab import Node
from harness.protocols.vxlan.scenario import VXLAN_PORT, Scenario, Segment, Side


class VtepEndpoint(ABC):
    # The UDP port this implementation uses when none is configured (the Linux kernel: 8472).
    default_port: int = VXLAN_PORT

    def __init__(self, node: Node, host: HostCapabilities):
        self.node = node
        self.host = host

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        """Files to put in the node before it starts, keyed by absolute path (none by default)."""
        return {}

    @abstractmethod
    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        """In the started node: build the VTEP and its inner interfaces for every segment, and return once
        it forwards (raise LabTimeout naming what it waited for otherwise)."""

    @abstractmethod
    def inner_interface(self, segment: Segment) -> str:
        """The node's interface holding this side's inner address and MAC in `segment`."""

    @abstractmethod
    def learned(self, segment: Segment) -> dict[str, str]:
        """The forwarding table for `segment` now: inner MAC (lower case) -> remote VTEP underlay address,
        for the MACs learned behind remote VTEPs (local MACs and flood entries left out)."""

    @abstractmethod
    def version(self) -> str:
        """The implementation's version, read from the running node."""
