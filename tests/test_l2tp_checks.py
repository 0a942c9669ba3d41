"""The L2TP cases' wire checks (issue 12, items 5 and 12) on captures built with the codec, each judged by the
case itself (suites/l2tp) against a stand-in lab: a legal retransmission is not a sequence error, the overlay
tax's PPP header is sized by what LCP agreed to, and a StopCCN that comes late is still seen."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ppp import HDLC, PPP, PPP_LCP_Configure, PPP_LCP_Option
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import ROOT, TaxFigures, load

from harness import tax
from harness.ping import Ping
from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp.codec import control, data, encode, zlb
from harness.protocols.l2tp.fixtures import L2tpPair, Session
from harness.protocols.l2tp.wire import Wire

LAC, LNS = "198.18.0.2", "198.18.0.3"
LAC_TUNNEL, LNS_TUNNEL, LAC_SESSION, LNS_SESSION = 17, 33, 5, 9
T0 = 1_700_000_000.0

setup_suite = load("suite_l2tp", ROOT / "suites" / "l2tp" / "test_l2tp.py")
robustness_suite = load("suite_l2tp_robustness", ROOT / "suites" / "l2tp" / "test_robustness.py")
tax_suite = load("suite_l2tp_overlay_tax", ROOT / "suites" / "l2tp" / "test_overlay_tax.py")


def write(path, exchange, times=None) -> str:
    """(src, dst, message) in order, 0.1 s apart unless `times` (seconds from the first) says otherwise, as the
    LAC's capture would hold them."""
    frames = []
    for number, (src, dst, message) in enumerate(exchange):
        frame = IP(src=src, dst=dst) / UDP(sport=1701, dport=1701) / Raw(encode(message))
        frame.time = T0 + (times[number] if times else number / 10)
        frames.append(frame)
    wrpcap(str(path), frames)
    return str(path)


def sccrq(ns=0, nr=0):
    return control(0, 0, ns, nr, [A.message_type("SCCRQ"), A.protocol_version(1, 0), A.host_name("lac"),
                                  A.framing_capabilities("sync+async"), A.assigned_tunnel_id(LAC_TUNNEL)])


def sccrp(ns=0, nr=1):
    return control(LAC_TUNNEL, 0, ns, nr, [A.message_type("SCCRP"), A.protocol_version(1, 0), A.host_name("lns"),
                                           A.framing_capabilities("sync+async"), A.assigned_tunnel_id(LNS_TUNNEL)])


def scccn(ns=1, nr=1):
    return control(LNS_TUNNEL, 0, ns, nr, [A.message_type("SCCCN")])


# --- item 5: a retransmission is the same message again, not a sequence error -------------------------------

def with_retransmissions():
    """RFC 2661 5.8: the SCCRQ resent unchanged, the SCCCN resent with its Nr brought up to date."""
    return [(LAC, LNS, sccrq()), (LAC, LNS, sccrq()), (LNS, LAC, sccrp()), (LAC, LNS, scccn(nr=1)),
            (LNS, LAC, control(LAC_TUNNEL, 0, 1, 1, [A.message_type("HELLO")])),
            (LAC, LNS, scccn(nr=2)), (LNS, LAC, zlb(LAC_TUNNEL, 2, 2))]


def test_a_retransmission_counts_once_unless_asked_for(tmp_path):
    wire = Wire.from_pcap(write(tmp_path / "l2tp.pcap", with_retransmissions()))
    assert wire.retransmitted == {2: 1, 6: 4}  # frame numbers: each copy -> its first sending
    assert wire.message_types(src=LAC) == ["SCCRQ", "SCCCN"]
    assert wire.message_types(src=LAC, retransmissions=True) == ["SCCRQ", "SCCRQ", "SCCCN", "SCCCN"]
    assert [d.number for d in wire.sent(LAC, "SCCCN", retransmissions=True)] == [4, 6]
    assert "retransmission of #4" in wire.describe() and wire.said(LAC) == "SCCRQ x2, SCCCN x2"
    assert wire.sequence_error(LAC) is None and wire.sequence_error(LNS) is None


