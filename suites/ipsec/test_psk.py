"""IKEv2 with pre-shared keys (RFC 7296): the first tunnel every interop event starts with."""
import pytest

from harness.protocols.ipsec.scenario import Scenario

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk")]


@pytest.mark.features("psk", "child_sa")
def test_psk_tunnel(ipsec_pair):
    """RFC 7296 1.1.1/1.2: IKE_SA_INIT and IKE_AUTH, one request and one response each, set up the IKE SA and
    the first CHILD SA; ESP then carries traffic between the protected subnets in both directions."""
    tunnel = ipsec_pair.establish(Scenario())
    assert tunnel.up, tunnel.explain()
    for role in ("initiator", "responder"):
        assert tunnel.child_sas(role), f"{role} reports no installed CHILD SA\n{tunnel.explain()}"
    ping = tunnel.ping()
    assert ping.all_answered, ping.output

    wire = ipsec_pair.wire()
    init, auth = wire.ike("IKE_SA_INIT"), wire.ike("IKE_AUTH")
    assert [m.is_response for m in init] == [False, True], f"expected one IKE_SA_INIT exchange:\n{init.describe()}"
    assert not any(m.errors for m in init), f"error notify in IKE_SA_INIT:\n{init.describe()}"
    assert [m.is_response for m in auth] == [False, True], f"expected one IKE_AUTH exchange:\n{auth.describe()}"
    initiator, responder = ipsec_pair.addresses
    forward, back = wire.esp_between(initiator, responder), wire.esp_between(responder, initiator)
    assert sum(f.packets for f in forward) >= ping.sent and sum(f.packets for f in back) >= ping.received, \
        f"expected ESP for {ping.sent} echo requests and replies:\n{wire.describe()}"


def test_wrong_psk(ipsec_pair):
    """RFC 7296 2.15: a responder that cannot verify the initiator's AUTH answers IKE_AUTH with
    AUTHENTICATION_FAILED; no CHILD SA comes up and no ESP is sent."""
    tunnel = ipsec_pair.establish(Scenario(responder_psk="a-different-secret"))
    assert not tunnel.up, f"the tunnel came up with mismatched PSKs\n{tunnel.explain()}"
    assert tunnel.auth_failed, f"the initiator did not report an authentication failure\n{tunnel.explain()}"
    for role in ("initiator", "responder"):
        assert not tunnel.child_sas(role), f"{role} installed a CHILD SA despite the failed authentication"

    wire = ipsec_pair.wire()
    auth = wire.ike("IKE_AUTH")
    assert [m.is_response for m in auth][:2] == [False, True], f"IKE_AUTH was not answered:\n{auth.describe()}"
    assert not wire.esp(), f"ESP on the wire after a failed authentication:\n{wire.describe()}"
