"""The `ipsec_pair` fixture: an initiator and a responder from two vendors on one lab network, with the
initiator's wire captured. Suites call `establish(scenario)` and then judge the tunnel and the wire.

The `ipsec_probe` fixture, for the cases marked `probes`: the harness's built-in probe plays the initiator
(PROBE_ROLE; scapy requests from a lab node of its own, harness.pairlab) against one vendor's responder, with the
responder's wire captured. Suites call `start(scenario)`, `send(...)` the requests `probe` builds, and judge
`response_to(request)` as the wire shows it."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import pytest
from scapy.layers.inet import ICMP, IP

from harness.capture import Capture
from harness.errors import ConfigError, HarnessError, LabTimeout
from harness.host import HostCapabilities
from harness.faults import ByteMatch, Hold, Impairment, Stage
from harness.images import Images
from harness.lab import Node, start_all, together
from harness.nat import Nat
from harness.pairlab import PairLab
from harness.ping import Ping, ping
from harness.waiting import wait_for
from harness.peer import Reply, UdpPeer
from harness.protocols.ipsec import ROLES, pki, probe
from harness.protocols.ipsec.roles import ChildSa, IPsecEndpoint, Outcome
from harness.protocols.ipsec.scenario import Scenario, Side, inner_address
from harness.protocols.ipsec.keyfiles import write_key_files
from harness.protocols.ipsec.ladder import write_ladder
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, unexported
from harness.protocols.ipsec.transcript import (DecryptedMessage, DecryptedMessages, bind_ike_keys, decrypt_ike,
                                                esp_inner, transcript)
from harness.protocols.ipsec.wire import Wire

READY_TIMEOUT_S = 20
INITIATE_TIMEOUT_S = 20
QUICK_MODE_DONE_S = 5  # the responder's side of a Quick Mode the initiator finished (IKEv1)
TERMINATE_TIMEOUT_S = 10
CLOSE_SETTLE_S = 2
RESTART_TIMEOUT_S = 10
HALF_OPEN_LOAD = 2
IKE_PORT, NAT_T_PORT = 500, 4500
LOAD_PORT = 501
PROBE_WAIT_S = 1.0  # how long the probe listens after each request before sending the next
WIRE_POLL_S = 0.2  # how often a wait for the wire reads the capture so far
CROSS_TIMEOUT_S = 10  # how long a stage of the holder waits for both packets before letting what it has go

IKE_EXCHANGE, IKE_FLAGS = 18, 19  # octets of the IKE header (RFC 7296 3.1); the R(esponse) flag is 0x20
CREATE_CHILD_SA = 36
UDP_HEADER, NON_ESP_MARKER = 8, 4  # on port 4500 IKE follows four zero octets (RFC 3948 2.2)


def _ike(port: int, exchange: int, offset: int, response: bool) -> tuple[ByteMatch, ...]:
    return (ByteMatch(2, port.to_bytes(2, "big")), ByteMatch(offset + IKE_EXCHANGE, bytes([exchange])),
            ByteMatch(offset + IKE_FLAGS, b"\x20" if response else b"\x00", mask=b"\x20"))


def ike_messages(exchange: int, *, response: bool) -> tuple[tuple[ByteMatch, ...], ...]:
    """IKE requests (or responses) of one exchange type in the bytes of their UDP datagram (transport header on):
    to port 500, or to port 4500 behind the non-ESP marker (ESP in UDP there has a non-zero SPI in those octets)."""
    return (_ike(IKE_PORT, exchange, UDP_HEADER, response),
            (ByteMatch(UDP_HEADER, bytes(NON_ESP_MARKER)),
             *_ike(NAT_T_PORT, exchange, UDP_HEADER + NON_ESP_MARKER, response)))


CREATE_CHILD_SA_REQUEST = ike_messages(CREATE_CHILD_SA, response=False)
CREATE_CHILD_SA_RESPONSE = ike_messages(CREATE_CHILD_SA, response=True)

INITIATOR, RESPONDER = ROLES


@dataclass(frozen=True)
class Echo:
    kind: str  # "request" or "reply"
    src: str
    dst: str
    spi: int


ICMP_ECHO = {8: "request", 0: "reply"}


class Tunnel:
    """An attempt to bring up IKE (and a CHILD SA): what the initiator said, and ways to probe it."""

    def __init__(self, pair: "IPsecPair", scenario: Scenario, outcome: Outcome):
        self.pair, self.scenario, self.outcome = pair, scenario, outcome

    @property
    def up(self) -> bool:
        return self.outcome.established

    @property
    def auth_failed(self) -> bool:
        return self.outcome.auth_failed

    def child_sas(self, role: str) -> list[ChildSa]:
        return self.pair.endpoints[role].child_sas()

    @property
    def inner_addresses(self) -> tuple[str, str]:
        """The initiator's and the responder's addresses inside the tunnel: for an SA protecting the hosts only
        (transport mode), their own addresses."""
        if self.scenario.hosts_only:
            return self.pair.addresses
        return (inner_address(self.scenario.own_subnet(INITIATOR)), inner_address(self.scenario.own_subnet(RESPONDER)))

    def ping(self, count: int = 3) -> Ping:
        """ICMP echo from the initiator's inner address to the responder's, through the tunnel."""
        src, dst = self.inner_addresses
        return ping(self.pair.nodes[INITIATOR], dst, source=src, count=count, wait_s=self.pair.patience(1))

    def close_child(self) -> None:
        """The initiator deletes the CHILD SA, keeping the IKE SA (RFC 7296 1.4.1)."""
        self.pair.endpoints[INITIATOR].close_child(TERMINATE_TIMEOUT_S)

    def rekey_from_both(self) -> str:
        """Both ends start a rekey of the CHILD SA at once and their CREATE_CHILD_SA requests cross (RFC 7296
        2.8.1): one node's underlay holds each side's first request (the one arriving, its own leaving) until both
        are held and lets them go together, then does the same with the two responses, so that each end handles
        its peer's request before the answer to its own (else, its own rekey done, it may rightly refuse the
        other's with TEMPORARY_FAILURE, RFC 7296 2.25.1: no collision). Returns the holder's account; the wire
        says whether they crossed."""
        routed = [role for role in (RESPONDER, INITIATOR) if not getattr(self.pair.nodes[role], "bridge_ports", None)]
        if not routed:
            pytest.skip("both nodes are microVMs: the harness holds packets with iptables' NFQUEUE (this kernel's "
                        "nftables has no queue), which a VM node's bridge does not pass through (harness.faults)")
        impairment = self.pair.impair(routed[0])
        hold = Hold(("-p", "udp", "--dport", f"{IKE_PORT}:{NAT_T_PORT}"),
                    (Stage(CREATE_CHILD_SA_REQUEST, 2), Stage(CREATE_CHILD_SA_RESPONSE, 2)),
                    timeout_s=self.pair.patience(CROSS_TIMEOUT_S))
        impairment.hold(hold)
        try:
            together(lambda role: self.pair.endpoints[role].rekey_child(), ROLES)
            wait_for(lambda: hold.done(impairment.held()), timeout=2 * self.pair.patience(CROSS_TIMEOUT_S) + 5,
                     what="the packet holder to release the rekey requests and their responses")
            return impairment.held()
        finally:
            impairment.clear()

    def add_child(self) -> Outcome:
        """The initiator adds the scenario's additional CHILD SA with CREATE_CHILD_SA (RFC 7296 1.3.1)."""
        return self.pair.endpoints[INITIATOR].initiate_additional(self.pair.patience(INITIATE_TIMEOUT_S))

    def ping_additional(self, count: int = 3) -> Ping:
        """ICMP echo between the initiator's and the responder's inner addresses of the additional CHILD SA."""
        extra = self.scenario.additional_subnets
        return ping(self.pair.nodes[INITIATOR], inner_address(extra[RESPONDER]), source=inner_address(extra[INITIATOR]),
                    count=count, wait_s=self.pair.patience(1))

    def reinitiate(self) -> "Tunnel":
        """The initiator sets the tunnel up again with the same scenario: a new attempt, on the same capture."""
        outcome = self.pair.endpoints[INITIATOR].initiate(self.pair.patience(INITIATE_TIMEOUT_S))
        return Tunnel(self.pair, self.scenario, outcome)

    def forget(self) -> None:
        """The initiator loses the IKE SA as in a crash: the responder is not told (its Delete is dropped on the
        way in, harness.faults), so it still holds the SAs."""
        impairment = self.pair.impair(RESPONDER)
        impairment.drop("udp dport 500-4500")  # IKE and NAT-T: the only UDP of the lab there
        try:
            self.pair.endpoints[INITIATOR].forget(TERMINATE_TIMEOUT_S)
        finally:
            impairment.clear()

    def close(self) -> None:
        """The initiator deletes the IKE SA (RFC 7296 1.4.1): an INFORMATIONAL request with Delete goes out. Returns
        once the capture holds an answer to every INFORMATIONAL request the initiator sent, or CLOSE_SETTLE_S later:
        the daemon may report the answer before tcpdump has written it, and a capture stopped right then lacks it."""
        self.pair.endpoints[INITIATOR].terminate(TERMINATE_TIMEOUT_S)
        initiator = self.pair.nodes[INITIATOR].address

        def answered(wire) -> bool:
            info = wire.ike("INFORMATIONAL")
            asked = {m.message_id for m in info if not m.is_response and m.src == initiator}
            return bool(asked) and asked <= {m.message_id for m in info if m.is_response and m.dst == initiator}
        self.pair.wire_until(answered, timeout=self.pair.patience(CLOSE_SETTLE_S))

    def explain(self) -> str:
        """The initiator's own account plus both daemons' last log lines: the failure message of a case."""
        logs = "\n".join(f"--- {role} log (last lines)\n{self.pair.log_tail(role)}" for role in ROLES)
        return f"initiator says: {self.outcome.detail}\n{logs}"


