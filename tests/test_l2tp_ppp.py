"""The user-space PPP endpoint (harness/protocols/l2tp/ppp.py): async HDLC framing and the LCP/PAP/CHAP/IPCP
negotiation, driven by canned frames and by two endpoints wired back to back. No docker."""
import struct

import pytest

from harness.protocols.l2tp import ppp

LNS = {"local": "198.19.200.1", "remote": "198.19.200.2", "auth": "pap", "username": "u", "password": "pw"}
LAC = {"local": None, "remote": None, "username": "u", "password": "pw"}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def endpoint(config):
    sent = []
    link = ppp.Link(config, write=sent.append, clock=Clock())
    return link, sent


def controls(sent, protocol=None):
    """(protocol, code, ident, options-or-data) of each control packet written."""
    out = []
    for payload in sent:
        proto, info = ppp.split_protocol(payload)
        if protocol is None or proto == protocol:
            code, ident, data = ppp.parse_packet(info)
            out.append((proto, code, ident, data))
    return out


def lcp(code, ident, options):
    return ppp.ADDRESS_CONTROL + struct.pack("!H", ppp.LCP) + ppp.packet(code, ident, ppp.options_bytes(options))


# --- framing ----------------------------------------------------------------------------------------------------

def test_fcs16_check_value():
    """RFC 1662's FCS-16 is CRC-16/X-25: the check value of "123456789" is 0x906E."""
    assert ppp.fcs16(b"123456789") ^ 0xFFFF == 0x906E


def test_frame_escapes_flag_escape_and_control_characters():
    wire = ppp.frame(b"\xff\x03\xc0\x21\x7e\x7d\x11\x41")
    assert wire[0] == wire[-1] == 0x7E
    body = wire[1:-1]
    assert 0x7E not in body and b"\x7d\x5e\x7d\x5d\x7d\x31\x41" in body
    assert all(b >= 0x20 or body[i - 1] == 0x7D for i, b in enumerate(body) if b != 0x7D)


def test_canned_lcp_request_from_pppd():
    """An LCP Configure-Request as pppd writes it (ACCM 0, magic 0x2fb9ad3e), with its FCS: deframed whole."""
    payload = bytes.fromhex("ff03c021010100140206000000000506 2fb9ad3e 07020802".replace(" ", ""))
    wire = ppp.frame(payload)
    assert ppp.Deframer().feed(wire) == [payload]
    proto, info = ppp.split_protocol(payload)
    code, ident, data = ppp.parse_packet(info)
    assert (proto, code, ident) == (ppp.LCP, ppp.CONF_REQ, 1)
    assert ppp.parse_options(data) == [(2, b"\0\0\0\0"), (5, bytes.fromhex("2fb9ad3e")), (7, b""), (8, b"")]


def test_deframer_across_reads_and_bad_fcs():
    first, second = ppp.frame(b"\xff\x03\x00\x21abc"), ppp.frame(b"\xff\x03\x00\x21\x7d\x7e")
    stream = first + second[:-1]
    d = ppp.Deframer()
    out = []
    for i in range(0, len(stream), 3):  # escapes split across reads must still be undone
        out += d.feed(stream[i:i + 3])
    out += d.feed(b"\x7e")
    assert out == [b"\xff\x03\x00\x21abc", b"\xff\x03\x00\x21\x7d\x7e"]
    corrupt = bytearray(ppp.frame(b"\xff\x03\x00\x21abc"))
    corrupt[6] ^= 0x01
    assert d.feed(bytes(corrupt)) == [] and d.bad_fcs == 1


def test_split_protocol_with_compression():
    assert ppp.split_protocol(b"\x21\x45\x00") == (0x21, b"\x45\x00")  # ACFC and PFC
    assert ppp.split_protocol(b"\xc0\x21\x01") == (ppp.LCP, b"\x01")  # ACFC only


# --- LCP --------------------------------------------------------------------------------------------------------

def test_lcp_request_asks_for_mru_magic_and_pap_as_authenticator():
    link, sent = endpoint(LNS)
    link.start()
    (proto, code, ident, data), = controls(sent)
    assert (proto, code) == (ppp.LCP, ppp.CONF_REQ)
    kinds = [kind for kind, _ in ppp.parse_options(data)]
    assert kinds == [ppp.MRU, ppp.MAGIC, ppp.AUTH]
    assert dict(ppp.parse_options(data))[ppp.AUTH] == struct.pack("!H", ppp.PAP)


def test_lcp_rejects_compression_and_unknown_options():
    link, sent = endpoint(LAC)
    link.start()
    sent.clear()
    link.receive(lcp(ppp.CONF_REQ, 7, [(ppp.MAGIC, b"\1\2\3\4"), (ppp.PFC, b""), (ppp.ACFC, b""), (13, b"\6")]))
    (_, code, ident, data), = controls(sent)
    assert (code, ident) == (ppp.CONF_REJ, 7)
    assert ppp.parse_options(data) == [(ppp.PFC, b""), (ppp.ACFC, b""), (13, b"\6")]


