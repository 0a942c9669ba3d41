"""The IPsec cases' wire checks (issue 12, item 12) on captures built with scapy, judged by the cases themselves
(suites/ipsec) against a stand-in pair: the KE retry after INVALID_KE_PAYLOAD uses the group the responder asked
for."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from scapy.layers.inet import UDP
from scapy.utils import wrpcap

from support import DATA, ROOT, load

from harness.protocols.ipsec.transcript import decrypt_ike
from harness.protocols.ipsec.wire import Wire

INITIATOR, RESPONDER = "198.18.0.2", "198.18.0.3"

synthetic = load("make_ipsec_pcaps", DATA / "make_ipsec_pcaps.py")
ike_sa_suite = load("suite_ipsec_ike_sa", ROOT / "suites" / "ipsec" / "test_ike_sa.py")


# --- item 12 (d): the retry's KE group is the one INVALID_KE_PAYLOAD asked for ------------------------------

def ke_retry_capture(path, retry_group: int) -> str:
    """ipsec_synthetic.pcap's IKE_SA_INIT: ECP_256 refused with INVALID_KE_PAYLOAD(MODP_2048), the retry, and the
    responder's answer in MODP_2048."""
    frames = list(synthetic.packets())[:4]
    frames[2] = synthetic.ipv4(INITIATOR, RESPONDER) / UDP(sport=500, dport=500) / synthetic.sa_init_offer(
        synthetic.ISPI, synthetic.NO_SPI, synthetic.INITIATOR_FLAG, group=retry_group, key_bytes=256)
    wrpcap(str(path), frames)
    return str(path)


class KePair:
    def __init__(self, pcap):
        self.pcap = pcap

    def establish(self, scenario):
        return SimpleNamespace(up=True, explain=lambda: "")

    def wire(self):
        return Wire.from_pcap(self.pcap)

    def decrypted(self):
        return decrypt_ike(self.wire())


def test_invalid_ke_payload_names_its_group():
    notify = Wire.from_pcap(DATA / "ipsec_synthetic.pcap").ike("IKE_SA_INIT")[1].notify("INVALID_KE_PAYLOAD")
    assert notify.group == "MODP_2048"


def test_ke_group_mismatch_passes_a_retry_in_the_asked_group(tmp_path):
    ike_sa_suite.test_ke_group_mismatch(KePair(ke_retry_capture(tmp_path / "ke.pcap", retry_group=14)))


def test_ke_group_mismatch_fails_a_retry_in_another_group(tmp_path):
    """The old case checked the notify and the final answer, never the retry's own KE payload."""
    with pytest.raises(AssertionError, match=r"retry's KE payload must use the group the responder asked for"):
        ike_sa_suite.test_ke_group_mismatch(KePair(ke_retry_capture(tmp_path / "ke.pcap", retry_group=15)))