def test_a_retransmission_with_an_up_to_date_nr_can_be_the_acknowledgement(tmp_path):
    wire = Wire.from_pcap(write(tmp_path / "l2tp.pcap", with_retransmissions()))
    hello = wire.sent(LNS, "HELLO")[0]
    assert wire.acknowledgement(hello).number == 6  # the SCCCN's copy, Nr 2: the first to cover the Hello's Ns 1


def test_a_new_message_reusing_an_ns_is_no_retransmission(tmp_path):
    reused = [(LAC, LNS, sccrq()), (LNS, LAC, sccrp()), (LAC, LNS, scccn()),
              (LAC, LNS, control(LNS_TUNNEL, 0, 1, 1, [A.message_type("HELLO")]))]
    wire = Wire.from_pcap(write(tmp_path / "l2tp.pcap", reused))
    assert wire.retransmitted == {}
    assert wire.sequence_error(LAC) == f"{LAC} sent HELLO (#4) with Ns 1, expected 2"


def test_zlbs_are_never_retransmissions(tmp_path):
    """A ZLB is not acknowledged, so never resent: two alike are two acknowledgements (of a duplicate, say)."""
    acks = [(LAC, LNS, sccrq()), (LNS, LAC, zlb(LAC_TUNNEL, 0, 1)), (LNS, LAC, zlb(LAC_TUNNEL, 0, 1))]
    wire = Wire.from_pcap(write(tmp_path / "l2tp.pcap", acks))
    assert wire.retransmitted == {} and wire.message_types(src=LNS) == ["ZLB", "ZLB"]


def test_nr_going_back_is_a_sequence_error(tmp_path):
    back = [(LAC, LNS, sccrq()), (LNS, LAC, sccrp()), (LAC, LNS, scccn(nr=1)), (LAC, LNS, zlb(LNS_TUNNEL, 2, 0))]
    wire = Wire.from_pcap(write(tmp_path / "l2tp.pcap", back))
    assert wire.sequence_error(LAC) == f"{LAC}'s Nr went back from 1 to 0 in ZLB (#4)"


class SetupLab:
    """What test_tunnel_setup asks of an l2tp_pair, over a capture already made."""

    def __init__(self, pcap):
        self.pcap = pcap

    def start(self, scenario, probe=None):
        return self

    def connect(self, wait=True):
        return Session(True, "session up")

    def wire(self):
        return Wire.from_pcap(self.pcap)

    def address(self, role):
        return {"lac": LAC, "lns": LNS}[role]


def test_tunnel_setup_passes_a_legal_retransmission(tmp_path):
    setup_suite.test_tunnel_setup(SetupLab(write(tmp_path / "l2tp.pcap", with_retransmissions())))


def test_tunnel_setup_still_fails_an_ns_out_of_step(tmp_path):
    skipped = [(LAC, LNS, sccrq()), (LNS, LAC, sccrp()), (LAC, LNS, scccn(ns=2)), (LNS, LAC, zlb(LAC_TUNNEL, 1, 3))]
    with pytest.raises(AssertionError, match="with Ns 2, expected 1"):
        setup_suite.test_tunnel_setup(SetupLab(write(tmp_path / "l2tp.pcap", skipped)))


# --- item 12 (b): the PPP header is what LCP agreed to, not what the frame happens to carry -----------------

INNER = IP(src="198.19.200.1", dst="198.19.200.2") / ICMP() / Raw(bytes(tax_suite.ECHO_SIZE))
IP_IN_PPP = b"\x00\x21"
COMPRESSED = {"ACFC": 8, "PFC": 7}


def lcp_ack(*options):
    """An LCP Configure-Ack, in full HDLC-less PPP framing (RFC 1661 6.6: LCP is never compressed)."""
    return HDLC() / PPP() / PPP_LCP_Configure(code=2, id=1, options=[PPP_LCP_Option(type=COMPRESSED[o])
                                                                      for o in options])


