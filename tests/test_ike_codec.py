"""The one description of IKE (harness.protocols.ipsec.ike): names for numbers, building and reading back every
payload of both versions, damaged messages read as far as they go (and why not further), typed notify data, Vendor
IDs, and IKEv1's encrypted messages opened along their IV chain (tests/data/ike; tshark's own reading of the same
captures is tests/test_ike_tshark.py)."""
from __future__ import annotations

import hashlib
import struct
from dataclasses import replace

import pytest
from scapy.contrib.ikev2 import IKEv2, IKEv2_Payload
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap

from support import DATA, load, without_spis
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.keys import IkeV1SaKeys
from harness.protocols.ipsec.transcript import NO_KEYS, decrypt_ike, transcript
from harness.protocols.ipsec.wire import Wire, _decode_ike, _Malformed

IKE_DATA = DATA / "ike"
make = load("make_ike_pcaps", IKE_DATA / "make_ike_pcaps.py")
MAIN, AGGRESSIVE = IKE_DATA / "ikev1_main_mode.pcap", IKE_DATA / "ikev1_aggressive_xauth.pcap"
V1_KEYS = [IkeV1SaKeys(cookie, key) for cookie, key in make.IKEV1_KEYS.items()]
SPI = bytes.fromhex("0102030405060708")


def message(*payloads, version: int = 2, **header) -> bytes:
    fields = dict(ispi=SPI, exchange="IKE_SA_INIT" if version == 2 else "Main Mode", major=version,
                  flags=ike.FLAG_INITIATOR if version == 2 else 0)
    return bytes(ike.Isakmp(**{**fields, **header}, payloads=list(payloads)))


def read(data: bytes):
    decoded = ike.decode(data)
    return decoded, ike.problems(decoded)


# --- names -----------------------------------------------------------------------------------------------------

def test_a_name_equals_its_name_its_number_and_its_digits():
    group = ike.KE_METHODS(14)
    assert group == "MODP_2048" and group == 14 and group == "14" and group.number == 14 and int(group) == 14
    assert group != "MODP_3072" and group != 15 and not (group == True)   # noqa: E712
    assert {group} == {"MODP_2048"} and f"{group}" == "MODP_2048"


def test_a_number_no_registry_names_is_named_so_it_reads_back():
    encr = ike.transform_ids(1)
    assert encr(1000) == "ENCR_1000" and encr.number("ENCR_1000") == 1000 and encr.number("ENCR_AES_CBC") == 12
    assert ike.transform_ids(200)(1) == "TYPE200_1"
    with pytest.raises(ValueError):
        encr.number("ENCR_NOPE")


def test_misspelt_names_are_refused_in_both_versions():
    wire = Wire.from_pcap(MAIN)
    assert len(wire.ike("Main Mode")) == 7 and len(wire.ike("Quick Mode")) == 3
    for bad in (lambda: wire.ike("MainMode"), lambda: wire.ike()[0].notify("R-U-THERE?"),
                lambda: wire.ike()[0].payload("NATD")):
        with pytest.raises(ValueError):
            bad()
    assert wire.ike()[0].notify("INVALID_KE_PAYLOAD") is None   # an IKEv2 name is a name, not a typo


# --- every payload, built and read back ----------------------------------------------------------------------

@pytest.mark.parametrize("version, number", sorted(ike.PAYLOAD_CLASSES), ids=lambda v: str(v))
def test_every_payload_class_builds_and_reads_back(version, number):
    cls = ike.PAYLOAD_CLASSES[(version, number)]
    payload = ike.EncryptedFragment() if cls is ike.EncryptedFragment else cls()
    data = message(payload, version=version)
    decoded, found = read(data)
    assert found == [] and [p.type_number for p in decoded.payloads] == [number]
    assert type(decoded.payloads[0]) is cls and bytes(decoded) == data
    assert decoded.payloads[0].kind == ike.PAYLOAD_NAMES[version](number)


