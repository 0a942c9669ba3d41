"""A VTEP that is a device under test (harness.devices): the settings it needs to mirror the harness's VTEP, in
the protocol's own terms, and the endpoint the fixture drives it through.

The device's inner host is the device itself (or whatever it bridges the segment to): it holds the side's inner
address and MAC in each segment, as every vendor's VTEP does, so the harness's pings and the wire read the same.
"""
from __future__ import annotations

import pytest

from harness.protocols.vxlan.roles import VtepEndpoint
from harness.protocols.vxlan.scenario import VXLAN_PORT, Scenario, Segment, Side


def device_settings(scenario: Scenario, side: Side) -> dict:
    """What the device must be configured with to be `side` of `scenario`."""
    return {
        "encapsulation": side.encapsulation,
        "local_address": side.address,
        "prefix_len": side.prefix_len,
        # the flood list (head-end replication): every other VTEP's underlay address; MACs are learned
        "remote_addresses": list(side.peers),
        # None: the device's own default destination port (the case asks what that is)
        "udp_port": None if scenario.vendor_default_port else side.port,
        "udp_checksum": "zero",  # RFC 7348 5: SHOULD be zero over IPv4
        "segments": [{"vni": s.vni, "inner_address": f"{side.inner_address(s)}/{s.prefix_len}",
                      "inner_mac": side.inner_mac(s)} for s in side.segments],
        "geneve_options": [] if not side.geneve_options else ["class 0xfff0 type 0x01 data 4f490001"],
    }


class Endpoint(VtepEndpoint):
    """The device as a VTEP: configured through its node's control mode; its inner host is addressed by its inner
    address (a ping from the device's side names the source address, not an interface)."""
    default_port = VXLAN_PORT  # what the harness assumes of a device that names no other; the wire says

    def __init__(self, node, host):
        super().__init__(node, host)
        self.side: Side | None = None

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        self.side = side
        self.node.configure(device_settings(scenario, side))

    def inner_interface(self, segment: Segment) -> str:
        return self.side.inner_address(segment)

    def learned(self, segment: Segment) -> dict[str, str]:
        pytest.skip(f"{self.node.device.name} is a device under test: its forwarding table is not readable")

    def version(self) -> str:
        return self.node.device.version


def reference_settings(role: str, address: str, peer_address: str, prefix_len: int) -> dict:
    """What a device configured once (control = "static") is given: `role` in the default scenario (one segment,
    VNI 100, port 4789) with the harness's peer at `peer_address`. A case asking for anything else skips."""
    from harness.protocols.vxlan import ROLES
    scenario = Scenario()
    side = Side(name=role, index=ROLES.index(role) + 1, address=address, prefix_len=prefix_len,
                peers=(peer_address,), port=scenario.port_for(VXLAN_PORT), segments=scenario.segments)
    return device_settings(scenario, side)
