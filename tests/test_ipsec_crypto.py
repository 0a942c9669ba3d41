"""Decryption of real strongSwan captures with the keys parsed from the daemons' own logs, plus AES-GCM vectors
sealed on an independent path (tests/data/gcm_vectors.py).

tests/data/strongswan_gcm_rekey.* is a real strongSwan 5.9.8 pair (kernel-libipsec, so ESP-in-UDP) run by hand
with the harness's templates: proposals aes256gcm16-prfsha384-modp2048 / aes256gcm16, the initiator's CHILD SA
rekey_time 4s, the responder's IKE rekey_time 6s (over_time = 30s added by hand so the old SA outlives the
rekey), a ping pair every ~2 s, then `swanctl --terminate`. The responder rekeyed the IKE SA twice, so the
second and third IKE SAs were initiated by the original responder; the initiator rekeyed the CHILD SA three
times. tshark 4.0 decrypts every IKE message and ESP packet of it with the key files this code writes.
"""
from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest

from support import load
from harness.protocols.ipsec import crypto, ike
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.transcript import NO_KEYS, bind_ike_keys, decrypt_ike, esp_inner
from harness.protocols.ipsec.wire import Wire

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
PSK, WRONG_PSK, GCM_REKEY = "strongswan_psk_tunnel", "strongswan_wrong_psk", "strongswan_gcm_rekey"
FRAGMENTATION = "strongswan_fragmentation"   # the suite's fragmentation case: RSA-4096 certificates, childless


keylog = load("strongswan_keylog", ROOT / "vendors" / "strongswan" / "keylog.py")
vectors = load("gcm_vectors", DATA / "gcm_vectors.py")


def keys_of(case: str, side: str) -> tuple[list[IkeSaKeys], list[EspSaKeys]]:
    return keylog.parse((DATA / f"{case}.{side}.log").read_text())


def pcap(case: str) -> Path:
    return DATA / f"{case}.pcap"


# --- the key log ------------------------------------------------------------------------------------------

def test_keylog_psk_tunnel_both_sides_agree_with_the_wire():
    wire = Wire.from_pcap(pcap(PSK))
    init = wire.ike("IKE_SA_INIT")[1]
    for side in ("initiator", "responder"):
        ike, esp = keys_of(PSK, side)
        assert [(k.ispi, k.rspi, k.encryption, k.integrity) for k in ike] == [
            (init.ispi, init.rspi, "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128")], side
        assert ike[0].sk_ei.hex() == "fbec8a7c338722909bf5d8673346aa61"
        assert len(ike[0].sk_ai) == len(ike[0].sk_ar) == 32
        assert {(k.spi, k.src, k.dst, k.encryption, k.integrity) for k in esp} == {
            (0xE0E82121, "198.18.1.2", "198.18.1.3", "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128"),
            (0xA457CDB7, "198.18.1.3", "198.18.1.2", "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128")}, side
    # The initiator installed 0xe0e82121 outbound and the responder inbound: the same keys either way round.
    assert sorted(keys_of(PSK, "initiator")[1], key=lambda k: k.spi) == \
        sorted(keys_of(PSK, "responder")[1], key=lambda k: k.spi)
    initiator_to_responder = next(k for k in keys_of(PSK, "initiator")[1] if k.spi == 0xE0E82121)
    assert initiator_to_responder.enc_key.hex() == "6802b66fc39863b843b0b6dee8ad2536"  # "encryption initiator key"


def test_keylog_ignores_the_psk():
    secret = b"interop-lab-psk-7f3a"
    ike, esp = keys_of(PSK, "initiator")
    dumped = [k.sk_ei + k.sk_er + k.sk_ai + k.sk_ar for k in ike] + [k.enc_key + k.auth_key for k in esp]
    assert secret.hex().upper()[:12] in (DATA / f"{PSK}.initiator.log").read_text().replace(" ", "")
    assert not any(secret in blob for blob in dumped)


def test_keylog_wrong_psk_has_ike_keys_and_no_child_sa():
    for side in ("initiator", "responder"):
        ike, esp = keys_of(WRONG_PSK, side)
        assert len(ike) == 1 and ike[0].rspi != bytes(8) and esp == [], side
    assert keys_of(WRONG_PSK, "initiator")[0] == keys_of(WRONG_PSK, "responder")[0]


