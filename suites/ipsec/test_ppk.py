"""Post-quantum preshared keys in IKEv2 (RFC 8784). The cases run childless with PSK authentication, so they judge
IKE alone; IKE_SA_INIT is read in the clear, IKE_AUTH decrypted with the exported keys (which, with a PPK, are the
keys after the PPK was mixed in: a decryption that works is itself evidence the PPK was used as the daemon says)."""
import pytest

from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "childless", "ppk"),
              pytest.mark.any_features("key_export")]

PPK_ID = "lab-ppk-1"


def exchange(ipsec_pair, scenario: Scenario):
    """Set the IKE SA up; give the tunnel, the IKE_SA_INIT request and response, the IKE_AUTH request and response
    (decrypted; the response None if none could be read), and the whole for failure messages."""
    tunnel = ipsec_pair.establish(scenario)
    decrypted = ipsec_pair.decrypted()
    init = decrypted.ike("IKE_SA_INIT")
    auth = [m for m in decrypted.ike("IKE_AUTH") if m.decrypted]
    shown = f"{init.describe()}\n{decrypted.ike('IKE_AUTH').describe()}"
    requests, responses = [m for m in init if not m.is_response], [m for m in init if m.is_response]
    auth_requests, auth_responses = [m for m in auth if not m.is_response], [m for m in auth if m.is_response]
    assert requests and responses and auth_requests, f"{tunnel.explain()}\n{shown}"
    return tunnel, requests[-1], responses[-1], auth_requests[0], (auth_responses or [None])[0], shown


def ppk_id(message) -> bytes | None:
    found = message.notify("PPK_IDENTITY")
    return None if found is None else found.ppk_id


@pytest.mark.features("psk", "childless", "ppk")
def test_ppk(ipsec_pair):
    """RFC 8784 3: both sides announce N(USE_PPK) in IKE_SA_INIT; the initiator sends N(PPK_IDENTITY) with its
    PPK_ID in IKE_AUTH (and, as the PPK is optional, N(NO_PPK_AUTH) with the AUTH it would give without one); the
    responder that has that PPK uses it and answers with N(PPK_IDENTITY); the IKE SA is keyed with the PPK mixed in."""
    tunnel, init_req, init_resp, auth_req, auth_resp, shown = exchange(
        ipsec_pair, Scenario(childless=True, ppk_id=PPK_ID))
    assert init_req.notify("USE_PPK") and init_resp.notify("USE_PPK"), f"N(USE_PPK) missing:\n{shown}"
    assert ppk_id(auth_req) == PPK_ID.encode(), f"expected N(PPK_IDENTITY) with {PPK_ID!r}:\n{shown}"
    assert auth_req.notify("NO_PPK_AUTH") is not None, \
        f"an optional PPK: the initiator should offer N(NO_PPK_AUTH) for a responder without it:\n{shown}"
    assert tunnel.up, f"{tunnel.explain()}\n{shown}"
    assert auth_resp is not None and auth_resp.notify("PPK_IDENTITY") is not None, \
        f"the responder has the PPK but did not use it (no N(PPK_IDENTITY) in its IKE_AUTH response):\n{shown}"


@pytest.mark.features("psk", "childless", "ppk")
def test_ppk_unknown_id_optional(ipsec_pair):
    """RFC 8784 3: a responder without the PPK the initiator names, where the PPK is optional on both sides, uses the
    AUTH of N(NO_PPK_AUTH) instead: it answers without N(PPK_IDENTITY) and the IKE SA comes up without a PPK."""
    tunnel, init_req, init_resp, auth_req, auth_resp, shown = exchange(
        ipsec_pair, Scenario(childless=True, ppk_id=PPK_ID, responder_ppk_id="another-ppk"))
    assert ppk_id(auth_req) == PPK_ID.encode() and auth_req.notify("NO_PPK_AUTH") is not None, shown
    assert tunnel.up, f"an optional PPK unknown to the responder must fall back:\n{tunnel.explain()}\n{shown}"
    assert auth_resp is not None and auth_resp.notify("PPK_IDENTITY") is None, \
        f"the responder claims a PPK it does not have:\n{shown}"


@pytest.mark.features("psk", "childless", "ppk")
def test_ppk_unknown_id_required(ipsec_pair):
    """RFC 8784 3: a responder that requires a PPK and has none under the initiator's PPK_ID must not fall back to
    N(NO_PPK_AUTH): it answers AUTHENTICATION_FAILED and no IKE SA comes up."""
    tunnel, init_req, init_resp, auth_req, auth_resp, shown = exchange(
        ipsec_pair, Scenario(childless=True, ppk_id=PPK_ID, responder_ppk_id="another-ppk",
                             responder_ppk_required=True))
    assert not tunnel.up, f"an IKE SA came up without the PPK the responder requires:\n{shown}"
    assert auth_resp is not None and auth_resp.notify("AUTHENTICATION_FAILED") is not None, \
        f"expected AUTHENTICATION_FAILED in the IKE_AUTH response:\n{shown}"
