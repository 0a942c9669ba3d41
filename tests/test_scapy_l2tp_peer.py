"""The reference L2TPv2 peer (vendors/scapy-l2tp/peer.py) against RFC 2661, driven by canned datagrams built with
the harness codec, a fake socket and a fake clock: the control connection and tunnel authentication (5.1, 5.1.1),
reliable delivery (5.8), teardown (5.7), unknown AVPs (4.1), hidden AVPs (4.3), Hello (5.5), an incoming call
(5.2.1) and the misbehaviours the robustness cases ask of it. No containers, no network, no TUN device."""
from __future__ import annotations

import struct
import sys

import pytest
from scapy.layers.ppp import PPP_LCP_Configure

from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp import codec as C
from support import ROOT, load

VENDOR = ROOT / "vendors" / "scapy-l2tp"
_path = list(sys.path)
peer_py = load("scapy_l2tp_peer", VENDOR / "peer.py")
sys.path[:] = _path  # peer.py puts its own folder first on sys.path; keep it out of everyone else's imports

PEER = "198.18.0.2"
SOURCE = (PEER, C.PORT)
SECRET = "s3cret"
LAC_TID, LNS_TID = 0x1A2B, 0x3C4D  # the tunnel ids the canned peer assigns
LAC_SID = 0x0A0B  # the session id the canned LAC assigns
START = 100.0
WRONG = bytes(16)  # a Challenge Response no secret gives (in practice)


class Clock:
    def __init__(self):
        self.t = START

    def __call__(self) -> float:
        return self.t


class Socket:
    def __init__(self):
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data: bytes, address: tuple) -> None:
        self.sent.append((bytes(data), address))


class Lab:
    """One Peer, its fake socket and clock; `receive` plays the other end, `take` reads what the peer sent."""

    def __init__(self, role: str, **overrides):
        self.config = {
            "role": role, "address": "198.18.0.3", "peer_address": PEER, "hostname": f"{role}.lab", "secret": None,
            "hide_avps": False, "hello_interval_s": 0, "misbehave": None, "local_inner": "198.19.200.1",
            "remote_inner": "198.19.200.2", "ppp_auth": "pap", "username": "u", "password": "p",
            "interface": "ppp0", "mru": 1400, **overrides}
        self.sock, self.clock = Socket(), Clock()
        self.peer = peer_py.Peer(self.config, self.sock, self.clock)
        self.taken = 0

    def receive(self, kind: str | None, avps=(), *, ns: int, nr: int, tunnel: int | None = None,
                session: int = 0) -> bytes:
        """Delivers a control message (a ZLB for kind None) from the configured peer; returns its bytes."""
        tunnel = self.peer.local_tid if tunnel is None else tunnel
        avps = [] if kind is None else [A.message_type(kind), *avps]
        data = C.encode(C.control(tunnel, session, ns, nr, avps))
        self.peer.datagram(data, SOURCE)
        return data

    def at(self, seconds: float) -> None:
        """The fake clock at START + seconds, then the peer's tick()."""
        self.clock.t = START + seconds
        self.peer.tick()

    def take(self) -> list[C.L2tpMessage]:
        """What the peer sent since the last take, decoded with the tunnel secret."""
        new, self.taken = self.sock.sent[self.taken:], len(self.sock.sent)
        assert all(address == SOURCE for _, address in new), "every datagram goes to the peer's port 1701"
        messages = [C.decode(data, self.config["secret"]) for data, _ in new]
        for message in messages:
            assert not message.malformed, message.describe()
        return messages

    def take_one(self) -> C.L2tpMessage:
        messages = self.take()
        assert len(messages) == 1, [m.describe() for m in messages]
        return messages[0]

    @property
    def tunnel(self) -> str:
        return self.peer.tunnel


@pytest.fixture(autouse=True)
def no_tun(monkeypatch):
    """A started PPP session gets no TUN device (unit tests cannot open one)."""
    monkeypatch.setattr(peer_py.P, "attach_tun", lambda link, name, log: None)


# --- building and reading messages ------------------------------------------------------------------------------

def tunnel_avps(tunnel_id: int, *extra) -> list:
    """The mandatory AVPs of an SCCRQ / SCCRP after the Message Type (RFC 2661 6.1, 6.2), then `extra`."""
    return [A.protocol_version(1, 0), A.host_name("canned.lab"), A.framing_capabilities(3),
            A.assigned_tunnel_id(tunnel_id), *extra]