def test_the_critical_bit_is_the_top_bit_not_scapys_contrib_bit_0():
    data = message(ike.Opaque.of(100, b"abcd", critical=True))
    assert data[ike.HEADER_SIZE + 1] == 0x80
    decoded, found = read(data)
    assert found == [] and decoded.payloads[0].critical == 1 and decoded.payloads[0].kind == "100"
    contrib = bytes(IKEv2(init_SPI=SPI, next_payload=100, exch_type=34) / IKEv2_Payload(flags="critical", load=b"x"))
    assert ike.decode(contrib).payloads[0].critical == 0   # FIELD-NOTES: scapy contrib sets 0x01, a reserved bit


def test_lengths_counts_and_more_marks_are_filled_in_when_building():
    sa = ike.SecurityAssociation(proposals=[ike.Proposal(number=n, spi=b"\xc0\x00\x00\x01", transforms=[
        ike.transform("ENCR", "ENCR_AES_CBC_256"), ike.transform("ESN", "NO_ESN")]) for n in (1, 2)])
    decoded, found = read(message(sa))
    assert found == []
    proposals = decoded.payloads[0].proposals
    assert [(p.more, p.spi_size, p.transform_count, [t.more for t in p.transforms]) for p in proposals] == [
        (2, 4, 2, [3, 0]), (0, 4, 2, [3, 0])]
    assert proposals[0].algorithms == ("ENCR_AES_CBC_256", "NO_ESN")


def test_rfc_9370_additional_key_exchanges_say_their_round():
    sa = ike.SecurityAssociation(proposals=[ike.Proposal(transforms=[
        ike.transform("KE", "ECP_256"), ike.transform("ADDKE1", "ML_KEM_768"), ike.transform("ADDKE2", "NONE")])])
    decoded, _ = read(message(sa, exchange="IKE_INTERMEDIATE"))
    assert decoded.exchange == "IKE_INTERMEDIATE" and decoded.exchange == 43
    assert decoded.payloads[0].proposals[0].algorithms == ("ECP_256", "ADDKE1=ML_KEM_768", "ADDKE2=NONE")
    assert [ike.KE_METHODS(n) for n in (35, 36, 37)] == ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]


# --- damage ------------------------------------------------------------------------------------------------------

def test_fewer_bytes_than_a_header_are_not_a_message():
    assert ike.decode(bytes(27)) is None
    with pytest.raises(_Malformed):
        _decode_ike(bytes(27), time=0.0, src="a", dst="b", sport=500, dport=500)


def test_a_truncated_message_keeps_its_header_and_the_payloads_before_the_cut():
    whole = message(ike.Nonce(nonce=bytes(32)), ike.notify("COOKIE", cookie=b"c" * 8))
    decoded, found = read(whole[:70])
    assert (decoded.ispi, decoded.exchange, [p.kind for p in decoded.payloads]) == (SPI, "IKE_SA_INIT", ["Nonce"])
    assert found == [f"length {len(whole)}, 70 bytes on the wire: the message is cut short",
                     "Notify payload at byte 64: 6 byte(s) left, a payload header needs 4"] or \
        found == [f"length {len(whole)}, 70 bytes on the wire: the message is cut short",
                  "Notify payload at byte 64: length 16 runs past the end (6 byte(s) left)"]


# Offsets: the SA payload at 28, its proposal at 32 (length at 34, transform count at 39), the first transform
# at 40 (its "more" byte), that transform's Key Length attribute at 48 (type) and 50 (value, or a TLV's length).
@pytest.mark.parametrize("damage, problem", [
    (lambda d: d[:34] + b"\x00\x3c" + d[36:], "SA: proposal 1: length 60 runs past the end (44 byte(s) left)"),
    (lambda d: d[:39] + b"\x05" + d[40:], "SA: proposal 1: 5 transforms announced, 4 found"),
    (lambda d: d[:40] + b"\x00" + d[41:], "SA: proposal 1: transform 1 is marked 0, 3 was due (more follow)"),
    (lambda d: d[:48] + b"\x00\x0e\x00\x02" + d[52:], "SA: proposal 1: transform 1: attribute 1: length 6 runs past "
                                                       "the end (4 byte(s) left)"),
])
def test_damage_inside_a_payload_says_where_and_the_next_payload_is_still_read(damage, problem):
    sa = ike.SecurityAssociation(proposals=[ike.Proposal(transforms=[
        ike.transform("ENCR", "ENCR_AES_CBC_128"), ike.transform("PRF", "PRF_HMAC_SHA2_256"),
        ike.transform("INTEG", "AUTH_HMAC_SHA2_256_128"), ike.transform("KE", "MODP_2048")])])
    data = message(sa, ike.Nonce(nonce=bytes(8)))
    assert read(data)[1] == []
    decoded, found = read(damage(data))
    assert found == [problem] and [p.kind for p in decoded.payloads] == ["SA", "Nonce"]


