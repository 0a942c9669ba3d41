"""IKE SA set-up and negotiation (RFC 7296, RFC 6023). These cases need no CHILD SA: they run childless, so
they judge IKE interop even where a vendor cannot install ESP SAs on this host."""
import allure
import pytest

from harness.protocols.ipsec.scenario import IkeProposal, Scenario
from harness.protocols.ipsec.transcript import DecryptedMessages
from harness.protocols.ipsec.wire import IkeMessages

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "childless")]

STRONG = IkeProposal(encryption="ENCR_AES_CBC_256", integrity="AUTH_HMAC_SHA2_512_256", prf="PRF_HMAC_SHA2_512",
                     group="MODP_3072")
LIVENESS_CHECKS = 2  # answered: more than one that happened to be


def exchanges(messages) -> list[tuple[str, bool, bool]]:
    """(exchange, sent by the original initiator, is a response) per message: the shape of a conversation."""
    return [(m.exchange, m.is_initiator, m.is_response) for m in messages]


def answers(response, request) -> bool:
    """RFC 7296 2.2: a response carries its request's message ID and goes back the way the request came."""
    return (response.is_response and response.message_id == request.message_id
            and (response.src, response.dst) == (request.dst, request.src))


def test_ike_only(ipsec_pair):
    """RFC 6023: with childless IKEv2 the IKE SA comes up with no CHILD SA; RFC 7296 1.4.1: closing it sends
    an INFORMATIONAL request with Delete, which the peer answers."""
    tunnel = ipsec_pair.establish(Scenario(childless=True))
    assert tunnel.up, tunnel.explain()
    for role in ("initiator", "responder"):
        assert not tunnel.child_sas(role), f"{role} installed a CHILD SA in a childless IKE SA"
    tunnel.close()

    wire = ipsec_pair.wire()
    assert exchanges(wire.ike()) == [("IKE_SA_INIT", True, False), ("IKE_SA_INIT", False, True),
                                     ("IKE_AUTH", True, False), ("IKE_AUTH", False, True),
                                     ("INFORMATIONAL", True, False), ("INFORMATIONAL", False, True)], \
        wire.describe()
    assert not wire.esp(), wire.describe()
    if ipsec_pair.ike_keys_exported:  # else (Libreswan only) the exchange shape above is what the wire proves
        delete = ipsec_pair.decrypted().ike("INFORMATIONAL")[0]
        assert [d.protocol for d in delete.payloads_of("Delete")] == ["IKE"], delete.describe()


@pytest.mark.features("psk")  # it ends in IKE_SA_INIT, before any CHILD SA: no need to run childless
def test_no_proposal_chosen(ipsec_pair):
    """RFC 7296 2.7/3.10.1: a responder that accepts none of the offered proposals answers IKE_SA_INIT with
    NO_PROPOSAL_CHOSEN, and no IKE SA is set up."""
    # RFC 7296 2.21.1: an initiator may take an unprotected error notify for a forgery and wait for a real answer
    # until its retransmissions run out (Libreswan does). The refusal comes at once; short timers end that wait a
    # second after the first request (one retransmission at 0.5 s), not 8 s.
    tunnel = ipsec_pair.establish(Scenario(ike=(STRONG,), responder_ike=(IkeProposal(),),
                                           retransmit_timeout_s=0.5, retransmit_tries=1))
    assert not tunnel.up, f"an IKE SA came up with disjoint proposals\n{tunnel.explain()}"

    wire = ipsec_pair.wire()
    init = wire.ike("IKE_SA_INIT")
    responses = [m for m in init if m.is_response]
    assert responses and responses[0].notify("NO_PROPOSAL_CHOSEN"), init.describe()
    assert not wire.ike("IKE_AUTH"), f"IKE_AUTH after NO_PROPOSAL_CHOSEN:\n{wire.describe()}"


