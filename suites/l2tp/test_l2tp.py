"""L2TPv2 (RFC 2661) between a LAC and an LNS: the control connection, a session, PPP through it, teardown."""
import pytest

from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp.fixtures import CONTROL_TIMEOUT_S
from harness.protocols.l2tp.scenario import Scenario

pytestmark = [pytest.mark.protocol("l2tp")]

MANDATORY = {  # RFC 2661 6.1, 6.2: the AVPs an SCCRQ and an SCCRP MUST carry
    "SCCRQ": ("Message Type", "Protocol Version", "Host Name", "Framing Capabilities", "Assigned Tunnel ID"),
    "SCCRP": ("Message Type", "Protocol Version", "Host Name", "Framing Capabilities", "Assigned Tunnel ID"),
}
# RFC 2661 5.8 lets a sender's retransmission timer and count be configured: 0.5 s doubling, 2 retransmissions. A peer
# that answers does so within milliseconds here; one that never answers is given up on 3.5 s after the first sending
# (the sender then clears the tunnel, the end of any wait for the answer), not 31 s.
GIVE_UP_SOON = {"retransmit_s": 0.5, "max_retransmissions": 2}


@pytest.mark.severity("critical")
def test_tunnel_setup(l2tp_pair):
    """RFC 2661 5.1: SCCRQ, SCCRP and SCCCN set up the control connection, and the last of them is acknowledged
    (a ZLB, or a message carrying the Nr); each carries its mandatory AVPs, and Ns/Nr count correctly."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    wire = lab.wire()
    lac, lns = lab.address("lac"), lab.address("lns")
    assert wire.message_types(src=lac, zlb=False)[:2] == ["SCCRQ", "SCCCN"], wire.describe()
    assert wire.message_types(src=lns, zlb=False)[:1] == ["SCCRP"], wire.describe()
    for d in wire.control():
        for name in MANDATORY.get(d.kind, ()):
            assert d.message.avp(name) is not None, f"{d.kind} from {d.src} without {name}:\n{d.describe()}"
    scccn = next(d for d in wire.control(src=lac) if d.kind == "SCCCN")
    acked = [d for d in wire.control(src=lns) if d.time > scccn.time and d.message.nr > scccn.message.ns]
    assert acked, f"the SCCCN (Ns {scccn.message.ns}) was never acknowledged:\n{wire.describe()}"
    for address in (lac, lns):  # RFC 2661 5.8; a retransmission (same Ns, same message) is legal and counts once
        problem = wire.sequence_error(address)
        assert problem is None, f"{problem}:\n{wire.describe()}"


def test_session_setup(l2tp_pair):
    """RFC 2661 5.4.2: ICRQ, ICRP and ICCN set up an incoming call; each side's Assigned Session ID is the
    session id the other side then uses towards it."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    wire = lab.wire()
    lac, lns = lab.address("lac"), lab.address("lns")
    assert "ICRQ" in wire.message_types(src=lac) and "ICCN" in wire.message_types(src=lac), wire.describe()
    assert "ICRP" in wire.message_types(src=lns), wire.describe()
    icrq = next(d for d in wire.control(src=lac) if d.kind == "ICRQ").message
    icrp = next(d for d in wire.control(src=lns) if d.kind == "ICRP").message
    lac_session, lns_session = icrq.avp("Assigned Session ID").value, icrp.avp("Assigned Session ID").value
    assert icrp.session_id == lac_session, f"ICRP sent to session {icrp.session_id}, the LAC assigned {lac_session}"
    towards_lns = {d.message.session_id for d in wire.data(src=lac)}
    assert towards_lns == {lns_session}, f"LAC data to sessions {towards_lns}, the LNS assigned {lns_session}"


