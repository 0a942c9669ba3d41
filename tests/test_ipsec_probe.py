"""The conformance probes' requests, read back the way a case reads the wire: each built message goes into a
pcap and through wire.py and the transcript's payload decoder, which must find what the probe means to say."""
from __future__ import annotations

import struct
from dataclasses import replace
from types import SimpleNamespace

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import ROOT, load
from harness.protocols.ipsec import ike, probe
from harness.protocols.ipsec.fixtures import IPsecProbe
from harness.protocols.ipsec.scenario import IkeProposal
from harness.protocols.ipsec.transcript import DecryptedMessage, decrypt_ike
from harness.protocols.ipsec.wire import IKE_HEADER, Wire

PROBE, RESPONDER = "198.18.0.3", "198.18.0.2"
ACCEPTABLE = IkeProposal()
ACCEPTABLE_TRANSFORMS = ("ENCR_AES_CBC_128", "PRF_HMAC_SHA2_256", "AUTH_HMAC_SHA2_256_128", "MODP_2048")


def captured(tmp_path, *messages: bytes) -> Wire:
    """The messages as the responder's capture would hold them: one UDP datagram each, port 500 to 500."""
    path = tmp_path / "probe.pcap"
    wrpcap(str(path), [Ether() / IP(src=PROBE, dst=RESPONDER) / UDP(sport=500, dport=500) / Raw(m)
                       for m in messages])
    return Wire.from_pcap(path)


def decoded(tmp_path, message: bytes) -> DecryptedMessage:
    wire = captured(tmp_path, message)
    assert wire.malformed == 0, wire.describe()
    (request,) = decrypt_ike(wire)
    assert request.problem is None, request.describe()
    return request


def proposals(request: DecryptedMessage) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(p.number, p.protocol, p.algorithms) for p in request.sa.proposals]


def generic_headers(message: bytes) -> list[tuple[int, int, int]]:
    """(payload type, the byte holding the critical bit, length) along the chain, walked by hand."""
    headers, offset, kind = [], IKE_HEADER.size, message[16]
    while kind:
        following, flags, length = struct.unpack_from("!BBH", message, offset)
        headers.append((kind, flags, length))
        kind, offset = following, offset + length
    return headers


def substructure_marks(message: bytes) -> list[tuple[int, list[int]]]:
    """RFC 7296 3.3.1/3.3.2: the first byte of each proposal (2: more follow, 0: last) with the first byte of
    each of its transforms (3: more follow, 0: last). The decoders count instead, so this is read by hand."""
    sa_length = struct.unpack_from("!H", message, IKE_HEADER.size + 2)[0]
    offset, end, marks = IKE_HEADER.size + 4, IKE_HEADER.size + sa_length, []
    while offset < end:
        more, _, length, _, _, spi_size, count = struct.unpack_from("!BBHBBBB", message, offset)
        transform, transforms = offset + 8 + spi_size, []
        for _ in range(count):
            transforms.append(message[transform])
            transform += struct.unpack_from("!H", message, transform + 2)[0]
        marks.append((more, transforms))
        offset += length
    return marks


def test_a_well_formed_request_offers_its_proposal_with_a_key_length_and_a_matching_ke(tmp_path):
    message = probe.ike_sa_init((ACCEPTABLE,), spi=bytes.fromhex("0102030405060708"))
    request = decoded(tmp_path, message)
    header = request.message
    assert (header.exchange, header.is_initiator, header.is_response, header.message_id) == ("IKE_SA_INIT", True,
                                                                                           False, 0)
    assert (header.ispi, header.rspi) == (bytes.fromhex("0102030405060708"), bytes(8))
    assert probe.spi_of(message) == header.ispi
    assert request.names == ("SA", "KE", "Nonce")
    # "ENCR_AES_CBC_128": the decoder read 128 from a Key Length attribute in TV format (RFC 7296 3.3.5).
    assert proposals(request) == [(1, "IKE", ACCEPTABLE_TRANSFORMS)]
    assert probe.transform_names(ACCEPTABLE) == ACCEPTABLE_TRANSFORMS
    assert message.find(bytes.fromhex("800e0080")) > 0
    assert request.payload("KE").group == "MODP_2048" and len(request.payload("KE").body) == 4 + 256
    assert len(request.payload("Nonce").body) == probe.NONCE_LENGTH
    assert substructure_marks(message) == [(0, [3, 3, 3, 0])]
    assert [flags for _, flags, _ in generic_headers(message)] == [0, 0, 0]