def test_keylog_rekeys_aes_gcm_and_sas_initiated_by_the_responder():
    for side in ("initiator", "responder"):
        ike, esp = keys_of(GCM_REKEY, side)
        first = Wire.from_pcap(pcap(GCM_REKEY)).ike("IKE_SA_INIT")[1]
        assert [(k.ispi, k.rspi) for k in ike] == [(first.ispi, first.rspi), (bytes(8),) * 2, (bytes(8),) * 2], side
        assert {(k.encryption, k.integrity, len(k.sk_ei), len(k.sk_ai)) for k in ike} == {
            ("ENCR_AES_GCM_16_256", None, 36, 0)}   # AES-256 key + 4-byte salt; no integrity keys for AEAD
        assert len(esp) == 8 and {(k.encryption, k.integrity, len(k.enc_key), k.auth_key) for k in esp} == {
            ("ENCR_AES_GCM_16_256", None, 36, b"")}, side
    # The rekeyed SAs' keys are dumped under a different IKE SA prefix on each side; both sides must agree.
    assert keys_of(GCM_REKEY, "initiator")[0] == keys_of(GCM_REKEY, "responder")[0]
    assert set(keys_of(GCM_REKEY, "initiator")[1]) == set(keys_of(GCM_REKEY, "responder")[1])


def test_strongswan_adapter_exports_the_keys_from_its_node_log():
    from harness.vendor import load_vendor

    class Node:
        def logs(self) -> str:
            return (DATA / f"{PSK}.responder.log").read_text()

    adapter = load_vendor(ROOT / "vendors" / "strongswan").adapter_class()(Node(), None)
    assert (adapter.ike_keys(), adapter.esp_keys()) == keys_of(PSK, "responder")
    assert len(adapter.esp_keys()) == 2


@pytest.mark.parametrize("proposal, expected", [
    ("AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", ("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128")),
    ("AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519", ("ENCR_AES_GCM_16_256", None)),
    ("AES_CBC_256/HMAC_SHA2_512_256/NO_EXT_SEQ", ("ENCR_AES_CBC_256", "AUTH_HMAC_SHA2_512_256")),
    ("CHACHA20_POLY1305_256/NO_EXT_SEQ", ("ENCR_CHACHA20_POLY1305", None)),
    ("AES_GCM_12_128/NO_EXT_SEQ", ("ENCR_AES_GCM_12_128", None)),
    ("3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", ("ENCR_3DES", "AUTH_HMAC_SHA1_96")),
])
def test_strongswan_algorithm_names_map_to_iana_names(proposal, expected):
    chosen = keylog.algorithms(proposal)
    assert (chosen.encryption, chosen.integrity) == expected


def test_keylog_joins_interleaved_dump_rows_by_thread():
    log = "\n".join([
        "10:00:00 07[CFG] <lab|1> selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        "10:00:00 07[IKE] <lab|1> natd_chunk => 22 bytes @ 0x1",
        "10:00:00 07[IKE] <lab|1>    0: 01 02 03 04 05 06 07 08 11 12 13 14 15 16 17 18  ................",
        "10:00:00 07[IKE] <lab|1>   16: C6 12 01 03 01 F4                                ......",
        "10:00:00 07[IKE] <lab|1> Sk_d secret => 0 bytes @ (nil)",
        "10:00:00 07[IKE] <lab|1> Sk_ai secret => 4 bytes @ 0x2",
        "10:00:00 09[IKE] <lab|2> Sk_ai secret => 4 bytes @ 0x9",      # another thread's dump in between
        "10:00:00 07[IKE] <lab|1>    0: AA AA AA AA                                      ....",
        "10:00:00 09[IKE] <lab|2>    0: 99 99 99 99                                      ....",
        "10:00:00 07[IKE] <lab|1> Sk_ar secret => 4 bytes @ 0x3",
        "10:00:00 07[IKE] <lab|1>    0: BB BB BB BB                                      ....",
        "10:00:00 07[IKE] <lab|1> Sk_ei secret => 2 bytes @ 0x4",
        "10:00:00 07[IKE] <lab|1>    0: CC CC                                            ..",
        "10:00:00 07[IKE] <lab|1> Sk_er secret => 2 bytes @ 0x5",
        "10:00:00 07[IKE] <lab|1>    0: DD DD                                            ..",
    ])
    assert keylog.ike_keys(log) == [IkeSaKeys(
        ispi=bytes.fromhex("0102030405060708"), rspi=bytes.fromhex("1112131415161718"),
        encryption="ENCR_AES_CBC_128", integrity="AUTH_HMAC_SHA2_256_128",
        sk_ei=b"\xcc\xcc", sk_er=b"\xdd\xdd", sk_ai=b"\xaa" * 4, sk_ar=b"\xbb" * 4)]


