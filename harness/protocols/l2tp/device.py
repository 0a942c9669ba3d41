"""An L2TP LNS (or LAC) that is a device under test (harness.devices): the settings it needs to mirror the harness's
side, in RFC 2661's terms (never a vendor's config syntax), and the endpoint the `l2tp_pair` fixture drives it
through.

The device's end of the PPP session is not readable: it counts as up while the harness's end (its counterpart)
holds its inner address, which that end only gets through IPCP with the device (the LNS assigns it), and the wire
shows the rest. A device plays the LNS; as a LAC it would have to be told to place the call, which no control mode does.
"""
from __future__ import annotations

import pytest

from harness.protocols.l2tp.roles import L2tpEndpoint
from harness.protocols.l2tp.scenario import L2TP_PORT, LAC_INNER, LNS_INNER, Scenario, Side

# What the core must never print nor put in a skip reason: the settings file in the pair folder holds them.
SECRET_SETTINGS = ("secret", "password")
MRU = 1400  # what the harness's PPP ends take: IP + UDP + L2TP + PPP headers fit one 1500-byte underlay packet


def device_settings(scenario: Scenario, side: Side) -> dict:
    """What the device must be configured with to be `side` of `scenario`."""
    if side.misbehave:
        pytest.skip("a device under test plays no robustness probe")
    lns = side.role == "lns"
    settings = {
        "version": 2,  # L2TPv2 over UDP (RFC 2661)
        "role": side.role,
        "local_address": side.address,
        "remote_address": side.peer_address,
        "udp_port": L2TP_PORT,
        "host_name": side.hostname,  # its Host Name AVP
        "peer_host_name": f"{'lac' if lns else 'lns'}.lab",
        # RFC 2661 5.1.1: Challenge / Challenge Response with the tunnel secret; None: no tunnel authentication
        "tunnel_authentication": side.secret is not None,
        "secret": side.secret,
        "hide_avps": scenario.hide_avps,  # RFC 2661 4.3, with the tunnel secret
        "hello_interval_s": scenario.hello_interval_s,
        "ppp": {
            # how the LNS authenticates the PPP user (the LAC's end answers with these credentials)
            "auth": scenario.ppp_auth,
            "username": scenario.username,
            "password": scenario.password,
            "mru": MRU,
            "local_address": side.local_inner,  # the device's end of the session
            # the pool the LNS assigns from (IPCP): one address, the harness's end
            "pool": [side.remote_inner] if lns else [],
        },
    }
    if scenario.retransmit_s is not None:
        settings["retransmit_s"] = scenario.retransmit_s
    if scenario.max_retransmissions is not None:
        settings["max_retransmissions"] = scenario.max_retransmissions
    return settings


class Endpoint(L2tpEndpoint):
    """The device as an L2TP endpoint: configured through its node's control mode when the fixture renders."""

    def __init__(self, node, host):
        super().__init__(node, host)
        self.side: Side | None = None
        self.counterpart: L2tpEndpoint | None = None  # the harness's side of the pair (L2tpPair sets it)

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        self.side = side
        self.node.configure(device_settings(scenario, side))
        return {}  # a device takes settings, not files

    def wait_ready(self, timeout: float) -> None:
        pass  # configured (render): the device listens

    def connect(self, timeout: float) -> None:
        pytest.skip(f"{self.node.device.name} is a device under test: the harness cannot make it place a call")

    def disconnect(self, timeout: float) -> None:
        pytest.skip(f"{self.node.device.name} is a device under test: the harness cannot make it clear a call")

    def inner_interface(self) -> str | None:
        """Not readable on the device: its end counts as up while the harness's end is (the module's docstring)."""
        if self.side is None or self.counterpart is None or self.counterpart.inner_interface() is None:
            return None
        return f"{self.node.device.name}'s end, as its counterpart's shows"

    def version(self) -> str:
        return self.node.device.version


def reference_settings(role: str, address: str, peer_address: str, prefix_len: int) -> dict:
    """What a device configured once (control = "static") is given: `role` in the default scenario (tunnel
    authentication with the harness's secret, PAP) with the harness's peer at `peer_address`."""
    scenario = Scenario()
    other = "lac" if role == "lns" else "lns"
    inner = {"lns": LNS_INNER, "lac": LAC_INNER}
    side = Side(role=role, address=address, peer_address=peer_address, hostname=f"{role}.lab",
                secret=scenario.secret_of(role), local_inner=inner[role], remote_inner=inner[other])
    return device_settings(scenario, side)