def sccrq(lab: Lab, *extra) -> C.L2tpMessage:
    """The canned LAC's SCCRQ (tunnel 0, Ns 0); returns what the LNS answered."""
    lab.receive("SCCRQ", tunnel_avps(LAC_TID, *extra), ns=0, nr=0, tunnel=0)
    return lab.take_one()


def scccn(lab: Lab, sccrp: C.L2tpMessage, *, response: bytes | None = None) -> bytes:
    """The canned LAC's SCCCN acknowledging `sccrp`, answering its Challenge (with `response` when given)."""
    challenge = sccrp.avp("Challenge")
    if response is None and challenge is not None:
        response = A.challenge_response("SCCCN", SECRET, challenge.value)
    avps = [] if response is None else [A.challenge_response_avp(response)]
    return lab.receive("SCCCN", avps, ns=1, nr=1)


def lns_established(**config) -> Lab:
    """An LNS whose tunnel is up (SCCRQ, SCCRP, SCCCN), its ZLB for the SCCCN sent: it expects Ns 2 next."""
    lab = Lab("lns", **config)
    scccn(lab, sccrq(lab))
    lab.at(peer_py.ACK_DELAY_S)
    assert lab.tunnel == "established" and [m.message_type for m in lab.take()] == ["ZLB"]
    return lab


def sccrp(lab: Lab, *extra, response: bytes | None = None) -> None:
    """The canned LNS's SCCRP to the LAC's SCCRQ (taken), answering its Challenge (with `response` when given)."""
    request = lab.take_one()
    challenge = request.avp("Challenge")
    if response is None and challenge is not None:
        response = A.challenge_response("SCCRP", SECRET, challenge.value)
    answer = [] if response is None else [A.challenge_response_avp(response)]
    lab.receive("SCCRP", tunnel_avps(LNS_TID, *answer, *extra), ns=0, nr=1)


def lac_connected(*extra, **config) -> Lab:
    """A LAC that sent its SCCRQ and received the canned SCCRP (with `extra` AVPs)."""
    lab = Lab("lac", **config)
    lab.peer.connect()
    sccrp(lab, *extra)
    return lab


def result(message: C.L2tpMessage) -> dict:
    """The Result Code AVP's fields (result_code, and error_code / error_message when present)."""
    found = message.avp("Result Code")
    assert found is not None, message.describe()
    return found.layer.values()


def without_nr(data: bytes) -> bytes:
    return data[:10] + data[12:]  # Nr sits after flags, length, tunnel, session and Ns


def names(message: C.L2tpMessage) -> list[str]:
    return [entry.name for entry in message.avps]


# --- the control connection, LNS side (RFC 2661 5.1, 5.1.1) -----------------------------------------------------

def test_lns_answers_an_sccrq_with_an_sccrp_to_the_lacs_assigned_tunnel_id():
    """5.1 / 6.2: the SCCRP goes to the tunnel the SCCRQ's Assigned Tunnel ID names, carries Ns 0 and Nr 1
    (the SCCRQ acknowledged) and the mandatory Message Type, Protocol Version, Framing Capabilities, Host Name and
    Assigned Tunnel ID."""
    lab = Lab("lns")
    reply = sccrq(lab)
    assert reply.message_type == "SCCRP"
    assert (reply.tunnel_id, reply.session_id, reply.ns, reply.nr) == (LAC_TID, 0, 0, 1)
    assert names(reply)[0] == "Message Type"
    assert {"Protocol Version", "Framing Capabilities", "Host Name", "Assigned Tunnel ID"} <= set(names(reply))
    assert reply.avp("Assigned Tunnel ID").value == lab.peer.local_tid != 0
    assert reply.avp("Host Name").value == b"lns.lab"
    assert reply.avp("Challenge") is None and reply.avp("Challenge Response") is None  # no secret, no challenge
    assert lab.tunnel == "wait-scccn"


def test_lns_answers_the_lacs_challenge_and_sends_its_own():
    """5.1.1: the SCCRP's Challenge Response is MD5(2, secret, the SCCRQ's Challenge); with a secret the LNS
    challenges the LAC in turn."""
    lab = Lab("lns", secret=SECRET)
    reply = sccrq(lab, A.challenge(b"lac challenge 16"))
    assert reply.avp("Challenge Response").value == A.challenge_response("SCCRP", SECRET, b"lac challenge 16")
    assert reply.avp("Challenge").value
    assert reply.avp("Challenge").value != b"lac challenge 16"