def dump(thread: int, sa: str, label: str, data: bytes) -> list[str]:
    """charon's %B: a label line, then rows of 16 bytes, each with the thread and IKE SA prefix."""
    prefix = f"10:00:00 {thread:02d}[CHD] <{sa}>"
    rows = [f"{prefix} {offset:4d}: " + " ".join(f"{b:02X}" for b in data[offset:offset + 16])
            for offset in range(0, len(data), 16)]
    return [f"{prefix} {label} => {len(data)} bytes @ 0x1", *rows]


def child_keys(thread: int, sa: str, seed: int) -> list[str]:
    return [line for n, label in enumerate(["encryption initiator key", "encryption responder key",
                                             "integrity initiator key", "integrity responder key"])
            for line in dump(thread, sa, label, bytes([seed + n]) * 16)]


def test_keylog_takes_a_registered_outbound_sa_from_its_own_keys_not_a_later_thread():
    """Seen in a CHILD rekey collision (strongSwan 5.9.8, responder of the rekey): the outbound SA is
    "registered" on the thread that derived the keys and "added" later on another thread, one that had
    installed an older CHILD SA."""
    log = "\n".join([
        "10:00:00 11[ENC] <lab|1> parsed IKE_AUTH request 1 [ IDi IDr AUTH SA TSi TSr ]",
        "10:00:00 11[CFG] <lab|1> selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        *child_keys(11, "lab|1", 0x10),
        "10:00:00 11[CHD] <lab|1> adding inbound ESP SA",
        "10:00:00 11[CHD] <lab|1>   SPI 0x00000001, src 10.0.0.2 dst 10.0.0.3",
        "10:00:00 11[CHD] <lab|1> adding outbound ESP SA",
        "10:00:00 11[CHD] <lab|1>   SPI 0x00000002, src 10.0.0.3 dst 10.0.0.2",
        "10:00:04 02[ENC] <lab|1> parsed CREATE_CHILD_SA request 2 [ N(REKEY_SA) SA No TSi TSr ]",
        "10:00:04 02[CFG] <lab|1> selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        *child_keys(2, "lab|1", 0x20),
        "10:00:04 02[CHD] <lab|1> adding inbound ESP SA",
        "10:00:04 02[CHD] <lab|1>   SPI 0x00000003, src 10.0.0.2 dst 10.0.0.3",
        "10:00:04 02[CHD] <lab|1> registering outbound ESP SA",
        "10:00:04 02[CHD] <lab|1>   SPI 0x00000004, src 10.0.0.3 dst 10.0.0.2",
        "10:00:04 11[ENC] <lab|1> parsed INFORMATIONAL request 3 [ D ]",
        "10:00:04 11[CHD] <lab|1> adding outbound ESP SA",
        "10:00:04 11[CHD] <lab|1>   SPI 0x00000004, src 10.0.0.3 dst 10.0.0.2",
    ])
    esp = keylog.esp_keys(log)
    # The peer initiated both CHILD SAs: what we send (outbound) uses the responder keys (seed + 1, + 3).
    assert [(k.spi, k.enc_key[0], k.auth_key[0]) for k in esp] == [
        (1, 0x10, 0x12), (2, 0x11, 0x13), (3, 0x20, 0x22), (4, 0x21, 0x23)]


# --- IKE --------------------------------------------------------------------------------------------------

def psk_keys() -> list[IkeSaKeys]:
    return keys_of(PSK, "initiator")[0]