def side_of(role: str, scenario: Scenario, addresses: dict[str, str]) -> Side:
    """One role's view of the lab, given each role's address: what its adapter renders a config from."""
    peer = RESPONDER if role == INITIATOR else INITIATOR
    subnets = ({r: f"{a}/32" for r, a in addresses.items()} if scenario.hosts_only  # transport: the hosts' traffic
               else scenario.subnets_of(role))
    peer_identity = identity_of(peer, scenario.id_type, addresses)
    if role == RESPONDER and scenario.responder_peer_id is not None:
        peer_identity = scenario.responder_peer_id
    if role == INITIATOR and not scenario.send_idr:
        peer_identity = None
    certified, alt_name = _certified(role, scenario.id_type, addresses)
    return Side(role=role, address=addresses[role], peer_address=addresses[peer],
                identity=identity_of(role, scenario.id_type, addresses), peer_identity=peer_identity,
                psk=scenario.psk_of(role), subnet=subnets[role], peer_subnet=subnets[peer], id_type=scenario.id_type,
                credentials=None if scenario.auth == "psk" else pki.issue(certified, scenario.auth, alt_name))


# scenario.ID_TYPES -> what a side's certificate names (subject CN and subjectAltName) and the altName's kind.
ALT_NAME_KINDS = {"fqdn": "dns", "dn": "dns", "ipv4": "ip", "email": "email"}