def test_lns_stops_the_tunnel_when_the_scccns_challenge_response_is_wrong():
    """5.1.1: a response that does not match disallows the tunnel: StopCCN (Result Code 4, not authorized) with
    the LNS's Assigned Tunnel ID, to the LAC's tunnel; the SCCCN is acknowledged by it (Nr 2)."""
    lab = Lab("lns", secret=SECRET)
    scccn(lab, sccrq(lab), response=WRONG)
    stop = lab.take_one()
    assert stop.message_type == "StopCCN"
    assert (stop.tunnel_id, stop.ns, stop.nr) == (LAC_TID, 1, 2)
    assert result(stop)["result_code"] == 4
    assert stop.avp("Assigned Tunnel ID").value == lab.peer.local_tid
    assert lab.tunnel == "closing"


def test_lns_acknowledges_a_right_scccn_with_a_zlb_once_nothing_else_carries_the_nr():
    """5.8: with no message to carry the acknowledgement, a ZLB does, after ACK_DELAY_S: Ns 1 (its next), Nr 2."""
    lab = Lab("lns", secret=SECRET)
    scccn(lab, sccrq(lab))
    assert lab.tunnel == "established"
    lab.at(peer_py.ACK_DELAY_S / 2)
    assert lab.take() == []
    lab.at(peer_py.ACK_DELAY_S)
    ack = lab.take_one()
    assert ack.is_zlb and (ack.tunnel_id, ack.ns, ack.nr) == (LAC_TID, 1, 2)


# --- reliable delivery (RFC 2661 5.8) ---------------------------------------------------------------------------

def test_an_unacknowledged_message_is_retransmitted_after_1s_with_its_ns_and_an_up_to_date_nr():
    """5.8: a retransmission is the same message, same Ns; only Nr follows what has been received since."""
    lab = Lab("lns")
    first = sccrq(lab)
    lab.receive("HELLO", ns=1, nr=0)  # received, and the SCCRP still unacknowledged (Nr 0)
    lab.at(0.99)
    assert [m.message_type for m in lab.take()] == ["ZLB"]  # the HELLO acknowledged; no retransmission yet
    lab.at(1.0)
    again = lab.take_one()
    assert again.message_type == "SCCRP" and (again.ns, again.nr) == (0, 2)
    assert without_nr(again.data) == without_nr(first.data)


def test_retransmissions_back_off_1_2_4_8_8_seconds_then_the_tunnel_is_cleared():
    """5.8: the retransmission interval doubles from 1 s up to a cap of 8 s; after RETRANSMISSIONS
    retransmissions without an acknowledgement the tunnel is cleared, and nothing more is sent."""
    lab = Lab("lns")
    sccrq(lab)
    sent, closed_at = [], None
    for step in range(1, 40 * 4):
        lab.at(step / 4)
        sent += [(step / 4, message.message_type, message.ns) for message in lab.take()]
        if closed_at is None and lab.tunnel == "closed":
            closed_at = step / 4
    assert peer_py.RETRANSMISSIONS == 5
    assert sent == [(t, "SCCRP", 0) for t in (1, 3, 7, 15, 23)]
    assert closed_at == 31  # the last retransmission's 8 s passed unacknowledged


def test_a_case_may_ask_for_a_shorter_first_wait_and_fewer_retransmissions():
    """5.8 has the timer and the count configurable: 0.5 s doubling, 2 retransmissions gives sendings at 0, 0.5 and
    1.5 s and the tunnel cleared at 3.5 s (what the harness's wait for an answer then counts on)."""
    lab = Lab("lns", retransmit_s=0.5, max_retransmissions=2)
    sccrq(lab)
    sent, closed_at = [], None
    for step in range(1, 10 * 4):
        lab.at(step / 4)
        sent += [step / 4 for message in lab.take() if message.message_type == "SCCRP"]
        if closed_at is None and lab.tunnel == "closed":
            closed_at = step / 4
    assert sent == [0.5, 1.5] and closed_at == 3.5


def test_a_message_the_peers_nr_acknowledges_is_not_retransmitted():
    """5.8: Nr acknowledges every message before it; an acknowledged message leaves the retransmission queue."""
    lab = Lab("lns")
    scccn(lab, sccrq(lab))
    lab.take()
    lab.at(20)
    assert [m.message_type for m in lab.take()] == ["ZLB"]


