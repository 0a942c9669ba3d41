"""IKEv2 responders probed by the harness itself (RFC 7296): the harness's own initiator sends IKE_SA_INIT
requests it built, well-formed and not, to each vendor playing the responder, and judges the answers on the
responder's wire. One row per vendor: probe -> <vendor>."""
from dataclasses import replace

import pytest

from harness.protocols.ipsec import probe
from harness.protocols.ipsec.scenario import IkeProposal, Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.probes, pytest.mark.features("psk")]

ACCEPTABLE = IkeProposal()  # AES-CBC-128, HMAC-SHA2-256-128, PRF-HMAC-SHA2-256, MODP_2048
RESPONDER = Scenario(ike=(ACCEPTABLE,))  # the responder accepts that proposal and no other


def answers_with_proposal(ipsec_probe, request: bytes, number: int, offered: IkeProposal) -> None:
    """RFC 7296 1.2/3.3: the response carries SA with the one proposal chosen, under its number, holding one
    transform of each type offered (3.3.6: "return all of the Proposal substructures with that Proposal
    number"), KE of that proposal's group, Nonce, and no error notify."""
    response = ipsec_probe.response_to(request)
    assert response is not None, f"no response to the request on the wire\n{ipsec_probe.describe()}"
    assert not response.errors, f"the response carries {' '.join(n.describe() for n in response.errors)}\n" \
                                f"{ipsec_probe.describe()}"
    chosen = [(p.number, p.protocol, sorted(p.algorithms)) for sa in response.payloads_of("SA") for p in sa.proposals]
    assert chosen == [(number, "IKE", sorted(probe.transform_names(offered)))], \
        f"expected proposal #{number} ({' '.join(probe.transform_names(offered))}); the response's SA holds " \
        f"{described(response)}\n{ipsec_probe.describe()}"
    ke = response.payload("KE")
    assert ke is not None and ke.group == offered.group, \
        f"expected KE {offered.group}; the response has {ke.describe() if ke else 'no KE'}\n{ipsec_probe.describe()}"
    assert response.payload("Nonce") is not None, f"no Nonce in the response\n{ipsec_probe.describe()}"


def described(response) -> str:
    """The proposals of a response's SA payloads with their numbers (a transcript line leaves those out)."""
    proposals = [f"#{p.number} {p.describe()}" for sa in response.payloads_of("SA") for p in sa.proposals]
    return " | ".join(proposals) or "no proposal"


def rejected_with(ipsec_probe, request: bytes, notify: str):
    """RFC 7296 2.21.1: the request is answered with the error notify `notify` and sets nothing up (no SA,
    no KE of the responder's). Returns the notify, for its data."""
    response = ipsec_probe.response_to(request)
    assert response is not None, f"no response to the request on the wire\n{ipsec_probe.describe()}"
    found = response.notify(notify)
    assert found is not None, f"expected N({notify}), got: {said(response.message)}\n{ipsec_probe.describe()}"
    assert not {"SA", "KE"} & set(response.names), f"the rejection carries SA or KE: {said(response.message)}\n" \
                                                   f"{ipsec_probe.describe()}"
    return found


def said(message) -> str:
    """What a message on the wire carries, in a few words: its payloads, notifies with their error data."""
    return " ".join(message.headline_tokens()) or "nothing"


def test_acceptable_proposal(ipsec_probe):
    """RFC 7296 1.2/3.3: an IKE_SA_INIT request offering a proposal the responder accepts is answered with SA
    (that proposal, the offered transforms), KE of the same group, Nonce, and no error notify."""
    ipsec_probe.start(RESPONDER)
    request = probe.ike_sa_init((ACCEPTABLE,))
    ipsec_probe.send(request)

    answers_with_proposal(ipsec_probe, request, 1, ACCEPTABLE)


def test_unknown_transform_id(ipsec_probe):
    """RFC 7296 3.3.6: a transform the responder does not understand is unacceptable, and other transforms and
    proposals are processed as usual: proposal 1, whose only cipher is unknown (an unassigned ENCR id), is
    left without an acceptable cipher; the responder chooses proposal 2 and answers with its number."""
    ipsec_probe.start(RESPONDER)
    unknown_cipher = replace(ACCEPTABLE, encryption=f"ENCR_{probe.UNASSIGNED_ENCRYPTION_ID}")
    request = probe.ike_sa_init((unknown_cipher, ACCEPTABLE))
    ipsec_probe.send(request)

    answers_with_proposal(ipsec_probe, request, 2, ACCEPTABLE)


