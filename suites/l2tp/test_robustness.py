"""What RFC 2661 says a peer must tolerate and what it must refuse, probed by the harness's reference peer
(scapy-l2tp) misbehaving on purpose, once: each cell judges the OTHER side (`lab.tested`). The probes are
listed in harness/protocols/l2tp/scenario.py (PROBES)."""
import pytest

from harness.protocols.l2tp.fixtures import CONTROL_TIMEOUT_S
from harness.protocols.l2tp.scenario import Scenario

pytestmark = [pytest.mark.protocol("l2tp"), pytest.mark.probes]
UNKNOWN_VENDOR = 32473  # the vendor id of the probe's unknown AVP (RFC 5612's documentation enterprise number)
# RFC 2661 5.8 lets a sender's retransmission timer and count be configured: 0.5 s doubling, 2 retransmissions. A peer
# that answers does so within milliseconds here; one that never answers is given up on 3.5 s after the first sending
# (the sender then clears the tunnel, the end of any wait for the answer), not 31 s.
GIVE_UP_SOON = {"retransmit_s": 0.5, "max_retransmissions": 2}


def probe_avp(wire, src):
    """The unknown AVP the prober put in its SCCRQ / SCCRP, with the message carrying it."""
    return next(((d, e) for d in wire.control(src=src) if d.kind in ("SCCRQ", "SCCRP")
                 for e in d.message.avps if e.vendor_id == UNKNOWN_VENDOR), (None, None))


def test_result_code_8(l2tp_pair):
    """RFC 2661 4.4.2: a Result Code AVP may be 8 bytes (a result code without an error code). A CDN carrying
    one is acknowledged and clears the call, not the tunnel."""
    # The prober says Hello after a second of silence (RFC 2661 6.5): the first control message after its CDN.
    lab = l2tp_pair.start(Scenario(hello_interval_s=1), probe="result_code_8")
    session = lab.connect()
    assert session.up, session.detail
    lab.probe()
    prober, tested = lab.address(lab.prober), lab.address(lab.tested)
    wire = lab.wire_until(lambda w: any(w.acknowledgement(d) for d in w.sent(prober, "CDN")),
                          timeout=CONTROL_TIMEOUT_S)
    cdn = wire.sent(prober, "CDN")
    assert cdn and cdn[0].message.avp("Result Code").length == 8, f"the probe's CDN is not on the wire:\n{wire.describe()}"
    assert wire.acknowledgement(cdn[0]), f"the CDN with an 8-byte Result Code was not acknowledged:\n{wire.describe()}"
    assert lab.session_down(lab.tested), f"the {lab.tested}'s end of the session outlived the CDN:\n{lab.explain()}"

    # A StopCCN over the CDN comes before the tested side acknowledges the prober's next message (RFC 2661 5.8:
    # control messages are taken in Ns order, so it has dealt with the CDN by then): wait for that, not a while.
    def hello_after(w):
        return next((d for d in w.sent(prober, "HELLO") if d.time > cdn[0].time), None)
    wire = lab.wire_until(lambda w: w.sent(tested, "StopCCN") or (hello_after(w) and w.acknowledgement(hello_after(w))),
                          timeout=CONTROL_TIMEOUT_S)
    stops = wire.sent(tested, "StopCCN")
    assert not stops, f"the {lab.tested} stopped the tunnel over a legal CDN:\n{stops[0].describe()}"
    hello = hello_after(wire)
    assert hello and wire.acknowledgement(hello), \
        (f"the {lab.tested} did not acknowledge the Hello the {lab.prober} sent after the CDN (within "
         f"{CONTROL_TIMEOUT_S} s): the tunnel did not outlive the CDN\n{wire.describe()}")


def test_unknown_avp_ignored(l2tp_pair):
    """RFC 2661 4.1: an unrecognized AVP without the M bit MUST be ignored: the tunnel and the call come up."""
    lab = l2tp_pair.start(Scenario(), probe="unknown_avp")
    session = lab.connect()
    wire = lab.wire()
    carrier, unknown = probe_avp(wire, lab.address(lab.prober))
    assert unknown is not None and not unknown.mandatory, f"the probe's unknown AVP is not on the wire:\n{wire.describe()}"
    assert session.up, f"{carrier.kind} with an unknown non-mandatory AVP was not ignored: {session.detail}"
    stops = wire.sent(lab.address(lab.tested), "StopCCN")
    assert not stops, f"the {lab.tested} stopped the tunnel:\n{stops[0].describe()}"