@pytest.mark.features("data_plane")
def test_data_plane(l2tp_pair):
    """RFC 2661 4: PPP frames travel in L2TP data messages of the session; a ping crosses it both ways."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    result = lab.ping()
    assert result.all_answered, f"{result.output}\n{lab.explain()}"
    wire = lab.wire()
    carried = [d for d in wire.data() if d.message.ppp is not None and "ICMP" in d.message.ppp.summary()]
    lac, lns = lab.address("lac"), lab.address("lns")
    assert [d for d in carried if d.src == lac] and [d for d in carried if d.src == lns], \
        f"no ICMP inside L2TP data messages both ways:\n{wire.describe()}"


@pytest.mark.features("tunnel_auth")
def test_tunnel_auth(l2tp_pair):
    """RFC 2661 5.1.1: with a shared secret, a Challenge is answered by the Challenge Response MD5(type, secret,
    challenge), and the tunnel comes up."""
    lab = l2tp_pair.start(Scenario(secret="interop-secret"))
    session = lab.connect()
    assert session.up, session.detail
    wire = lab.wire()
    by_type = {d.kind: d.message for d in wire.control()}
    challenges = [(kind, m.avp("Challenge").value) for kind, m in by_type.items() if m.avp("Challenge")]
    assert challenges, f"no Challenge AVP in the control connection setup:\n{wire.describe()}"
    for kind, challenge in challenges:
        answer = {"SCCRQ": "SCCRP", "SCCRP": "SCCCN"}[kind]
        response = by_type[answer].avp("Challenge Response")
        assert response is not None and response.value == A.challenge_response(answer, b"interop-secret", challenge), \
            f"{answer} does not answer the {kind}'s Challenge with MD5(type, secret, challenge):\n{wire.describe()}"


def test_teardown(l2tp_pair):
    """RFC 2661 5.7: StopCCN clears the control connection and its sessions (a CDN may clear the call first);
    each carries a Result Code and is acknowledged."""
    lab = l2tp_pair.start(Scenario())
    session = lab.connect()
    assert session.up, session.detail
    lab.disconnect()
    wire = lab.wire()
    lac = lab.address("lac")
    stops = wire.sent(lac, "StopCCN")
    assert stops, f"the LAC sent no StopCCN:\n{wire.describe()}"
    for d in wire.sent(lac, "CDN") + stops[:1]:
        assert d.message.avp("Result Code") is not None, f"{d.kind} without a Result Code:\n{d.describe()}"
        assert wire.acknowledgement(d), f"the {d.kind} (Ns {d.message.ns}) was never acknowledged:\n{wire.describe()}"


@pytest.mark.features("tunnel_auth")
def test_tunnel_auth_wrong_secret(l2tp_pair):
    """RFC 2661 5.1.1: a Challenge Response computed with another secret is refused: the control connection ends
    in a StopCCN carrying a Result Code, and no call is placed."""
    lab = l2tp_pair.start(Scenario(secret="interop-secret", lns_secret="not-the-interop-secret"))
    lab.connect(wait=False)
    wire = lab.wire_until(lambda w: "StopCCN" in w.message_types(), timeout=CONTROL_TIMEOUT_S)
    stops = [d for d in wire.control() if d.kind == "StopCCN"]
    assert stops, f"no StopCCN within {CONTROL_TIMEOUT_S} s although the secrets differ:\n{wire.describe()}"
    result = stops[0].message.avp("Result Code")
    assert result is not None, f"StopCCN without a Result Code:\n{stops[0].describe()}"
    assert "ICRQ" not in wire.message_types(), f"a call was placed over an unauthenticated tunnel:\n{wire.describe()}"


@pytest.mark.features("tunnel_auth")
@pytest.mark.any_features("hidden_avps")
def test_hidden_avps(l2tp_pair):
    """RFC 2661 4.3: with hiding on, AVP values travel hidden (H bit, after a Random Vector), and the peer reads
    them with the shared secret: the tunnel and session ids it then addresses are the hidden ones. No padding:
    the RFC makes it optional."""
    assert_hidden_avps_read(l2tp_pair.start(Scenario(secret="interop-secret", hide_avps=True, **GIVE_UP_SOON)))


@pytest.mark.features("tunnel_auth")
@pytest.mark.any_features("hidden_avps")
def test_hidden_avps_padded(l2tp_pair):
    """RFC 2661 4.3: a hidden value may carry random padding after the original value, to obscure its length;
    the peer reads the original length and drops the padding (16 bytes of padding on every hidden AVP here)."""
    assert_hidden_avps_read(l2tp_pair.start(Scenario(secret="interop-secret", hide_avps=True, hidden_padding=16)))


def assert_hidden_avps_read(lab):
    session = lab.connect()
    wire = lab.wire()
    hidden = [(d, e) for d in wire.control() for e in d.message.avps if e.is_hidden]
    assert hidden, f"no hidden AVP on the wire:\n{wire.describe()}"
    for d, e in hidden:
        assert e.revealed, f"{e.name} hidden in {d.kind} from {d.src} does not unhide with the secret:\n{d.describe()}"
    assert session.up, f"no session with hidden AVPs: {session.detail}"
    for d, e in hidden:
        if e.name in ("Assigned Tunnel ID", "Assigned Session ID"):
            field = "tunnel_id" if e.name == "Assigned Tunnel ID" else "session_id"
            used = {getattr(r.message, field) for r in wire.datagrams if r.src == d.dst and r.time > d.time} - {0}
            assert used == {e.value}, (f"{d.src} assigned {field.replace('_', ' ')} {e.value} hidden in {d.kind}; "
                                       f"its peer then used {sorted(used)}:\n{wire.describe()}")


@pytest.mark.any_features("hello")
def test_keepalive(l2tp_pair):
    """RFC 2661 6.5: after a period of silence a Hello is sent, and it is acknowledged like any control message:
    on a quiet tunnel, by a ZLB."""
    lab = l2tp_pair.start(Scenario(hello_interval_s=1))
    session = lab.connect()
    assert session.up, session.detail
    senders = [lab.address(role) for role in ("lac", "lns") if lab.declares(role, "hello")]

    def hello_answered(wire) -> bool:
        return any(wire.acknowledgement(d) for src in senders for d in wire.sent(src, "HELLO"))
    wire = lab.wire_until(hello_answered, timeout=CONTROL_TIMEOUT_S)
    hellos = [d for src in senders for d in wire.sent(src, "HELLO")]
    assert hellos, f"no Hello from {senders} within {CONTROL_TIMEOUT_S} s (interval 1 s):\n{wire.describe()}"
    ack = wire.acknowledgement(hellos[0])
    assert ack is not None, f"the Hello (Ns {hellos[0].message.ns}) was never acknowledged:\n{wire.describe()}"
    assert ack.kind == "ZLB", f"the Hello was acknowledged by {ack.kind}, not a ZLB:\n{ack.describe()}"