def test_a_notify_spi_size_past_the_payload_is_a_problem():
    data = bytearray(message(ike.notify("REKEY_SA", protocol="ESP", spi=bytes(4))))
    data[ike.HEADER_SIZE + 5] = 40
    assert read(bytes(data))[1] == ["Notify: spi of 40 byte(s) runs past the end (4 left)"]


def test_a_major_version_neither_1_nor_2_keeps_the_header():
    data = bytearray(message(ike.Nonce(nonce=bytes(8))))
    data[17] = 0x30
    decoded, found = read(bytes(data))
    assert decoded.ispi == SPI and decoded.payloads == []
    assert found == ["major version 3: neither ISAKMP (1) nor IKEv2 (2)"]


def test_a_damaged_message_is_on_the_wire_with_what_could_be_read(tmp_path):
    good, bad = message(ike.Nonce(nonce=bytes(8))), message(ike.Nonce(nonce=bytes(8)), ike.Nonce(nonce=bytes(8)))
    bad = bad[:-6]
    frames = [Ether() / IP(src="198.18.0.2", dst="198.18.0.3") / UDP(sport=500, dport=500) / Raw(m)
              for m in (bad, good)]
    wrpcap(str(tmp_path / "c.pcap"), frames)
    wire = Wire.from_pcap(tmp_path / "c.pcap")
    assert wire.malformed == 1 and len(wire.messages) == 2 and len(wire.ike()) == 1
    damaged = wire.ike(damaged=True)[0]
    assert damaged.names == ("Nonce",) and "cut short" in damaged.problem
    text = without_spis(transcript(tmp_path / "c.pcap"))
    assert "IKE_SA_INIT mid=0 request(I) Nonce\n    Nonce 8 bytes\n    malformed: length 52, 46 bytes on the wire" in text
    assert "skipped" not in text   # shown, not skipped


def test_a_changed_message_reads_anew():
    sighting = _decode_ike(message(ike.Nonce(nonce=bytes(8))), time=0.0, src="a", dst="b", sport=500, dport=500)
    changed = replace(sighting, data=message(ike.notify("COOKIE", cookie=b"x")))
    assert sighting.names == ("Nonce",) and changed.names == ("Notify",) and changed.notify("COOKIE").cookie == b"x"


# --- typed notify data -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, typed, attribute, expected", [
    ("INVALID_KE_PAYLOAD", {"group": "ECP_256"}, "group", "ECP_256"),
    ("UNSUPPORTED_CRITICAL_PAYLOAD", {"payload_type": 100}, "payload_type", 100),
    ("SIGNATURE_HASH_ALGORITHMS", {"hash_ids": [2, 4, 5]}, "hashes", ("SHA2_256", "SHA2_512", "IDENTITY")),
    ("NAT_DETECTION_SOURCE_IP", {"hash": b"h" * 20}, "hash", b"h" * 20),
    ("COOKIE", {"cookie": b"c" * 32}, "cookie", b"c" * 32),
    ("PPK_IDENTITY", {"ppk_id_type": "PPK_ID_FIXED", "ppk_id": b"k1"}, "ppk_id_type", "PPK_ID_FIXED"),
    ("SET_WINDOW_SIZE", {"window_size": 8}, "window_size", 8),
    ("ADDITIONAL_KEY_EXCHANGE", {"link": b"l" * 8}, "link", b"l" * 8),
])
def test_notify_data_is_typed_where_its_type_gives_it_a_structure(kind, typed, attribute, expected):
    decoded, found = read(message(ike.notify(kind, **typed)))
    notify = decoded.payloads[0]
    assert found == [] and notify.type == kind and getattr(notify, attribute) == expected
    assert notify.name == kind   # scapy's name of the layer is the notify type: what show() titles it