def test_a_duplicate_is_acknowledged_with_a_zlb_and_not_processed_again():
    """5.8: a message whose Ns was already received is acknowledged (a ZLB) and otherwise ignored: no second
    SCCRP, the tunnel unchanged."""
    lab = Lab("lns")
    sccrq(lab)
    tunnel_id = lab.peer.local_tid
    lab.receive("SCCRQ", tunnel_avps(LAC_TID), ns=0, nr=0, tunnel=0)
    ack = lab.take_one()
    assert ack.is_zlb and (ack.tunnel_id, ack.ns, ack.nr) == (LAC_TID, 1, 1)
    assert (lab.tunnel, lab.peer.local_tid) == ("wait-scccn", tunnel_id)


def test_a_malformed_message_with_a_readable_header_is_acknowledged_and_refused_with_the_reason():
    """A HELLO whose AVP runs past the end of the message is not read as a HELLO: the tunnel is stopped with
    Result Code 2 (general error), Error Code 2 (length is wrong) and the codec's reason, carrying the Nr."""
    lab = lns_established()
    data = bytearray(C.encode(C.control(lab.peer.local_tid, 0, 2, 2, [A.message_type("HELLO")])))
    struct.pack_into("!H", data, 12, 0x8000 | 30)  # the Message Type AVP claims 30 bytes; 8 are there
    lab.peer.datagram(bytes(data), SOURCE)
    stop = lab.take_one()
    assert stop.message_type == "StopCCN" and stop.nr == 3, stop.describe()
    fields = result(stop)
    assert (fields["result_code"], fields["error_code"]) == (2, 2), fields
    assert b"runs past the end" in fields["error_message"], fields


def test_a_message_whose_header_cannot_be_read_is_dropped():
    lab = lns_established()
    lab.peer.datagram(b"\xc8\x02\x00", SOURCE)
    lab.at(5)
    assert lab.take() == [] and lab.tunnel == "established"


def test_an_out_of_order_message_within_the_window_is_held_until_the_gap_fills():
    """5.8: a message ahead of the expected Ns but within the receive window is kept, and read once the missing
    one arrives (here a StopCCN, Ns 3, before the HELLO, Ns 2)."""
    lab = lns_established()
    lab.receive("StopCCN", [A.assigned_tunnel_id(LAC_TID), A.result_code(1)], ns=3, nr=1)
    lab.at(1)
    assert lab.take() == [] and lab.tunnel == "established"
    lab.receive("HELLO", ns=2, nr=1)
    ack = lab.take_one()  # the StopCCN is acknowledged at once (5.7)
    assert ack.is_zlb and ack.nr == 4
    assert lab.tunnel == "closed" and lab.peer.last_result["result"] == 1


def test_a_message_beyond_the_receive_window_is_dropped():
    """5.8: what lies beyond the receive window is not kept: once the gap fills it is still unread."""
    lab = lns_established()
    lab.receive("StopCCN", [A.assigned_tunnel_id(LAC_TID), A.result_code(1)], ns=2 + peer_py.RECEIVE_WINDOW, nr=1)
    for ns in range(2, 2 + peer_py.RECEIVE_WINDOW):
        lab.receive("HELLO", ns=ns, nr=1)
    lab.at(1)
    ack = lab.take_one()
    assert ack.is_zlb and ack.nr == 2 + peer_py.RECEIVE_WINDOW
    assert lab.tunnel == "established"


def test_no_more_messages_outstanding_than_the_peers_receive_window_size():
    """5.8 / 4.4.3: with the LNS's Receive Window Size 1 the LAC's ICRQ waits until its SCCCN is acknowledged."""
    lab = lac_connected(A.receive_window_size(1))
    confirm = lab.take_one()
    assert confirm.message_type == "SCCCN" and confirm.ns == 1
    lab.at(0.5)
    assert lab.take() == []
    lab.receive(None, ns=1, nr=2)  # the LNS's ZLB acknowledging the SCCCN
    request = lab.take_one()
    assert request.message_type == "ICRQ" and (request.tunnel_id, request.ns) == (LNS_TID, 2)


# --- the control connection, LAC side (RFC 2661 5.1, 5.1.1, 5.7) ------------------------------------------------

