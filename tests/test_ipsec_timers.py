"""Issue 14's IPsec timers: what a case asks for rendered so the daemon takes it (Libreswan's retransmission
deadline), and waits on what the timers make happen (liveness checks, rekeys) instead of sleeping."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from scapy.utils import rdpcap, wrpcap

from support import DATA, ROOT, load

from harness.host import HostCapabilities
from harness.protocols.ipsec import fixtures as ipsec_fixtures
from harness.protocols.ipsec.scenario import Scenario, Side
from harness.protocols.ipsec.transcript import decrypt_ike
from harness.protocols.ipsec.wire import Wire
from harness.vendor import load_vendor

LIBRESWAN = load_vendor(ROOT / "vendors" / "libreswan")
HOST = HostCapabilities(present={"kernel-esp": False}, details={})

psk_suite = load("suite_ipsec_psk", ROOT / "suites" / "ipsec" / "test_psk.py")
keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")


SIDE = Side(role="initiator", address="198.18.0.2", peer_address="198.18.0.3", identity="initiator.lab",
            peer_identity="responder.lab", psk="secret", subnet="198.19.1.0/24", peer_subnet="198.19.2.0/24")


@pytest.mark.parametrize("tries, deadline_ms", [(0, 375), (1, 750), (2, 1500), (3, 3000)])
def test_libreswan_gives_up_after_the_retransmissions_asked_for(tries, deadline_ms):
    """pluto retransmits 0.5, 1, 2, 4 s after the first sending (interval 0.5 s) and checks its deadline at each: to
    give up when the wait after the last of `tries` ends, the deadline lies after the one before, and in
    milliseconds (4.10 reads retransmit-timeout=1.5s as no value at all, and keeps its 60 s)."""
    conf = LIBRESWAN.adapter_class()(None, HOST).render(
        Scenario(retransmit_timeout_s=0.5, retransmit_tries=tries), SIDE)["/etc/ipsec.conf"]
    assert "retransmit-interval=500\n" in conf and f"retransmit-timeout={deadline_ms}ms\n" in conf
    retransmissions = [0.5 * 2 ** k for k in range(6)]
    checked = next(t for t in retransmissions if t * 1000 >= deadline_ms)
    assert checked == 0.5 * 2 ** tries and retransmissions.index(checked) == tries


def test_a_dead_peer_is_counted_no_sooner_than_the_liveness_delay_and_every_unanswered_wait():
    scenario = Scenario(dpd_delay_s=1, retransmit_timeout_s=0.5, retransmit_tries=2)
    assert scenario.dead_peer_after_s == 1 + 3 * 0.5
    assert Scenario(dpd_delay_s=1).dead_peer_after_s is None


class PeekedCapture:
    """A capture that grows: each peek copies one more frame of a finished pcap."""

    def __init__(self, frames):
        self.frames, self.peeks = frames, 0

    def peek(self, dest: Path) -> Path:
        self.peeks += 1
        wrpcap(str(dest), self.frames[:self.peeks])
        return dest


def ike_frames() -> list:
    return list(rdpcap(str(DATA / "strongswan_gcm_rekey.pcap")))


def test_the_ipsec_wire_is_read_again_until_the_check_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(ipsec_fixtures, "WIRE_POLL_S", 0)
    pair = ipsec_fixtures.CapturedWire()
    pair.capture, pair.pair_lab = PeekedCapture(ike_frames()), SimpleNamespace(dir=tmp_path)
    wire = pair.wire_until(lambda w: len(w.ike("IKE_AUTH")) == 2, timeout=5)
    assert len(wire.ike("IKE_AUTH")) == 2 and not wire.ike("INFORMATIONAL")
    assert not (tmp_path / "capture-so-far.pcap").exists()
    never = pair.wire_until(lambda w: False, timeout=0)  # the deadline: the case judges what there is
    assert isinstance(never, Wire)


def test_a_rekey_counts_once_answered_and_a_child_sa_made_anew_is_no_rekey():
    """A real capture of an old strongSwan set-up whose CHILD SAs expired and were made anew (no N(REKEY_SA)) while
    its IKE SA was rekeyed: the case's wait must not take the first for a CHILD SA rekey."""
    ike_keys, _ = keylog.parse((DATA / "strongswan_gcm_rekey.initiator.log").read_text())
    rekeys = decrypt_ike(Wire.from_pcap(DATA / "strongswan_gcm_rekey.pcap"), ike_keys).ike("CREATE_CHILD_SA")
    assert psk_suite.rekeyed(rekeys) == (False, True)
    requests_only = [m for m in rekeys if not m.is_response]
    assert psk_suite.rekeyed(requests_only) == (False, False)


faults_suite = load("suite_ipsec_faults", ROOT / "suites" / "ipsec" / "test_faults.py")


class RestartPair:
    """What responder_restart asks of an ipsec_pair, its responder back `restart_s` after the crash (on a fake clock
    that moves only when the pair says so); the case stops at wire() once it judged the restart in time."""

    class Reached(Exception):
        pass

    def __init__(self, clock, restart_s: float):
        from harness.ping import Ping
        from harness.protocols.ipsec.roles import ChildSa
        self.clock, self.restart_s, self.restarted = clock, restart_s, False
        self.measured = {}
        self.pair_lab = SimpleNamespace(measure=self.measured.__setitem__)
        old, new = ChildSa("net", 1, 0x1111, True), ChildSa("net", 2, 0x2222, True)
        self.tunnel = SimpleNamespace(up=True, ping=lambda count=3: Ping(count, count, ""), explain=lambda: "",
                                      child_sas=lambda role: [new if self.restarted else old])

    def establish(self, scenario):
        self.scenario = self.tunnel.scenario = scenario  # the host's speed: nothing stretched
        return self.tunnel

    def patience(self, seconds):
        return seconds

    def restart(self, role):
        self.clock.now += self.restart_s
        self.restarted = True

    def wire(self):
        raise self.Reached


class Clock:
    def __init__(self):
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@pytest.mark.parametrize("restart_s", [1.0, 2.4])
def test_responder_restart_judges_a_restart_the_timers_leave_room_for(monkeypatch, restart_s):
    clock = Clock()
    monkeypatch.setattr(faults_suite, "time", clock)
    pair = RestartPair(clock, restart_s)
    with pytest.raises(RestartPair.Reached):
        faults_suite.test_responder_restart(pair)
    assert pair.scenario.dead_peer_after_s == 2.5 and pair.measured["responder_back_after_s"] == pytest.approx(restart_s)


def test_responder_restart_is_broken_when_the_restart_outlasts_the_initiators_patience(monkeypatch):
    """With 0.5 s retransmits the initiator may count the responder dead 2.5 s after it last heard from it: a
    restart slower than that would have the case judge the lab's speed (NO_PROPOSAL_CHOSEN to the new IKE SA)."""
    from harness.errors import HarnessError
    clock = Clock()
    monkeypatch.setattr(faults_suite, "time", clock)
    with pytest.raises(HarnessError, match="took 2.5 s to restart; the initiator may count it dead 2.5 s after"):
        faults_suite.test_responder_restart(RestartPair(clock, 2.5))