def identity_of(role: str, id_type: str, addresses: dict[str, str]) -> str:
    """The identity `role` identifies itself with, written as the ID's data reads ("CN=..." for a DN)."""
    return {"fqdn": f"{role}.lab", "ipv4": addresses[role], "email": f"{role}@lab.example",
            "dn": f"CN={role}.lab"}[id_type]


def _certified(role: str, id_type: str, addresses: dict[str, str]) -> tuple[str, str]:
    """The name `role`'s certificate is issued for, and the kind of subjectAltName it goes in."""
    name = f"{role}.lab" if id_type == "dn" else identity_of(role, id_type, addresses)
    return name, ALT_NAME_KINDS[id_type]


class CapturedWire:
    """What both IPsec labs share: one capture, read once after it has stopped."""
    capture: Capture
    _pcap: Path

    @cached_property
    def _wire(self) -> Wire:
        return Wire.from_pcap(self.capture.stop(self._pcap))

    def wire(self) -> Wire:
        """Stop the capture (the pcap is complete from here on) and read it. Probes must come before this."""
        return self._wire

    def wire_until(self, check: Callable[[Wire], object], timeout: float) -> Wire:
        """The wire so far, read again until `check(wire)` holds or `timeout` passes: how a case waits for what a
        timer makes happen (a liveness check, a rekey) instead of sleeping. The capture goes on; the case then
        judges the stopped one (wire())."""
        deadline = time.monotonic() + timeout
        while True:
            peeked = self.capture.peek(self.pair_lab.dir / "capture-so-far.pcap")
            try:
                wire = Wire.from_pcap(peeked)
            finally:
                peeked.unlink(missing_ok=True)
            if check(wire) or time.monotonic() >= deadline:
                return wire
            time.sleep(WIRE_POLL_S)