def test_lac_connect_sends_an_sccrq_with_its_assigned_tunnel_id_and_challenge():
    """5.1 / 6.1: the SCCRQ goes to tunnel 0 with Ns 0, Nr 0, the mandatory AVPs and (with a secret) a Challenge."""
    lab = Lab("lac", secret=SECRET)
    lab.peer.connect()
    request = lab.take_one()
    assert request.message_type == "SCCRQ"
    assert (request.tunnel_id, request.session_id, request.ns, request.nr) == (0, 0, 0, 0)
    assert {"Protocol Version", "Framing Capabilities", "Host Name", "Assigned Tunnel ID"} <= set(names(request))
    assert request.avp("Assigned Tunnel ID").value == lab.peer.local_tid
    assert request.avp("Challenge").value
    assert lab.tunnel == "wait-sccrp"


def test_lac_confirms_an_sccrp_whose_challenge_response_is_right():
    """5.1.1: the SCCCN answers the LNS's Challenge with MD5(3, secret, challenge); the LAC then places its call."""
    lab = lac_connected(A.challenge(b"lns challenge 16"), secret=SECRET)
    confirm, request = lab.take()
    assert confirm.message_type == "SCCCN" and (confirm.tunnel_id, confirm.ns, confirm.nr) == (LNS_TID, 1, 1)
    assert confirm.avp("Challenge Response").value == A.challenge_response("SCCCN", SECRET, b"lns challenge 16")
    assert request.message_type == "ICRQ"
    assert lab.tunnel == "established"


def test_lac_stops_the_tunnel_when_the_sccrps_challenge_response_is_wrong():
    """5.1.1: the LNS did not prove the secret: StopCCN with Result Code 4 to its tunnel, no SCCCN."""
    lab = Lab("lac", secret=SECRET)
    lab.peer.connect()
    sccrp(lab, response=WRONG)
    stop = lab.take_one()
    assert stop.message_type == "StopCCN" and stop.tunnel_id == LNS_TID
    assert result(stop)["result_code"] == 4
    assert lab.tunnel == "closing"


def test_lac_acknowledges_a_stopccn_at_once_with_a_zlb_and_closes():
    """5.7: the StopCCN is acknowledged (a ZLB, not after a delay) and the tunnel and its sessions are gone:
    nothing of theirs is retransmitted, and a retransmitted StopCCN is acknowledged again."""
    lab = lac_connected()
    lab.take()  # SCCCN (Ns 1) and ICRQ (Ns 2), left unacknowledged
    stop = lab.receive("StopCCN", [A.assigned_tunnel_id(LNS_TID), A.result_code(6)], ns=1, nr=1)
    ack = lab.take_one()
    assert ack.is_zlb and (ack.tunnel_id, ack.ns, ack.nr) == (LNS_TID, 3, 2)
    assert lab.tunnel == "closed" and lab.peer.session.state == "closed"
    assert lab.peer.last_result["result"] == 6
    lab.at(20)
    assert lab.take() == []
    lab.peer.datagram(stop, SOURCE)
    assert lab.take_one().is_zlb


def test_lac_acknowledges_a_stopccn_refusing_its_sccrq_whatever_tunnel_it_names():
    """5.7: an LNS refusing the SCCRQ may not address the LAC's tunnel (xl2tpd uses 65535); the StopCCN is still
    the answer: acknowledged by a ZLB to the LNS's Assigned Tunnel ID, and the tunnel is closed."""
    lab = Lab("lac")
    lab.peer.connect()
    lab.take()
    lab.receive("StopCCN", [A.assigned_tunnel_id(LNS_TID), A.result_code(4)], ns=0, nr=1, tunnel=0xFFFF)
    ack = lab.take_one()
    assert ack.is_zlb and (ack.tunnel_id, ack.ns, ack.nr) == (LNS_TID, 1, 1)
    assert lab.tunnel == "closed" and lab.peer.last_result["result"] == 4


# --- an incoming call (RFC 2661 5.2.1) --------------------------------------------------------------------------

