"""The IPsec cases' wire checks (issue 12, item 12) on captures built with scapy and on real strongSwan captures,
judged by the cases themselves (suites/ipsec) against a stand-in pair: the overlay tax is exactly what the
negotiated ESP transforms add, and the KE retry after INVALID_KE_PAYLOAD uses the group the responder asked for."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from support import DATA, ROOT, TaxFigures, load

from harness import tax
from harness.ping import Ping
from harness.protocols.ipsec.scenario import EspProposal, Scenario
from harness.protocols.ipsec.transcript import decrypt_ike, esp_inner
from harness.protocols.ipsec.wire import Wire, esp_overheads

INITIATOR, RESPONDER = "198.18.0.2", "198.18.0.3"
INNER_SRC, INNER_DST = "198.19.1.1", "198.19.2.1"

keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")
synthetic = load("make_ipsec_pcaps", DATA / "make_ipsec_pcaps.py")
tax_suite = load("suite_ipsec_overlay_tax", ROOT / "suites" / "ipsec" / "test_overlay_tax.py")
ike_sa_suite = load("suite_ipsec_ike_sa", ROOT / "suites" / "ipsec" / "test_ike_sa.py")


def echo_request(size: int) -> IP:
    return IP(src=INNER_SRC, dst=INNER_DST) / ICMP() / Raw(bytes(size))


def esp_sa(crypt: str, auth: str | None, *, encapsulated: bool = True, spi: int = 0xC0000001) -> SecurityAssociation:
    """scapy's own ESP, an implementation independent of the table the case computes with."""
    key = {"AES-CBC": 16, "AES-GCM": 20, "AES-CTR": 20, "3DES": 24, "CHACHA20-POLY1305": 36, "NULL": 0}[crypt]
    auth_key = {"SHA2-256-128": 32, "SHA2-512-256": 64, "SHA2-384-192": 48, "HMAC-SHA1-96": 20, None: 0}[auth]
    return SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=bytes(range(key)) or None,
                               auth_algo=auth, auth_key=bytes(range(auth_key)) or None,
                               tunnel_header=IP(src=INITIATOR, dst=RESPONDER),
                               nat_t_header=UDP(sport=4500, dport=4500) if encapsulated else None)


# --- the table against scapy's ESP and against strongSwan's -------------------------------------------------

@pytest.mark.parametrize("crypt, auth, encryption, integrity", [
    ("AES-CBC", "SHA2-256-128", "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128"),
    ("AES-CBC", "SHA2-512-256", "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_512_256"),
    ("AES-GCM", None, "ENCR_AES_GCM_16_128", None),
    ("AES-CTR", "HMAC-SHA1-96", "ENCR_AES_CTR_128", "AUTH_HMAC_SHA1_96"),
    ("3DES", "HMAC-SHA1-96", "ENCR_3DES", "AUTH_HMAC_SHA1_96"),
    ("CHACHA20-POLY1305", None, "ENCR_CHACHA20_POLY1305", None),
    ("NULL", "SHA2-256-128", "ENCR_NULL", "AUTH_HMAC_SHA2_256_128"),
])
@pytest.mark.parametrize("encapsulated", [True, False], ids=["in UDP", "plain"])
def test_least_overhead_is_what_scapys_esp_adds(crypt, auth, encryption, integrity, encapsulated):
    for size in range(1000, 1017):  # every residue of the padding
        sent = esp_sa(crypt, auth, encapsulated=encapsulated).encrypt(echo_request(size))
        inner = size + 28
        assert sent[IP].len - inner == esp_overheads(encryption, integrity, inner, encapsulated=encapsulated)[0]


def test_more_padding_is_allowed_in_whole_blocks_up_to_255_bytes():
    cbc = esp_overheads("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", 1028, encapsulated=True)
    assert cbc[:3] == (80, 96, 112) and cbc[-1] - cbc[0] <= 255 and cbc[-1] + 16 - cbc[0] > 255
    gcm = esp_overheads("ENCR_AES_GCM_16_256", None, 1028, encapsulated=False)
    assert gcm[:2] == (20 + 8 + 8 + 2 + 2 + 16, 20 + 8 + 8 + 2 + 6 + 16)