def test_psk_ike_auth_request_decrypts_to_identities_and_auth():
    request, response = decrypt_ike(pcap(PSK), psk_keys()).ike("IKE_AUTH")
    assert request.decrypted and not request.is_response, request.describe()
    assert request.names == ("IDi", "Notify", "IDr", "AUTH", "SA", "TSi", "TSr", "Notify", "Notify", "Notify")
    assert (request.payload("IDi").id_type, request.payload("IDi").value) == ("FQDN", "initiator.lab")
    assert request.payload("IDr").value == "responder.lab"
    assert request.payload("AUTH").method == "shared-key"
    assert request.notify("INITIAL_CONTACT") is not None and not request.errors


def test_psk_ike_auth_response_carries_the_child_sa_and_subnets():
    response = decrypt_ike(pcap(PSK), psk_keys()).ike("IKE_AUTH")[1]
    assert response.is_response and response.decrypted, response.describe()
    assert response.payload("IDr").value == "responder.lab" and response.payload("AUTH") is not None
    (proposal,) = response.payload("SA").proposals
    assert (proposal.protocol, proposal.spi, proposal.algorithms) == (
        "ESP", bytes.fromhex("e0e82121"), ("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", "NO_ESN"))
    assert response.payload("TSi").networks() == ("198.19.1.0/24",)
    assert response.payload("TSr").networks() == ("198.19.2.0/24",)
    assert response.payload("TSi").selectors[0].describe() == "198.19.1.0-198.19.1.255"


def test_clear_ike_sa_init_payloads_are_decoded_too():
    request = decrypt_ike(pcap(PSK)).ike("IKE_SA_INIT")[0]
    assert request.sa.proposals[0].algorithms == (
        "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048")
    assert request.payload("KE").group == "MODP_2048"
    assert request.payload("Nonce").describe() == "Nonce 32 bytes"


def test_wrong_psk_auth_response_decrypts_to_authentication_failed():
    ike = keys_of(WRONG_PSK, "responder")[0]
    request, response = decrypt_ike(pcap(WRONG_PSK), ike).ike("IKE_AUTH")
    assert request.payload("IDi").value == "initiator.lab"
    assert response.notify("AUTHENTICATION_FAILED") is not None, response.describe()
    assert response.names == ("Notify",) and [n.name for n in response.errors] == ["AUTHENTICATION_FAILED"]


def test_a_flipped_byte_is_an_icv_mismatch_not_an_exception_and_shown_where_the_payloads_survive():
    wire = Wire.from_pcap(pcap(PSK))
    # the SK header and the ICV are not encrypted: the payloads decrypt whole, shown but marked unverified; a
    # flipped bit in the IV or the ciphertext spoils the chain, which is then not shown at all
    for position, shown in ((29, True), (35, False), (-20, False), (-1, True)):
        damaged = []
        for m in wire.messages:
            data = bytearray(m.data)
            if m.exchange == "IKE_AUTH":
                data[position] ^= 0x01
            damaged.append(replace(m, data=bytes(data)))
        auth = decrypt_ike(damaged, psk_keys()).ike("IKE_AUTH")
        if shown:
            assert [m.problem for m in auth] == [crypto.SHOWN_UNVERIFIED] * 2, position
            assert auth[0].payload("IDi").value == "initiator.lab" and not auth[0].decrypted
            assert auth[0].describe().endswith("\n    ICV mismatch: shown unverified")
        else:
            assert [m.problem for m in auth] == ["undecryptable: ICV mismatch"] * 2, position
            assert auth[0].payloads == ()


def test_a_wrong_integrity_key_shows_the_payloads_unverified_a_wrong_encryption_key_nothing():
    wrong = replace(psk_keys()[0], sk_ar=bytes(32))
    request, response = decrypt_ike(pcap(PSK), [wrong]).ike("IKE_AUTH")
    assert request.decrypted and response.problem == crypto.SHOWN_UNVERIFIED and response.payload("IDr")
    message = Wire.from_pcap(pcap(PSK)).ike("IKE_AUTH")[1].data
    assert crypto.decrypt_sk(message, wrong).problem == "ICV mismatch"
    garbled = replace(wrong, sk_er=bytes(16))
    request, response = decrypt_ike(pcap(PSK), [garbled]).ike("IKE_AUTH")
    assert request.decrypted and response.problem == "undecryptable: ICV mismatch" and not response.payloads
    assert crypto.decrypt_sk(message, replace(wrong, encryption="ENCR_CAMELLIA_CBC_128")).problem == \
        "unsupported algorithm ENCR_CAMELLIA_CBC_128"


