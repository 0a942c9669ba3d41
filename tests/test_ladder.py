"""Ladder diagrams: the protocol-agnostic SVG renderer (harness.report.ladder) and the IPsec events drawn from
the real strongSwan captures (harness.protocols.ipsec.ladder). Every chart is parsed as XML."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from types import SimpleNamespace

import pytest

from support import DATA, ROOT, load
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.ladder import ladder, ladder_events, message_notes, write_ladder
from harness.protocols.ipsec.transcript import DecryptedMessage
from harness.protocols.ipsec.wire import IkeMessage, Wire
from harness.report.ladder import (ERROR, WIDTH, Arrow, Band, Lifeline, Note, Remark, render, wrap)

SVG = "{http://www.w3.org/2000/svg}"
PSK, WRONG_PSK, FRAGMENTATION, GCM_REKEY = ("strongswan_psk_tunnel", "strongswan_wrong_psk",
                                            "strongswan_fragmentation", "strongswan_gcm_rekey")
keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")
NODES = [Lifeline("initiator strongswan", "198.18.1.2"), Lifeline("responder strongswan", "198.18.1.3")]


def both_logs(case: str):
    ike, esp = keylog.parse((DATA / f"{case}.initiator.log").read_text())
    ike2, esp2 = keylog.parse((DATA / f"{case}.responder.log").read_text())
    return ike + ike2, esp + esp2


class Chart:
    """An SVG chart read back: its groups by class, each as the list of (text, fill, weight) it shows."""

    def __init__(self, svg: str):
        self.svg = svg
        self.root = ET.fromstring(svg)  # raises on anything that is not well-formed XML

    def groups(self, kind: str) -> list[ET.Element]:
        return [g for g in self.root.iter(f"{SVG}g") if g.get("class") == kind]

    @staticmethod
    def texts(element: ET.Element) -> list[str]:
        return [t.text or "" for t in element.iter(f"{SVG}text")]

    def labels(self, kind: str) -> list[str]:
        """The first (bold) line of each group: an arrow's or band's label."""
        return [self.texts(g)[0] for g in self.groups(kind)]

    def text_element(self, text: str) -> ET.Element:
        return next(t for t in self.root.iter(f"{SVG}text") if t.text == text)

    @property
    def all_text(self) -> list[str]:
        return self.texts(self.root)


@pytest.fixture(scope="module")
def psk() -> Chart:
    return Chart(ladder(DATA / f"{PSK}.pcap", *both_logs(PSK), nodes=NODES, title="ipsec / psk_tunnel"))


def test_psk_chart_is_svg_of_fixed_width_with_two_lifelines(psk):
    assert psk.root.tag == f"{SVG}svg"
    assert psk.root.get("width") == str(WIDTH) and psk.root.get("viewBox").startswith(f"0 0 {WIDTH} ")
    assert [psk.texts(g) for g in psk.groups("lifeline")] == [["initiator strongswan", "198.18.1.2"],
                                                                ["responder strongswan", "198.18.1.3"]]
    assert len([e for e in psk.root.iter(f"{SVG}line") if e.get("class") == "lifeline-line"]) == 2


def test_psk_chart_has_one_arrow_per_ike_message_with_decrypted_detail(psk):
    assert psk.labels("arrow") == ["IKE_SA_INIT #0 request", "IKE_SA_INIT #0 response", "IKE_AUTH #1 request",
                                   "IKE_AUTH #1 response"]
    auth_request = psk.texts(psk.groups("arrow")[2])
    assert auth_request[1] == "0.009"  # seconds since the first message, in the time column
    assert {"IDi FQDN initiator.lab", "N(INITIAL_CONTACT)", "AUTH shared-key",
            "TSi 198.19.1.0/24, TSr 198.19.2.0/24"} <= set(auth_request)
    assert psk.texts(psk.groups("arrow")[0])[1] == "0.000"
    # Replies are dashed, requests solid; nothing here is an error.
    dashed = [any(e.get("stroke-dasharray") for e in g.iter(f"{SVG}line")) for g in psk.groups("arrow")]
    assert dashed == [False, True, False, True]
    assert ERROR not in psk.svg


def test_psk_chart_summarises_esp_per_spi_and_direction(psk):
    assert psk.labels("band") == ["ESP spi 0xe0e82121: 3 packets (in UDP)", "ESP spi 0xa457cdb7: 3 packets (in UDP)"]
    out, back = (psk.texts(g) for g in psk.groups("band"))
    assert "3× ICMP echo-request 198.19.1.1 > 198.19.2.1" in out and "seq 1..3" in out
    assert "3× ICMP echo-reply 198.19.2.1 > 198.19.1.1" in back
    assert not any("ICMP" in t for g in psk.groups("arrow") for t in psk.texts(g))  # no arrow per ESP packet


def test_wrong_psk_shows_authentication_failed_in_red():
    chart = Chart(ladder(DATA / f"{WRONG_PSK}.pcap", *both_logs(WRONG_PSK), nodes=NODES))
    assert chart.labels("arrow")[-1] == "IKE_AUTH #1 response"
    failed = chart.text_element("N(AUTHENTICATION_FAILED)")
    assert failed.get("fill") == ERROR
    last = chart.groups("arrow")[-1]
    assert [e.get("stroke") for e in last.iter(f"{SVG}line")] == [ERROR]
    assert chart.text_element("IKE_AUTH #1 response").get("fill") == ERROR
    assert "no ESP on the wire" in chart.all_text and not chart.groups("band")


def test_fragmented_messages_are_one_arrow_each():
    chart = Chart(ladder(DATA / f"{FRAGMENTATION}.pcap", *both_logs(FRAGMENTATION)))
    assert len(chart.groups("lifeline")) == 2
    assert chart.labels("arrow") == ["IKE_SA_INIT #0 request", "IKE_SA_INIT #0 response",
                                     "IKE_AUTH #1 request (2 fragments)", "IKE_AUTH #1 response (2 fragments)"]
    request = chart.texts(chart.groups("arrow")[2])
    assert "CERT X.509 CN=initiator.lab 1279 bytes" in request
    assert "AUTH digital-signature sha384WithRSAEncryption" in request


def test_fragments_without_keys_still_make_one_arrow_per_message():
    chart = Chart(ladder(DATA / f"{FRAGMENTATION}.pcap"))
    assert chart.labels("arrow")[2:] == ["IKE_AUTH #1 request (2 fragments)", "IKE_AUTH #1 response (2 fragments)"]
    assert "encrypted (no keys)" in chart.texts(chart.groups("arrow")[2])


def test_rekeys_deletes_and_quiet_stretches():
    wire = Wire.from_pcap(DATA / f"{GCM_REKEY}.pcap")
    chart = Chart(ladder(DATA / f"{GCM_REKEY}.pcap", *both_logs(GCM_REKEY)))
    assert len(chart.groups("arrow")) == len(wire.messages)
    assert len(chart.groups("band")) == len(wire.flows)
    texts = chart.all_text
    assert texts.count("Delete IKE") == 3 and "(empty: liveness check)" in texts
    rekeys = [" ".join(chart.texts(g)) for g in chart.groups("arrow")
              if chart.texts(g)[0].startswith("CREATE_CHILD_SA #0")]
    assert len(rekeys) == 4
    assert all("SA IKE: ENCR_AES_GCM_16_256 PRF_HMAC_SHA2_384 MODP_2048 spi=0x" in t for t in rekeys)
    assert chart.groups("gap") and all(re.fullmatch(r"\+\d+\.\d s", chart.texts(g)[0]) for g in chart.groups("gap"))
    # the chart grows with the exchange, its width does not
    assert int(chart.root.get("height")) > 2000 and chart.root.get("width") == str(WIDTH)


def test_synthetic_capture_third_peer_invalid_ke_and_malformed():
    chart = Chart(ladder(DATA / "ipsec_synthetic.pcap", nodes=[Lifeline("initiator a", "198.18.0.2"),
                                                                 Lifeline("responder b", "198.18.0.3")]))
    assert [chart.texts(g) for g in chart.groups("lifeline")][2] == ["peer", "198.18.0.4"]
    assert chart.text_element("N(INVALID_KE_PAYLOAD: MODP_2048)").get("fill") == ERROR
    # The IKE message whose Notify overruns it is an arrow of its own, in red; the 3-byte datagram is counted.
    bad = chart.groups("arrow")[-1]
    assert chart.texts(bad)[0] == "INFORMATIONAL #2 request, malformed (40 bytes)"
    assert " ".join(chart.texts(bad)[2:]) == ("malformed: Notify payload at byte 28: length 200 runs past the end "
                                             "(12 byte(s) left)")
    assert {t.get("fill") for t in bad.iter(f"{SVG}text") if t.text.startswith("malformed")} == {ERROR}
    assert chart.texts(chart.groups("remark")[-1]) == ["1 more malformed packet(s) skipped"]
    assert "ESP spi 0xc0000003: 1 packet" in chart.labels("band")


def test_without_nodes_lifelines_are_named_by_ike_role():
    chart = Chart(ladder(DATA / f"{PSK}.pcap"))
    assert [chart.texts(g) for g in chart.groups("lifeline")] == [["IKE initiator", "198.18.1.2"],
                                                                  ["IKE responder", "198.18.1.3"]]


@pytest.mark.parametrize("name", ["missing.pcap", "malformed/not_a_pcap.txt", "malformed/garbage_after_header.pcap"])
def test_nothing_readable_is_a_chart_saying_so(name):
    chart = Chart(ladder(DATA / name, nodes=NODES))
    assert "no IKE or ESP on the wire" in chart.all_text and len(chart.groups("lifeline")) == 2


def _message(*, exchange="CREATE_CHILD_SA", message_id=5, is_initiator=True, is_response=False, time=0.0,
             src="198.18.1.2", dst="198.18.1.3", payloads=None, tag=b"") -> IkeMessage:
    """A message built with the IKE description: an SK payload holding `tag` unless payloads are given."""
    flags = (ike.FLAG_INITIATOR if is_initiator else 0) | (ike.FLAG_RESPONSE if is_response else 0)
    body = payloads if payloads is not None else [ike.Encrypted(next_payload=0, encrypted=tag or bytes(32))]
    data = bytes(ike.Isakmp(exchange=exchange, flags=flags, message_id=message_id, payloads=body))
    return IkeMessage(time=time, src=src, dst=dst, sport=4500, dport=4500, data=data)


def test_retransmissions_are_abbreviated_and_create_child_sa_says_what_for():
    chart = Chart(ladder(DATA / f"{GCM_REKEY}.pcap", *both_logs(GCM_REKEY)))
    labels = chart.labels("arrow")
    assert labels.count("CREATE_CHILD_SA #0 request: rekey IKE SA") == 2
    assert labels.count("CREATE_CHILD_SA #0 response: rekey IKE SA") == 2
    assert {"CREATE_CHILD_SA #4 request: new CHILD SA", "CREATE_CHILD_SA #4 response: new CHILD SA"} <= set(labels)
    rekey = ike.notify("REKEY_SA", protocol="ESP", spi=bytes(4))
    sa = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="ESP", spi=bytes(4))])
    request = DecryptedMessage(_message(tag=b"request"), (rekey, sa))
    response = DecryptedMessage(_message(is_response=True, is_initiator=False, src="198.18.1.3", dst="198.18.1.2",
                                         tag=b"response"), (sa,))
    _lifelines, events = ladder_events([request, response], Wire())
    assert [e.label for e in events[:2]] == ["CREATE_CHILD_SA #5 request: rekey CHILD SA",
                                             "CREATE_CHILD_SA #5 response: rekey CHILD SA"]
    synthetic = Chart(ladder(DATA / "ipsec_synthetic.pcap"))
    assert synthetic.labels("arrow")[:2] == ["IKE_SA_INIT #0 request", "IKE_SA_INIT #0 response"]


def test_a_retransmission_shows_only_when_it_was_first_sent_and_its_errors():
    no_proposal = ike.notify("NO_PROPOSAL_CHOSEN")
    request = _message(exchange="IKE_SA_INIT", payloads=[no_proposal])
    first = DecryptedMessage(request, (no_proposal,))
    again = DecryptedMessage(replace(request, time=2.5), (no_proposal,))
    lifelines, events = ladder_events([first, again], Wire())
    assert [n.text for n in events[1].notes] == ["retransmission of the message at 0.000", "N(NO_PROPOSAL_CHOSEN)"]
    assert events[1].error and events[1].notes[1].error


def test_notes_put_errors_first_and_keep_steering_notifies():
    rekey = ike.notify("REKEY_SA", protocol="ESP", spi=bytes.fromhex("c0ffee01"))
    cookie = ike.notify("COOKIE", cookie=b"\x01" * 16)
    proposal_failure = ike.notify("NO_PROPOSAL_CHOSEN")
    fragmentation = ike.notify("IKEV2_FRAGMENTATION_SUPPORTED")
    message = DecryptedMessage(_message(), (rekey, cookie, fragmentation, proposal_failure))
    assert message_notes(message) == [Note("N(NO_PROPOSAL_CHOSEN)", error=True), Note("N(REKEY_SA) ESP spi=0xc0ffee01"),
                                      Note("N(COOKIE)"), Note("+ N(IKEV2_FRAGMENTATION)", dim=True)]
    empty = DecryptedMessage(_message(exchange="INFORMATIONAL"), (), keys=object())
    assert message_notes(empty) == [Note("(empty: liveness check)", dim=True)]
    broken = DecryptedMessage(_message(), (), problem="undecryptable: ICV mismatch")
    assert message_notes(broken) == [Note("undecryptable: ICV mismatch", error=True)]


def test_write_ladder_names_lifelines_by_role_and_vendor(tmp_path):
    vendor = {"initiator": SimpleNamespace(name="strongswan"), "responder": SimpleNamespace(name="libreswan")}
    pair = SimpleNamespace(protocol="ipsec", case="psk_tunnel", roles=("initiator", "responder"),
                           a=vendor["initiator"], b=vendor["responder"], vendor=vendor.__getitem__)
    write_ladder(SimpleNamespace(pair=pair, dir=tmp_path), DATA / f"{PSK}.pcap",
                 {"initiator": "198.18.1.2", "responder": "198.18.1.3"}, *both_logs(PSK))
    chart = Chart((tmp_path / "ladder.svg").read_text())
    assert [chart.texts(g)[0] for g in chart.groups("lifeline")] == ["initiator strongswan", "responder libreswan"]
    assert "ipsec / psk_tunnel / strongswan -> libreswan" in chart.all_text
    assert len(chart.groups("arrow")) == 4


# --- the renderer, on its own -------------------------------------------------------------------------------

ODD = 'ü <script>alert("x")</script> & \'quotes\' \x00\x1b\ud800 日本語 ]]> --> \u202e'


def test_odd_text_is_escaped_and_still_valid_xml():
    svg = render([Lifeline(ODD, ODD), Lifeline("b")],
                 [Arrow(1.0, 0, 1, ODD, [ODD, Note(ODD, error=True)]), Band(2.0, 1, 0, ODD, [ODD]), Remark(ODD)],
                 title=ODD)
    chart = Chart(svg)
    assert not list(chart.root.iter(f"{SVG}script")) and "<script" not in svg
    shown = " ".join(chart.all_text)
    assert '<script>alert("x")</script>' in shown and "\\x00\\x1b" in shown and "\\ud800" in shown
    assert "日本語" in shown and "]]>" in shown
    assert chart.root.find(f"{SVG}title").text.startswith("ü <script>")


def test_plain_self_contained_svg_with_readable_fonts():
    svg = render(NODES, [Arrow(0.0, 0, 1, "hello", ["a note"])])
    chart = Chart(svg)
    for banned in ("<style", "href", "url(", "@import", "<script", "<foreignObject", "<image"):
        assert banned not in svg
    sizes = [int(t.get("font-size")) for t in chart.root.iter(f"{SVG}text")]
    assert sizes and min(sizes) >= 12
    assert chart.root.find(f"{SVG}rect").get("fill") == "#ffffff"  # not transparent when rendered


def test_height_grows_with_events_and_width_does_not():
    def height(count: int) -> int:
        events = [Arrow(i * 0.1, i % 2, 1 - i % 2, f"message {i}") for i in range(count)]
        root = ET.fromstring(render(NODES, events))
        assert root.get("width") == str(WIDTH)
        return int(root.get("height"))
    assert height(1) < height(5) < height(50)
    assert height(50) - height(5) >= 45 * 40  # every arrow gets its row


def test_long_notes_wrap_within_the_chart():
    long = "SA " + " | ".join(["IKE: ENCR_AES_CBC_128 AUTH_HMAC_SHA2_256_128 PRF_HMAC_SHA2_256 MODP_2048"] * 3)
    token = "ab" * 300  # one word longer than any line
    chart = Chart(render(NODES, [Arrow(0.0, 0, 1, "x", [long, token])]))
    lines = chart.texts(chart.groups("arrow")[0])[2:]
    assert len(lines) > 4
    for element in chart.groups("arrow")[0].iter(f"{SVG}text"):
        width = len(element.text) * int(element.get("font-size")) * 0.61
        left = float(element.get("x")) - (width / 2 if element.get("text-anchor") == "middle" else 0)
        assert left + width <= WIDTH, element.text
    assert "".join(lines).replace(" ", "").replace("…", "").startswith("SA")


def test_many_note_lines_are_capped():
    chart = Chart(render(NODES, [Arrow(0.0, 0, 1, "x", [f"note {i}" for i in range(100)])]))
    texts = chart.texts(chart.groups("arrow")[0])
    assert len(texts) < 20 and texts[-1].startswith("… ") and "more line" in texts[-1]


def test_wrap_breaks_words_and_keeps_short_text_whole():
    assert wrap("short text", 40) == ["short text"]
    assert wrap("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert wrap("", 10) == [""]
    assert all(len(line) <= 12 for line in wrap("one two three four five six seven eight nine", 12))


def test_events_are_drawn_in_time_order_with_times_relative_to_the_first():
    chart = Chart(render(NODES, [Arrow(10.5, 1, 0, "second"), Arrow(10.0, 0, 1, "first"),
                                 Remark("at the end"), Band(10.2, 0, 1, "band", end_time=10.4)]))
    assert chart.labels("arrow") == ["first", "second"]
    assert chart.texts(chart.groups("arrow")[1])[1] == "0.500"
    assert chart.texts(chart.groups("band")[0])[1:3] == ["0.200", "…0.400"]


def test_self_messages_and_a_single_lifeline_render():
    chart = Chart(render([Lifeline("only")], [Arrow(0.0, 0, 0, "to itself", ["note"])]))
    assert chart.labels("arrow") == ["to itself"]
    assert Chart(render([], [])).all_text[-1] == "(no events)"


def test_a_flood_of_events_is_cut_short_saying_so():
    chart = Chart(render(NODES, [Arrow(i / 1000, 0, 1, f"m{i}") for i in range(1000)]))
    assert len(chart.groups("arrow")) < 1000
    assert chart.texts(chart.groups("remark")[-1])[0].startswith("… and ")


def test_unknown_lifeline_is_an_error():
    with pytest.raises(ValueError):
        render(NODES, [Arrow(0.0, 0, 2, "nowhere")])