def test_an_aead_proposal_has_no_integrity_transform(tmp_path):
    gcm = IkeProposal(encryption="ENCR_AES_GCM_16_256", integrity=None, group="CURVE25519")
    request = decoded(tmp_path, probe.ike_sa_init((gcm,)))
    assert proposals(request) == [(1, "IKE", ("ENCR_AES_GCM_16_256", "PRF_HMAC_SHA2_256", "CURVE25519"))]
    assert request.payload("KE").group == "CURVE25519" and len(request.payload("KE").body) == 4 + 32


def test_an_unknown_transform_id_is_proposal_1s_only_cipher(tmp_path):
    unknown_cipher = replace(ACCEPTABLE, encryption=f"ENCR_{probe.UNASSIGNED_ENCRYPTION_ID}")
    message = probe.ike_sa_init((unknown_cipher, ACCEPTABLE))
    request = decoded(tmp_path, message)
    assert proposals(request) == [
        (1, "IKE", ("ENCR_1000", "PRF_HMAC_SHA2_256", "AUTH_HMAC_SHA2_256_128", "MODP_2048")),
        (2, "IKE", ACCEPTABLE_TRANSFORMS)]
    assert substructure_marks(message) == [(2, [3, 3, 3, 0]), (0, [3, 3, 3, 0])]
    assert request.payload("KE").group == "MODP_2048"


def test_an_unknown_transform_type_is_added_to_proposal_1_only(tmp_path):
    offer = probe.Offer(ACCEPTABLE, extra=(probe.Transform(probe.UNASSIGNED_TRANSFORM_TYPE, 1),))
    message = probe.ike_sa_init((offer, ACCEPTABLE))
    request = decoded(tmp_path, message)
    assert proposals(request) == [(1, "IKE", ACCEPTABLE_TRANSFORMS + ("TYPE200_1",)),
                                  (2, "IKE", ACCEPTABLE_TRANSFORMS)]
    assert substructure_marks(message) == [(2, [3, 3, 3, 3, 0]), (0, [3, 3, 3, 0])]


def test_the_ke_payload_can_name_a_group_the_sa_does_not_offer(tmp_path):
    request = decoded(tmp_path, probe.ike_sa_init((ACCEPTABLE,), ke_group="MODP_3072"))
    assert proposals(request)[0][2][-1] == "MODP_2048"
    assert request.payload("KE").group == "MODP_3072" and len(request.payload("KE").body) == 4 + 384


@pytest.mark.parametrize("critical, flags", [(True, 0x80), (False, 0x00)])
def test_an_unknown_payload_follows_nonce_with_the_critical_bit_where_rfc_7296_puts_it(tmp_path, critical, flags):
    message = probe.ike_sa_init((ACCEPTABLE,), extra_payloads=(probe.UnknownPayload(critical=critical),))
    request = decoded(tmp_path, message)
    assert request.message.names == ("SA", "KE", "Nonce", "100")
    unknown = request.payload(str(probe.UNASSIGNED_PAYLOAD_TYPE))
    assert unknown.critical == critical and unknown.body == bytes(4)
    # The C bit is the top bit of its byte and the RESERVED bits stay zero (scapy's "critical" flag is bit 0).
    assert generic_headers(message)[-2:] == [(40, 0, 4 + probe.NONCE_LENGTH), (100, flags, 8)]
    assert struct.unpack_from("!I", message, 24)[0] == len(message)


def test_a_truncated_request_keeps_its_header_and_is_not_readable_as_ike(tmp_path):
    whole = probe.ike_sa_init((ACCEPTABLE,))
    cut = probe.truncated(whole)
    assert len(cut) == len(whole) // 2 and whole.startswith(cut)
    assert struct.unpack_from("!I", cut, 24)[0] == len(whole) > len(cut)
    assert probe.spi_of(cut) == probe.spi_of(whole)
    assert len(probe.truncated(whole, 40)) == 40

    wire = captured(tmp_path, cut, whole)
    assert wire.malformed == 1
    assert [m.ispi for m in wire.ike()] == [probe.spi_of(whole)]


def test_a_transform_name_must_be_iana_or_type_and_number():
    with pytest.raises(ValueError, match="no IANA transform id for ENCR_NOPE"):
        probe.ike_sa_init((replace(ACCEPTABLE, encryption="ENCR_NOPE"),))
    with pytest.raises(ValueError, match="no IANA transform id for PRF_12"):
        probe.ike_sa_init((replace(ACCEPTABLE, encryption="PRF_12"),))


