"""The L2TP cases' wire checks (issue 12, item 5) on captures built with the codec, each judged by the case itself
(suites/l2tp) against a stand-in lab: a legal retransmission is not a sequence error."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import ROOT, load

from harness.protocols.l2tp import avp as A
from harness.protocols.l2tp.codec import control, encode, zlb
from harness.protocols.l2tp.fixtures import Session
from harness.protocols.l2tp.wire import Wire

LAC, LNS = "198.18.0.2", "198.18.0.3"
LAC_TUNNEL, LNS_TUNNEL, LAC_SESSION, LNS_SESSION = 17, 33, 5, 9
T0 = 1_700_000_000.0

setup_suite = load("suite_l2tp", ROOT / "suites" / "l2tp" / "test_l2tp.py")


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