def test_notify_data_of_a_size_its_type_cannot_have_stays_bytes():
    notify = read(message(ike.notify("INVALID_KE_PAYLOAD", b"\x00\x0e\x00")))[0].payloads[0]
    assert notify.group is None and notify.data == b"\x00\x0e\x00"
    assert notify.summary() == "N(INVALID_KE_PAYLOAD: 000e00)"
    with pytest.raises(AttributeError):
        notify.no_such_field


def test_rekey_sa_names_the_child_sa_in_its_header():
    notify = read(message(ike.notify("REKEY_SA", protocol="ESP", spi=b"\xc0\x00\x00\x21")))[0].payloads[0]
    assert (notify.protocol, notify.spi, notify.is_error) == ("ESP", b"\xc0\x00\x00\x21", False)
    assert notify.describe() == "N(REKEY_SA) ESP spi=0xc0000021"


def test_ikev1_notifies_have_hyphenated_names_and_typed_dpd():
    messages = decrypt_ike(MAIN, V1_KEYS)
    dpd = next(m for m in messages if m.notify("R-U-THERE"))
    assert dpd.notify("R-U-THERE").sequence == 7 and dpd.notify("R-U-THERE").spi == make.MAIN_ICOOKIE + \
        make.MAIN_RCOOKIE
    refusal = messages[-1]
    assert (refusal.exchange, refusal.notify("NO-PROPOSAL-CHOSEN").is_error) == ("Informational", True)
    assert [str(n) for n in refusal.errors] and refusal.errors[0].type == 14


# --- Vendor IDs ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vid, name", [
    (hashlib.md5(b"RFC 3947").digest(), "RFC 3947 Negotiation of NAT-Traversal in the IKE"),
    (hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-02\n").digest(), "draft-ietf-ipsec-nat-t-ike-02\\n"),
    (bytes.fromhex("afcad71368a1f1c96b8696fc77570100"), "RFC 3706 DPD (Dead Peer Detection)"),
    (bytes.fromhex("09002689dfd6b712"), "XAUTH"),
    (hashlib.md5(b"CISCO-UNITY").digest()[:14] + b"\x01\x00", "CISCO-UNITY"),
    (hashlib.md5(b"FRAGMENTATION").digest() + b"\x80\x00\x00\x00", "Cisco Fragmentation"),
    (hashlib.md5(b"strongSwan").digest(), "strongSwan"),
    (b"OE-Libreswan-4.10", "Libreswan"),
    (b"OEabcdefghij", "Openswan"),
    (hashlib.md5(b"IKE CGA version 1").digest(), "IKE CGA Version 1"),
    (bytes(16), None),
], ids=lambda v: str(v) if not isinstance(v, bytes) else "")
def test_well_known_vendor_ids_are_named_by_their_prefix(vid, name):
    assert ike.read_payload(1, 13, struct.pack("!BBH", 0, 0, 4 + len(vid)) + vid).vendor == name


# --- IKEv1 on the wire -----------------------------------------------------------------------------------------------

def test_ikev1_exchanges_are_named_as_rfc_2409_writes_them():
    wire = Wire.from_pcap(MAIN)
    assert [str(m.exchange) for m in wire.ike()][:7] == ["Main Mode"] * 6 + ["Quick Mode"]
    assert {str(m.exchange) for m in Wire.from_pcap(AGGRESSIVE).ike()} == {"Aggressive Mode", "Transaction",
                                                                          "Quick Mode"}
    first = wire.ike()[0]
    assert (first.version, first.icookie, first.rcookie, first.is_response, first.is_initiator) == (
        1, make.MAIN_ICOOKIE, bytes(8), None, None)
    assert first.sa.doi == "IPSEC" and first.sa.proposals[0].protocol == "PROTO_ISAKMP"
    chosen = wire.ike()[1].sa.proposals[0].transforms[0]
    assert chosen.attribute_values == {"Encryption Algorithm": "AES-CBC", "Key Length": 128, "Hash Algorithm": "SHA",
                                       "Authentication Method": "pre-shared key", "Group Description": "MODP_2048",
                                       "Life Type": "seconds", "Life Duration": 28800}
    assert wire.ike()[0].vendor_ids[:3] == ("RFC 3947 Negotiation of NAT-Traversal in the IKE",
                                            "draft-ietf-ipsec-nat-t-ike-02\\n", "RFC 3706 DPD (Dead Peer Detection)")