def test_a_key_file_without_integrity_keys_opens_ike_unchecked():
    keys = psk_keys()[0]
    for unchecked in (replace(keys, sk_ai=b"", sk_ar=b""), replace(keys, integrity="AUTH_ANY_128", sk_ai=b"",
                                                                    sk_ar=b"")):
        request, response = decrypt_ike(pcap(PSK), [unchecked]).ike("IKE_AUTH")
        assert request.payload("IDi").value == "initiator.lab" and response.payload("IDr").value == "responder.lab"
        assert request.problem.startswith(crypto.NOT_CHECKED) and not request.decrypted


def test_without_keys_messages_say_so():
    auth = decrypt_ike(pcap(PSK), []).ike("IKE_AUTH")
    assert [m.problem for m in auth] == [NO_KEYS] * 2 and not any(m.decrypted for m in auth)
    other_sa = decrypt_ike(pcap(PSK), keys_of(WRONG_PSK, "initiator")[0]).ike("IKE_AUTH")
    assert [m.problem for m in other_sa] == [NO_KEYS] * 2


def test_keys_without_spis_are_bound_to_the_sa_they_authenticate():
    anonymous = [replace(k, ispi=bytes(8), rspi=bytes(8)) for k in psk_keys() + keys_of(WRONG_PSK, "initiator")[0]]
    auth = decrypt_ike(pcap(PSK), anonymous).ike("IKE_AUTH")
    assert all(m.decrypted for m in auth) and auth[0].payload("IDi").value == "initiator.lab"
    bound = bind_ike_keys(pcap(PSK), anonymous)
    init = Wire.from_pcap(pcap(PSK)).ike("IKE_SA_INIT")[1]
    assert sorted((k.ispi, k.rspi) for k in bound) == sorted([(init.ispi, init.rspi), (bytes(8), bytes(8))])


def test_unknown_payload_names_are_refused():
    request = decrypt_ike(pcap(PSK), psk_keys()).ike("IKE_AUTH")[0]
    with pytest.raises(ValueError):
        request.payload("IDx")
    with pytest.raises(ValueError):
        request.notify("AUTH_FAILED")


def test_a_broken_inner_chain_keeps_what_came_before():
    _first, chain = vectors.chain((35, struct.pack("!Bxxx", 2) + b"a.lab"), (39, struct.pack("!Bxxx", 2)))
    payloads, problem = ike.decode_chain(35, chain[:-3])
    assert [p.describe() for p in payloads] == ["IDi FQDN a.lab"]
    assert problem == "AUTH payload at byte 13: length 8 runs past the end (5 byte(s) left)"


def test_real_gcm_capture_with_ike_rekeys_decrypts_every_message_from_either_log():
    for side in ("initiator", "responder"):
        messages = decrypt_ike(pcap(GCM_REKEY), keys_of(GCM_REKEY, side)[0])
        encrypted = [m for m in messages if m.message.encrypted]
        assert len(encrypted) == 30 and all(m.decrypted for m in encrypted), messages.describe()
    # Each rekeyed IKE SA's keys were bound to the SPIs its CREATE_CHILD_SA exchange negotiated (carried in
    # the SA payloads, encrypted under the previous IKE SA): request = new initiator SPI, response = responder.
    rekeys = [m for m in messages.ike("CREATE_CHILD_SA") if m.payload("SA").proposals[0].protocol == "IKE"]
    negotiated = [(rekeys[i].payload("SA").proposals[0].spi, rekeys[i + 1].payload("SA").proposals[0].spi)
                  for i in range(0, len(rekeys), 2)]
    assert [m.is_response for m in rekeys] == [False, True, False, True]
    assert [m.message.src for m in rekeys[::2]] == ["198.18.247.3"] * 2   # the original responder rekeyed
    bound = bind_ike_keys(pcap(GCM_REKEY), keys_of(GCM_REKEY, "initiator")[0])
    assert [(k.ispi, k.rspi) for k in bound][1:] == negotiated
    # ... and in those SAs the original responder is the initiator: its messages carry the I flag.
    later = [m for m in messages if (m.message.ispi, m.message.rspi) == negotiated[0]]
    assert all(m.is_initiator == (m.message.src == "198.18.247.3") for m in later)