def test_lac_answers_an_icrp_with_an_iccn_and_starts_ppp():
    """5.2.1: the ICCN goes to the LNS's session with Tx Connect Speed and Framing Type; PPP then starts:
    an LCP Configure-Request in a data message to the LNS's tunnel and session."""
    lab = lac_connected()
    _, request = lab.take()
    lab.receive("ICRP", [A.assigned_session_id(0x5151)], ns=1, nr=3, session=request.avp("Assigned Session ID").value)
    connected, lcp = lab.take()
    assert connected.message_type == "ICCN" and (connected.session_id, connected.ns) == (0x5151, 3)
    assert {"Tx Connect Speed", "Framing Type"} <= set(names(connected))
    assert not lcp.is_control and (lcp.tunnel_id, lcp.session_id) == (LNS_TID, 0x5151)
    assert lcp.ppp.haslayer(PPP_LCP_Configure) and lcp.ppp[PPP_LCP_Configure].code == 1  # Configure-Request
    assert lab.peer.session.state == "established"


# --- unknown AVPs (RFC 2661 4.1) --------------------------------------------------------------------------------

UNKNOWN = {"vendor-specific": (peer_py.PRIVATE_ENTERPRISE, 1), "unassigned IETF attribute": (0, 40)}
OTHER_END = {"lns": LAC_TID, "lac": LNS_TID}  # the tunnel the peer's messages go to, by the peer's role


def unknown_avp(vendor: int, attr_type: int, mandatory: bool) -> A.Avp:
    return A.vendor_avp(vendor, attr_type, b"x", mandatory=mandatory)


def tunnel_answer(role: str, *extra) -> tuple[Lab, list[C.L2tpMessage]]:
    """What the peer sends for the canned SCCRQ (an LNS) or SCCRP (a LAC) carrying `extra` AVPs."""
    if role == "lac":
        lab = lac_connected(*extra)
    else:
        lab = Lab("lns")
        lab.receive("SCCRQ", tunnel_avps(LAC_TID, *extra), ns=0, nr=0, tunnel=0)
    return lab, lab.take()


@pytest.mark.parametrize("role", ["lac", "lns"])
@pytest.mark.parametrize("vendor, attr_type", UNKNOWN.values(), ids=UNKNOWN)
def test_an_unknown_avp_with_the_m_bit_in_an_sccrq_or_sccrp_stops_the_tunnel(vendor, attr_type, role):
    """4.1: an unrecognized AVP with the M bit in a message of the tunnel clears the tunnel: StopCCN, Result
    Code 2 (general error), Error Code 8 (unknown AVP with the M bit), to the other end's tunnel."""
    lab, (stop, *more) = tunnel_answer(role, unknown_avp(vendor, attr_type, mandatory=True))
    assert stop.message_type == "StopCCN" and stop.tunnel_id == OTHER_END[role] and more == []
    assert (result(stop)["result_code"], result(stop)["error_code"]) == (2, 8)
    assert lab.tunnel == "closing"


@pytest.mark.parametrize("role", ["lac", "lns"])
@pytest.mark.parametrize("vendor, attr_type", UNKNOWN.values(), ids=UNKNOWN)
def test_an_unknown_avp_without_the_m_bit_is_ignored(vendor, attr_type, role):
    """4.1: without the M bit an unrecognized AVP is ignored and the message read as usual."""
    lab, (answer, *_) = tunnel_answer(role, unknown_avp(vendor, attr_type, mandatory=False))
    assert answer.message_type == {"lns": "SCCRP", "lac": "SCCCN"}[role]


def lns_with_call(**config) -> tuple[Lab, C.L2tpMessage]:
    """An established LNS that answered the canned LAC's ICRQ (Ns 2); returns the lab and its ICRP."""
    lab = lns_established(**config)
    lab.receive("ICRQ", [A.assigned_session_id(LAC_SID), A.call_serial_number(1)], ns=2, nr=1)
    reply = lab.take_one()
    assert reply.message_type == "ICRP" and reply.session_id == LAC_SID
    return lab, reply


def assert_call_cleared_for_unknown_avp(lab: Lab) -> None:
    """4.1: CDN to the LAC's session, Result Code 2 / Error Code 8; the tunnel stays up."""
    clear = lab.take_one()
    assert clear.message_type == "CDN" and clear.session_id == LAC_SID, clear.describe()
    assert (result(clear)["result_code"], result(clear)["error_code"]) == (2, 8)
    assert lab.tunnel == "established"


def test_an_unknown_avp_with_the_m_bit_in_an_iccn_clears_only_the_call():
    """4.1: an unrecognized AVP with the M bit in a message of a session terminates that session, not the tunnel."""
    lab, reply = lns_with_call()
    lab.receive("ICCN", [A.tx_connect_speed(10_000_000), A.framing_type(2), unknown_avp(0, 40, mandatory=True)],
                ns=3, nr=2, session=reply.avp("Assigned Session ID").value)
    assert_call_cleared_for_unknown_avp(lab)