def test_an_encrypted_ikev1_message_says_encrypted_without_keys():
    wire = Wire.from_pcap(MAIN)
    quick = wire.ike("Quick Mode")[0]
    assert (quick.encrypted, quick.names, quick.message_id, quick.problem) == (True, (), make.QUICK_MODE_ID, None)
    assert without_spis(quick.describe()).endswith("4500 Quick Mode mid=0x5e1d03a7 encrypted")
    assert quick.sport == 4500   # NAT-T: behind the non-ESP marker
    assert [m.problem for m in decrypt_ike(wire) if m.message.encrypted] == [NO_KEYS] * 9


def test_ikev1_messages_open_along_the_iv_chain():
    opened = decrypt_ike(MAIN, V1_KEYS)
    assert all(m.decrypted for m in opened if m.message.encrypted), opened.describe()
    identity = opened.ike("Main Mode")[4].payload("ID")
    assert (identity.id_type, identity.value, identity.protocol, identity.port) == ("ID_IPV4_ADDR", "198.18.0.2",
                                                                                   "UDP", 500)
    quick = opened.ike("Quick Mode")[0]
    assert quick.names == ("HASH", "SA", "Nonce", "ID", "ID", "NAT-OA")
    assert [i.value for i in quick.payloads_of("ID")] == ["198.19.1.0/24", "198.19.2.0/24"]
    esp = quick.sa.proposals[0].transforms[0]
    assert (esp.id, esp.attribute("Encapsulation Mode"), esp.attribute("Authentication Algorithm")) == (
        "ESP_AES-CBC", "UDP-Encapsulated-Tunnel", "HMAC-SHA2-256")
    deletes = [d for m in opened.ike("Informational") for d in m.payloads_of("Delete")]
    assert [(d.protocol, d.spis) for d in deletes] == [
        ("PROTO_IPSEC_ESP", (bytes.fromhex("c0000001"), bytes.fromhex("c0000002"))),
        ("PROTO_ISAKMP", (make.MAIN_ICOOKIE + make.MAIN_RCOOKIE,))]


def test_xauth_and_mode_config_attributes_are_named_and_valued():
    opened = decrypt_ike(AGGRESSIVE, V1_KEYS).ike("Transaction")
    credentials = opened[1].payload("Attributes")
    assert (credentials.cfg_type, credentials.attribute("XAUTH_USER_NAME"),
            credentials.attribute("XAUTH_USER_PASSWORD")) == ("ISAKMP_CFG_REPLY", "alice", "secret")
    assert opened[2].payload("Attributes").attribute("XAUTH_STATUS") == "OK"
    reply = opened[5].payload("Attributes")
    assert [(str(a.type), a.value) for a in reply.attributes][:3] == [
        ("INTERNAL_IP4_ADDRESS", "10.3.0.1"), ("INTERNAL_IP4_NETMASK", "255.255.255.0"),
        ("INTERNAL_IP4_DNS", "10.3.0.53")]
    assert opened[4].payload("Attributes").describe() == (
        "Attributes ISAKMP_CFG_REQUEST id=3 INTERNAL_IP4_ADDRESS INTERNAL_IP4_NETMASK INTERNAL_IP4_DNS "
        "APPLICATION_VERSION=vpnc 0.5.3 UNITY_BANNER")


def test_a_wrong_ikev1_key_shows_as_payloads_that_do_not_read():
    wrong = [IkeV1SaKeys(make.MAIN_ICOOKIE, bytes(16))]
    problems = {m.problem for m in decrypt_ike(MAIN, wrong) if m.message.encrypted}
    assert len(problems) >= 1 and all(p.startswith("undecryptable: the opened payloads do not read (a wrong key or "
                                                   "IV?)") for p in problems), problems


def capture_of(tmp_path, frames, name="c.pcap"):
    wrpcap(str(tmp_path / name), frames)
    return tmp_path / name


