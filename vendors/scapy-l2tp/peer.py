#!/usr/bin/python3
"""scapy-l2tp, the harness's reference L2TPv2 peer (RFC 2661): a LAC or an LNS in one Python program.

Messages are built and read with the harness's own codec (harness/protocols/l2tp/codec.py and avp.py, on scapy),
PPP is the harness's user-space endpoint (ppp.py) on a TUN device; the adapter copies all three in beside this file.
What it does, in RFC 2661's words:
- the control connection (5.1: SCCRQ, SCCRP, SCCCN; 5.1.1 tunnel authentication; 4.3 hidden AVPs),
  an incoming call (5.2.1: ICRQ, ICRP, ICCN), teardown (5.7: CDN, StopCCN), keepalive (6.5: Hello);
- reliable delivery (5.8): Ns/Nr, a message that the peer acknowledges by its Nr, a ZLB when nothing else carries
  the acknowledgement, duplicates acknowledged and dropped, out-of-order messages held within our receive window,
  retransmission with exponential backoff, at most the peer's Receive Window Size of messages unacknowledged;
- an unknown AVP with the M bit clears what the message belongs to (4.1): the call (CDN) or the tunnel (StopCCN).

For the robustness cases it misbehaves on request (config "misbehave"), once, and otherwise plays by the RFC:
    unknown_avp            an unknown vendor AVP without the M bit in its SCCRQ / SCCRP
    unknown_mandatory_avp  the same AVP with the M bit
    withhold_ack           the first SCCRP (as LAC) / SCCCN (as LNS) it receives is treated as lost: no
                           acknowledgement until the peer sends it again
    result_code_8          on `probe`: clears the call with a CDN whose Result Code is 8 bytes (no error code)
    duplicate              on `probe`: sends again the last message the peer acknowledged, same Ns

Driven through a FIFO (CONTROL) like xl2tpd's: `connect` (LAC), `disconnect`, `probe`; its state is in STATE.
"""
from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.protocols.l2tp import avp as A  # noqa: E402  (the copied codec, beside this file)
from harness.protocols.l2tp import codec as C  # noqa: E402
from harness.protocols.l2tp import ppp as P  # noqa: E402

CONFIG = "/etc/scapy-l2tp/config.json"
RUN = "/run/scapy-l2tp"
CONTROL, STATE, READY = f"{RUN}/control", f"{RUN}/state.json", f"{RUN}/ready"
PORT = 1701
RECEIVE_WINDOW = 4
# RFC 2661 5.8: 1 s, doubling, capped at 8 s, 5 retransmissions; a case may ask for another first wait and count
RETRANSMIT_S, RETRANSMIT_MAX_S, RETRANSMISSIONS = 1.0, 8.0, 5
ACK_DELAY_S = 0.05  # an acknowledgement waits this long for a message to ride on before a ZLB carries it
HIDE = {3, 4, 9, 14, 15}  # hidden when hiding is on: Framing/Bearer Capabilities, Assigned Tunnel/Session ID,
#                           Call Serial Number (each "MAY be hidden", RFC 2661 4.4)
PRIVATE_ENTERPRISE = 32473  # RFC 5612's enterprise number for documentation: the vendor of the unknown AVP
WITHHELD = {"lac": "SCCRP", "lns": "SCCCN"}
CALL_MESSAGES = {"OCRQ", "OCRP", "OCCN", "ICRQ", "ICRP", "ICCN", "CDN", "WEN", "SLI"}  # those of one session  # the message withhold_ack treats as lost, per role
NO_ERROR = 0


def earlier(a: int, b: int) -> bool:
    """Sequence number a comes before b (16-bit, wrapping: RFC 2661 5.8)."""
    return a != b and ((b - a) & 0xFFFF) < 0x8000


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} scapy-l2tp: {message}", file=sys.stderr, flush=True)


class Outgoing:
    """A control message we sent and keep until the peer's Nr covers it (its bytes are kept: a retransmission
    must be the same message, Ns included; only Nr is brought up to date)."""

    def __init__(self, ns: int, kind: str, data: bytes):
        self.ns, self.kind, self.data = ns, kind, bytearray(data)
        self.sent_at: float | None = None
        self.next_at = 0.0
        self.retransmissions = 0


