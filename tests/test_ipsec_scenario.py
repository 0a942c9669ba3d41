"""The IPsec scenario model and one adapter's translation of it (IANA names -> strongSwan keywords)."""
import pytest

from harness.errors import ConfigError
from harness.protocols.ipsec.scenario import EspProposal, IkeProposal, Scenario
from harness.vendor import load_vendor
from pathlib import Path

STRONGSWAN = load_vendor(Path(__file__).resolve().parent.parent / "vendors" / "strongswan")


def test_responder_overrides_apply_to_the_responder_only():
    other = (IkeProposal(group="MODP_3072"),)
    scenario = Scenario(responder_psk="other", responder_ike=other)
    assert scenario.psk_of("initiator") == scenario.psk and scenario.psk_of("responder") == "other"
    assert scenario.ike_of("initiator") == (IkeProposal(),) and scenario.ike_of("responder") == other
    assert scenario.esp_of("responder") == scenario.esp


def test_strongswan_proposal_keywords():
    module = __import__(STRONGSWAN.adapter_class().__module__, fromlist=["ike_proposal"])
    assert module.ike_proposal(IkeProposal()) == "aes128-sha256-prfsha256-modp2048"
    assert module.ike_proposal(IkeProposal(encryption="ENCR_AES_GCM_16_256", group="CURVE25519")) == \
        "aes256gcm16-prfsha256-curve25519"  # AEAD: no integrity transform
    assert module.esp_proposal(EspProposal(encryption="ENCR_AES_GCM_16_256", integrity=None)) == "aes256gcm16"
    with pytest.raises(ConfigError, match="^scenario: ike: strongswan adapter has no keyword for ENCR_DES$"):
        module.ike_proposal(IkeProposal(encryption="ENCR_DES"))