def test_an_unknown_avp_with_the_m_bit_in_an_icrq_clears_only_the_call():
    """4.1, as above, for the ICRQ that opens the session (its header Session ID is still 0, RFC 2661 6.6)."""
    lab = lns_established()
    lab.receive("ICRQ", [A.assigned_session_id(LAC_SID), A.call_serial_number(1), unknown_avp(0, 40, mandatory=True)],
                ns=2, nr=1)
    assert_call_cleared_for_unknown_avp(lab)


# --- hidden AVPs (RFC 2661 4.3) ---------------------------------------------------------------------------------

def test_the_sccrps_assigned_tunnel_id_is_hidden_after_a_random_vector():
    """4.3: with hiding on, the Assigned Tunnel ID has the H bit, a Random Vector AVP precedes it, and the
    shared secret recovers the value."""
    lab = Lab("lns", secret=SECRET, hide_avps=True)
    reply = sccrq(lab)
    assigned = reply.avp("Assigned Tunnel ID")
    assert assigned.is_hidden and assigned.revealed and assigned.value == lab.peer.local_tid
    assert C.decode(reply.data).avp("Assigned Tunnel ID").value is None  # unreadable without the secret
    assert names(reply).index("Random Vector") < names(reply).index("Assigned Tunnel ID")
    assert not reply.avp("Message Type").is_hidden and not reply.avp("Host Name").is_hidden


@pytest.mark.parametrize("padding", [0, 16])
def test_a_hidden_value_carries_hidden_padding_random_octets_after_the_original(padding):
    """4.3: the hidden subformat is original length (2) + value + padding; the padding is not part of the value."""
    lab = Lab("lns", secret=SECRET, hide_avps=True, hidden_padding=padding)
    assigned = sccrq(lab).avp("Assigned Tunnel ID")
    assert len(assigned.hidden) == 2 + 2 + padding
    assert assigned.revealed and assigned.value == lab.peer.local_tid


def test_the_lns_reads_a_hidden_assigned_tunnel_id_in_an_sccrq():
    """4.3: the receiver unhides with the secret and the preceding Random Vector: the SCCRP goes to that tunnel."""
    lab = Lab("lns", secret=SECRET)
    vector = bytes(range(16))
    hidden = [A.random_vector(vector), A.hide(A.assigned_tunnel_id(LAC_TID), SECRET, vector)]
    lab.receive("SCCRQ", [A.protocol_version(1, 0), A.host_name("lac"), A.framing_capabilities(3), *hidden],
                ns=0, nr=0, tunnel=0)
    reply = lab.take_one()
    assert reply.message_type == "SCCRP" and reply.tunnel_id == LAC_TID


# --- the misbehaviours ------------------------------------------------------------------------------------------

def test_withhold_ack_treats_the_first_scccn_as_lost_and_reads_its_retransmission():
    """withhold_ack, LNS: the first SCCCN is neither acknowledged nor read; the LAC's retransmission is both."""
    lab = Lab("lns", secret=SECRET, misbehave="withhold_ack")
    first = scccn(lab, sccrq(lab))
    lab.at(peer_py.ACK_DELAY_S)
    assert lab.take() == [] and lab.tunnel == "wait-scccn"
    lab.peer.datagram(first, SOURCE)  # the LAC retransmits it
    lab.at(2 * peer_py.ACK_DELAY_S)
    assert lab.tunnel == "established"
    ack = lab.take_one()
    assert ack.is_zlb and ack.nr == 2


def test_withhold_ack_as_lac_treats_the_first_sccrp_as_lost():
    """withhold_ack, LAC: the first SCCRP gets no SCCCN; the LNS's retransmission does."""
    lab = Lab("lac", misbehave="withhold_ack")
    lab.peer.connect()
    sccrp(lab)
    lab.at(peer_py.ACK_DELAY_S)
    assert lab.take() == [] and lab.tunnel == "wait-sccrp"
    lab.receive("SCCRP", tunnel_avps(LNS_TID), ns=0, nr=1)  # the LNS retransmits it
    assert [m.message_type for m in lab.take()] == ["SCCCN", "ICRQ"] and lab.tunnel == "established"


