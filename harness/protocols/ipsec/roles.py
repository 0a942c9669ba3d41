"""The interface a vendor adapter implements to play an IPsec role (vendors/<name>/adapter.py).

The harness owns the lab: it creates the node from the vendor's image (whose default command runs the
daemon in the foreground), puts the rendered files in place before the daemon starts, adds the inner
addresses, captures the wire and judges. The adapter knows only its own daemon: its config syntax, how
to tell it is ready, how to load, initiate and list SAs. Vendor images need iproute2 and ping.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from harness.host import HostCapabilities
from harness.lab import Node
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.scenario import Scenario, Side


@dataclass(frozen=True)
class Outcome:
    """What the initiating daemon reported about its attempt."""
    established: bool
    auth_failed: bool
    detail: str  # the daemon's own words, for the failure message


@dataclass(frozen=True)
class ChildSa:
    name: str
    spi_in: int
    spi_out: int
    udp_encapsulated: bool


class IPsecEndpoint(ABC):
    def __init__(self, node: Node, host: HostCapabilities):
        self.node = node
        self.host = host

    @abstractmethod
    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        """Config files for this scenario, keyed by absolute path in the node."""

    @abstractmethod
    def wait_ready(self, timeout: float) -> None:
        """Return once the daemon answers its control interface; raise LabTimeout naming it otherwise."""

    @abstractmethod
    def load(self) -> None:
        """Load the rendered connection into the running daemon (the responder is loaded first)."""

    @abstractmethod
    def initiate(self, timeout: float) -> Outcome:
        """Start the connection and report how it ended (initiator only)."""

    @abstractmethod
    def child_sas(self) -> list[ChildSa]:
        """The CHILD SAs the daemon has installed now."""

    @abstractmethod
    def terminate(self, timeout: float) -> None:
        """Close the IKE SA (and its CHILD SAs) from this side, so a DELETE goes on the wire."""

    def fit(self, scenario: Scenario) -> Scenario:
        """The scenario as this endpoint can run it: as asked (a device under test may differ, device.py)."""
        return scenario

    def add_inner_address(self, address: str) -> None:
        """Hold the side's inner address (the source and target of the data-plane pings), before load()."""
        self.node.exec(["ip", "address", "add", f"{address}/32", "dev", "lo"], timeout=5, check=True,
                       what="adding the inner address")

    def close_child(self, timeout: float) -> None:
        """Delete the CHILD SA from this side, keeping the IKE SA (an INFORMATIONAL with Delete for ESP goes on the
        wire). Only for adapters whose vendor declares the feature child_delete."""
        raise NotImplementedError(f"{type(self).__name__} does not implement close_child (feature child_delete)")

    def rekey_child(self) -> None:
        """Start a rekey of the CHILD SA from this side now (a CREATE_CHILD_SA with N(REKEY_SA)), returning without
        waiting for it to finish. Only for adapters whose vendor declares rekey."""
        raise NotImplementedError(f"{type(self).__name__} does not implement rekey_child (feature rekey)")

    def initiate_additional(self, timeout: float) -> Outcome:
        """Set up the scenario's additional CHILD SA (additional_subnets) on the IKE SA there is (initiator only).
        Only for adapters whose vendor declares additional_child."""
        raise NotImplementedError(f"{type(self).__name__} does not implement initiate_additional "
                                  "(feature additional_child)")

    def forget(self, timeout: float) -> None:
        """Destroy the IKE SA and its CHILD SAs at once, without waiting for the peer (as after a crash; what the
        daemon still sends the harness may drop). Only for adapters whose vendor declares initial_contact."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forget (feature initial_contact)")

    @abstractmethod
    def version(self) -> str:
        """The daemon's version, read from the running daemon."""

    def ike_keys(self) -> list["IkeSaKeys"]:
        """The IKE SA keys this daemon negotiated, for decrypting the capture; [] if it cannot export them."""
        return []

    def esp_keys(self) -> list["EspSaKeys"]:
        """The ESP SA keys this daemon installed, for decrypting the capture; [] if it cannot export them."""
        return []