class Session:
    def __init__(self, local_id: int, peer_id: int = 0):
        self.local_id, self.peer_id = local_id, peer_id
        self.state = "wait-reply"  # wait-reply, wait-connect, established, closed
        self.link: P.Link | None = None
        self.tun: int | None = None


class Peer:
    def __init__(self, config: dict, sock: socket.socket, clock=time.monotonic):
        self.config, self.sock, self.now = config, sock, clock
        self.role = config["role"]
        self.secret = config["secret"].encode() if config.get("secret") else None
        self.peer = (config["peer_address"], PORT)
        self.misbehave = config.get("misbehave")
        self.retransmit_s = config.get("retransmit_s") or RETRANSMIT_S
        self.retransmissions = RETRANSMISSIONS if config.get("max_retransmissions") is None \
            else config["max_retransmissions"]
        self.withheld = False
        self.probe_done = False
        self.last_result: dict | None = None  # the last Result Code the peer sent (StopCCN / CDN)
        self.reset()

    def reset(self) -> None:
        self.tunnel = "idle"  # idle, wait-sccrp, wait-scccn, established, closing, closed
        self.local_tid, self.peer_tid = random.randint(1, 0xFFFF), 0
        self.ns = self.nr = 0  # the next Ns we send; the next Ns we expect
        self.peer_window = 4  # RFC 2661 4.4.3: 4 when the peer sends no Receive Window Size
        self.queue: list[Outgoing] = []  # sent and unacknowledged, then not yet sent (window full)
        self.held: dict[int, C.L2tpMessage] = {}  # out of order, within our window
        self.ack_due: float | None = None
        self.challenge: bytes | None = None
        self.last_acked: Outgoing | None = None
        self.last_heard = self.last_hello = self.now()
        self.session: Session | None = None

    # --- sending --------------------------------------------------------------------------------------------
    def send(self, kind: str, avps: list, session_id: int = 0) -> None:
        avps = self._hidden(avps)
        message = C.control(self.peer_tid, session_id, self.ns, self.nr, [A.message_type(kind)] + avps)
        self.queue.append(Outgoing(self.ns, kind, C.encode(message)))
        log(f"queued {kind} Ns {self.ns} (tunnel {self.peer_tid} session {session_id})")
        self.ns = (self.ns + 1) & 0xFFFF
        self._transmit()

    def _hidden(self, avps: list) -> list:
        if not (self.config.get("hide_avps") and self.secret) or not any(a.attr_type in HIDE for a in avps):
            return avps
        vector = os.urandom(16)  # RFC 2661 4.3: a Random Vector before the hidden AVPs it applies to
        padding = self.config.get("hidden_padding", 0)
        return [A.random_vector(vector)] + [A.hide(a, self.secret, vector, os.urandom(padding))
                                            if a.vendor_id == 0 and a.attr_type in HIDE else a for a in avps]

    def _transmit(self) -> None:
        """Send what the peer's receive window allows (RFC 2661 5.8: no more unacknowledged than it)."""
        for out in self.queue[:self.peer_window]:
            if out.sent_at is None:
                self._put(out)

    def _put(self, out: Outgoing) -> None:
        struct.pack_into("!H", out.data, 10, self.nr)  # Nr sits after flags, length, tunnel, session, Ns
        self.sock.sendto(bytes(out.data), self.peer)
        now = self.now()
        out.sent_at = out.sent_at or now
        out.next_at = now + min(self.retransmit_s * 2 ** out.retransmissions, RETRANSMIT_MAX_S)
        self.ack_due = None

    def zlb(self) -> None:
        self.sock.sendto(C.encode(C.zlb(self.peer_tid, self.ns, self.nr)), self.peer)
        self.ack_due = None

    def send_data(self, payload: bytes) -> None:
        if self.session and self.session.peer_id:
            self.sock.sendto(C.encode(C.data(self.peer_tid, self.session.peer_id, payload)), self.peer)

    # --- receiving ------------------------------------------------------------------------------------------
    def datagram(self, data: bytes, source: tuple) -> None:
        if source[0] != self.peer[0]:
            log(f"dropped a datagram from {source[0]}: not the configured peer")
            return
        message = C.decode(data, self.secret)
        if message.tunnel_id is None or message.is_control and message.nr is None:
            log(f"dropped a message whose header cannot be read: {message.reason}")
            return
        if not message.is_control:
            self._data(message)
            return
        repeated_request = message.message_type == "SCCRQ" and self.role == "lns" and message.tunnel_id == 0
        # A peer refusing our SCCRQ before it read our Assigned Tunnel ID cannot address us (xl2tpd sends 65535):
        # its StopCCN is still the answer we wait for.
        refused = message.message_type == "StopCCN" and self.tunnel == "wait-sccrp"
        if repeated_request and self._new_tunnel(message):
            self.reset()
        elif message.tunnel_id != self.local_tid and not (repeated_request or refused):
            log(f"dropped {message.message_type} for tunnel {message.tunnel_id}: ours is {self.local_tid}")
            return
        if self.misbehave == "withhold_ack" and not self.withheld and message.message_type == WITHHELD[self.role]:
            self.withheld = True
            log(f"misbehaving: {message.message_type} Ns {message.ns} treated as lost (neither acknowledged nor read)")
            return
        self.last_heard = self.now()
        self._acknowledged(message.nr)
        if message.is_zlb:
            return
        if message.ns == self.nr:
            self._deliver(message)
            while self.nr in self.held:
                self._deliver(self.held.pop(self.nr))
        elif earlier(message.ns, self.nr):
            # RFC 2661 5.8: a duplicate is acknowledged and otherwise ignored.
            log(f"duplicate {message.message_type} Ns {message.ns} (expecting {self.nr}): acknowledged, ignored")
            self.zlb()
        elif (message.ns - self.nr) & 0xFFFF < RECEIVE_WINDOW:
            log(f"{message.message_type} Ns {message.ns} out of order (expecting {self.nr}): held")
            self.held[message.ns] = message
        else:
            log(f"{message.message_type} Ns {message.ns} beyond our window (expecting {self.nr}): dropped")

    def _new_tunnel(self, message: C.L2tpMessage) -> bool:
        """An SCCRQ starts a new control connection unless it repeats the one we have (same Assigned Tunnel ID)."""
        assigned = message.avp("Assigned Tunnel ID")
        return self.tunnel in ("idle", "closed") or assigned is not None and assigned.value != self.peer_tid

    def _acknowledged(self, nr: int) -> None:
        while self.queue and self.queue[0].sent_at is not None and earlier(self.queue[0].ns, nr):
            self.last_acked = self.queue.pop(0)
            if self.last_acked.kind == "StopCCN":
                self._closed("our StopCCN was acknowledged")
        self._transmit()

    def _deliver(self, message: C.L2tpMessage) -> None:
        kind = message.message_type
        self.nr = (self.nr + 1) & 0xFFFF
        self.ack_due = self.now() + ACK_DELAY_S
        log(f"received {kind} Ns {message.ns} Nr {message.nr}")
        if message.malformed:  # its header was readable: acknowledged, and refused with the reason
            log(f"{kind} is malformed: {message.reason}")
            error = 2 if "length" in message.reason or "byte" in message.reason else 6  # 2: length is wrong
            self.stop(A.result_code(2, error, message.reason[:200]))
            return
        unknown = [e for e in message.avps if e.mandatory and not e.known]
        if unknown:
            # RFC 2661 4.1: an unrecognized AVP with the M bit clears the session, or the whole tunnel.
            names = ", ".join(f"vendor {e.vendor_id} type {e.attr_type}" for e in unknown)
            log(f"{kind} carries an unknown mandatory AVP ({names})")
            result = A.result_code(2, 8, f"unknown mandatory AVP {names}")
            if kind in CALL_MESSAGES:
                self.refuse_call(message, result)
            elif kind not in ("SCCRQ", "SCCRP") or self._peer_tunnel(message):  # the StopCCN needs its tunnel id
                self.stop(result)
            return
        handler = getattr(self, f"on_{kind}", None)
        if handler is None:
            log(f"{kind}: nothing to do")
        else:
            handler(message)

    def _data(self, message: C.L2tpMessage) -> None:
        session = self.session
        if session is None or session.link is None or message.session_id != session.local_id:
            return
        offset = C.header_length(message.flags, message.offset_size or 0)
        session.link.receive(message.data[offset:])

    # --- the control connection -------------------------------------------------------------------------------
    def tunnel_avps(self) -> list:
        avps = [A.protocol_version(1, 0), A.host_name(self.config["hostname"]), A.framing_capabilities(3),
                A.bearer_capabilities(0), A.firmware_revision(0x0100), A.vendor_name("overlay-interop scapy-l2tp"),
                A.assigned_tunnel_id(self.local_tid), A.receive_window_size(RECEIVE_WINDOW)]
        if self.misbehave in ("unknown_avp", "unknown_mandatory_avp"):
            mandatory = self.misbehave == "unknown_mandatory_avp"
            log(f"misbehaving: an unknown vendor AVP {'with' if mandatory else 'without'} the M bit")
            avps.append(A.vendor_avp(PRIVATE_ENTERPRISE, 1, b"interop probe", mandatory=mandatory))
        return avps

    def _peer_tunnel(self, message: C.L2tpMessage) -> bool:
        assigned, window = message.avp("Assigned Tunnel ID"), message.avp("Receive Window Size")
        if assigned is None or assigned.value is None:
            self.stop(A.result_code(2, 6, "no readable Assigned Tunnel ID"))
            return False
        self.peer_tid = assigned.value
        if window is not None and window.value:
            self.peer_window = window.value
        return True

    def _answer(self, message: C.L2tpMessage, answer_kind: str) -> list:
        """The Challenge Response to the peer's Challenge, if it sent one (RFC 2661 5.1.1)."""
        challenge = message.avp("Challenge")
        if challenge is None or self.secret is None:
            return []
        return [A.challenge_response_avp(A.challenge_response(answer_kind, self.secret, challenge.value))]

    def _challenge(self) -> list:
        if self.secret is None:
            return []
        self.challenge = os.urandom(16)
        return [A.challenge(self.challenge)]

    def _verified(self, message: C.L2tpMessage) -> bool:
        """The peer answered our Challenge with MD5(type, secret, challenge); else StopCCN, Result Code 4."""
        if self.challenge is None:
            return True
        response = message.avp("Challenge Response")
        expected = A.challenge_response(message.message_type, self.secret, self.challenge)
        if response is not None and response.value == expected:
            return True
        self.stop(A.result_code(4, NO_ERROR, "challenge response does not match the shared secret"))
        return False

    def connect(self) -> None:
        if self.role != "lac":
            log("connect: only a LAC places calls")
        elif self.tunnel == "established":
            self.place_call()
        elif self.tunnel in ("idle", "closed"):
            self.reset()
            self.tunnel = "wait-sccrp"
            self.send("SCCRQ", self.tunnel_avps() + self._challenge())

    def on_SCCRQ(self, message: C.L2tpMessage) -> None:
        if self.role != "lns" or self.tunnel != "idle" or not self._peer_tunnel(message):
            return
        self.tunnel = "wait-scccn"
        self.send("SCCRP", self.tunnel_avps() + self._answer(message, "SCCRP") + self._challenge())

    def on_SCCRP(self, message: C.L2tpMessage) -> None:
        if self.tunnel != "wait-sccrp" or not self._peer_tunnel(message) or not self._verified(message):
            return
        self.tunnel = "established"
        self.send("SCCCN", self._answer(message, "SCCCN"))
        log(f"tunnel up: ours {self.local_tid}, the peer's {self.peer_tid}")
        self.place_call()

    def on_SCCCN(self, message: C.L2tpMessage) -> None:
        if self.tunnel == "wait-scccn" and self._verified(message):
            self.tunnel = "established"
            log(f"tunnel up: ours {self.local_tid}, the peer's {self.peer_tid}")

    def on_StopCCN(self, message: C.L2tpMessage) -> None:
        assigned = message.avp("Assigned Tunnel ID")
        if not self.peer_tid and assigned is not None and assigned.value:
            self.peer_tid = assigned.value  # so our acknowledgement reaches it
        self.last_result = self._result(message)
        log(f"StopCCN from the peer: {self.last_result}")
        self.zlb()  # RFC 2661 5.7: acknowledged at once, then the tunnel and its sessions are gone
        self._closed("the peer stopped the control connection")

    def on_HELLO(self, message: C.L2tpMessage) -> None:
        pass  # acknowledged like every message (a ZLB, unless one of ours carries the Nr first)

    def stop(self, result) -> None:
        """StopCCN with `result` (a Result Code AVP) and our Assigned Tunnel ID; closed once acknowledged."""
        self._close_session()
        if self.tunnel in ("closing", "closed"):
            return
        self.tunnel = "closing"
        self.send("StopCCN", [A.assigned_tunnel_id(self.local_tid), result])

    def _closed(self, why: str) -> None:
        self._close_session()
        self.tunnel = "closed"
        self.queue = [out for out in self.queue if out.kind == "StopCCN"]
        log(f"tunnel closed: {why}")

    # --- the call -------------------------------------------------------------------------------------------
    def place_call(self) -> None:
        if self.session is not None and self.session.state != "closed":
            return
        self.session = Session(random.randint(1, 0xFFFF))
        self.send("ICRQ", [A.assigned_session_id(self.session.local_id), A.call_serial_number(1),
                           A.bearer_type(0)])

    def on_ICRQ(self, message: C.L2tpMessage) -> None:
        assigned = message.avp("Assigned Session ID")
        if self.role != "lns" or self.tunnel != "established" or assigned is None:
            return
        self.session = Session(random.randint(1, 0xFFFF), assigned.value)
        self.session.state = "wait-connect"
        self.send("ICRP", [A.assigned_session_id(self.session.local_id)], session_id=self.session.peer_id)

    def on_ICRP(self, message: C.L2tpMessage) -> None:
        assigned = message.avp("Assigned Session ID")
        if self.session is None or self.session.state != "wait-reply" or assigned is None:
            return
        self.session.peer_id = assigned.value
        self.send("ICCN", [A.tx_connect_speed(100_000_000), A.framing_type(2)], session_id=self.session.peer_id)
        self._start_ppp()

    def on_ICCN(self, message: C.L2tpMessage) -> None:
        if self.session is not None and self.session.state == "wait-connect":
            self._start_ppp()

    def on_CDN(self, message: C.L2tpMessage) -> None:
        self.last_result = self._result(message)
        log(f"CDN from the peer: {self.last_result}")
        self._close_session()

    def clear_call(self, result) -> None:
        session = self.session
        if session is None or session.state == "closed":
            return
        self.send("CDN", [result, A.assigned_session_id(session.local_id)], session_id=session.peer_id)
        self._close_session()

    def refuse_call(self, message: C.L2tpMessage, result) -> None:
        """Clear the call `message` belongs to: ours, or the one an ICRQ / OCRQ asks for (CDN to its session)."""
        session = self.session
        if session is not None and session.state != "closed" and message.session_id == session.local_id:
            self.clear_call(result)
            return
        assigned = message.avp("Assigned Session ID")
        if assigned is not None and assigned.value:
            self.send("CDN", [result, A.assigned_session_id(0)], session_id=assigned.value)

    def disconnect(self) -> None:
        self.clear_call(A.result_code(3, NO_ERROR))  # 3: disconnected for administrative reasons
        self.stop(A.result_code(1, NO_ERROR))  # 1: general request to clear the control connection

    def _start_ppp(self) -> None:
        session = self.session
        session.state = "established"
        lns = self.role == "lns"
        ppp_config = {
            "local": self.config["local_inner"] if lns else None,
            "remote": self.config["remote_inner"] if lns else None,
            "auth": self.config["ppp_auth"] if lns else "none",
            "username": self.config["username"], "password": self.config["password"],
            "name": self.config["hostname"], "mru": self.config["mru"],
        }
        session.link = P.Link(ppp_config, write=self.send_data, clock=self.now, log=lambda m: log(f"ppp: {m}"))
        session.tun = P.attach_tun(session.link, self.config["interface"], log)
        session.link.start()
        log(f"session up: ours {session.local_id}, the peer's {session.peer_id}; PPP started")

    def _close_session(self) -> None:
        session = self.session
        if session is None or session.state == "closed":
            return
        session.state = "closed"
        if session.link is not None:
            session.link.terminated("the L2TP session closed")
            session.link.on_ipcp_down()
        if session.tun is not None:
            os.close(session.tun)  # the TUN device goes with its last descriptor
            session.tun = None
        log(f"session {session.local_id} closed")

    @staticmethod
    def _result(message: C.L2tpMessage) -> dict | None:
        found = message.avp("Result Code")
        if found is None or found.value is None:
            return None
        return {"result": found.layer.result_code, "error": found.layer.fields.get("error_code"),
                "message": (found.layer.fields.get("error_message") or b"").decode(errors="replace"),
                "length": found.length}

    # --- the robustness probes ------------------------------------------------------------------------------
    def probe(self) -> None:
        if self.misbehave == "result_code_8" and self.session is not None and self.session.state != "closed":
            log("misbehaving: clearing the call with a Result Code of 8 bytes (result code only)")
            self.clear_call(A.result_code(3))
        elif self.misbehave == "duplicate" and self.last_acked is not None:
            out = self.last_acked
            log(f"misbehaving: {out.kind} Ns {out.ns} sent again after the peer acknowledged it")
            struct.pack_into("!H", out.data, 10, self.nr)
            self.sock.sendto(bytes(out.data), self.peer)
        else:
            log(f"probe: nothing to do for misbehave={self.misbehave!r}")
            return
        self.probe_done = True

    # --- time -----------------------------------------------------------------------------------------------
    def tick(self) -> None:
        now = self.now()
        for out in [o for o in self.queue if o.sent_at is not None and now >= o.next_at]:
            if out.retransmissions >= self.retransmissions:
                self._closed(f"{out.kind} Ns {out.ns} unacknowledged after {self.retransmissions} retransmissions")
                self.queue = []
                return
            out.retransmissions += 1
            log(f"retransmitting {out.kind} Ns {out.ns} ({out.retransmissions})")
            self._put(out)
        if self.ack_due is not None and now >= self.ack_due:
            self.zlb()
        hello = self.config.get("hello_interval_s")
        if (hello and self.tunnel == "established" and not self.queue
                and now - max(self.last_heard, self.last_hello) >= hello):
            self.last_hello = now
            self.send("HELLO", [])
        if self.session and self.session.link is not None and self.session.state == "established":
            self.session.link.tick(now)
            if self.session.link.finished:
                log(f"PPP ended: {self.session.link.failed or 'closed'}")
                self.clear_call(A.result_code(2, 6, "PPP ended"))

    def state(self) -> dict:
        session = self.session
        return {
            "role": self.role, "tunnel": self.tunnel, "tunnel_id": self.local_tid, "peer_tunnel_id": self.peer_tid,
            "session": None if session is None else {
                "state": session.state, "session_id": session.local_id, "peer_session_id": session.peer_id,
                "ipcp": bool(session.link and session.link.ipcp_open)},
            "probe_done": self.probe_done, "last_result": self.last_result,
        }


