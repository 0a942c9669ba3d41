"""An IPsec endpoint that is a device under test (harness.devices): the settings it needs to mirror the harness's
side, in the protocol's own terms (RFC 7296 transform names, never a vendor's keywords), and the endpoint the
`ipsec_pair` fixture drives it through.

The device exports no keys: the capture decrypts with the keys of the harness's side (its vendor's key export),
which holds every IKE and ESP key of the pair. The device's own SA table is not readable either: its CHILD SAs
are its counterpart's, mirrored (what the counterpart installed is what it negotiated with the device), and the
cases prove them from the wire (ESP from the device's address, decrypted with the counterpart's keys).
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from harness.protocols.ipsec.roles import ChildSa, IPsecEndpoint, Outcome
from harness.protocols.ipsec.scenario import EspProposal, IkeProposal, Scenario, Side, is_aead

# What the core must never print nor put in a skip reason: the settings file in the pair folder holds them.
SECRET_SETTINGS = ("psk",)


def _ike(p: IkeProposal) -> dict:
    return {"encryption": p.encryption, "integrity": None if is_aead(p.encryption) else p.integrity,
            "prf": p.prf, "key_exchange": p.group}


def _esp(p: EspProposal) -> dict:
    return {"encryption": p.encryption, "integrity": None if is_aead(p.encryption) else p.integrity}


def device_settings(scenario: Scenario, side: Side) -> dict:
    """What the device must be configured with to be `side` of `scenario`."""
    if scenario.auth != "psk":
        pytest.skip(f"the case authenticates with {scenario.auth} certificates; device settings carry PSK "
                    f"authentication only so far (auth)")
    settings = {
        "ike_version": 2,
        "role": side.role,
        "initiates": side.role == "initiator",  # the responder waits; the initiator starts when told
        "local_address": side.address,
        "remote_address": side.peer_address,
        "local_identity": side.identity,  # FQDN identities (ID_FQDN)
        "remote_identity": side.peer_identity,
        "auth": "psk",
        "psk": side.psk,
        "ike_proposals": [_ike(p) for p in scenario.ike_of(side.role)],  # in order of preference
        "child_sa": not scenario.childless,
        "esp_proposals": [_esp(p) for p in scenario.esp_of(side.role)],
        "mode": "tunnel",
        "local_subnet": side.subnet,  # the traffic selectors
        "remote_subnet": side.peer_subnet,
        # the device answers the harness's pings on this address, inside local_subnet
        "inner_address": side.inner_address,
    }
    timers = {"ike_rekey_s": scenario.ike_rekey_s, "child_rekey_s": scenario.child_rekey_s,
              "dpd_delay_s": scenario.dpd_delay_s, "retransmit_timeout_s": scenario.retransmit_timeout_s,
              "retransmit_tries": scenario.retransmit_tries}
    settings.update({name: value for name, value in timers.items() if value is not None})  # only what the case sets
    if scenario.dpd_delay_s is not None:
        settings["dpd_action"] = scenario.dpd_action
    if scenario.responder_busy and side.role == "responder":
        settings["under_load"] = True  # RFC 7296 2.6: ask for a COOKIE as soon as an IKE SA is half-open
    return settings


class Endpoint(IPsecEndpoint):
    """The device as an IPsec endpoint: configured through its node's control mode when the fixture loads it."""

    def __init__(self, node, host):
        super().__init__(node, host)
        self.side: Side | None = None
        self.scenario: Scenario | None = None
        self.counterpart: IPsecEndpoint | None = None  # the harness's side of the pair (IPsecPair sets it)

    def fit(self, scenario: Scenario) -> Scenario:
        """The scenario as this device can run it. A device configured once (static) holds one PSK, the reference
        one: where the case makes the PSKs disagree, the harness's side takes the other PSK instead. The case is
        that they disagree, never which side holds which, so the wire and the verdict are the same."""
        if self.node.device.control != "static" or scenario.responder_psk in (None, scenario.psk):
            return scenario
        if self.node.name == "responder":
            self.node.note("configured once: the harness's side takes the other PSK, so the PSKs disagree as asked")
            return replace(scenario, psk=scenario.responder_psk, responder_psk=scenario.psk)
        return scenario  # the initiator holds `psk`, the reference one, already

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        self.scenario, self.side = scenario, side
        return {}  # a device takes settings, not files (load() hands them over)

    def wait_ready(self, timeout: float) -> None:
        pass  # the device is up already

    def add_inner_address(self, address: str) -> None:
        pass  # the settings name it (inner_address); the device holds it itself

    def load(self) -> None:
        self.node.configure(device_settings(self.scenario, self.side))

    def initiate(self, timeout: float) -> Outcome:
        pytest.skip(f"{self.node.device.name} is a device under test: the harness cannot tell it when to initiate")

    def child_sas(self) -> list[ChildSa]:
        """The counterpart's CHILD SAs, seen from the device (inbound and outbound swapped)."""
        if self.counterpart is None:
            return []
        return [replace(sa, spi_in=sa.spi_out, spi_out=sa.spi_in) for sa in self.counterpart.child_sas()]

    def terminate(self, timeout: float) -> None:
        pytest.skip(f"{self.node.device.name} is a device under test: the harness cannot make it close the IKE SA")

    def rekey_child(self) -> None:
        pytest.skip(f"{self.node.device.name} is a device under test: the harness cannot make it rekey at a moment "
                    "of its choosing")

    def version(self) -> str:
        return self.node.device.version


def reference_settings(role: str, address: str, peer_address: str, prefix_len: int) -> dict:
    """What a device configured once (control = "static") is given: `role` in the default scenario (PSK, one
    proposal each for IKE and ESP, the default subnets) with the harness's peer at `peer_address`. A case asking
    for anything else skips, naming the setting (a case that only makes the PSKs disagree runs: Endpoint.fit)."""
    from harness.protocols.ipsec.fixtures import side_of
    from harness.protocols.ipsec import ROLES
    other = ROLES[1 - ROLES.index(role)]
    scenario = Scenario()
    return device_settings(scenario, side_of(role, scenario, {role: address, other: peer_address}))
