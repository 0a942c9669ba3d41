"""The interface a vendor adapter implements to play an L2TP role (vendors/<name>/adapter.py).

The harness owns the lab: it creates the node from the vendor's image, puts the rendered files in place before
the node starts (including, on hosts without /dev/ppp, the harness's user-space PPP endpoint where the daemon
expects pppd), captures the wire and judges. The adapter knows only its own daemon.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from harness.host import HostCapabilities
from harness.lab import Node
from harness.protocols.l2tp.scenario import Scenario, Side
from harness.vendor import Companion


class L2tpEndpoint(ABC):
    def __init__(self, node: Node, host: HostCapabilities):
        self.node = node
        self.host = host

    def companions(self, scenario: Scenario, side: Side) -> list[Companion]:
        """Nodes this vendor needs beside its own (e.g. a RADIUS server), started before it; none by default."""
        return []

    def use_companions(self, nodes: dict[str, Node]) -> None:
        """The started companions, by name, before `render` (so it can use their addresses)."""

    @abstractmethod
    def render(self, scenario: Scenario, side: Side) -> dict[str, str | bytes]:
        """Config files (and helper programs) keyed by absolute path in the node."""

    @abstractmethod
    def wait_ready(self, timeout: float) -> None:
        """Return once the daemon listens (raise LabTimeout naming what it waited for otherwise)."""

    def connect(self, timeout: float) -> None:
        """LAC only: place the call (tunnel, then session) and return once the daemon has tried."""
        raise NotImplementedError(f"{type(self).__name__} is not a LAC")

    def disconnect(self, timeout: float) -> None:
        """LAC only: clear the session and the tunnel (CDN, then StopCCN)."""
        raise NotImplementedError(f"{type(self).__name__} is not a LAC")

    def probe(self, timeout: float) -> None:
        """Vendors declaring "probes" only: carry out the side's robustness probe now (`Side.misbehave`, see
        scenario.PROBES) and return once it is done; probes that act during set-up need no call."""
        raise NotImplementedError(f"{type(self).__name__} plays no robustness probes")

    @abstractmethod
    def inner_interface(self) -> str | None:
        """The interface carrying this side's end of the PPP session once it is up (None while it is not)."""

    def _holding(self, interface: str, address: str | None) -> str | None:
        """`interface` if it holds IPv4 `address` (a PPP endpoint's device once IPCP is up), else None."""
        if address is None:
            return None
        shown = self.node.exec(["ip", "-4", "-o", "addr", "show", "dev", interface], timeout=5)
        return interface if shown.ok and f"inet {address} " in shown.output else None

    @abstractmethod
    def version(self) -> str:
        """The daemon's version, read from the running daemon."""