# --- the conformance cases themselves, judging responses built with the same description -------------------------

conformance = load("suite_ipsec_conformance", ROOT / "suites" / "ipsec" / "test_conformance.py")


class ProbeStandIn:
    """What a conformance case asks of ipsec_probe, over a capture of the probe's requests and `responder`'s
    answers; response_to and describe are the fixture's own."""

    def __init__(self, tmp_path, responder, *, answers_damaged: bool = False):
        self.path, self.responder_answers, self.datagrams = tmp_path / "probe.pcap", responder, []
        self.responder = SimpleNamespace(address=RESPONDER)
        self.answers_damaged = answers_damaged

    def start(self, scenario):
        pass

    def send(self, *requests):
        for request in requests:
            self.datagrams.append((PROBE, RESPONDER, request))
            answer = self.responder_answers(ike.decode(request)) if ike.decode(request) else None
            if answer is not None and (self.answers_damaged or not ike.problems(ike.decode(request))):
                self.datagrams.append((RESPONDER, PROBE, bytes(answer)))
        wrpcap(str(self.path), [Ether() / IP(src=s, dst=d) / UDP(sport=500, dport=500) / Raw(m)
                                for s, d, m in self.datagrams])

    def wire(self):
        return Wire.from_pcap(self.path)

    def decrypted(self):
        return decrypt_ike(self.wire())

    response_to = IPsecProbe.response_to
    describe = IPsecProbe.describe


def response(request, *payloads) -> ike.Isakmp:
    return ike.Isakmp(ispi=request.ispi, rspi=b"\x99" * 8, exchange="IKE_SA_INIT", flags=ike.FLAG_RESPONSE,
                      payloads=list(payloads))


def chooses(number: int):
    def answer(request):
        transforms = [ike.transform(kind, name) for kind, name in probe._typed_names(ACCEPTABLE)]
        sa = ike.SecurityAssociation(proposals=[ike.Proposal(number=number, transforms=transforms)])
        return response(request, sa, ike.KeyExchange(group=ACCEPTABLE.group, key_data=bytes(256)),
                        ike.Nonce(nonce=bytes(32)))
    return answer


def test_the_acceptable_proposal_case_reads_the_chosen_proposal_and_group(tmp_path):
    conformance.test_acceptable_proposal(ProbeStandIn(tmp_path, chooses(1)))
    with pytest.raises(AssertionError, match="expected proposal #1"):
        conformance.test_acceptable_proposal(ProbeStandIn(tmp_path, chooses(2)))


@pytest.mark.parametrize("group, passes", [("MODP_2048", True), ("MODP_3072", False)])
def test_the_invalid_ke_case_reads_the_group_the_notify_types(tmp_path, group, passes):
    """RFC 7296 3.10.1: the notify's two data octets are the group: the case reads them as ike.GroupData does."""
    stand_in = ProbeStandIn(tmp_path, lambda request: response(request, ike.notify("INVALID_KE_PAYLOAD", group=group)))
    if passes:
        conformance.test_invalid_ke_payload(stand_in)
    else:
        with pytest.raises(AssertionError, match="expected the group MODP_2048 as two octets in the notify, got 000f"):
            conformance.test_invalid_ke_payload(stand_in)


@pytest.mark.parametrize("payload_type, passes", [(probe.UNASSIGNED_PAYLOAD_TYPE, True), (99, False)])
def test_the_critical_payload_case_reads_the_payload_type_the_notify_types(tmp_path, payload_type, passes):
    stand_in = ProbeStandIn(tmp_path, lambda request: response(
        request, ike.notify("UNSUPPORTED_CRITICAL_PAYLOAD", payload_type=payload_type)))
    if passes:
        conformance.test_unknown_critical_payload(stand_in)
    else:
        with pytest.raises(AssertionError, match="expected the payload type 100 as one octet in the notify, got 63"):
            conformance.test_unknown_critical_payload(stand_in)


def test_the_truncated_request_case_sees_the_cut_request_on_the_wire_and_no_answer_to_it(tmp_path):
    """The cut request is a damaged message now (its header readable, shown with why): counted as malformed, left
    out of the conversation the case judges."""
    conformance.test_truncated_request(ProbeStandIn(tmp_path, chooses(1)))
    with pytest.raises(AssertionError, match="the responder answered the truncated request"):
        conformance.test_truncated_request(ProbeStandIn(tmp_path, chooses(1), answers_damaged=True))