def echoes(ppp_header: bytes, acked_by_lac=(), inner=bytes(INNER), **header):
    """The LNS asked for `acked_by_lac` in its Configure-Request, the LAC acks it; then five echo requests."""
    messages = [(LAC, LNS, data(LNS_TUNNEL, LNS_SESSION, lcp_ack(*acked_by_lac)))] if acked_by_lac else []
    return messages + [(LAC, LNS, data(LNS_TUNNEL, LNS_SESSION, Raw(ppp_header + inner), **header))] * 5


class TaxLab(SetupLab):
    """What the L2TP overlay tax case asks of a pair: the echo answered, the capture, the nodes to measure."""
    protection = None  # L2TP in the clear (no RFC 3193 stacks)

    def __init__(self, pcap):
        super().__init__(pcap)
        self.capture = SimpleNamespace(path=pcap)
        self.nodes = {"lac": None, "lns": None}

    def ping(self, count=3, size=None):
        return Ping(count, count, "")

    def explain(self):
        return ""


@pytest.fixture
def judge_tax(monkeypatch, tmp_path):
    monkeypatch.setattr(tax, "measure", lambda *args, **kwargs: TaxFigures())

    def judge(exchange) -> int:
        pair_lab = SimpleNamespace(recorded=None)
        tax_suite.test_overlay_tax(TaxLab(write(tmp_path / "l2tp.pcap", exchange)), pair_lab)
        return pair_lab.recorded
    return judge


@pytest.mark.parametrize("ppp_header, acked, header, overhead", [
    (b"\xff\x03" + IP_IN_PPP, (), {}, 28 + 6 + 4),
    (b"\xff\x03" + IP_IN_PPP, (), {"with_length": True, "ns": 3}, 28 + 6 + 2 + 4 + 4),
    (b"\xff\x03" + IP_IN_PPP, (), {"offset_pad": bytes(5)}, 28 + 6 + 2 + 5 + 4),
    (b"\x21", ("ACFC", "PFC"), {}, 28 + 6 + 1),
    (b"\xff\x03" + IP_IN_PPP, ("ACFC", "PFC"), {}, 28 + 6 + 4),  # agreed to, yet sent in full: allowed
    (IP_IN_PPP, ("ACFC",), {}, 28 + 6 + 2),
], ids=["plain", "length and sequence", "offset padding", "both compressed", "agreed, not used", "acfc only"])
def test_overlay_tax_is_the_rfcs_header_sizes(judge_tax, ppp_header, acked, header, overhead):
    assert judge_tax(echoes(ppp_header, acked, **header)) == overhead


@pytest.mark.parametrize("ppp_header, acked", [(b"\x21", ()), (IP_IN_PPP, ()), (b"\xff\x03\x21", ("ACFC",))],
                         ids=["both compressed, never agreed", "acfc never agreed", "pfc never agreed"])
def test_overlay_tax_fails_a_ppp_header_compressed_without_lcp(judge_tax, ppp_header, acked):
    """RFC 1661 6.5, 6.6: without the peer's request, Address/Control and a two-byte Protocol MUST be sent. The
    old check sized the PPP header from the frame itself, so any compression matched what it measured."""
    with pytest.raises(AssertionError, match="outer IP length minus inner IP length"):
        judge_tax(echoes(ppp_header, acked))


def test_overlay_tax_fails_bytes_after_the_packet(judge_tax):
    """An HDLC FCS (or anything) left after the inner packet is overhead no header accounts for."""
    with pytest.raises(AssertionError, match="#1: 40 bytes, the RFCs make 38"):
        judge_tax(echoes(b"\xff\x03" + IP_IN_PPP + bytes(INNER) + b"\x12\x34", inner=b""))


# --- item 12 (c): "no StopCCN" is watched until the tested side has dealt with the CDN, not looked for once ------

