"""The `l2tp_pair` fixture: a LAC and an LNS from two vendors on one lab network (plus any companion node a
vendor brings, e.g. l2tpns' RADIUS server), the LAC's wire captured. Suites call `start(scenario)`, then
`connect()` (the LAC places the call), and judge the session, pings through it and the wire.

Between two stacks declaring "ipsec" (RFC 3193) every case runs over IPsec: each side's Side carries the
Protection, the ESP keys are read from both nodes' kernels (ip xfrm state) and the L2TP the case judges is read
from the capture with its ESP opened (capture-decrypted.pcap beside capture.pcap); `ipsec_wire()` is the capture
as it went, for judging the IPsec itself.

In the cases marked `probes` (the robustness cases) the prober is a vendor declaring the feature `probes`
(harness.pairlab): `start(scenario, probe=...)` has that side misbehave so (scenario.PROBES, through
`Side.misbehave` and `L2tpEndpoint.probe`), and the case judges the other, `tested`."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import pytest

from harness.capture import Capture
from harness.errors import ConfigError, LabTimeout
from harness.host import HostCapabilities
from harness.images import Images
from harness.lab import Node, start_all, together
from harness.pairlab import PairLab
from harness.ping import Ping, ping
from harness.protocols.l2tp import ROLES
from harness.protocols.l2tp.dissector import render_ladder
from harness.protocols.l2tp.roles import L2tpEndpoint
from harness.protocols.ipsec.keyfiles import write_key_files
from harness.protocols.ipsec.keys import EspSaKeys
from harness.protocols.ipsec.transcript import esp_inner, write_decrypted
from harness.protocols.ipsec.wire import Wire as IpsecWire
from harness.protocols.ipsec.xfrm import parse_xfrm_state
from harness.protocols.l2tp.scenario import LAC_INNER, LNS_INNER, PROBES, Protection, Scenario, Side, last_wait_s
from harness.protocols.l2tp.transcript import transcript
from harness.protocols.l2tp.wire import Wire
from harness.waiting import wait_for

READY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
SESSION_TIMEOUT_S = 20
CONTROL_TIMEOUT_S = 10  # for a control message a case waits for on the wire (an answer, a refusal, a Hello)
STOPPED_GLANCE_S = 0.5  # how often the wait for a session looks at the wire for a StopCCN
LAC, LNS = ROLES
INNER = {LAC: LAC_INNER, LNS: LNS_INNER}


@dataclass(frozen=True)
class Session:
    up: bool
    detail: str  # what was waited for and what each side had, for the failure message


class L2tpPair:
    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        self.pair_lab = pair_lab
        self.network = pair_lab.lab.network()
        self.nodes: dict[str, Node] = {role: pair_lab.node(role, network=self.network) for role in ROLES}
        self.endpoints: dict[str, L2tpEndpoint] = {
            role: pair_lab.pair.vendor(role).adapter_class()(self.nodes[role], pair_lab.kernel(role, host))
            for role in ROLES}
        for role, endpoint in self.endpoints.items():  # a device under test reads its session off its counterpart
            if hasattr(endpoint, "counterpart"):
                endpoint.counterpart = self.endpoints[LNS if role == LAC else LAC]
        self.capture = Capture(pair_lab.lab, self.nodes[LAC], tools_image)
        self._pcap = pair_lab.dir / "capture.pcap"
        self._opened = pair_lab.dir / "capture-decrypted.pcap"
        # RFC 3193: both sides protect their L2TP with IPsec, or neither (protocols.both_or_neither rules out the rest)
        self.protected = all(self.declares(role, "ipsec") for role in ROLES)
        self.protection = Protection() if self.protected else None
        self._esp_keys: dict[int, EspSaKeys] = {}
        self.scenario: Scenario | None = None
        self.probe_name: str | None = None
        pair_lab.on_teardown(self._write_transcript)  # finalizers run last-registered first: after the stop
        pair_lab.on_teardown(lambda: self.capture.stop(self._pcap))

    def side(self, role: str, scenario: Scenario) -> Side:
        peer = LNS if role == LAC else LAC
        return Side(role=role, address=self.nodes[role].address, peer_address=self.nodes[peer].address,
                    hostname=f"{role}.lab", secret=scenario.secret_of(role), local_inner=INNER[role],
                    remote_inner=INNER[peer], misbehave=self.probe_name if role == self.prober else None,
                    protection=self.protection)

    def declares(self, role: str, feature: str) -> bool:
        """Whether the vendor playing `role` declares `feature` for L2TP (in that role)."""
        return not self.pair_lab.pair.vendor(role).missing_features("l2tp", {feature}, role)

    @property
    def prober(self) -> str | None:
        """The side that plays the robustness probe started: the pair's prober (harness.pairlab)."""
        return self.pair_lab.prober if self.probe_name else None

    @property
    def tested(self) -> str | None:
        """The side a robustness probe judges: the other one (harness.pairlab's judged side)."""
        return self.pair_lab.judged if self.probe_name else None

    def address(self, role: str) -> str:
        return self.nodes[role].address

    def start(self, scenario: Scenario, probe: str | None = None) -> "L2tpPair":
        """Companions first (an adapter renders with their addresses), then both daemons, the LAC's wire
        captured from its first packet. `probe` (scenario.PROBES) makes the probing side misbehave so."""
        if probe is not None and probe not in PROBES:
            raise ValueError(f"probe must be one of {sorted(PROBES)}, not {probe!r}")
        if probe is not None and self.pair_lab.prober is None:
            raise ConfigError(self.pair_lab.pair.case, "pytestmark", "start(probe=...) needs pytest.mark.probes")
        self.scenario, self.probe_name = scenario, probe
        for role, endpoint in self.endpoints.items():
            side = self.side(role, scenario)
            companions = endpoint.companions(scenario, side)
            if companions:
                endpoint.use_companions({c.name: self.pair_lab.companion(role, c, self.network) for c in companions})
            self.pair_lab.install(role, endpoint.render(scenario, side))
        start_all(self.nodes.values())
        self.capture.start()  # neither daemon speaks unasked (the LAC only on connect()): the wire is whole
        self.pair_lab.mark("lab up")
        together(self._make_ready, ROLES)
        self.pair_lab.mark("daemons ready")
        return self

    def _make_ready(self, role: str) -> None:
        self.endpoints[role].wait_ready(READY_TIMEOUT_S)
        self.pair_lab.record_version(role, self.endpoints[role].version)

    def connect(self, wait: bool = True) -> Session | None:
        """The LAC places the call; the session is up once both ends hold their inner addresses. Never asserts.
        `wait=False`: return once the call is placed (a case expecting it to fail judges the wire instead)."""
        self.endpoints[LAC].connect(CONNECT_TIMEOUT_S)
        if not wait:
            self.pair_lab.mark("negotiation")
            return None
        glance = {"next": time.monotonic() + STOPPED_GLANCE_S}

        def settled() -> str | None:
            if all(self.endpoints[r].inner_interface() for r in ROLES):
                return "up"
            if time.monotonic() >= glance["next"]:  # a refused tunnel will not come up: stop waiting for it
                glance["next"] = time.monotonic() + STOPPED_GLANCE_S
                wire = self._wire_so_far()
                stoppers = [role for role in ROLES if wire.sent(self.address(role), "StopCCN")]
                if stoppers:
                    return "; ".join(f"the {role} stopped the tunnel: it sent {wire.said(self.address(role))}"
                                     for role in stoppers)
                gave_up = self.gave_up(wire)
                if gave_up:  # nor will one whose side gave up: no answer counts any more
                    return f"{gave_up} ({'; '.join(f'the {r} sent {wire.said(self.address(r))}' for r in ROLES)})"
            return None
        try:
            outcome = wait_for(settled, timeout=SESSION_TIMEOUT_S, interval=0.05,
                               what="both ends of the PPP session to hold their inner addresses")
            up, detail = outcome == "up", "session up" if outcome == "up" else outcome
        except LabTimeout as exc:
            wire = self._wire_so_far()
            up, detail = False, f"{exc} ({'; '.join(f'the {r} sent {wire.said(self.address(r))}' for r in ROLES)})"
        self.pair_lab.mark("negotiation")
        return Session(up, f"{detail}\n{self.explain()}" if not up else detail)

    def disconnect(self) -> None:
        self.endpoints[LAC].disconnect(CONNECT_TIMEOUT_S)

    def probe(self) -> None:
        """The probing side carries out its probe now (those acting during set-up need no call)."""
        self.endpoints[self.prober].probe(CONNECT_TIMEOUT_S)

    def session_down(self, role: str, timeout: float = SESSION_TIMEOUT_S) -> bool:
        """Whether `role`'s end of the PPP session is gone within `timeout` (False: it still holds its address)."""
        try:
            wait_for(lambda: self.endpoints[role].inner_interface() is None, timeout=timeout, interval=0.1,
                     what=f"the {role}'s end of the session to go")
            return True
        except LabTimeout:
            return False

    def gave_up(self, wire: Wire, now: float | None = None) -> str | None:
        """Which side gave the control connection up, and on what, or None while an answer may still come: a side
        that retransmits on the scenario's schedule (it declares "retransmit_timers") clears the tunnel once a
        message of its went unacknowledged through its last retransmission's wait (RFC 2661 5.8), and the wire
        shows every sending. `now` is the capture's clock (the host's, time.time()). Vendors whose schedule is
        their own are never judged so: a case waits its own timeout for them."""
        if self.scenario is None or self.scenario.gives_up_after_s is None:
            return None
        now = time.time() if now is None else now
        retransmit_s, retransmissions = self.scenario.retransmit_s, self.scenario.max_retransmissions
        for role in ROLES:
            if self.pair_lab.pair.vendor(role).missing_features("l2tp", {"retransmit_timers"}, role):
                continue
            for first in wire.control(src=self.address(role)):
                if first.kind == "ZLB" or wire.acknowledgement(first) is not None:
                    continue
                sendings = [d for d in wire.control(src=first.src, retransmissions=True)
                            if d.number == first.number or wire.retransmitted.get(d.number) == first.number]
                if len(sendings) > retransmissions and \
                        now >= sendings[-1].time + last_wait_s(retransmit_s, retransmissions):
                    return (f"the {role} gave up on its {first.kind}: {len(sendings)} sendings, none acknowledged "
                            f"within {self.scenario.gives_up_after_s:g} s (RFC 2661 5.8: {retransmit_s:g} s doubling, "
                            f"{retransmissions} retransmissions)")
        return None

    def wire_until(self, check: Callable[[Wire], object], timeout: float) -> Wire:
        """The wire so far, read again until `check(wire)` holds or `timeout` passes (the case then judges what
        it got); the capture goes on."""
        deadline = time.monotonic() + timeout
        while True:
            wire = self._wire_so_far()
            if check(wire) or time.monotonic() >= deadline:
                return wire
            time.sleep(0.2)

    def _wire_so_far(self) -> Wire:
        peeked = self.capture.peek(self.pair_lab.dir / "capture-so-far.pcap")
        try:
            return self._read(peeked, self.pair_lab.dir / "capture-so-far-decrypted.pcap")
        finally:
            peeked.unlink(missing_ok=True)

    def _read(self, pcap, opened) -> Wire:
        """The L2TP on a capture (with the tunnel secret: hidden AVPs opened); under IPsec, on the capture with
        its ESP opened by the keys the nodes' kernels hold, written to `opened`."""
        if self.protected:
            write_decrypted(pcap, self.esp_keys(), opened)
            pcap = opened
        return Wire.from_pcap(pcap, self.scenario.secret if self.scenario else None)

    def esp_keys(self) -> list[EspSaKeys]:
        """Under IPsec: the keys of every ESP SA the two nodes' kernels have held while asked (ip xfrm state, read
        each time: an SA deleted later keeps its keys here). Whatever daemon negotiated them, the kernel has them."""
        for role in ROLES:
            state = self.nodes[role].exec(["ip", "xfrm", "state"], timeout=10, what="ip xfrm state")
            if state.ok:
                self._esp_keys.update((k.spi, k) for k in parse_xfrm_state(state.output).keys)
        return list(self._esp_keys.values())

    def ipsec_wire(self) -> IpsecWire:
        """The IKE and ESP on the capture as it went (RFC 3193's IPsec). Stops the capture, like wire()."""
        self.wire()
        return IpsecWire.from_pcap(self._pcap)

    def opened_esp(self) -> list:
        """Every ESP packet on the capture as it went, opened with the kernels' keys (ipsec.transcript.InnerPacket:
        its next header, what it carried). Stops the capture."""
        self.wire()
        return esp_inner(self._pcap, self.esp_keys())

    def clear_wire(self) -> Wire:
        """The L2TP on the capture as it went, outside any ESP: under IPsec there must be none. Stops the capture."""
        self.wire()
        return Wire.from_pcap(self._pcap, self.scenario.secret if self.scenario else None)

    def ping(self, count: int = 3, size: int | None = None) -> Ping:
        """ICMP echo from the LAC's end of the session to the LNS's, through it (`size` payload bytes)."""
        return ping(self.nodes[LAC], LNS_INNER, source=LAC_INNER, count=count, size=size)

    def wire(self) -> Wire:
        """Stop the capture and read it (with the tunnel secret: hidden AVPs opened). Traffic must come before."""
        return self._wire

    @cached_property
    def _wire(self) -> Wire:
        return self._read(self.capture.stop(self._pcap), self._opened)

    def explain(self) -> str:
        return "\n".join(f"--- {role} ({self.pair_lab.pair.vendor(role).name}) log (last lines)\n"
                         + "\n".join(node.logs().rstrip().splitlines()[-10:])
                         for role, node in self.nodes.items())

    def _write_transcript(self) -> None:
        """transcript.txt and ladder.svg from the Wire the case read (or reads now): the pcap is read once, and
        both show the hidden AVPs opened with the tunnel secret."""
        if self._pcap.exists():
            wire, pair = self.wire(), self.pair_lab.pair
            if self.protected:  # the ESP keys as Wireshark reads them (keys/esp_sa), with capture.pcap
                write_key_files(self.pair_lab.dir, [], list(self._esp_keys.values()))
            opened = (f"(RFC 3193: the L2TP inside the capture's ESP, opened with the ESP keys both kernels held, "
                      f"keys/esp_sa; {self._opened.name} is the capture so opened)\n" if self.protected else "")
            (self.pair_lab.dir / "transcript.txt").write_text(opened + transcript(wire) + "\n")
            names = {node.address: f"{role} {pair.vendor(role).name}" for role, node in self.nodes.items()}
            (self.pair_lab.dir / "ladder.svg").write_text(render_ladder(
                wire, names, title=f"{pair.protocol} / {pair.case} / {pair.a.name} -> {pair.b.name}"))


@pytest.fixture
def l2tp_pair(pair_lab: PairLab, host: HostCapabilities, images: Images) -> L2tpPair:
    return L2tpPair(pair_lab, host, images.tools())