def test_an_exchange_in_between_does_not_break_a_quick_modes_chain(tmp_path):
    """RFC 2409 Appendix B: each exchange (message ID) continues its own chain; an informational exchange between
    two Quick Mode messages does not reset it."""
    frames = rdpcap(str(MAIN))
    reordered = list(frames[:7]) + [frames[9], frames[7], frames[8]] + list(frames[10:])
    opened = decrypt_ike(capture_of(tmp_path, reordered), V1_KEYS)
    assert all(m.decrypted for m in opened if m.message.encrypted), opened.describe()


def test_a_retransmission_opens_as_the_first_sending(tmp_path):
    frames = rdpcap(str(MAIN))
    again = frames[7].copy()
    opened = decrypt_ike(capture_of(tmp_path, list(frames[:9]) + [again] + list(frames[9:])), V1_KEYS)
    assert opened[9].message.data == opened[7].message.data and opened[9].names == opened[7].names != ()
    assert all(m.decrypted for m in opened if m.message.encrypted)


def test_without_the_clear_phase_1_the_keys_must_say_the_cipher_and_iv(tmp_path):
    frames = rdpcap(str(MAIN))
    cut = capture_of(tmp_path, frames[4:13])
    (first, *_rest) = decrypt_ike(cut, V1_KEYS)
    assert first.problem == "undecryptable: no phase 1 SA on the wire says the cipher (give it with the keys)"
    gxi = ike.decode(bytes(frames[2][UDP].payload)).payloads[0].key_data
    gxr = ike.decode(bytes(frames[3][UDP].payload)).payloads[0].key_data
    iv = hashlib.sha1(gxi + gxr).digest()[:16]
    given = [IkeV1SaKeys(make.MAIN_ICOOKIE, make.MAIN_KEY, encryption="AES-CBC", key_length=128, hash="SHA", iv=iv)]
    opened = decrypt_ike(cut, given)
    assert all(m.decrypted for m in opened), opened.describe()


def test_skeyid_e_longer_than_the_key_is_cut_to_the_key():
    longer = [IkeV1SaKeys(make.MAIN_ICOOKIE, make.MAIN_KEY + bytes(4))]
    assert all(m.decrypted for m in decrypt_ike(MAIN, longer) if m.message.encrypted)
    shorter = [IkeV1SaKeys(make.MAIN_ICOOKIE, make.MAIN_KEY[:8])]
    assert {m.problem for m in decrypt_ike(MAIN, shorter) if m.message.encrypted} == {
        "undecryptable: AES-CBC needs a 16-byte key, got 8"}


def test_header_flags_are_named_per_version():
    v1 = _decode_ike(message(version=1, flags=0x03), time=0.0, src="a", dst="b", sport=500, dport=500)
    v2 = _decode_ike(message(flags=0x28), time=0.0, src="a", dst="b", sport=500, dport=500)
    assert (v1.flag_names, v2.flag_names) == (("E", "C"), ("I", "R"))
    assert without_spis(v1.describe()).endswith("Main Mode mid=0 encrypted (C: commit)")


@pytest.mark.parametrize("version, trailing, damaged", [
    (1, bytes(3), False),          # pluto 4.10: an IKEv1 message ended on a 4-byte boundary, its length counting it
    (1, bytes(4), True),           # more than alignment: something is there
    (1, b"\x00\x01\x00", True),    # not zeros
    (2, bytes(3), True),           # IKEv2 has no such padding (RFC 7296 3.1)
])
def test_zero_bytes_aligning_an_ikev1_message_are_not_damage(version, trailing, damaged):
    """Libreswan pads its IKEv1 messages to 4 bytes (after a 21-byte Identification payload, 3 zero bytes); calling
    that damaged cost the message's KE, and with it the IVs of the whole phase 1 SA (Quick Mode undecryptable)."""
    payload = ike.Nonce(nonce=bytes(21)) if version == 2 else ike.V1Nonce(nonce=bytes(21))
    data = bytearray(message(payload, version=version) + trailing)
    data[24:28] = struct.pack("!I", len(data))
    decoded, problems = read(bytes(data))
    assert decoded.payloads[0].nonce == bytes(21)
    assert bool(problems) is damaged, problems