def test_lcp_naks_unsupported_chap_algorithm():
    link, sent = endpoint(LAC)
    link.start()
    sent.clear()
    link.receive(lcp(ppp.CONF_REQ, 3, [(ppp.AUTH, struct.pack("!HB", ppp.CHAP, 0x81))]))  # MS-CHAPv2
    (_, code, _, data), = controls(sent)
    assert code == ppp.CONF_NAK and ppp.parse_options(data) == [(ppp.AUTH, struct.pack("!HB", ppp.CHAP, 5))]


def test_lcp_reject_drops_the_option_from_the_next_request():
    link, sent = endpoint(LAC)
    link.start()
    (_, _, ident, _), = controls(sent)
    sent.clear()
    link.receive(lcp(ppp.CONF_REJ, ident, [(ppp.MRU, struct.pack("!H", 1400))]))
    (_, code, _, data), = controls(sent)
    assert code == ppp.CONF_REQ and [k for k, _ in ppp.parse_options(data)] == [ppp.MAGIC]


def test_lcp_opens_after_ack_both_ways_and_answers_echo():
    link, sent = endpoint(LAC)
    link.start()
    (_, _, ident, data), = controls(sent)
    link.receive(ppp.ADDRESS_CONTROL + struct.pack("!H", ppp.LCP) + ppp.packet(ppp.CONF_ACK, ident, data))
    assert link.lcp.state == "ack-rcvd"
    link.receive(lcp(ppp.CONF_REQ, 1, [(ppp.MAGIC, b"\1\2\3\4")]))
    assert link.lcp.state == "opened" and ("lcp-up",) in link.events
    sent.clear()
    link.receive(ppp.ADDRESS_CONTROL + struct.pack("!H", ppp.LCP) + ppp.packet(ppp.ECHO_REQ, 9, b"\1\2\3\4"))
    (_, code, ident, data), = controls(sent)
    assert (code, ident) == (ppp.ECHO_REPLY, 9) and data == struct.pack("!I", link.lcp.magic)


def test_lcp_retransmits_then_gives_up():
    link, sent = endpoint(LAC)
    link.start()
    for step in range(1, ppp.MAX_CONFIGURE + 2):
        link.now.t = step * ppp.RESTART_S
        link.tick(link.now())
    requests = [c for c in controls(sent) if c[1] == ppp.CONF_REQ]
    assert len(requests) == ppp.MAX_CONFIGURE + 1
    assert len({ident for _, _, ident, _ in requests}) == len(requests)  # a new id for each
    assert link.failed and link.finished


# --- the whole link, two endpoints back to back -----------------------------------------------------------------

def wire(a_config, b_config, steps=20):
    """Run two endpoints against each other, delivering each one's frames to the other, until quiet."""
    a_out, b_out = [], []
    a = ppp.Link(a_config, write=a_out.append, clock=Clock())
    b = ppp.Link(b_config, write=b_out.append, clock=Clock())
    a.start()
    b.start()
    for _ in range(steps):
        if not a_out and not b_out:
            break
        to_b, to_a = a_out[:], b_out[:]
        a_out.clear()
        b_out.clear()
        for payload in to_b:
            b.receive(ppp.Deframer().feed(ppp.frame(payload))[0])  # through the framing too
        for payload in to_a:
            a.receive(payload)
    return a, b


@pytest.mark.parametrize("auth", ["none", "pap", "chap"])
def test_session_comes_up_and_lns_assigns_the_lac_address(auth):
    lns, lac = wire({**LNS, "auth": auth}, LAC)
    assert ("ipcp-up", "198.19.200.1", "198.19.200.2") in lns.events, lns.events
    assert ("ipcp-up", "198.19.200.2", "198.19.200.1") in lac.events, lac.events
    if auth != "none":
        assert ("authenticated-peer", auth, "u") in lns.events and ("authenticated-self", auth) in lac.events


@pytest.mark.parametrize("auth", ["pap", "chap"])
def test_wrong_password_fails_the_link(auth):
    lns, lac = wire({**LNS, "auth": auth}, {**LAC, "password": "wrong"})
    assert lns.failed and not lns.ipcp_open and not lac.ipcp_open
    assert "wrong" in lns.failed


def test_ipv4_flows_only_once_ipcp_is_open():
    received = []
    lns, lac = wire(LNS, LAC)
    lns.on_ipv4 = received.append
    out = []
    lac.write = out.append
    lac.send_ipv4(b"\x45datagram")
    for payload in out:
        lns.receive(payload)
    assert received == [b"\x45datagram"]