def test_an_unknown_transform_is_refused_not_guessed():
    with pytest.raises(ValueError, match="ENCR_CAMELLIA_CBC_128"):
        esp_overheads("ENCR_CAMELLIA_CBC_128", "AUTH_HMAC_SHA2_256_128", 1028, encapsulated=True)
    with pytest.raises(ValueError, match="AUTH_HMAC_SHA2_256_96"):
        esp_overheads("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_96", 1028, encapsulated=True)


@pytest.mark.parametrize("case", ["strongswan_psk_tunnel", "strongswan_gcm_rekey"])
def test_every_esp_packet_strongswan_sent_has_the_least_overhead(case):
    """Real captures: each packet's inner length from opening it with the keys charon logged."""
    ike_keys, esp_keys = keylog.parse((DATA / f"{case}.initiator.log").read_text())
    transforms = {k.spi: (k.encryption, k.integrity) for k in esp_keys}
    lengths = {(int.from_bytes(p.head[:4], "big"), int.from_bytes(p.head[4:8], "big")): p.length
               for p in tax.ip_packets(DATA / f"{case}.pcap") if p.dport == 4500 and any(p.head[:4])}
    opened = [p for p in esp_inner(DATA / f"{case}.pcap", esp_keys) if p.packet is not None]
    assert len(opened) == len(lengths) > 0
    for p in opened:
        encryption, integrity = transforms[p.spi]
        allowed = esp_overheads(encryption, integrity, p.packet[IP].len, encapsulated=True)
        assert lengths[(p.spi, p.seq)] - p.packet[IP].len == allowed[0]


# --- item 12 (a): the overlay tax case, on captures built to be right and wrong ------------------------------

class TaxPair:
    """What test_overlay_tax asks of an ipsec_pair, over a capture already made."""

    def __init__(self, pcap, ike_keys=()):
        self.pcap, self.ike_keys = pcap, list(ike_keys)
        self.capture = SimpleNamespace(path=pcap)
        self.nodes = {"initiator": SimpleNamespace(address=INITIATOR), "responder": SimpleNamespace(address=RESPONDER)}

    def establish(self, scenario):
        return SimpleNamespace(up=True, scenario=scenario, inner_addresses=(INNER_SRC, INNER_DST),
                               explain=lambda: "")

    def wire(self):
        return Wire.from_pcap(self.pcap)

    @property
    def ike_keys_exported(self):
        return bool(self.ike_keys)

    def decrypted(self):
        return decrypt_ike(self.wire(), self.ike_keys)


@pytest.fixture
def judge_tax(monkeypatch, tmp_path):
    monkeypatch.setattr(tax, "measure", lambda *args, **kwargs: TaxFigures())
    monkeypatch.setattr(tax_suite, "ping", lambda *args, count=3, **kwargs: Ping(count, count, ""))

    def judge(sa: SecurityAssociation) -> int:
        frames = [Ether() / sa.encrypt(echo_request(tax_suite.ECHO_SIZE), seq_num=n) for n in range(1, 6)]
        wrpcap(str(tmp_path / "esp.pcap"), frames)
        pair_lab = SimpleNamespace(recorded=None)
        tax_suite.test_overlay_tax(TaxPair(tmp_path / "esp.pcap"), pair_lab)
        return pair_lab.recorded
    return judge


def test_overlay_tax_is_what_the_negotiated_transforms_add(judge_tax):
    """The scenario's one proposal, AES-CBC-128 with HMAC-SHA2-256-128, in UDP: 20 + 8 + 8 + 16 IV + 10 padding
    + 2 + 16 ICV."""
    assert judge_tax(esp_sa("AES-CBC", "SHA2-256-128")) == 80


@pytest.mark.parametrize("crypt, auth", [("AES-CBC", "HMAC-SHA1-96"), ("AES-GCM", None), ("AES-CBC", "SHA2-384-192")],
                         ids=["a 96-bit ICV", "another cipher", "a 192-bit ICV"])