def test_unknown_mandatory_avp(l2tp_pair):
    """RFC 2661 4.1: an unrecognized AVP with the M bit in a message of the control connection MUST end the
    tunnel: StopCCN, with a Result Code, and no call."""
    lab = l2tp_pair.start(Scenario(**GIVE_UP_SOON), probe="unknown_mandatory_avp")
    lab.connect(wait=False)
    tested = lab.address(lab.tested)
    # stopped; or the call connected, or the prober gave up on an answer: then it will not be
    wire = lab.wire_until(lambda w: w.sent(tested, "StopCCN") or "ICCN" in w.message_types() or lab.gave_up(w),
                          timeout=CONTROL_TIMEOUT_S)
    carrier, unknown = probe_avp(wire, lab.address(lab.prober))
    assert unknown is not None and unknown.mandatory, f"the probe's unknown AVP is not on the wire:\n{wire.describe()}"
    stops = wire.sent(tested, "StopCCN")
    waited = lab.gave_up(wire) or f"waited {CONTROL_TIMEOUT_S} s, or until a call connected"
    assert stops, (f"the {lab.tested} did not stop the tunnel over an unknown mandatory AVP in the {carrier.kind} "
                   f"({waited}); it sent {wire.said(tested)}:\n{wire.describe()}")
    assert stops[0].message.avp("Result Code") is not None, f"StopCCN without a Result Code:\n{stops[0].describe()}"
    assert "ICCN" not in wire.message_types(), f"a call was connected over the tunnel:\n{wire.describe()}"


def test_duplicate_acknowledged_and_ignored(l2tp_pair):
    """RFC 2661 5.8: a message received again (its Ns already acknowledged) is acknowledged and otherwise ignored:
    no answer to it, the session goes on."""
    lab = l2tp_pair.start(Scenario(), probe="duplicate")
    session = lab.connect()
    assert session.up, session.detail
    before = lab.wire_until(lambda w: True, timeout=0)  # the wire so far
    lab.probe()
    prober, tested = lab.address(lab.prober), lab.address(lab.tested)

    def sent(wire, src):  # the duplicate is a retransmission by the wire's definition: count every sending
        return wire.control(src=src, retransmissions=True)
    wire = lab.wire_until(lambda w: len(sent(w, tested)) > len(sent(before, tested)), timeout=CONTROL_TIMEOUT_S)
    duplicate = next((d for d in sent(wire, prober)[len(sent(before, prober)):] if d.kind != "ZLB"), None)
    assert duplicate is not None, f"the probe's duplicate is not on the wire:\n{wire.describe()}"
    answers = [d for d in sent(wire, tested) if d.time > duplicate.time]
    assert answers, f"the duplicate {duplicate.kind} (Ns {duplicate.message.ns}) was not acknowledged:\n{wire.describe()}"
    assert all(d.kind == "ZLB" for d in answers), \
        f"the duplicate {duplicate.kind} was processed again:\n{wire.describe()}"
    expected_nr = sent(before, tested)[-1].message.nr
    assert answers[0].message.nr == expected_nr, \
        f"the duplicate was counted as a new message (Nr {expected_nr} -> {answers[0].message.nr}):\n{wire.describe()}"
    result = lab.ping()
    assert result.all_answered, f"the session did not survive the duplicate:\n{result.output}"


def test_unacknowledged_message_retransmitted(l2tp_pair):
    """RFC 2661 5.8: a control message left unacknowledged is retransmitted with the same Ns, until it is
    acknowledged; the tunnel then comes up."""
    lab = l2tp_pair.start(Scenario(), probe="withhold_ack")
    withheld = {"lac": "SCCRP", "lns": "SCCCN"}[lab.prober]
    session = lab.connect()
    wire = lab.wire()
    copies = wire.sent(lab.address(lab.tested), withheld, retransmissions=True)
    assert len(copies) >= 2, f"the unacknowledged {withheld} was not retransmitted:\n{wire.describe()}"
    assert len({d.message.ns for d in copies}) == 1, \
        f"the {withheld} was retransmitted with another Ns: {[d.message.ns for d in copies]}"
    assert session.up, f"the tunnel did not come up after the retransmission: {session.detail}"
