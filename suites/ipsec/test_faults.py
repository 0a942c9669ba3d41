"""Faults as cases: the underlay loses a packet, a peer crashes. RFC 7296 makes the initiator responsible for
recovery (2.1 retransmission, 2.4 liveness); the wire shows whether it did, and the tunnel whether it worked."""
import time

import pytest

from harness.errors import HarnessError, LabTimeout
from harness.protocols.ipsec.fixtures import IKE_PORT, INITIATOR, RESPONDER
from harness.protocols.ipsec.scenario import Scenario
from harness.waiting import wait_for

pytestmark = [pytest.mark.protocol("ipsec")]

RETRANSMIT_S = 0.5  # short timers, so a fault costs a second, not the vendors' default minutes
RECOVERY_TIMEOUT_S = 20
# The responder_restart case's: a check after a second of silence, given up after 3 waits of 0.5 s (strongSwan; a
# vendor that backs off waits longer): no sooner than 2.5 s after the last packet from the responder, which is back
# and loaded ~1 s after it crashed.
RESTART_TIMERS = {"dpd_delay_s": 1, "retransmit_timeout_s": 0.5, "retransmit_tries": 2}


@pytest.mark.features("psk", "child_sa")
def test_loss_during_setup(ipsec_pair):
    """RFC 7296 2.1: the initiator retransmits a request that went unanswered -- the same message again, same
    SPIi and message ID 0 -- so with the first IKE_SA_INIT request lost on the underlay the tunnel still
    comes up, and carries traffic."""
    underlay = ipsec_pair.impair(RESPONDER).drop(matching=f"udp dport {IKE_PORT}", first=1)
    tunnel = ipsec_pair.establish(Scenario(retransmit_timeout_s=RETRANSMIT_S))
    assert underlay.dropped() == [1], f"{underlay.describe()}: dropped {underlay.dropped()} packets, not 1"
    assert tunnel.up, tunnel.explain()
    assert tunnel.child_sas(INITIATOR), f"initiator reports no installed CHILD SA\n{tunnel.explain()}"
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    init = ipsec_pair.wire().ike("IKE_SA_INIT", retransmissions=True)
    requests = [m for m in init if not m.is_response]
    responses = [m for m in init if m.is_response]
    assert len(requests) >= 2, f"expected the lost IKE_SA_INIT request to be sent again:\n{init.describe()}"
    lost, again = requests[:2]
    assert (again.ispi, again.message_id, again.data) == (lost.ispi, 0, lost.data), \
        f"the second IKE_SA_INIT request is not a retransmission of the first:\n{init.describe()}"
    assert responses and responses[0].ispi == lost.ispi and responses[0].time > again.time, \
        f"expected the retransmission answered:\n{init.describe()}"
    assert not responses[0].errors, init.describe()
    ipsec_pair.pair_lab.measure("retransmitted_after_s", again.time - lost.time)


@pytest.mark.features("psk", "child_sa", "dpd_restart")
def test_responder_restart(ipsec_pair):
    """RFC 7296 2.4: a responder that crashed and came back has lost its SAs and answers no liveness check for
    them; the initiator counts it dead after its retransmissions run out and, configured to restart, sets the
    tunnel up anew: a new IKE_SA_INIT with new SPIs, a new CHILD SA, and traffic flows again."""
    scenario = Scenario(dpd_action="restart", **RESTART_TIMERS)
    tunnel = ipsec_pair.establish(scenario)
    assert tunnel.up, tunnel.explain()
    last_heard = time.time()  # no later than the echo reply below: the initiator's liveness timer starts there
    assert tunnel.ping(count=1).all_answered, "no traffic before the restart"
    old_spis = {sa.spi_out for sa in tunnel.child_sas(INITIATOR)}

    restarted_at = time.time()  # the capture's clock: pcap timestamps are the host's
    ipsec_pair.restart(RESPONDER)
    back = time.time()
    ipsec_pair.pair_lab.measure("responder_back_after_s", back - restarted_at)
    # The initiator must not give up on the peer before it is back and loaded (else NO_PROPOSAL_CHOSEN, and the
    # case would judge the lab's slowness): a restart slower than the timers allow leaves nothing to judge.
    dead_after = tunnel.scenario.dead_peer_after_s  # the timers the daemons got (stretched for a microVM)
    if back >= last_heard + dead_after:
        raise HarnessError(f"the responder took {back - restarted_at:.1f} s to restart; the initiator may count it "
                           f"dead {dead_after:g} s after it last heard from it, before it was back")
    try:
        wait_for(lambda: any(sa.spi_out not in old_spis for sa in tunnel.child_sas(INITIATOR)),
                 timeout=ipsec_pair.patience(RECOVERY_TIMEOUT_S),
                 what="the initiator to install a new CHILD SA after the restart")
    except LabTimeout as exc:
        pytest.fail(f"{exc}\n{tunnel.explain()}")
    ping = tunnel.ping()
    assert ping.all_answered, f"no traffic through the tunnel set up anew:\n{ping.output}"

    wire = ipsec_pair.wire()
    init = [m for m in wire.ike("IKE_SA_INIT") if not m.is_response]
    assert len(init) == 2, f"expected one IKE_SA_INIT before the restart and one after:\n{wire.describe()}"
    first, anew = init
    assert anew.time > restarted_at and anew.ispi != first.ispi, \
        f"expected a new IKE_SA_INIT with a new SPIi after the restart:\n{wire.describe()}"
    sent = [m for m in wire.ike("INFORMATIONAL", retransmissions=True)
            if m.ispi == first.ispi and not m.is_response and restarted_at < m.time < anew.time]
    # The first request after the crash is the liveness check; what comes after its retransmissions under another
    # message ID (Libreswan deletes the IKE SA it gave up on) is not part of it.
    checks = [m for m in sent if m.message_id == sent[0].message_id] if sent else []
    assert len(checks) >= 2 and all(m.data == checks[0].data for m in checks), \
        f"expected an unanswered liveness check, retransmitted, between the restart and the new IKE SA:\n" \
        f"{wire.describe()}"
    answer = [m for m in wire.ike("IKE_SA_INIT") if m.is_response and m.ispi == anew.ispi]
    assert answer and answer[0].rspi != first.rspi and not answer[0].errors, wire.describe()
    ipsec_pair.pair_lab.measure("recovered_after_s", anew.time - restarted_at)