def test_unknown_transform_type(ipsec_probe):
    """RFC 7296 3.3.6: a proposal containing a Transform Type the responder does not understand is
    unacceptable, even with every other transform acceptable; other proposals are processed as usual: the
    responder chooses proposal 2, the same transforms without the unknown type."""
    ipsec_probe.start(RESPONDER)
    unknown_type = probe.Offer(ACCEPTABLE, extra=(probe.Transform(probe.UNASSIGNED_TRANSFORM_TYPE, 1),))
    request = probe.ike_sa_init((unknown_type, ACCEPTABLE))
    ipsec_probe.send(request)

    answers_with_proposal(ipsec_probe, request, 2, ACCEPTABLE)


def test_invalid_ke_payload(ipsec_probe):
    """RFC 7296 1.2/3.4: a KE payload whose group is not the selected proposal's (MODP_3072 for a MODP_2048
    proposal) is rejected with INVALID_KE_PAYLOAD, whose data is the group the responder wants as two octets
    (3.10.1): 14, MODP_2048. A rejection carries no SA and no KE of the responder's."""
    ipsec_probe.start(RESPONDER)
    request = probe.ike_sa_init((ACCEPTABLE,), ke_group="MODP_3072")
    ipsec_probe.send(request)

    invalid_ke = rejected_with(ipsec_probe, request, "INVALID_KE_PAYLOAD")
    assert invalid_ke.group == ACCEPTABLE.group, f"expected the group {ACCEPTABLE.group} as two octets in the " \
                                                 f"notify, got {invalid_ke.data.hex() or 'no data'}\n" \
                                                 f"{ipsec_probe.describe()}"


def test_unknown_critical_payload(ipsec_probe):
    """RFC 7296 2.5: a message with a payload of a type the recipient does not know and the critical bit set
    MUST be rejected, and the response MUST include UNSUPPORTED_CRITICAL_PAYLOAD whose data is that
    payload's one-octet type (3.10.1)."""
    ipsec_probe.start(RESPONDER)
    request = probe.ike_sa_init((ACCEPTABLE,), extra_payloads=(probe.UnknownPayload(critical=True),))
    ipsec_probe.send(request)

    unsupported = rejected_with(ipsec_probe, request, "UNSUPPORTED_CRITICAL_PAYLOAD")
    assert unsupported.payload_type == probe.UNASSIGNED_PAYLOAD_TYPE, \
        f"expected the payload type {probe.UNASSIGNED_PAYLOAD_TYPE} as one octet in the notify, got " \
        f"{unsupported.data.hex() or 'no data'}\n{ipsec_probe.describe()}"


def test_unknown_payload(ipsec_probe):
    """RFC 7296 2.5/3.2: the same unknown payload without the critical bit is skipped: the request is
    answered as if it were not there."""
    ipsec_probe.start(RESPONDER)
    request = probe.ike_sa_init((ACCEPTABLE,), extra_payloads=(probe.UnknownPayload(critical=False),))
    ipsec_probe.send(request)

    answers_with_proposal(ipsec_probe, request, 1, ACCEPTABLE)


def test_truncated_request(ipsec_probe):
    """RFC 7296 2.21.1/3.10.1: a request cut short in transit (its IKE header gives a length beyond the
    datagram) is not answered: the error it would draw, INVALID_SYNTAX, "may only be returned for and in an
    encrypted packet", and IKE_SA_INIT is not encrypted. Its retransmission, whole, is answered as usual."""
    ipsec_probe.start(RESPONDER)
    request = probe.ike_sa_init((ACCEPTABLE,))
    ipsec_probe.send(probe.truncated(request), request)

    wire = ipsec_probe.wire()
    assert wire.malformed == 1, f"expected the truncated request as the one datagram not readable as IKE, " \
                                f"found {wire.malformed}\n{ipsec_probe.describe()}"
    # The truncated request is not readable as IKE: whatever the responder sent before the whole one answers it.
    messages = wire.ike()
    whole = next((i for i, m in enumerate(messages) if not m.is_response), len(messages))
    assert whole == 0, f"the responder answered the truncated request: {said(messages[0])}\n" \
                       f"{ipsec_probe.describe()}"
    assert [m.is_response for m in messages] == [False, True], \
        f"expected the whole request and one response, got {len(messages)} IKE message(s)\n{ipsec_probe.describe()}"
    answers_with_proposal(ipsec_probe, request, 1, ACCEPTABLE)