def write_state(state: dict) -> None:
    with open(STATE + ".new", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".new", STATE)


def main(argv: list[str]) -> int:
    if argv[1:] == ["--version"]:
        import scapy
        print(f"scapy-l2tp (overlay-interop reference peer) on scapy {scapy.VERSION}")
        return 0
    with open(os.environ.get("SCAPY_L2TP_CONFIG", CONFIG)) as f:
        config = json.load(f)
    os.makedirs(RUN, exist_ok=True)
    if not os.path.exists(CONTROL):
        os.mkfifo(CONTROL)
    control = os.open(CONTROL, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(CONTROL, os.O_WRONLY | os.O_NONBLOCK)  # so the FIFO never reads as closed
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((config["address"], PORT))
    peer = Peer(config, sock)
    stopping: list[int] = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, _: stopping.append(signum))
    log(f"{config['role']} on {config['address']}:{PORT}, peer {config['peer_address']}"
        f"{', misbehaving: ' + config['misbehave'] if config.get('misbehave') else ''}")
    open(READY, "w").close()
    written = None
    pending = b""
    while not stopping:
        tun = peer.session.tun if peer.session else None
        try:
            readable, _, _ = select.select([sock, control] + ([tun] if tun is not None else []), [], [], 0.05)
        except InterruptedError:
            continue
        if sock in readable:
            data, source = sock.recvfrom(65535)
            peer.datagram(data, source)
        if control in readable:
            pending += os.read(control, 4096)
            *commands, pending = pending.split(b"\n")
            for command in (c.decode(errors="replace").strip() for c in commands):
                log(f"command: {command}")
                action = {"connect": peer.connect, "disconnect": peer.disconnect, "probe": peer.probe}.get(command)
                action() if action else log(f"unknown command {command!r}")
        if tun is not None and tun in readable and peer.session and peer.session.link:
            peer.session.link.send_ipv4(os.read(tun, 65536))
        peer.tick()
        state = peer.state()
        if state != written:
            write_state(state)
            written = state
    log(f"signal {stopping[0]}: exiting")
    os.close(keep_open)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
