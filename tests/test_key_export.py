"""Key export is declared (feature key_export), not guessed from whether keys came out: a side that declares it
and exports nothing for what it sent makes the cell broken, so no case falls back to checking shapes. Fed the
real strongSwan captures and logs, through the real adapter, without Docker."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import HarnessError
from harness.protocols.ipsec import ROLES
from harness.protocols.ipsec.fixtures import IPsecPair
from harness.protocols.ipsec.keys import unexported
from harness.protocols.ipsec.wire import Wire
from harness.vendor import load_vendor

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PSK, WRONG_PSK = "strongswan_psk_tunnel", "strongswan_wrong_psk"
INITIATOR, RESPONDER = ROLES
STRONGSWAN, LIBRESWAN = (load_vendor(ROOT / "vendors" / name) for name in ("strongswan", "libreswan"))


class Node:
    def __init__(self, address: str, log: str):
        self.address, self.log = address, log

    def logs(self) -> str:
        return self.log


class StoppedCapture:
    path = "stopped"  # the capture has stopped: the keys now cover all of it

    def __init__(self, pcap: Path):
        self.pcap = pcap

    def stop(self, _where) -> Path:
        return self.pcap


def pair_after(case: str, vendors: dict[str, object], logs: dict[str, str]) -> IPsecPair:
    """An IPsecPair as a case sees it once the capture of `case` has stopped: each role's endpoint is the
    vendor's real adapter reading `logs[role]` as its node's log."""
    first = Wire.from_pcap(DATA / f"{case}.pcap").ike()[0]
    addresses = {INITIATOR: first.src, RESPONDER: first.dst}
    pair = IPsecPair.__new__(IPsecPair)  # no lab: only what keys() reads
    pair.nodes = {role: Node(addresses[role], logs[role]) for role in ROLES}
    pair.endpoints = {role: STRONGSWAN.adapter_class()(pair.nodes[role], None) for role in ROLES}
    pair.pair_lab = SimpleNamespace(pair=SimpleNamespace(vendor=vendors.get),
                                    log_name=lambda role: f"{role}-{vendors[role].name}")
    pair.capture, pair._pcap, pair._exported = StoppedCapture(DATA / f"{case}.pcap"), DATA / f"{case}.pcap", None
    return pair


def real_logs(case: str) -> dict[str, str]:
    return {role: (DATA / f"{case}.{role}.log").read_text() for role in ROLES}


def test_strongswan_declares_key_export_and_libreswan_does_not():
    assert not STRONGSWAN.missing_features("ipsec", {"key_export"}, INITIATOR)
    assert LIBRESWAN.missing_features("ipsec", {"key_export"}, INITIATOR) == ["key_export"]


def test_a_declaring_pair_with_its_keys_decrypts():
    pair = pair_after(PSK, {INITIATOR: STRONGSWAN, RESPONDER: STRONGSWAN}, real_logs(PSK))
    ike, esp = pair.keys()
    assert ike and esp and pair.ike_keys_exported


def test_a_declaring_side_that_exported_nothing_breaks_the_cell():
    logs = dict(real_logs(PSK), initiator="charon started\n")  # key-log parsing yields nothing
    pair = pair_after(PSK, {INITIATOR: STRONGSWAN, RESPONDER: STRONGSWAN}, logs)
    with pytest.raises(HarnessError) as broken:
        pair.ike_keys_exported  # what the cases ask before their decryption checks
    message = str(broken.value)
    assert message.startswith("strongswan (initiator) declares key_export but exported no IKE SA keys")
    assert "IKE_AUTH #1" in message and "and no ESP SA keys" in message and "\n" not in message
    with pytest.raises(HarnessError, match="strongswan"):
        pair.keys()  # and any other way to the keys


def test_the_other_sides_keys_do_not_cover_a_declaring_side():
    """The responder's keys would decrypt the whole capture, but the initiator declared key export too: its
    silence is a broken exporter, which the next pair (with a non-exporting peer) would pay for."""
    logs = dict(real_logs(PSK), initiator="")
    pair = pair_after(PSK, {INITIATOR: STRONGSWAN, RESPONDER: STRONGSWAN}, logs)
    with pytest.raises(HarnessError, match=r"^strongswan \(initiator\)"):
        pair.keys()


def test_a_side_that_does_not_declare_key_export_may_export_nothing():
    logs = dict(real_logs(PSK), initiator="")
    pair = pair_after(PSK, {INITIATOR: LIBRESWAN, RESPONDER: STRONGSWAN}, logs)
    assert pair.ike_keys_exported  # the strongSwan responder's keys; the Libreswan side owes none
    pair = pair_after(PSK, {INITIATOR: LIBRESWAN, RESPONDER: LIBRESWAN}, {INITIATOR: "", RESPONDER: ""})
    assert pair.keys() == ([], []) and not pair.ike_keys_exported


def test_what_a_side_sent_decides_what_it_owes():
    wire = Wire.from_pcap(DATA / f"{WRONG_PSK}.pcap")
    initiator, responder = wire.ike()[0].src, wire.ike()[0].dst
    # IKE_AUTH went out encrypted, and no CHILD SA came up: IKE keys are owed, ESP keys are not.
    assert unexported(wire, initiator, [], []) == [
        f"IKE SA keys (it sent {len([m for m in wire.ike() if m.encrypted and m.src == initiator])} encrypted IKE "
        f"message(s), the first: IKE_AUTH #1)"]
    assert not wire.esp() and not unexported(wire, initiator, ["an IKE SA's keys"], [])
    assert not unexported(Wire(), responder, [], [])  # nothing sent, nothing owed
