"""Additional key exchanges (RFC 9370) with ML-KEM (FIPS 203) in IKE_INTERMEDIATE (RFC 9242): the hybrid
post-quantum key exchange of the newer versions, and the downgrade to a peer without it. Childless: the cases judge
the IKE SA, so they run where a vendor cannot install ESP SAs on this host too."""
import pytest

from harness.protocols.ipsec.ike import ml_kem_sizes
from harness.protocols.ipsec.scenario import IkeProposal, Scenario
from harness.protocols.ipsec.transcript import DecryptedMessages

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.features("psk", "childless")]

CLASSIC = IkeProposal(group="CURVE25519")
HYBRID = IkeProposal(group="CURVE25519", additional=("ML_KEM_768",))


def exchanges(messages) -> list[tuple[str, bool]]:
    return [(m.exchange, m.is_response) for m in messages]


def chosen(init_response) -> tuple[str, ...]:
    """The transforms of the proposal the responder chose (RFC 7296 3.3: exactly one, in its SA payload)."""
    return init_response.sa.proposals[0].algorithms


@pytest.mark.features("psk", "childless", "mlkem")
def test_mlkem_additional_key_exchange(ipsec_pair):
    """RFC 9370 2.2: the initiator proposes ML-KEM-768 as the first additional key exchange (transform type 6,
    ADDKE1) and the responder chooses it; both announce INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242 2) and run it
    in one IKE_INTERMEDIATE exchange before IKE_AUTH, whose KE payloads carry ML-KEM-768's encapsulation key and
    ciphertext (FIPS 203: 1184 and 1088 bytes). IKE_AUTH is protected with the keys derived after it (RFC 9370
    2.2.2): it opens with them."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, ike=(HYBRID,)))
    assert tunnel.up, tunnel.explain()
    tunnel.close()

    # An ML-KEM key share is larger than a fragment (RFC 7383): a message split in SKF fragments counts once, as
    # the fragment that completed it.
    messages = DecryptedMessages(m for m in ipsec_pair.decrypted().ike() if not m.fragment or m.decrypted)
    assert exchanges(messages)[:6] == [("IKE_SA_INIT", False), ("IKE_SA_INIT", True),
                                       ("IKE_INTERMEDIATE", False), ("IKE_INTERMEDIATE", True),
                                       ("IKE_AUTH", False), ("IKE_AUTH", True)], messages.describe()
    request, response = messages[0], messages[1]
    offered = {a for p in request.sa.proposals for a in p.algorithms}
    assert "ADDKE1=ML_KEM_768" in offered, f"the initiator offered no ML-KEM-768 in ADDKE1\n{request.describe()}"
    assert "ADDKE1=ML_KEM_768" in chosen(response), f"the responder did not choose it\n{response.describe()}"
    for m in (request, response):
        assert m.notify("INTERMEDIATE_EXCHANGE_SUPPORTED"), f"no INTERMEDIATE_EXCHANGE_SUPPORTED\n{m.describe()}"

    encapsulation_key, ciphertext = ml_kem_sizes("ML_KEM_768")
    intermediate = messages.ike("IKE_INTERMEDIATE")
    for message, size in zip(intermediate[:2], (encapsulation_key, ciphertext)):
        assert message.decrypted, f"IKE_INTERMEDIATE did not open with the keys after IKE_SA_INIT\n" \
                                  f"{message.describe()}"
        ke = message.payload("KE")
        assert ke is not None and ke.group == "ML_KEM_768", message.describe()
        assert len(ke.key_data) == size, f"ML-KEM-768 key exchange data is {size} bytes from this side " \
                                         f"(FIPS 203), not {len(ke.key_data)}\n{message.describe()}"
    auth = messages.ike("IKE_AUTH")
    assert auth and all(m.decrypted and m.payload("AUTH") for m in auth[:2]), \
        f"IKE_AUTH did not open with the keys derived after IKE_INTERMEDIATE\n{auth.describe()}"


@pytest.mark.features("psk", "childless", "mlkem@initiator")
def test_addke_downgrade_responder_without(ipsec_pair):
    """RFC 9370 2.2.1/3.3.6 of RFC 7296: an initiator that proposes additional key exchanges, and also a proposal
    without them, gets an IKE SA from a responder that has none: the responder chooses the proposal without ADDKE
    transforms, and no IKE_INTERMEDIATE follows."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, ike=(HYBRID, CLASSIC), responder_ike=(CLASSIC,)))
    assert tunnel.up, tunnel.explain()
    _judge_classic(ipsec_pair, offered_hybrid=True)


@pytest.mark.features("psk", "childless", "mlkem@responder")
def test_addke_downgrade_initiator_without(ipsec_pair):
    """RFC 9370 2.2.1: a responder that prefers additional key exchanges but also accepts a proposal without
    them sets up an IKE SA with an initiator that proposes none: no ADDKE transform chosen, no IKE_INTERMEDIATE."""
    tunnel = ipsec_pair.establish(Scenario(childless=True, ike=(CLASSIC,), responder_ike=(HYBRID, CLASSIC)))
    assert tunnel.up, tunnel.explain()
    _judge_classic(ipsec_pair, offered_hybrid=False)


def _judge_classic(ipsec_pair, offered_hybrid: bool) -> None:
    wire = ipsec_pair.wire()
    init = wire.ike("IKE_SA_INIT")
    request, response = init[0], next((m for m in init if m.is_response), None)
    assert response is not None and response.sa is not None, init.describe()
    offered = {a for p in request.sa.proposals for a in p.algorithms}
    assert any(a.startswith("ADDKE") for a in offered) == offered_hybrid, request.describe()
    assert not [a for a in chosen(response) if a.startswith("ADDKE")], \
        f"an additional key exchange was chosen with a peer that has none\n{response.describe()}"
    assert not wire.ike("IKE_INTERMEDIATE"), f"IKE_INTERMEDIATE without additional key exchanges\n{wire.describe()}"
    assert [m.is_response for m in wire.ike("IKE_AUTH")][:2] == [False, True], wire.describe()