def _together(exported: dict[str, tuple[list[IkeSaKeys], list[EspSaKeys]]]) -> tuple[list[IkeSaKeys],
                                                                                      list[EspSaKeys]]:
    """Every role's IKE keys in one list, their ESP keys in another."""
    return [k for ike, _ in exported.values() for k in ike], [k for _, esp in exported.values() for k in esp]


class IPsecPair(CapturedWire):
    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        self.pair_lab = pair_lab
        self.network = pair_lab.lab.network()
        self.tools_image = tools_image
        self.nodes: dict[str, Node] = {role: pair_lab.node(role, network=self.network) for role in ROLES}
        self.endpoints: dict[str, IPsecEndpoint] = {
            role: pair_lab.pair.vendor(role).adapter_class()(self.nodes[role], pair_lab.kernel(role, host))
            for role in ROLES}
        for role, endpoint in self.endpoints.items():  # a device under test reads its SAs off its counterpart
            if hasattr(endpoint, "counterpart"):
                endpoint.counterpart = self.endpoints[RESPONDER if role == INITIATOR else INITIATOR]
        self.capture = Capture(pair_lab.lab, self.nodes[INITIATOR], tools_image)
        self._pcap = pair_lab.dir / "capture.pcap"
        self._exported: dict[str, tuple[list[IkeSaKeys], list[EspSaKeys]]] | None = None
        self.impairments: dict[str, Impairment] = {}
        self.scenario: Scenario | None = None  # the last one established
        self.nat: Nat | None = None  # the NAT router between the pair, for a scenario with `nat`
        pair_lab.on_teardown(self._write_transcript)  # finalizers run last-registered first: after the stop
        pair_lab.on_teardown(lambda: self.capture.stop(self._pcap))

    @property
    def addresses(self) -> tuple[str, str]:
        return self.nodes[INITIATOR].address, self.nodes[RESPONDER].address

    def side(self, role: str, scenario: Scenario) -> Side:
        addresses = {r: node.address for r, node in self.nodes.items()}
        if self.nat is not None and role == RESPONDER:  # behind the NAT the initiator is the router's address
            addresses[INITIATOR] = self.nat.address
        return side_of(role, scenario, addresses)

    def establish(self, scenario: Scenario) -> Tunnel:
        """Configure both daemons for `scenario`, start them, and let the initiator try. Never asserts:
        the case judges the returned tunnel and the wire. In a cell with a microVM the scenario's timers are
        stretched (PairLab.time_scale): the tunnel's scenario is the one the daemons got."""
        scenario = scenario.slowed(self.pair_lab.time_scale)
        for endpoint in self.endpoints.values():  # a device configured once runs the case as it can (device.py)
            scenario = endpoint.fit(scenario)
        self.scenario = scenario
        if scenario.nat and self.nat is None:
            self.nat = Nat(self.pair_lab.lab, self.network, self.tools_image)
        for role in ROLES:
            self.pair_lab.install(role, self.endpoints[role].render(scenario, self.side(role, scenario)))
        start_all([*self.nodes.values(), *([self.nat.node] if self.nat else [])])
        if self.nat is not None:
            self.nat.install(inside=self.nodes[INITIATOR], outside=self.nodes[RESPONDER])
        # Neither daemon speaks unasked (the initiator only on initiate(), below), so the wire is complete from
        # its first packet with the capture started once both run.
        self.capture.start()
        self.pair_lab.mark("lab up")
        together(lambda role: (self._make_ready(role), self.endpoints[role].load()), ROLES)  # before initiate()
        self.pair_lab.mark("daemons ready")
        for impairment in self.impairments.values():  # faults asked for before the nodes ran
            if impairment.drops:
                impairment.install()
        if scenario.responder_busy:
            self.load = self.leave_half_open(scenario)
        outcome = self.endpoints[INITIATOR].initiate(self.patience(INITIATE_TIMEOUT_S))
        if scenario.ike_version == 1 and outcome.established:
            self._responder_quick_mode_done()
        self.pair_lab.mark("negotiation")
        return Tunnel(self, scenario, outcome)

    def _responder_quick_mode_done(self) -> None:
        """IKEv1's initiator is done with Quick Mode once it has SENT the third message (RFC 2409 5.5), and may use
        the IPsec SA before the responder has read that message and installed its own side (what the Commit bit
        and CONNECTED notify of RFC 2408 3.1/4.6.3 exist for): Libreswan in a microVM answered nothing for seconds
        after strongSwan's Quick Mode ended, its route to the initiator's subnet not yet added. So a case starts
        once the responder reports its IPsec SA too; one that never does is the case's to judge, not this wait's."""
        try:
            wait_for(lambda: self.endpoints[RESPONDER].child_sas(), timeout=self.patience(QUICK_MODE_DONE_S),
                     interval=0.1, what="the responder to report its IPsec SA after Quick Mode")
        except LabTimeout:
            pass

    def _make_ready(self, role: str) -> None:
        """Wait for the role's daemon and add its inner address: what a node needs before its config loads."""
        self.endpoints[role].wait_ready(self.patience(READY_TIMEOUT_S))
        self.pair_lab.record_version(role, self.endpoints[role].version)
        subnets = [self.scenario.own_subnet(role), *([self.scenario.additional_subnets[role]]
                                                     if self.scenario.additional_subnets else [])]
        for subnet in subnets:
            self.endpoints[role].add_inner_address(inner_address(subnet))

    def patience(self, seconds: float) -> float:
        """How long to wait for what takes `seconds` on the host, in this cell (PairLab.time_scale)."""
        return self.pair_lab.patience(seconds)

    def impair(self, role: str) -> Impairment:
        """Faults on the underlay where `role` receives and sends (harness.faults). Asked for before
        establish(), they are in place before the initiator starts; the capture is the initiator's, so a
        packet dropped arriving at the responder is on the wire."""
        if role not in self.impairments:
            self.impairments[role] = Impairment(self.pair_lab.lab, self.nodes[role], self.tools_image)
        return self.impairments[role]

    def restart(self, role: str) -> None:
        """Crash the role's daemon (SIGKILL: its peer is not told) and start it again, ready and loaded with the
        last scenario's config as establish() left it. Its SAs are gone; its peer's are not."""
        self.nodes[role].restart(self.patience(RESTART_TIMEOUT_S))
        self._make_ready(role)
        self.endpoints[role].load()
        if self.impairments.get(role) and self.impairments[role].drops:  # they lived in the old namespace
            self.impairments[role].install()

    def leave_half_open(self, scenario: Scenario, count: int = HALF_OPEN_LOAD) -> list[Reply]:
        """Start `count` IKE SAs at the responder and never finish them. They come from the initiator's
        address (the only one the responder has a config for) but another port than its daemon's."""
        peer = UdpPeer(self.pair_lab.lab, self.nodes[INITIATOR], self.tools_image, name="load")
        spis = [os.urandom(8) for _ in range(count)]
        self.load_spis = frozenset(spis)
        requests = [probe.ike_sa_init(scenario.ike_of(RESPONDER), spi=spi) for spi in spis]
        return peer.exchange(requests, to=(self.nodes[RESPONDER].address, IKE_PORT), sport=LOAD_PORT, wait=0.3)

    def _exports(self) -> dict[str, tuple[list[IkeSaKeys], list[EspSaKeys]]]:
        """Each role's exported session keys, read from its daemon's log; kept once the capture has stopped:
        from then on they cover all of it."""
        if self._exported is not None:
            return self._exported
        exported = {role: (self.endpoints[role].ike_keys(), self.endpoints[role].esp_keys()) for role in ROLES}
        if self.capture.path is not None:  # the capture is complete, and so are the keys it needs
            self._exported = exported
        return exported

    def keys(self) -> tuple[list[IkeSaKeys], list[EspSaKeys]]:
        """Both daemons' exported session keys (an SA exported by both counts once where it is used). Once the
        capture has stopped, a side that declares key_export and exported nothing for what it sent makes the
        cell broken: the cases' decryption checks must never quietly fall back to checking shapes."""
        exported = self._exports()
        if self.capture.path is not None:
            self._require_exported(exported)
        return _together(exported)

    def _require_exported(self, exported: dict[str, tuple[list[IkeSaKeys], list[EspSaKeys]]]) -> None:
        wire = self.wire()
        for role in ROLES:
            vendor = self.pair_lab.pair.vendor(role)
            if vendor.missing_features("ipsec", {"key_export"}, role):
                continue
            missing = unexported(wire, self.nodes[role].address, *exported[role])
            if missing:
                raise HarnessError(f"{vendor.name} ({role}) declares key_export but exported no "
                                   f"{' and no '.join(missing)}: its key export is broken, so the capture cannot be "
                                   f"decrypted (see {self.pair_lab.log_name(role)}.log)")

    @property
    def ike_keys_exported(self) -> bool:
        """Whether either daemon exported IKE keys (Libreswan does not): then every message must decrypt. A side
        declaring key_export that exported none raises instead (keys())."""
        return bool(self.keys()[0])

    def decrypted(self) -> DecryptedMessages:
        """The wire's IKE messages with their encrypted payloads opened. Stops the capture, like wire()."""
        return self._decrypted

    def decrypted_until(self, check: Callable[[DecryptedMessages], object], timeout: float) -> DecryptedMessages:
        """As wire_until, the IKE messages so far opened with the keys exported so far: for waiting on what only
        the encrypted payloads show (which CREATE_CHILD_SA rekeyed what). The case then judges decrypted()."""
        found: list[DecryptedMessages] = []

        def opened(wire: Wire) -> object:
            found[:] = [decrypt_ike(wire, _together(self._exports())[0])]
            return check(found[0])
        self.wire_until(opened, timeout)
        return found[0]

    @cached_property
    def _decrypted(self) -> DecryptedMessages:
        return decrypt_ike(self.wire(), self.keys()[0])

    def esp_inner(self):
        """The packets inside the captured ESP, decrypted with the exported keys. Stops the capture."""
        return self._esp_inner

    @cached_property
    def _esp_inner(self):
        self.wire()
        return esp_inner(self._pcap, self.keys()[1])

    def echoes_in_esp(self) -> list[Echo]:
        """Every ICMP echo request/reply found inside the captured ESP, with the SPI that carried it."""
        return [Echo(ICMP_ECHO[p.packet[ICMP].type], p.packet[IP].src, p.packet[IP].dst, p.spi)
                for p in self.esp_inner()
                if p.packet is not None and p.packet.haslayer(ICMP) and p.packet[ICMP].type in ICMP_ECHO]

    def _write_transcript(self) -> None:
        """transcript.txt, Wireshark's key files (keys/) and ladder.svg beside the capture."""
        if not self._pcap.exists():
            return
        ike, esp = _together(self._exports())  # unchecked: the evidence is written even when the export is broken
        (self.pair_lab.dir / "transcript.txt").write_text(transcript(self._pcap, ike, esp) + "\n")
        write_key_files(self.pair_lab.dir, bind_ike_keys(self._pcap, ike), esp)
        write_ladder(self.pair_lab, self._pcap, dict(zip(ROLES, self.addresses)), ike, esp)

    def log_tail(self, role: str, lines: int = 12) -> str:
        return "\n".join(self.nodes[role].logs().rstrip().splitlines()[-lines:])