def test_overlay_tax_fails_esp_that_is_not_the_negotiated_suite(judge_tax, crypt, auth):
    """HMAC-SHA2-256 truncated to 96 bits (the pre-RFC 4868 draft some stacks shipped) makes 76 bytes, which the
    old `overhead >= 30` passed; so did any other suite. (One whose fixed part differs by whole cipher blocks, a
    256-bit ICV with AES-CBC, reads as more padding: lengths alone cannot tell it.)"""
    with pytest.raises(AssertionError, match="RFC 4303 allows 80"):
        judge_tax(esp_sa(crypt, auth))


def test_the_negotiated_suite_is_read_from_the_decrypted_ike_auth():
    pcap, log = DATA / "strongswan_gcm_rekey.pcap", DATA / "strongswan_gcm_rekey.initiator.log"
    pair = TaxPair(pcap, keylog.parse(log.read_text())[0])
    assert tax_suite.negotiated_esp(pair, Scenario()) == (EspProposal("ENCR_AES_GCM_16_256", None),
                                                         "the responder's SA payload in IKE_AUTH (decrypted)")
    assert tax_suite.negotiated_esp(TaxPair(pcap), Scenario())[0] == EspProposal()  # no keys: the scenario's


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


# --- the COOKIE case reads the cookie as RFC 7296 2.6 types it ------------------------------------------------

def cookie_capture(path, retried_cookie: bytes) -> str:
    """A half-open load request, then: request, N(COOKIE) alone, the retry starting with N(COOKIE), the answer.
    Built with the IKE description (harness.protocols.ipsec.ike)."""
    from harness.protocols.ipsec import ike, probe
    load_spi, spi, cookie = b"\x0a" * 8, b"\x0b" * 8, b"\xc0" * 16
    request = ike.decode(probe.ike_sa_init((Scenario().ike[0],), spi=spi))
    answer = [ike.SecurityAssociation(proposals=[ike.Proposal(transforms=[ike.transform(t, n) for t, n in
                                                                        probe._typed_names(Scenario().ike[0])])]),
              ike.KeyExchange(group="MODP_2048", key_data=bytes(256)), ike.Nonce(nonce=bytes(32))]
    messages = [(INITIATOR, probe.ike_sa_init((Scenario().ike[0],), spi=load_spi)),
                (INITIATOR, bytes(request)),
                (RESPONDER, bytes(ike.Isakmp(ispi=spi, exchange="IKE_SA_INIT", flags=ike.FLAG_RESPONSE,
                                             payloads=[ike.notify("COOKIE", cookie=cookie)]))),
                (INITIATOR, bytes(ike.Isakmp(ispi=spi, exchange="IKE_SA_INIT", flags=ike.FLAG_INITIATOR,
                                             payloads=[ike.notify("COOKIE", cookie=retried_cookie),
                                                       *request.payloads]))),
                (RESPONDER, bytes(ike.Isakmp(ispi=spi, rspi=b"\x0c" * 8, exchange="IKE_SA_INIT",
                                             flags=ike.FLAG_RESPONSE, payloads=answer)))]
    wrpcap(str(path), [Ether() / IP(src=src, dst=RESPONDER if src == INITIATOR else INITIATOR)
                       / UDP(sport=500, dport=500) / Raw(data) for src, data in messages])
    return str(path)


class CookiePair(KePair):
    load = ["answered"]
    load_spis = frozenset({b"\x0a" * 8})


def test_cookie_passes_a_retry_with_the_responders_cookie(tmp_path):
    ike_sa_suite.test_cookie(CookiePair(cookie_capture(tmp_path / "cookie.pcap", b"\xc0" * 16)))


def test_cookie_fails_a_retry_with_another_cookie(tmp_path):
    with pytest.raises(AssertionError, match="the retry must start with the responder's cookie"):
        ike_sa_suite.test_cookie(CookiePair(cookie_capture(tmp_path / "cookie.pcap", b"\xc1" * 16)))