def result_code_8_wire(stop_ccn: bool, hello_acknowledged: bool = True):
    """The LNS (the prober) clears the call with an 8-byte Result Code, the LAC acknowledges; 0.6 s after the CDN
    the LAC may stop the tunnel after all; a second after the acknowledgement the LNS says Hello (RFC 2661 6.5),
    which the LAC may acknowledge."""
    cdn = control(LAC_TUNNEL, LAC_SESSION, 3, 3, [A.message_type("CDN"), A.result_code(3)])
    messages = [(LNS, LAC, cdn), (LAC, LNS, zlb(LNS_TUNNEL, 3, 4))]
    if stop_ccn:
        messages.append((LAC, LNS, control(LNS_TUNNEL, 0, 3, 4, [A.message_type("StopCCN"), A.result_code(2, 6)])))
    messages.append((LNS, LAC, control(LAC_TUNNEL, 0, 4, 3 + stop_ccn, [A.message_type("HELLO")])))
    if hello_acknowledged:
        messages.append((LAC, LNS, zlb(LNS_TUNNEL, 3 + stop_ccn, 5)))
    return messages


def result_code_8_times(stop_ccn: bool, hello_acknowledged: bool = True) -> list[float]:
    return [0, 0.05] + [0.6] * stop_ccn + [1.05] + [1.1] * hello_acknowledged


class ProbedLab(L2tpPair):
    """An l2tp_pair whose capture holds what was sent by now: each datagram shows once as many seconds have passed
    since the probe as its capture time says. wire_until is the real one; wire() stops the capture, as the real
    one does, and what comes later is not in it."""
    prober, tested = "lns", "lac"

    def __init__(self, pcap):
        self.timeline = Wire.from_pcap(pcap)
        self.probed, self.stopped = time.monotonic(), None
        self.scenario = None

    def start(self, scenario, probe=None):
        self.scenario = scenario
        return self

    def connect(self, wait=True):
        return Session(True, "session up")

    def probe(self):
        self.probed = time.monotonic()

    def address(self, role):
        return {"lac": LAC, "lns": LNS}[role]

    def session_down(self, role, timeout=0):
        return True

    def _wire_so_far(self):
        now = self.timeline.start + time.monotonic() - self.probed
        return Wire(tuple(d for d in self.timeline.datagrams if d.time <= now), start=self.timeline.start)

    def wire(self):
        self.stopped = self.stopped or self._wire_so_far()
        return self.stopped

    def explain(self):
        return ""


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(robustness_suite, "CONTROL_TIMEOUT_S", 2)


def test_result_code_8_sees_a_stopccn_that_comes_late(tmp_path, short_timeout):
    """The acknowledgement shows at once, the StopCCN 0.6 s after the CDN: the old case looked once, right after
    the acknowledgement and the session's end, and passed."""
    lab = ProbedLab(write(tmp_path / "l2tp.pcap", result_code_8_wire(stop_ccn=True), result_code_8_times(True)))
    with pytest.raises(AssertionError, match="stopped the tunnel over a legal CDN"):
        robustness_suite.test_result_code_8(lab)


def test_result_code_8_waits_until_the_next_message_is_acknowledged(tmp_path, short_timeout):
    """The prober's Hello after the CDN, acknowledged: the tested side has dealt with the CDN (RFC 2661 5.8, in Ns
    order) and kept the tunnel. The case judges then, not before, and asks the prober for that Hello."""
    lab = ProbedLab(write(tmp_path / "l2tp.pcap", result_code_8_wire(stop_ccn=False), result_code_8_times(False)))
    began = time.monotonic()
    robustness_suite.test_result_code_8(lab)
    assert time.monotonic() - began >= 1.05, "the case must wait for the Hello's acknowledgement, not glance once"
    assert lab.scenario.hello_interval_s == 1


def test_result_code_8_fails_a_tunnel_that_no_longer_acknowledges(tmp_path, short_timeout):
    """No StopCCN, but the Hello after the CDN went unacknowledged: the tunnel did not outlive the CDN (a quiet
    window alone passed this)."""
    wire = result_code_8_wire(stop_ccn=False, hello_acknowledged=False)
    lab = ProbedLab(write(tmp_path / "l2tp.pcap", wire, result_code_8_times(False, hello_acknowledged=False)))
    with pytest.raises(AssertionError, match="did not acknowledge the Hello the lns sent after the CDN"):
        robustness_suite.test_result_code_8(lab)