def test_ke_group_mismatch(ipsec_pair):
    """RFC 7296 1.2/1.3: a responder that accepts the proposal but not the KE payload's group answers
    INVALID_KE_PAYLOAD naming its group; the initiator retries IKE_SA_INIT with that group and succeeds."""
    modp2048 = IkeProposal(group="MODP_2048")
    tunnel = ipsec_pair.establish(Scenario(childless=True, ike=(IkeProposal(group="MODP_3072"), modp2048),
                                           responder_ike=(modp2048,)))
    assert tunnel.up, tunnel.explain()

    init = ipsec_pair.decrypted().ike("IKE_SA_INIT")  # in the clear: typed without keys, shown in full
    assert [m.is_response for m in init] == [False, True, False, True], init.describe()
    invalid_ke = init[1].notify("INVALID_KE_PAYLOAD")
    assert invalid_ke is not None, init.describe()
    assert invalid_ke.group == "MODP_2048", f"expected MODP_2048 in the notify:\n{init.describe()}"
    retry = init[2].payload("KE")
    assert retry is not None and retry.group == invalid_ke.group, \
        f"the retry's KE payload must use the group the responder asked for ({invalid_ke.group}):\n{init.describe()}"
    assert not init[3].errors, init.describe()


@pytest.mark.features("psk", "childless", "dpd")
def test_liveness(ipsec_pair):
    """RFC 7296 2.4: an endpoint that has heard nothing for a while checks liveness with an INFORMATIONAL
    request, which the peer must answer (same message ID, sent as a response)."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, dpd_delay_s=1))
    assert tunnel.up, tunnel.explain()

    def checks(wire):
        info = wire.ike("INFORMATIONAL")
        requests = [m for m in info if not m.is_response]
        return requests, [r for r in requests if any(answers(m, r) for m in info)]

    def all_answered(wire):
        requests, answered = checks(wire)
        return len(answered) >= LIVENESS_CHECKS and answered == requests
    # A check after every second of silence, from either end that has the delay (a check heard is traffic: the
    # other end then need not check): two answered 1-2 s after set-up, or the case judges what 5 s brought.
    ipsec_pair.wire_until(all_answered, timeout=LIVENESS_CHECKS + 3)
    for node in ipsec_pair.nodes.values():
        node.ensure_running()

    info = ipsec_pair.wire().ike("INFORMATIONAL")
    requests, answered = checks(ipsec_pair.wire())
    assert len(requests) >= LIVENESS_CHECKS, \
        f"expected a liveness check after every second of silence, {LIVENESS_CHECKS} of them:\n{info.describe()}"
    assert answered == requests, f"unanswered liveness checks:\n{info.describe()}"
    if ipsec_pair.ike_keys_exported:  # RFC 7296 2.4: a liveness check is an empty INFORMATIONAL, as is its answer
        for check in ipsec_pair.decrypted().ike("INFORMATIONAL"):
            assert check.decrypted and check.names == (), check.describe()



def authenticates_with_certificates(ipsec_pair, key_type: str) -> None:
    tunnel = ipsec_pair.establish(Scenario(childless=True, auth=key_type))
    assert tunnel.up, tunnel.explain()
    auth = ipsec_pair.wire().ike("IKE_AUTH")
    # One request, one response; either may arrive in several SKF fragments (RFC 7383).
    assert list(dict.fromkeys((m.message_id, m.is_response) for m in auth)) == [(1, False), (1, True)], \
        auth.describe()
    opened = DecryptedMessages(m for m in ipsec_pair.decrypted().ike("IKE_AUTH") if not m.fragment or m.decrypted)
    if ipsec_pair.ike_keys_exported:
        assert len(opened) == 2 and all(m.decrypted for m in opened), opened.describe()
        assert all(m.payload("CERT") and m.payload("AUTH").method != "shared-key" for m in opened), opened.describe()
        # RSA: PKCS#1 v1.5 or PSS (RFC 7427) is each side's choice and a classic interop trap; show which.
        schemes = "\n".join(f"{'responder' if m.is_response else 'initiator'}: {m.payload('AUTH').describe()}"
                             for m in opened)
        allure.attach(schemes, name="signature schemes", attachment_type=allure.attachment_type.TEXT)


@pytest.mark.features("rsa", "childless")
def test_certificates_rsa(ipsec_pair):
    """RFC 7296 2.15/3.6: each peer proves its identity with an RSA signature over the exchange, checked
    against a certificate from a CA both trust (RFC 7427 lets each pick PKCS#1 v1.5 or PSS)."""
    authenticates_with_certificates(ipsec_pair, "rsa")


@pytest.mark.features("ecdsa", "childless")
def test_certificates_ecdsa(ipsec_pair):
    """RFC 7296 2.15, RFC 4754: as with RSA, with ECDSA P-256 certificates from the same kind of CA."""
    authenticates_with_certificates(ipsec_pair, "ecdsa")


@pytest.mark.features("rsa", "fragmentation", "childless")
def test_fragmentation(ipsec_pair):
    """RFC 7383 2.3/2.5: when both peers announced IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT, an IKE_AUTH
    too large for the path (here: an RSA-4096 certificate) is sent as Encrypted Fragment payloads."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, auth="rsa4096"))
    assert tunnel.up, tunnel.explain()

    wire = ipsec_pair.wire()
    init = wire.ike("IKE_SA_INIT")
    assert all(m.notify("IKEV2_FRAGMENTATION_SUPPORTED") for m in init), \
        f"both sides must announce fragmentation support:\n{init.describe()}"
    requests = [m for m in wire.ike("IKE_AUTH") if not m.is_response]
    assert len(requests) >= 2 and all(m.names == ("EncryptedFragment",) for m in requests), \
        f"expected the IKE_AUTH request in several SKF fragments:\n{wire.describe()}"


@pytest.mark.features("psk", "childless", "cookies")
def test_cookie(ipsec_pair):
    """RFC 7296 2.6: a responder under load answers IKE_SA_INIT with a COOKIE notify alone; the initiator
    repeats its request with that cookie as the first payload, and the exchange goes on."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, responder_busy=True))
    assert ipsec_pair.load, "the responder did not answer the half-open IKE SAs meant to load it"
    assert tunnel.up, tunnel.explain()

    init = IkeMessages(m for m in ipsec_pair.wire().ike("IKE_SA_INIT") if m.ispi not in ipsec_pair.load_spis)
    assert [m.is_response for m in init] == [False, True, False, True], init.describe()
    cookie = init[1].notify("COOKIE")
    assert cookie is not None and init[1].names == ("Notify",), f"expected N(COOKIE) alone:\n{init.describe()}"
    assert cookie.cookie is not None, f"RFC 7296 2.6: a cookie is 1 to 64 octets, got {len(cookie.data)}"
    retried = init[2].notify("COOKIE")
    assert init[2].names[0] == "Notify" and retried is not None and retried.cookie == cookie.cookie, \
        f"the retry must start with the responder's cookie:\n{init.describe()}"
    assert not init[3].errors, init.describe()



def negotiates(ipsec_pair, suite: IkeProposal) -> None:
    """Both sides offer only `suite`: the responder's SA payload must choose exactly its transforms."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, ike=(suite,)))
    assert tunnel.up, tunnel.explain()
    response = [m for m in ipsec_pair.decrypted().ike("IKE_SA_INIT") if m.is_response][-1]
    [chosen] = [p for sa in response.payloads_of("SA") for p in sa.proposals]
    wanted = set(suite.transforms)
    assert set(chosen.algorithms) == wanted, f"responder chose {chosen.describe()}, expected {sorted(wanted)}"


def test_proposal_aes128_sha256_modp2048(ipsec_pair):
    """RFC 7296 3.3: the responder answers with one proposal holding one transform of each type it chose."""
    negotiates(ipsec_pair, IkeProposal())


def test_proposal_aes256_sha512_ecp256(ipsec_pair):
    """RFC 7296 3.3 with RFC 5903 ECP groups: AES-CBC-256, HMAC-SHA2-512, PRF-SHA2-512, ECP-256."""
    negotiates(ipsec_pair, IkeProposal(encryption="ENCR_AES_CBC_256", integrity="AUTH_HMAC_SHA2_512_256",
                                       prf="PRF_HMAC_SHA2_512", group="ECP_256"))


def test_proposal_aes_gcm16_256_curve25519(ipsec_pair):
    """RFC 5282: an AEAD cipher in IKE has no integrity transform; RFC 8031: Curve25519 key exchange."""
    negotiates(ipsec_pair, IkeProposal(encryption="ENCR_AES_GCM_16_256", integrity=None, group="CURVE25519"))
