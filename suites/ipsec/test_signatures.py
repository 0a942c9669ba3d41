"""RSA signatures in IKEv2 (RFC 7296 3.8, RFC 7427): which scheme each side signs with and whether the other takes it,
a classic interop trap (PKCS#1 v1.5 or RSASSA-PSS; with or without SIGNATURE_HASH_ALGORITHMS). The cases run
childless with RSA certificates, so they judge IKE alone; the verdict reads the decrypted AUTH payloads."""
import pytest

from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("rsa", "childless"),
              pytest.mark.any_features("key_export")]

# The hash inside a signature's AlgorithmIdentifier (ike.Authentication.signature) -> its RFC 7427 hash ID name.
SIGNATURE_HASHES = {"RSASSA-PSS(SHA-256)": "SHA2_256", "RSASSA-PSS(SHA-384)": "SHA2_384",
                    "RSASSA-PSS(SHA-512)": "SHA2_512", "sha256WithRSAEncryption": "SHA2_256",
                    "sha384WithRSAEncryption": "SHA2_384", "sha512WithRSAEncryption": "SHA2_512",
                    "sha1WithRSAEncryption": "SHA1"}


def exchange(ipsec_pair, scenario: Scenario):
    """Set the IKE SA up and give (IKE_SA_INIT request, response, IKE_AUTH request, response), AUTH decrypted."""
    tunnel = ipsec_pair.establish(scenario)
    init = ipsec_pair.decrypted().ike("IKE_SA_INIT")
    auth = [m for m in ipsec_pair.decrypted().ike("IKE_AUTH") if m.decrypted]
    shown = f"{init.describe()}\n{ipsec_pair.decrypted().ike('IKE_AUTH').describe()}"
    requests, responses = [m for m in init if not m.is_response], [m for m in init if m.is_response]
    auth_requests, auth_responses = [m for m in auth if not m.is_response], [m for m in auth if m.is_response]
    assert requests and responses and auth_requests, f"{tunnel.explain()}\n{shown}"
    return tunnel, (requests[-1], responses[-1], auth_requests[0], auth_responses[0] if auth_responses else None), \
        shown


def announced(message) -> tuple[str, ...]:
    """The hashes a side announced in N(SIGNATURE_HASH_ALGORITHMS) (RFC 7427 4), () without the notify."""
    found = message.notify("SIGNATURE_HASH_ALGORITHMS")
    return () if found is None else tuple(str(h) for h in found.hashes)


@pytest.mark.features("rsa", "childless", "rsa_pss")
def test_rsa_pss(ipsec_pair):
    """RFC 7427 3/4: both sides announce their hashes in N(SIGNATURE_HASH_ALGORITHMS) in IKE_SA_INIT, and each signs
    AUTH with the Digital Signature method (14): an AlgorithmIdentifier for RSASSA-PSS, with a hash the peer
    announced; each verifies the other's."""
    tunnel, (init_req, init_resp, auth_req, auth_resp), shown = exchange(
        ipsec_pair, Scenario(childless=True, auth="rsa", rsa_scheme="pss"))
    assert tunnel.up, f"{tunnel.explain()}\n{shown}"
    assert announced(init_req) and announced(init_resp), f"SIGNATURE_HASH_ALGORITHMS missing:\n{shown}"
    for message, peer in ((auth_req, init_resp), (auth_resp, init_req)):
        signed = message.payload("AUTH")
        assert signed.method == "digital-signature" and (signed.signature or "").startswith("RSASSA-PSS"), \
            f"expected RSASSA-PSS in a Digital Signature AUTH:\n{shown}"
        assert SIGNATURE_HASHES.get(signed.signature) in announced(peer), \
            f"{signed.signature}: a hash the peer did not announce ({', '.join(announced(peer))}):\n{shown}"


@pytest.mark.features("rsa", "childless", "rsa_pkcs1", "rsa_pss")
def test_rsa_pkcs1_to_pss(ipsec_pair):
    """RFC 7427 3: the Digital Signature method carries its own AlgorithmIdentifier, so an initiator signing
    PKCS#1 v1.5 (sha256WithRSAEncryption) and a responder signing RSASSA-PSS each say which scheme they used and each
    verifies the other's; a side that refuses the other's scheme answers AUTHENTICATION_FAILED (a finding)."""
    tunnel, (init_req, init_resp, auth_req, auth_resp), shown = exchange(
        ipsec_pair, Scenario(childless=True, auth="rsa", rsa_scheme="pkcs1", responder_rsa_scheme="pss"))
    signed = auth_req.payload("AUTH")
    assert signed.method == "digital-signature" and signed.signature in SIGNATURE_HASHES \
        and not signed.signature.startswith("RSASSA-PSS"), f"expected PKCS#1 v1.5 in the initiator's AUTH:\n{shown}"
    assert auth_resp is not None and not auth_resp.notify("AUTHENTICATION_FAILED"), \
        f"the responder refused the initiator's PKCS#1 v1.5 signature ({signed.signature}):\n{shown}"
    assert (auth_resp.payload("AUTH").signature or "").startswith("RSASSA-PSS"), \
        f"expected RSASSA-PSS in the responder's AUTH:\n{shown}"
    assert tunnel.up, f"the initiator refused the responder's RSASSA-PSS signature:\n{tunnel.explain()}\n{shown}"


@pytest.mark.features("rsa", "childless", "rsa_legacy")
def test_rsa_without_signature_hash_notify(ipsec_pair):
    """RFC 7427 4: a side that sends no N(SIGNATURE_HASH_ALGORITHMS) has announced no hash it can verify in a Digital
    Signature AUTH; the peer falls back to RFC 7296's RSA Digital Signature (method 1), and both verify."""
    tunnel, (init_req, init_resp, auth_req, auth_resp), shown = exchange(
        ipsec_pair, Scenario(childless=True, auth="rsa", rsa_scheme="legacy"))
    assert not announced(init_req), f"the initiator was asked to send no SIGNATURE_HASH_ALGORITHMS:\n{shown}"
    assert auth_req.payload("AUTH").method == "RSA-signature", shown
    assert auth_resp is not None and not auth_resp.notify("AUTHENTICATION_FAILED"), \
        f"the responder refused RFC 7296's RSA signature:\n{shown}"
    assert auth_resp.payload("AUTH").method == "RSA-signature", \
        f"the responder used a Digital Signature AUTH though the initiator announced no hashes:\n{shown}"
    assert tunnel.up, f"{tunnel.explain()}\n{shown}"