def tunnel_opening(lab: Lab) -> C.L2tpMessage:
    """The first message of the control connection the peer sends: the LAC's SCCRQ, the LNS's SCCRP."""
    if lab.config["role"] == "lac":
        lab.peer.connect()
        return lab.take_one()
    return sccrq(lab)


@pytest.mark.parametrize("role", ["lac", "lns"])
@pytest.mark.parametrize("misbehave, mandatory", [("unknown_avp", False), ("unknown_mandatory_avp", True)])
def test_unknown_avp_misbehaviour_adds_a_vendor_avp_with_the_right_m_bit(role, misbehave, mandatory):
    """unknown_avp / unknown_mandatory_avp: one vendor AVP (RFC 5612's enterprise) in the SCCRQ / SCCRP, its M bit
    clear / set."""
    opening = tunnel_opening(Lab(role, misbehave=misbehave))
    vendor = [e for e in opening.avps if e.vendor_id == peer_py.PRIVATE_ENTERPRISE]
    assert len(vendor) == 1 and not vendor[0].known
    assert vendor[0].mandatory is mandatory


@pytest.mark.parametrize("role", ["lac", "lns"])
def test_no_unknown_avp_without_the_misbehaviour(role):
    """Playing by the RFC, the SCCRQ / SCCRP carries only AVPs RFC 2661 defines."""
    opening = tunnel_opening(Lab(role))
    assert all(e.known for e in opening.avps)


def test_duplicate_probe_resends_the_last_acknowledged_message_with_its_ns():
    """duplicate: probe() sends again the last message the peer acknowledged, its original Ns (Nr up to date);
    with nothing acknowledged yet there is nothing to do, and the probe is not reported done."""
    lab = Lab("lns", misbehave="duplicate")
    reply = sccrq(lab)
    lab.peer.probe()
    assert lab.take() == [] and not lab.peer.probe_done  # nothing acknowledged yet
    scccn(lab, reply)  # Nr 1: the SCCRP acknowledged
    lab.peer.probe()
    again = lab.take_one()
    assert again.message_type == "SCCRP" and (again.ns, again.nr) == (0, 2)
    assert without_nr(again.data) == without_nr(reply.data)
    assert lab.peer.probe_done


def test_result_code_8_probe_clears_the_call_with_an_8_byte_result_code():
    """result_code_8: probe() clears the call with a CDN whose Result Code AVP is 8 bytes (RFC 2661 4.4.2: a result
    code with no error code), with the Assigned Session ID, to the LAC's session."""
    lab, reply = lns_with_call(misbehave="result_code_8")
    lab.peer.probe()
    clear = lab.take_one()
    assert clear.message_type == "CDN" and clear.session_id == LAC_SID
    assert clear.avp("Result Code").length == 8 and result(clear) == {"result_code": 3}
    assert clear.avp("Assigned Session ID").value == reply.avp("Assigned Session ID").value
    assert lab.peer.probe_done and lab.peer.session.state == "closed"


def test_result_code_8_probe_without_a_call_is_not_reported_done():
    """result_code_8 with no call to clear sends nothing, so it must not report the probe done: the adapter's
    probe() returns on probe_done, taken to mean the CDN went out (the duplicate probe waits likewise)."""
    lab = lns_established(misbehave="result_code_8")
    lab.peer.probe()
    assert lab.take() == []
    assert not lab.peer.probe_done


# --- keepalive (RFC 2661 5.5) -----------------------------------------------------------------------------------

def test_hello_after_the_hello_interval_of_silence():
    """5.5: a HELLO keeps an idle tunnel alive: sent once nothing was heard for the interval (1 s here)."""
    lab = lns_established(hello_interval_s=1)
    lab.at(0.95)
    assert lab.take() == []
    lab.at(1.0)
    hello = lab.take_one()
    assert hello.message_type == "HELLO" and (hello.tunnel_id, hello.session_id, hello.ns) == (LAC_TID, 0, 1)


def test_no_hello_while_the_peer_is_heard():
    """5.5: the interval counts from the last message received, so a HELLO from the peer puts ours off."""
    lab = lns_established(hello_interval_s=1)
    lab.clock.t = START + 0.75
    lab.receive("HELLO", ns=2, nr=1)
    lab.at(1.5)
    assert [m.message_type for m in lab.take()] == ["ZLB"]  # the HELLO acknowledged, none of its own
    lab.at(1.75)
    assert lab.take_one().message_type == "HELLO"