def test_real_ike_fragments_are_reassembled_and_the_signature_algorithm_named():
    """strongSwan split each IKE_AUTH message into two SKF fragments (AES-CBC/HMAC-SHA2-256); tshark 4.0 shows
    the same reassembled payloads and the same AlgorithmIdentifier (1.2.840.113549.1.1.12)."""
    auth = decrypt_ike(pcap(FRAGMENTATION), keys_of(FRAGMENTATION, "responder")[0]).ike("IKE_AUTH")
    assert [(m.is_response, m.fragment, m.decrypted) for m in auth] == [
        (False, (1, 2), False), (False, (2, 2), True), (True, (1, 2), False), (True, (2, 2), True)]
    request, response = auth[1], auth[3]
    assert request.names == ("IDi", "CERT", "Notify", "CERTREQ", "IDr", "AUTH", "Notify", "Notify", "Notify")
    assert request.payload("IDi").value == "initiator.lab"
    assert request.payload("AUTH").describe() == "AUTH digital-signature sha384WithRSAEncryption"
    # the RSA-4096 certificate that forced fragmentation
    assert request.payload("CERT").describe() == "CERT X.509 CN=initiator.lab 1279 bytes"
    assert request.payload("CERTREQ").describe() == "CERTREQ X.509 CAs=1"
    assert response.payload("IDr").value == "responder.lab" and response.payload("AUTH").method == "digital-signature"


def der(tag: int, *content: bytes) -> bytes:
    body = b"".join(content)
    assert len(body) < 0x80
    return bytes([tag, len(body)]) + body


def test_rsassa_pss_names_its_hash():
    """RFC 7427 A.4: an AlgorithmIdentifier for RSASSA-PSS carries the hash in its parameters."""
    oid = {"pss": bytes.fromhex("2a864886f70d01010a"), "sha256": bytes.fromhex("608648016503040201"),
           "mgf1": bytes.fromhex("2a864886f70d010108")}
    sha256 = der(0x30, der(0x06, oid["sha256"]), der(0x05))
    params = der(0x30, der(0xA0, sha256), der(0xA1, der(0x30, der(0x06, oid["mgf1"]), sha256)),
                 der(0xA2, der(0x02, b"\x20")))
    algorithm = der(0x30, der(0x06, oid["pss"]), params)
    body = struct.pack("!Bxxx", 14) + bytes([len(algorithm)]) + algorithm + bytes(256)
    assert ike.read_payload(2, 39, struct.pack("!BBH", 0, 0, 4 + len(body)) + body).describe() == \
        "AUTH digital-signature RSASSA-PSS(SHA-256)"
    unknown = der(0x30, der(0x06, bytes.fromhex("2a0304")))
    body = struct.pack("!Bxxx", 14) + bytes([len(unknown)]) + unknown
    assert ike.read_payload(2, 39, struct.pack("!BBH", 0, 0, 4 + len(body)) + body).signature == "1.2.3.4"


# --- AES-GCM vectors and fragments ------------------------------------------------------------------------

def gcm_keys(**changes) -> list[IkeSaKeys]:
    keys = IkeSaKeys(vectors.ISPI, vectors.RSPI, "ENCR_AES_GCM_16_256", None, vectors.SK_EI, vectors.SK_ER, b"", b"")
    return [replace(keys, **changes)]


