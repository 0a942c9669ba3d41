"""The IPsec wire reader agrees with Wireshark frame by frame (tests/ipsec_tshark.py) on every IPsec capture the
project keeps: strongSwan's own, the synthetic one, and the IKEv1/IKEv2 captures built by tests/data/ike."""
import pytest

from ipsec_tshark import disagreements
from support import DATA

CAPTURES = sorted(DATA.glob("*.pcap")) + sorted((DATA / "ike").glob("*.pcap"))


@pytest.mark.parametrize("pcap", [p for p in CAPTURES if "ipsec" in p.name or "strongswan" in p.name
                                  or p.parent.name == "ike"], ids=lambda p: p.name)
def test_tshark_reads_ike_and_esp_as_the_harness_does(pcap):
    assert not disagreements(pcap)