class IPsecProbe(CapturedWire):
    """The harness's built-in probe, the prober, as the initiator against one vendor's responder, the judged side
    (harness.pairlab). The probe is a lab node of its own (PairLab.probe_node), which the responder is configured
    to take as its peer; it sends IKE_SA_INIT requests built by `probe` and the responder's wire is captured:
    verdicts read that."""

    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        if pair_lab.prober != INITIATOR:
            raise ConfigError(pair_lab.pair.case, "pytestmark", "ipsec_probe needs pytest.mark.probes")
        self.pair_lab = pair_lab
        self.tools_image = tools_image
        network = pair_lab.lab.network()
        self.responder = pair_lab.node(RESPONDER, network=network)
        self.endpoint: IPsecEndpoint = pair_lab.pair.vendor(RESPONDER).adapter_class()(
            self.responder, pair_lab.kernel(RESPONDER, host))
        self.node = pair_lab.probe_node(network)
        self.capture = Capture(pair_lab.lab, self.responder, tools_image)
        self._pcap = pair_lab.dir / "capture.pcap"
        self._peer: UdpPeer | None = None
        self._log: list[str] = []  # the probe's own account: each request sent and the replies it heard
        pair_lab.on_teardown(self._write_evidence)  # finalizers run last-registered first: after the stop
        pair_lab.on_teardown(lambda: self.capture.stop(self._pcap))

    def start(self, scenario: Scenario) -> None:
        """Configure the vendor's responder for `scenario`, with the probe's address as its peer, and start it."""
        addresses = {INITIATOR: self.node.address, RESPONDER: self.responder.address}
        self.pair_lab.install(RESPONDER, self.endpoint.render(scenario, side_of(RESPONDER, scenario, addresses)))
        start_all((self.node, self.responder))
        self.capture.start()  # joins the responder's network namespace, so once it runs; before any probe
        self.pair_lab.mark("lab up")
        self.endpoint.wait_ready(READY_TIMEOUT_S)
        self.pair_lab.record_version(RESPONDER, self.endpoint.version)
        self.endpoint.load()
        self.pair_lab.mark("daemons ready")

    def send(self, *requests: bytes, wait: float = PROBE_WAIT_S) -> list[Reply]:
        """Send the requests in order from the probe's IKE port to the responder's, listening `wait` seconds
        after each. The replies are the probe's own account, for its log; verdicts read the wire."""
        if self._peer is None:
            self._peer = UdpPeer(self.pair_lab.lab, self.node, self.tools_image)
        replies = self._peer.exchange(list(requests), to=(self.responder.address, IKE_PORT), sport=IKE_PORT,
                                      wait=wait)
        for step, request in enumerate(requests):
            self._log.append(f"sent {len(request)} bytes, SPIi {probe.spi_of(request).hex()}: {request.hex()}")
            self._log += [f"  reply from {r.src}:{r.sport}, {len(r.data)} bytes: {r.data.hex()}"
                          for r in replies if r.step == step]
        return replies

    def decrypted(self) -> DecryptedMessages:
        """The wire's IKE messages with their payloads decoded (IKE_SA_INIT is in the clear). Stops the capture."""
        return self._decrypted

    @cached_property
    def _decrypted(self) -> DecryptedMessages:
        return decrypt_ike(self.wire())

    def response_to(self, request: bytes) -> DecryptedMessage | None:
        """The responder's first IKE_SA_INIT response on the wire carrying `request`'s initiator SPI, decoded;
        None if it sent none. Stops the capture."""
        spi = probe.spi_of(request)
        return next((m for m in self.decrypted().ike("IKE_SA_INIT")
                     if m.is_response and m.message.ispi == spi and m.message.src == self.responder.address), None)

    def describe(self) -> str:
        """What the wire showed: every IKE message with its payloads (a damaged one with why), and datagrams not
        even readable as an IKE header."""
        wire = self.wire()
        lines = [self.decrypted().describe()]
        unreadable = wire.malformed - sum(m.problem is not None for m in wire.messages)
        if unreadable > 0:
            lines.append(f"{unreadable} datagram(s) on the IKE port not readable as IKE (malformed)")
        return "\n".join(lines)

    def _write_evidence(self) -> None:
        """The probe's log, transcript.txt and ladder.svg beside the capture (no keys: nothing past IKE_SA_INIT
        is sent)."""
        if self._log:
            (self.pair_lab.dir / f"{self.pair_lab.log_name(INITIATOR)}.log").write_text("\n".join(self._log) + "\n")
        if self._pcap.exists():
            (self.pair_lab.dir / "transcript.txt").write_text(transcript(self._pcap) + "\n")
            write_ladder(self.pair_lab, self._pcap, {INITIATOR: self.node.address, RESPONDER: self.responder.address})


@pytest.fixture
def ipsec_pair(pair_lab: PairLab, host: HostCapabilities, images: Images) -> IPsecPair:
    return IPsecPair(pair_lab, host, images.tools())


@pytest.fixture
def ipsec_probe(pair_lab: PairLab, host: HostCapabilities, images: Images) -> IPsecProbe:
    return IPsecProbe(pair_lab, host, images.tools())