@pytest.fixture(scope="module")
def gcm_pcap(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gcm") / "gcm.pcap"
    vectors.write_pcap(path)
    return path


@pytest.fixture
def gcm_messages(gcm_pcap) -> list:
    return list(Wire.from_pcap(gcm_pcap).messages)


def test_gcm_vector_decrypts_ike_auth_both_directions(gcm_messages):
    request, response = decrypt_ike(gcm_messages, gcm_keys()).ike("IKE_AUTH")
    assert request.payload("IDi").value == "gcm-initiator.lab" and request.payload("AUTH").method == "shared-key"
    assert request.payload("TSr").networks() == ("198.19.2.0/24",)
    assert response.notify("AUTHENTICATION_FAILED") is not None


def test_gcm_wrong_salt_or_key_is_an_icv_mismatch(gcm_messages):
    bad_salt = vectors.SK_EI[:32] + b"\x00\x00\x00\x00"
    for keys in (gcm_keys(sk_ei=bad_salt), gcm_keys(sk_ei=bytes(36))):
        request, response = decrypt_ike(gcm_messages, keys).ike("IKE_AUTH")
        assert request.problem == "undecryptable: ICV mismatch" and response.decrypted


def test_gcm_fragments_are_reassembled(gcm_messages):
    first, second = decrypt_ike(gcm_messages, gcm_keys()).ike("INFORMATIONAL")
    assert (first.fragment, first.payloads, first.problem) == ((1, 2), (), None)
    assert second.fragment == (2, 2) and second.decrypted
    assert [p.describe() for p in second.payloads] == ["Delete ESP 0xc0000011 0xc0000012",
                                                       "N(REKEY_SA) ESP spi=0xc0000011"]


def test_gcm_fragment_with_a_flipped_tag_byte_is_reassembled_unverified_one_with_a_flipped_salt_not(gcm_messages):
    messages = list(gcm_messages)
    damaged = bytearray(messages[3].data)
    damaged[-5] ^= 0x80     # in the tag: the ciphertext decrypts whole
    messages[3] = replace(messages[3], data=bytes(damaged))
    first, second = decrypt_ike(messages, gcm_keys()).ike("INFORMATIONAL")
    assert first.fragment == (1, 2) and second.problem == crypto.SHOWN_UNVERIFIED
    assert [p.describe() for p in second.payloads] == ["Delete ESP 0xc0000011 0xc0000012",
                                                       "N(REKEY_SA) ESP spi=0xc0000011"]
    wrong_salt = gcm_keys(sk_er=vectors.SK_ER[:32] + bytes(4), sk_ei=vectors.SK_EI[:32] + bytes(4))
    first, second = decrypt_ike(gcm_messages, wrong_salt).ike("INFORMATIONAL")
    assert not second.payloads and "ICV mismatch" in str(second.problem)


# --- ESP --------------------------------------------------------------------------------------------------

def test_psk_esp_decrypts_to_three_pings_each_way():
    inner = esp_inner(pcap(PSK), keys_of(PSK, "responder")[1])
    assert len(inner) == 6 and all(p.packet is not None for p in inner), [p.describe() for p in inner]
    requests = [p for p in inner if p.spi == 0xE0E82121]
    replies = [p for p in inner if p.spi == 0xA457CDB7]
    assert [(p.packet.src, p.packet.dst, p.packet["ICMP"].type, p.packet["ICMP"].seq) for p in requests] == [
        ("198.19.1.1", "198.19.2.1", 8, seq) for seq in (1, 2, 3)]
    assert [(p.packet.src, p.packet.dst, p.packet["ICMP"].type, p.packet["ICMP"].seq) for p in replies] == [
        ("198.19.2.1", "198.19.1.1", 0, seq) for seq in (1, 2, 3)]
    assert requests[0].describe().startswith("seq=1 ICMP echo-request 198.19.1.1 > 198.19.2.1 id=")


def test_esp_with_a_wrong_integrity_key_or_a_flipped_byte_is_shown_unverified_a_wrong_key_not_at_all():
    good = next(k for k in keys_of(PSK, "initiator")[1] if k.spi == 0xE0E82121)
    inner = esp_inner(pcap(PSK), [replace(good, auth_key=bytes(32))])
    assert {p.problem for p in inner if p.spi == 0xE0E82121} == {crypto.SHOWN_UNVERIFIED}
    assert all(p.packet is not None for p in inner if p.spi == 0xE0E82121)
    assert {p.problem for p in inner if p.spi == 0xA457CDB7} == {NO_KEYS}
    wrong = esp_inner(pcap(PSK), [replace(good, enc_key=bytes(16), auth_key=bytes(32))])
    assert {p.problem for p in wrong if p.spi == 0xE0E82121} == {"undecryptable: ICV mismatch"}
    from harness.protocols.ipsec.transcript import read_capture
    packet = read_capture(pcap(PSK))[1][0]
    flipped = packet.data[:40] + bytes([packet.data[40] ^ 1]) + packet.data[41:]
    assert crypto.decrypt_esp(packet.data, packet.src, packet.dst, good).problem is None
    assert crypto.decrypt_esp(flipped, packet.src, packet.dst, good).problem == crypto.SHOWN_UNVERIFIED
    assert crypto.decrypt_esp(packet.data[:20], packet.src, packet.dst, good).packet is None


def test_gcm_esp_vector_decrypts(gcm_pcap):
    keys = EspSaKeys(vectors.ESP_SPI, vectors.INITIATOR, vectors.RESPONDER, "ENCR_AES_GCM_16_256", None,
                     vectors.ESP_KEY, b"")
    (inner,) = esp_inner(gcm_pcap, [keys])
    assert inner.describe() == "seq=1 ICMP echo-request 198.19.1.1 > 198.19.2.1 id=7 seq=1"
    (wrong,) = esp_inner(gcm_pcap, [replace(keys, enc_key=vectors.ESP_KEY[:32] + bytes(4))])
    assert wrong.packet is None and wrong.problem == "undecryptable: ICV mismatch"


def test_real_gcm_esp_across_child_rekeys():
    inner = esp_inner(pcap(GCM_REKEY), keys_of(GCM_REKEY, "initiator")[1])
    assert len(inner) == 32 and all(p.packet is not None for p in inner)
    assert len({p.spi for p in inner}) == 8
    assert {p.packet.src for p in inner if p.packet["ICMP"].type == 8} == {"198.19.1.1"}


def _seal_esp(spi: int, seq: int, high: int | None, inner: bytes, *, gcm: bool) -> tuple[bytes, EspSaKeys]:
    """An ESP packet sealed here, on cryptography's primitives (not crypto.py's code): AES-CBC + HMAC-SHA2-256-128
    or AES-GCM-16-128, with `high` the ESN high half the ICV covers (RFC 4303 2.2.1), None for an SA without ESN."""
    import hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    header = struct.pack("!II", spi, seq)
    esn = b"" if high is None else struct.pack("!I", high)
    pad = -(len(inner) + 2) % 16
    plaintext = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
    key, auth, salt, iv = bytes(range(16)), bytes(range(32, 64)), b"salt", bytes(8)
    if gcm:
        aad = header if high is None else header[:4] + esn + header[4:]
        sealed = AESGCM(key).encrypt(salt + iv, plaintext, aad)
        return header + iv + sealed, EspSaKeys(spi, "198.18.0.2", "198.18.0.3", "ENCR_AES_GCM_16_128", None,
                                               key + salt, b"")
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = header + iv + encryptor.update(plaintext) + encryptor.finalize()
    icv = hmac.new(auth, body + esn, "sha256").digest()[:16]
    return body + icv, EspSaKeys(spi, "198.18.0.2", "198.18.0.3", "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128",
                                 key, auth)


@pytest.mark.parametrize("gcm", [False, True], ids=["cbc-hmac", "gcm"])
def test_esp_icv_tells_esn_from_no_esn_and_counts_the_high_half_across_a_wrap(gcm):
    """RFC 4303 2.2.1/3.3.2: with ESN the ICV covers the sequence number's high half, never sent; a receiver
    infers it (Appendix A): after seq 0xffffffff comes seq 1 with the high half 1."""
    from scapy.layers.inet import ICMP, IP
    from harness.protocols.ipsec.transcript import EspPacket, open_esp
    inner = bytes(IP(src="198.19.1.1", dst="198.19.2.1") / ICMP())
    plain, keys = _seal_esp(0x1234, 7, None, inner, gcm=gcm)
    esn, _ = _seal_esp(0x1234, 7, 0, inner, gcm=gcm)
    assert crypto.decrypt_esp(plain, keys.src, keys.dst, keys).esn is False
    assert crypto.decrypt_esp(esn, keys.src, keys.dst, keys).esn is True
    last, _ = _seal_esp(0x1234, 0xFFFFFFFF, 0, inner, gcm=gcm)
    wrapped, _ = _seal_esp(0x1234, 1, 1, inner, gcm=gcm)
    assert crypto.decrypt_esp(wrapped, keys.src, keys.dst, keys).problem == crypto.SHOWN_UNVERIFIED  # high half 0
    packets = [EspPacket(0.0, keys.src, keys.dst, 0x1234, seq, data) for seq, data in ((0xFFFFFFFF, last),
                                                                                       (1, wrapped))]
    opened = open_esp(packets, [keys])
    assert [(p.problem, p.plaintext.esn) for p in opened] == [(None, True), (None, True)], \
        [p.describe() for p in opened]
    assert opened[1].packet[IP].dst == "198.19.2.1"
