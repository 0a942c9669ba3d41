"""Writes the IKE captures of tests/data/ike/, built with the harness's own description of IKE
(harness.protocols.ipsec.ike) and checked against tshark by tests/test_ike_tshark.py. Deterministic (fixed times,
cookies, SPIs, keys, "random" bytes from a seeded generator): re-running it reproduces the files byte for byte.

    python tests/data/ike/make_ike_pcaps.py [FOLDER]

The encrypted messages are sealed here, with `cryptography` and the RFCs' rules written out in this file, not with
harness code: the IV chain of RFC 2409 Appendix B for IKEv1, RFC 7296 3.14 (AES-CBC, HMAC-SHA2-256-128) for IKEv2.
tshark, given the keys below in its ikev1_decryption_table / ikev2_decryption_table, is the independent check that
they are sealed right (and so that the harness opens them right).

ikev1_main_mode.pcap (I = 198.18.0.2, R = 198.18.0.3; IKE SA 1 cookies 1111.../2222..., AES-CBC-128/SHA/PSK)
   1  I->R 500   Main Mode #0     SA (2 transforms) VID x5 (RFC 3947, draft NAT-T -02\\n, DPD, strongSwan, frag.)
   2  R->I 500   Main Mode        SA (the chosen transform) VID x2
   3  I->R 500   Main Mode        KE Nonce NAT-D NAT-D
   4  R->I 500   Main Mode        KE Nonce NAT-D NAT-D
   5  I->R 4500  Main Mode E      (NAT-T: non-ESP marker) ID HASH N(INITIAL-CONTACT)
   6  R->I 4500  Main Mode E      ID HASH
   7  I->R 4500  Quick Mode E     HASH SA(ESP, UDP-Encapsulated-Tunnel) Nonce ID(subnet) ID(subnet) NAT-OA
   8  R->I 4500  Quick Mode E     HASH SA Nonce ID ID N(RESPONDER-LIFETIME)
   9  I->R 4500  Quick Mode E     HASH
  10  R->I 4500  Informational E  HASH N(R-U-THERE seq 7)
  11  I->R 4500  Informational E  HASH N(R-U-THERE-ACK seq 7)
  12  I->R 4500  Informational E  HASH Delete(ESP, 2 SPIs)
  13  I->R 4500  Informational E  HASH Delete(ISAKMP, the cookies)
  14  I->R 500   Main Mode #0     another IKE SA (cookies 3333.../0): SA with 3DES/MD5/RSA
  15  R->I 500   Informational    N(NO-PROPOSAL-CHOSEN), in the clear

ikev1_aggressive_xauth.pcap (IKE SA cookies 4444.../5555..., AES-CBC-256/SHA2-256/XAUTHInitPreShared, draft NAT-T)
   1  I->R 500   Aggressive Mode  SA KE Nonce ID(FQDN) VID x6 (XAUTH, Unity, draft -02, -03, DPD, fragmentation)
   2  R->I 500   Aggressive Mode  SA KE Nonce ID HASH VID x3 NAT-D(draft 130) x2
   3  I->R 4500  Aggressive Mode E  HASH NAT-D(130) NAT-D(130)
   4  R->I 4500  Transaction E    HASH Attributes(CFG_REQUEST XAUTH_TYPE XAUTH_USER_NAME XAUTH_USER_PASSWORD)
   5  I->R 4500  Transaction E    HASH Attributes(CFG_REPLY XAUTH_USER_NAME=alice XAUTH_USER_PASSWORD=secret)
   6  R->I 4500  Transaction E    HASH Attributes(CFG_SET XAUTH_STATUS=OK)
   7  I->R 4500  Transaction E    HASH Attributes(CFG_ACK XAUTH_STATUS)
   8  I->R 4500  Transaction E    HASH Attributes(CFG_REQUEST INTERNAL_IP4_ADDRESS ... APPLICATION_VERSION)
   9  R->I 4500  Transaction E    HASH Attributes(CFG_REPLY 10.3.0.1/24, DNS, banner, domain)
  10  I->R 4500  Quick Mode E     HASH SA(ESP, UDP-Encapsulated-Tunnel (draft)) Nonce ID ID NAT-OA(draft 131)
  11  R->I 4500  Quick Mode E     HASH SA Nonce ID ID
  12  I->R 4500  Quick Mode E     HASH

ikev2_intermediate.pcap (IKEv2, AES-CBC-128/HMAC-SHA2-256-128 throughout)
   IKE SA A (SPIs a1.../b1...): RFC 9370 additional key exchange in RFC 9242 IKE_INTERMEDIATE, in RFC 7383 fragments
   1  I->R 500   IKE_SA_INIT #0   SA (ECP_256 + ADDKE1 ML_KEM_768 + ADDKE2 ML_KEM_1024/NONE) KE Nonce N(NAT-D) x2
                                  N(IKEV2_FRAGMENTATION_SUPPORTED) N(INTERMEDIATE_EXCHANGE_SUPPORTED)
                                  N(SIGNATURE_HASH_ALGORITHMS) N(USE_PPK) VendorID(strongSwan)
   2  R->I 500   IKE_SA_INIT #0   N(COOKIE)
   3  I->R 500   IKE_SA_INIT #0   N(COOKIE) and the request again
   4  R->I 500   IKE_SA_INIT #0   SA (the chosen transforms) KE Nonce N(NAT-D) x2 N(...SUPPORTED) N(USE_PPK)
   5-6  I->R 4500 IKE_INTERMEDIATE #1 request, SKF 1/2 and 2/2: KE(ML_KEM_768, 1184 bytes)
   7-8  R->I 4500 IKE_INTERMEDIATE #1 response, SKF 1/2 and 2/2: KE(ML_KEM_768, 1088 bytes)
   IKE SA B (SPIs c1.../d1...)
   9  I->R 500   IKE_SA_INIT #0   SA KE(MODP_2048) Nonce
  10  R->I 500   IKE_SA_INIT #0   N(INVALID_KE_PAYLOAD: ECP_256)
  11  I->R 500   IKE_SA_INIT #0   SA KE(ECP_256) Nonce
  12  R->I 500   IKE_SA_INIT #0   SA KE Nonce N(IKEV2_FRAGMENTATION_SUPPORTED)
  13-14 I->R 4500 IKE_AUTH #1 request, SKF 1/2 and 2/2: IDi CERT(X.509, Ed25519) CERTREQ AUTH N(USE_TRANSPORT_MODE)
                                  CP(CFG_REQUEST) SA(ESP) TSi TSr
  15  R->I 4500  IKE_AUTH #1      SK: IDr AUTH CP(CFG_REPLY) SA TSi TSr N(USE_TRANSPORT_MODE)
  16  I->R 4500  CREATE_CHILD_SA #2 SK: N(REKEY_SA) SA Nonce TSi TSr
  17  R->I 4500  CREATE_CHILD_SA #2 SK: SA Nonce TSi TSr
  18  I->R 4500  INFORMATIONAL #3 SK: Delete(ESP)
  19  R->I 4500  INFORMATIONAL #3 SK: (empty)
"""
from __future__ import annotations

import hashlib
import hmac
import random
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.protocols.ipsec import ike  # noqa: E402  (the path above first)

T0 = 1_750_000_000.0
I, R = "198.18.0.2", "198.18.0.3"
MACS = {I: "02:00:00:00:00:02", R: "02:00:00:00:00:03"}
NON_ESP_MARKER = bytes(4)

# IKEv1: what Wireshark's ikev1_decryption_table holds (initiator cookie -> encryption key).
MAIN_ICOOKIE, MAIN_RCOOKIE = bytes.fromhex("1111111111111111"), bytes.fromhex("2222222222222222")
MAIN_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")                          # AES-CBC-128
REFUSED_ICOOKIE = bytes.fromhex("3333333333333333")
AGGRESSIVE_ICOOKIE, AGGRESSIVE_RCOOKIE = bytes.fromhex("4444444444444444"), bytes.fromhex("5555555555555555")
AGGRESSIVE_KEY = bytes(range(0x20, 0x40))                                                # AES-CBC-256
IKEV1_KEYS = {MAIN_ICOOKIE: MAIN_KEY, AGGRESSIVE_ICOOKIE: AGGRESSIVE_KEY}
QUICK_MODE_ID, DPD_ID, DPD_ACK_ID, DELETE_ID, DELETE_SA_ID = 0x5E1D03A7, 0x0BADCAFE, 0x0BADCAFF, 0x1234ABCD, 0x1234ABCE
XAUTH_ID, XAUTH_STATUS_ID, MODE_CFG_ID, AGGRESSIVE_QM_ID = 0x0A0A0A0A, 0x0B0B0B0B, 0x0C0C0C0C, 0x0D0D0D0D
# IKEv2: what Wireshark's ikev2_decryption_table holds, per IKE SA (ENCR_AES_CBC_128, AUTH_HMAC_SHA2_256_128).
SA_A = dict(ispi=bytes.fromhex("a1a1a1a1a1a1a1a1"), rspi=bytes.fromhex("b1b1b1b1b1b1b1b1"),
            sk_ei=bytes(range(0x40, 0x50)), sk_er=bytes(range(0x50, 0x60)),
            sk_ai=bytes(range(0x60, 0x80)), sk_ar=bytes(range(0x80, 0xA0)))
SA_B = dict(ispi=bytes.fromhex("c1c1c1c1c1c1c1c1"), rspi=bytes.fromhex("d1d1d1d1d1d1d1d1"),
            sk_ei=bytes(range(0xA0, 0xB0)), sk_er=bytes(range(0xB0, 0xC0)),
            sk_ai=bytes(range(0xC0, 0xE0)), sk_ar=bytes(range(0xE0, 0x100)))

CAPTURES = ("ikev1_main_mode.pcap", "ikev1_aggressive_xauth.pcap", "ikev2_intermediate.pcap")


class Random:
    """The "random" bytes (nonces, public values, IVs, hashes): the same on every run."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def __call__(self, size: int) -> bytes:
        return self.rng.randbytes(size)


def frame(src: str, dst: str, port: int, data: bytes):
    marker = NON_ESP_MARKER if port == 4500 else b""
    return (Ether(src=MACS[src], dst=MACS[dst]) / IP(src=src, dst=dst, id=0) / UDP(sport=port, dport=port)
            / Raw(marker + data))


def write(path: Path, frames: list) -> int:
    for number, packet in enumerate(frames):
        packet.time = T0 + number / 10
    wrpcap(str(path), frames, linktype=1)
    return len(frames)


def chain(payloads: list) -> tuple[int, bytes]:
    """(type of the first payload, the payload chain as bytes), next-payload fields filled in."""
    built = bytes(ike.Isakmp(payloads=payloads))
    return built[16], built[ike.HEADER_SIZE:]


# --- IKEv1 (RFC 2409 Appendix B) -------------------------------------------------------------------------------

class V1Sealer:
    """One IKEv1 SA's IV chain, RFC 2409 Appendix B: phase 1 starts from hash(g^xi | g^xr); each message continues
    from the last cipher block of the one before in its exchange; each phase 2 / informational exchange starts from
    hash(the last phase 1 block | its message ID)."""

    def __init__(self, key: bytes, hash_name: str, gxi: bytes, gxr: bytes):
        self.key, self.hash_name = key, hash_name
        self.next_iv = {0: self._hash(gxi + gxr)[:16]}

    def _hash(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def seal(self, header: dict, payloads: list) -> bytes:
        message_id = header.get("message_id", 0)
        iv = self.next_iv.get(message_id)
        if iv is None:
            iv = self._hash(self.next_iv[0] + message_id.to_bytes(4, "big"))[:16]
        first, plain = chain(payloads)
        plain += bytes(-len(plain) % 16)   # padding (RFC 2409 Appendix B: to the block; its content is not checked)
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        body = encryptor.update(plain) + encryptor.finalize()
        self.next_iv[message_id] = body[-16:]
        return bytes(ike.Isakmp(major=1, flags=1, next_payload=first, encrypted_body=body, **header))


def v1(ispi: bytes, rspi: bytes, exchange: str, payloads: list, **fields) -> bytes:
    return bytes(ike.Isakmp(ispi=ispi, rspi=rspi, major=1, exchange=exchange, payloads=payloads, **fields))


def ike_attributes(encryption: int, key_length: int | None, hash_id: int, auth: int, group: int) -> list:
    attributes = [ike.IkeAttribute(type="Encryption Algorithm", tv_value=encryption)]
    if key_length:
        attributes.append(ike.IkeAttribute(type="Key Length", tv_value=key_length))
    return attributes + [
        ike.IkeAttribute(type="Hash Algorithm", tv_value=hash_id),
        ike.IkeAttribute(type="Authentication Method", tv_value=auth),
        ike.IkeAttribute(type="Group Description", tv_value=group),
        ike.IkeAttribute(type="Life Type", tv_value=1),
        ike.IkeAttribute(type="Life Duration", af=0, data=(28800).to_bytes(4, "big"))]


def phase1_sa(*transforms: list) -> ike.V1SecurityAssociation:
    return ike.V1SecurityAssociation(proposals=[ike.V1Proposal(number=1, protocol="PROTO_ISAKMP", transforms=[
        ike.V1Transform(number=n, id="KEY_IKE", attributes=attributes) for n, attributes in enumerate(transforms, 1)])])


def esp_sa(spi: bytes, encapsulation: int, group: int | None = None) -> ike.V1SecurityAssociation:
    attributes = [ike.IpsecAttribute(type="SA Life Type", tv_value=1),
                  ike.IpsecAttribute(type="SA Life Duration", af=0, data=(3600).to_bytes(4, "big")),
                  ike.IpsecAttribute(type="Encapsulation Mode", tv_value=encapsulation),
                  ike.IpsecAttribute(type="Authentication Algorithm", tv_value=5),
                  ike.IpsecAttribute(type="Key Length", tv_value=128)]
    if group:
        attributes.append(ike.IpsecAttribute(type="Group Description", tv_value=group))
    return ike.V1SecurityAssociation(proposals=[ike.V1Proposal(number=1, protocol="PROTO_IPSEC_ESP", spi=spi,
                                                               transforms=[ike.V1Transform(number=1, id="ESP_AES-CBC",
                                                                                           attributes=attributes)])])


def subnet(address: str, mask: str) -> ike.V1Identification:
    from ipaddress import ip_address
    return ike.V1Identification(id_type="ID_IPV4_ADDR_SUBNET",
                                id_data=ip_address(address).packed + ip_address(mask).packed)


def md5(text: str, length: int = 16) -> bytes:
    return hashlib.md5(text.encode()).digest()[:length]


def nat_d(rng: Random, draft: bool = False) -> ike.Payload:
    return (ike.NatDDraft if draft else ike.NatD)(hash=rng(20))


def main_mode() -> list:
    rng = Random(1)
    i, r = MAIN_ICOOKIE, MAIN_RCOOKIE
    aes = ike_attributes(7, 128, 2, 1, 14)
    gxi, gxr = rng(256), rng(256)
    sealer = V1Sealer(MAIN_KEY, "sha1", gxi, gxr)
    out = [
        frame(I, R, 500, v1(i, bytes(8), "Main Mode", [
            phase1_sa(aes, ike_attributes(5, None, 2, 1, 2)),
            ike.V1VendorId(vid=md5("RFC 3947")), ike.V1VendorId(vid=md5("draft-ietf-ipsec-nat-t-ike-02\n")),
            ike.V1VendorId(vid=bytes.fromhex("afcad71368a1f1c96b8696fc77570100")),
            ike.V1VendorId(vid=md5("strongSwan")), ike.V1VendorId(vid=md5("FRAGMENTATION"))])),
        frame(R, I, 500, v1(i, r, "Main Mode", [
            phase1_sa(aes), ike.V1VendorId(vid=md5("RFC 3947")),
            ike.V1VendorId(vid=bytes.fromhex("afcad71368a1f1c96b8696fc77570100"))])),
        frame(I, R, 500, v1(i, r, "Main Mode", [ike.V1KeyExchange(key_data=gxi), ike.V1Nonce(nonce=rng(32)),
                                                nat_d(rng), nat_d(rng)])),
        frame(R, I, 500, v1(i, r, "Main Mode", [ike.V1KeyExchange(key_data=gxr), ike.V1Nonce(nonce=rng(32)),
                                                nat_d(rng), nat_d(rng)])),
    ]
    header = dict(ispi=i, rspi=r, exchange="Main Mode")
    out.append(frame(I, R, 4500, sealer.seal(header, [
        ike.V1Identification(id_type="ID_IPV4_ADDR", protocol=17, port=500, id_data=bytes([198, 18, 0, 2])),
        ike.V1Hash(hash_data=rng(20)),
        ike.notify("INITIAL-CONTACT", version=1, spi=i + r)])))
    out.append(frame(R, I, 4500, sealer.seal(header, [
        ike.V1Identification(id_type="ID_FQDN", id_data=b"responder.lab"), ike.V1Hash(hash_data=rng(20))])))
    quick = dict(ispi=i, rspi=r, exchange="Quick Mode", message_id=QUICK_MODE_ID)
    out.append(frame(I, R, 4500, sealer.seal(quick, [
        ike.V1Hash(hash_data=rng(20)), esp_sa(bytes.fromhex("c0000001"), 3), ike.V1Nonce(nonce=rng(32)),
        subnet("198.19.1.0", "255.255.255.0"), subnet("198.19.2.0", "255.255.255.0"),
        ike.NatOa(id_type="ID_IPV4_ADDR", address_data=bytes([10, 0, 0, 2]))])))
    lifetime = ike.notify("RESPONDER-LIFETIME", version=1, protocol="PROTO_IPSEC_ESP", spi=bytes.fromhex("c0000002"),
                          lifetime_attributes=[ike.IpsecAttribute(type="SA Life Type", tv_value=1),
                                               ike.IpsecAttribute(type="SA Life Duration", af=0,
                                                                  data=(1800).to_bytes(4, "big"))])
    out.append(frame(R, I, 4500, sealer.seal(quick, [
        ike.V1Hash(hash_data=rng(20)), esp_sa(bytes.fromhex("c0000002"), 3), ike.V1Nonce(nonce=rng(32)),
        subnet("198.19.1.0", "255.255.255.0"), subnet("198.19.2.0", "255.255.255.0"), lifetime])))
    out.append(frame(I, R, 4500, sealer.seal(quick, [ike.V1Hash(hash_data=rng(20))])))
    for src, dst, message_id, payloads in [
            (R, I, DPD_ID, [ike.notify("R-U-THERE", version=1, spi=i + r, sequence=7)]),
            (I, R, DPD_ACK_ID, [ike.notify("R-U-THERE-ACK", version=1, spi=i + r, sequence=7)]),
            (I, R, DELETE_ID, [ike.V1Delete(protocol="PROTO_IPSEC_ESP", spi_size=4, spi_count=2,
                                            spi_data=bytes.fromhex("c0000001c0000002"))]),
            (I, R, DELETE_SA_ID, [ike.V1Delete(protocol="PROTO_ISAKMP", spi_size=16, spi_count=1, spi_data=i + r)])]:
        info = dict(ispi=i, rspi=r, exchange="Informational", message_id=message_id)
        out.append(frame(src, dst, 4500, sealer.seal(info, [ike.V1Hash(hash_data=rng(20)), *payloads])))
    refused = REFUSED_ICOOKIE
    out.append(frame(I, R, 500, v1(refused, bytes(8), "Main Mode", [phase1_sa(ike_attributes(5, None, 1, 3, 2))])))
    out.append(frame(R, I, 500, v1(refused, bytes(8), "Informational", [
        ike.notify("NO-PROPOSAL-CHOSEN", version=1)])))
    return out


def aggressive_xauth() -> list:
    rng = Random(2)
    i, r = AGGRESSIVE_ICOOKIE, AGGRESSIVE_RCOOKIE
    xauth = ike_attributes(7, 256, 4, 65001, 5)
    gxi, gxr = rng(192), rng(192)
    sealer = V1Sealer(AGGRESSIVE_KEY, "sha256", gxi, gxr)
    vids = [ike.V1VendorId(vid=md5("draft-ietf-ipsra-isakmp-xauth-06.txt", 8)),
            ike.V1VendorId(vid=md5("CISCO-UNITY", 14) + b"\x01\x00"),
            ike.V1VendorId(vid=md5("draft-ietf-ipsec-nat-t-ike-02")),
            ike.V1VendorId(vid=md5("draft-ietf-ipsec-nat-t-ike-03")),
            ike.V1VendorId(vid=bytes.fromhex("afcad71368a1f1c96b8696fc77570100")),
            ike.V1VendorId(vid=md5("FRAGMENTATION") + bytes.fromhex("80000000"))]
    out = [
        frame(I, R, 500, v1(i, bytes(8), "Aggressive Mode", [
            phase1_sa(xauth), ike.V1KeyExchange(key_data=gxi), ike.V1Nonce(nonce=rng(32)),
            ike.V1Identification(id_type="ID_FQDN", id_data=b"vpngroup"), *vids])),
        frame(R, I, 500, v1(i, r, "Aggressive Mode", [
            phase1_sa(xauth), ike.V1KeyExchange(key_data=gxr), ike.V1Nonce(nonce=rng(32)),
            ike.V1Identification(id_type="ID_IPV4_ADDR", id_data=bytes([198, 18, 0, 3])),
            ike.V1Hash(hash_data=rng(32)), *vids[:3], nat_d(rng, draft=True), nat_d(rng, draft=True)])),
    ]
    out.append(frame(I, R, 4500, sealer.seal(dict(ispi=i, rspi=r, exchange="Aggressive Mode"), [
        ike.V1Hash(hash_data=rng(32)), nat_d(rng, draft=True), nat_d(rng, draft=True)])))

    def cfg(kind: str, identifier: int, *attributes) -> ike.ModeConfig:
        return ike.ModeConfig(cfg_type=kind, identifier=identifier, attributes=list(attributes))

    def text(kind: str, value: bytes = b"") -> ike.ModeConfigAttribute:
        return ike.ModeConfigAttribute(type=kind, af=0, data=value)

    def tv(kind: str, value: int) -> ike.ModeConfigAttribute:
        return ike.ModeConfigAttribute(type=kind, tv_value=value)

    def address(kind: str, value: str = "") -> ike.ModeConfigAttribute:
        from ipaddress import ip_address
        return text(kind, ip_address(value).packed if value else b"")

    for src, dst, message_id, attributes in [
            (R, I, XAUTH_ID, cfg("ISAKMP_CFG_REQUEST", 1, tv("XAUTH_TYPE", 0), text("XAUTH_USER_NAME"),
                                 text("XAUTH_USER_PASSWORD"))),
            (I, R, XAUTH_ID, cfg("ISAKMP_CFG_REPLY", 1, text("XAUTH_USER_NAME", b"alice"),
                                 text("XAUTH_USER_PASSWORD", b"secret"))),
            (R, I, XAUTH_STATUS_ID, cfg("ISAKMP_CFG_SET", 2, tv("XAUTH_STATUS", 1))),
            (I, R, XAUTH_STATUS_ID, cfg("ISAKMP_CFG_ACK", 2, tv("XAUTH_STATUS", 1))),
            (I, R, MODE_CFG_ID, cfg("ISAKMP_CFG_REQUEST", 3, address("INTERNAL_IP4_ADDRESS"),
                                    address("INTERNAL_IP4_NETMASK"), address("INTERNAL_IP4_DNS"),
                                    text("APPLICATION_VERSION", b"vpnc 0.5.3"), text("UNITY_BANNER"))),
            (R, I, MODE_CFG_ID, cfg("ISAKMP_CFG_REPLY", 3, address("INTERNAL_IP4_ADDRESS", "10.3.0.1"),
                                    address("INTERNAL_IP4_NETMASK", "255.255.255.0"),
                                    address("INTERNAL_IP4_DNS", "10.3.0.53"),
                                    text("UNITY_BANNER", b"welcome to the lab"),
                                    text("UNITY_DEF_DOMAIN", b"lab.example")))]:
        header = dict(ispi=i, rspi=r, exchange="Transaction", message_id=message_id)
        out.append(frame(src, dst, 4500, sealer.seal(header, [ike.V1Hash(hash_data=rng(32)), attributes])))
    quick = dict(ispi=i, rspi=r, exchange="Quick Mode", message_id=AGGRESSIVE_QM_ID)
    out.append(frame(I, R, 4500, sealer.seal(quick, [
        ike.V1Hash(hash_data=rng(32)), esp_sa(bytes.fromhex("c0000011"), 61443, group=5), ike.V1Nonce(nonce=rng(32)),
        subnet("10.3.0.1", "255.255.255.255"), subnet("0.0.0.0", "0.0.0.0"),
        ike.NatOaDraft(id_type="ID_IPV4_ADDR", address_data=bytes([10, 0, 0, 7]))])))
    out.append(frame(R, I, 4500, sealer.seal(quick, [
        ike.V1Hash(hash_data=rng(32)), esp_sa(bytes.fromhex("c0000012"), 61443, group=5), ike.V1Nonce(nonce=rng(32)),
        subnet("10.3.0.1", "255.255.255.255"), subnet("0.0.0.0", "0.0.0.0")])))
    out.append(frame(I, R, 4500, sealer.seal(quick, [ike.V1Hash(hash_data=rng(32))])))
    return out


# --- IKEv2 (RFC 7296 3.14, RFC 7383 2.5) ------------------------------------------------------------------------

def v2(sa: dict, exchange: str, payloads: list, *, message_id: int = 0, response: bool = False,
       initiator: bool = True, rspi: bytes | None = None) -> bytes:
    flags = (ike.FLAG_INITIATOR if initiator else 0) | (ike.FLAG_RESPONSE if response else 0)
    return bytes(ike.Isakmp(ispi=sa["ispi"], rspi=sa["rspi"] if rspi is None else rspi, exchange=exchange,
                            flags=flags, message_id=message_id, payloads=payloads))


def sealed_v2(rng: Random, sa: dict, exchange: str, payloads: list, *, message_id: int, response: bool = False,
              fragments: int = 1) -> list[bytes]:
    """The message in an SK payload, or in `fragments` SKF payloads (RFC 7383 2.5: the chain cut in pieces, each
    sealed on its own; the first names the first inner payload, the others 0)."""
    initiator = not response
    flags = (ike.FLAG_INITIATOR if initiator else 0) | (ike.FLAG_RESPONSE if response else 0)
    enc_key, integ_key = (sa["sk_ei"], sa["sk_ai"]) if initiator else (sa["sk_er"], sa["sk_ar"])
    first, plain = chain(payloads) if payloads else (0, b"")
    size = -(-len(plain) // fragments) if plain else 0
    pieces = [plain[n * size:(n + 1) * size] for n in range(fragments)]
    out = []
    for number, piece in enumerate(pieces, 1):
        padding = -(len(piece) + 1) % 16
        iv = rng(16)
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        body = iv + encryptor.update(piece + bytes(padding) + bytes([padding])) + encryptor.finalize() + bytes(16)
        if fragments == 1:
            layer = ike.Encrypted(next_payload=first, encrypted=body)
        else:
            layer = ike.EncryptedFragment(next_payload=first if number == 1 else 0, fragment_number=number,
                                          total_fragments=fragments, encrypted=body)
        unsigned = bytes(ike.Isakmp(ispi=sa["ispi"], rspi=sa["rspi"], exchange=exchange, flags=flags,
                                    message_id=message_id, payloads=[layer]))[:-16]
        out.append(unsigned + hmac.new(integ_key, unsigned, hashlib.sha256).digest()[:16])
    return out


def certificate() -> bytes:
    """A real X.509 certificate (tshark reads CERT payloads as X.509), the same on every run: Ed25519 signatures are
    deterministic, and key, serial number and dates are fixed."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "initiator.lab")])
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(1).not_valid_before(when).not_valid_after(when + datetime.timedelta(days=365))
             .sign(key, None))
    return built.public_bytes(Encoding.DER)


def v2_transforms(*pairs) -> list:
    return [ike.transform(kind, name) for kind, name in pairs]


def ts(start: str, end: str) -> ike.TrafficSelector:
    from ipaddress import ip_address
    return ike.TrafficSelector(ts_type=7, addresses=ip_address(start).packed + ip_address(end).packed)


def intermediate() -> list:
    rng = Random(3)
    a, b = SA_A, SA_B
    offer = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="IKE", transforms=v2_transforms(
        ("ENCR", "ENCR_AES_CBC_128"), ("PRF", "PRF_HMAC_SHA2_256"), ("INTEG", "AUTH_HMAC_SHA2_256_128"),
        ("KE", "ECP_256"), ("ADDKE1", "ML_KEM_768"), ("ADDKE2", "ML_KEM_1024"), ("ADDKE2", "NONE")))])
    chosen = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="IKE", transforms=v2_transforms(
        ("ENCR", "ENCR_AES_CBC_128"), ("PRF", "PRF_HMAC_SHA2_256"), ("INTEG", "AUTH_HMAC_SHA2_256_128"),
        ("KE", "ECP_256"), ("ADDKE1", "ML_KEM_768"), ("ADDKE2", "NONE")))])
    supported = [ike.notify("IKEV2_FRAGMENTATION_SUPPORTED"), ike.notify("INTERMEDIATE_EXCHANGE_SUPPORTED"),
                 ike.notify("SIGNATURE_HASH_ALGORITHMS", hash_ids=[2, 3, 4]), ike.notify("USE_PPK")]

    def nat(rng: Random) -> list:
        return [ike.notify("NAT_DETECTION_SOURCE_IP", hash=rng(20)),
                ike.notify("NAT_DETECTION_DESTINATION_IP", hash=rng(20))]

    request = [offer, ike.KeyExchange(group="ECP_256", key_data=rng(64)), ike.Nonce(nonce=rng(32)), *nat(rng),
               *supported, ike.VendorId(vid=md5("strongSwan"))]
    cookie = ike.notify("COOKIE", cookie=rng(32))
    messages = [
        (I, R, 500, v2(a, "IKE_SA_INIT", request, rspi=bytes(8))),
        (R, I, 500, v2(a, "IKE_SA_INIT", [cookie], rspi=bytes(8), response=True, initiator=False)),
        (I, R, 500, v2(a, "IKE_SA_INIT", [cookie, *request], rspi=bytes(8))),
        (R, I, 500, v2(a, "IKE_SA_INIT", [chosen, ike.KeyExchange(group="ECP_256", key_data=rng(64)),
                                          ike.Nonce(nonce=rng(32)), *nat(rng), *supported],
                       response=True, initiator=False)),
    ]
    messages += [(I, R, 4500, m) for m in sealed_v2(rng, a, "IKE_INTERMEDIATE", [
        ike.KeyExchange(group="ML_KEM_768", key_data=rng(1184))], message_id=1, fragments=2)]
    messages += [(R, I, 4500, m) for m in sealed_v2(rng, a, "IKE_INTERMEDIATE", [
        ike.KeyExchange(group="ML_KEM_768", key_data=rng(1088))], message_id=1, response=True, fragments=2)]

    plain = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="IKE", transforms=v2_transforms(
        ("ENCR", "ENCR_AES_CBC_128"), ("PRF", "PRF_HMAC_SHA2_256"), ("INTEG", "AUTH_HMAC_SHA2_256_128"),
        ("KE", "ECP_256")))])
    messages += [
        (I, R, 500, v2(b, "IKE_SA_INIT", [plain, ike.KeyExchange(group="MODP_2048", key_data=rng(256)),
                                          ike.Nonce(nonce=rng(32))], rspi=bytes(8))),
        (R, I, 500, v2(b, "IKE_SA_INIT", [ike.notify("INVALID_KE_PAYLOAD", group="ECP_256")], rspi=bytes(8),
                       response=True, initiator=False)),
        (I, R, 500, v2(b, "IKE_SA_INIT", [plain, ike.KeyExchange(group="ECP_256", key_data=rng(64)),
                                          ike.Nonce(nonce=rng(32))], rspi=bytes(8))),
        (R, I, 500, v2(b, "IKE_SA_INIT", [plain, ike.KeyExchange(group="ECP_256", key_data=rng(64)),
                                          ike.Nonce(nonce=rng(32)), ike.notify("IKEV2_FRAGMENTATION_SUPPORTED")],
                       response=True, initiator=False)),
    ]
    esp = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="ESP", spi=bytes.fromhex("c0000021"),
                                                          transforms=v2_transforms(
        ("ENCR", "ENCR_AES_GCM_16_256"), ("ESN", "NO_ESN")))])
    selectors = [ike.TSi(selectors=[ts("198.19.1.0", "198.19.1.255")]),
                 ike.TSr(selectors=[ts("198.19.2.0", "198.19.2.255")])]
    auth_request = [
        ike.IDi(id_type="FQDN", id_data=b"initiator.lab"), ike.Certificate(encoding="X.509", cert_data=certificate()),
        ike.CertificateRequest(encoding="X.509", authorities_data=rng(20)),
        ike.Authentication(method="shared-key", auth_data=rng(32)), ike.notify("USE_TRANSPORT_MODE"),
        ike.Configuration(cfg_type="CFG_REQUEST", attributes=[ike.ConfigurationAttribute(type="INTERNAL_IP4_ADDRESS"),
                                                              ike.ConfigurationAttribute(type="INTERNAL_IP4_DNS")]),
        esp, *selectors]
    messages += [(I, R, 4500, m) for m in sealed_v2(rng, b, "IKE_AUTH", auth_request, message_id=1, fragments=2)]
    auth_response = [
        ike.IDr(id_type="FQDN", id_data=b"responder.lab"), ike.Authentication(method="shared-key", auth_data=rng(32)),
        ike.Configuration(cfg_type="CFG_REPLY", attributes=[
            ike.ConfigurationAttribute(type="INTERNAL_IP4_ADDRESS", data=bytes([10, 3, 0, 2])),
            ike.ConfigurationAttribute(type="INTERNAL_IP4_DNS", data=bytes([10, 3, 0, 53]))]),
        esp, *selectors, ike.notify("USE_TRANSPORT_MODE")]
    messages += [(R, I, 4500, m) for m in sealed_v2(rng, b, "IKE_AUTH", auth_response, message_id=1, response=True)]
    rekey_sa = ike.SecurityAssociation(proposals=[ike.Proposal(number=1, protocol="ESP", spi=bytes.fromhex("c0000031"),
                                                               transforms=v2_transforms(
        ("ENCR", "ENCR_AES_GCM_16_256"), ("ESN", "NO_ESN")))])
    messages += [(I, R, 4500, m) for m in sealed_v2(rng, b, "CREATE_CHILD_SA", [
        ike.notify("REKEY_SA", protocol="ESP", spi=bytes.fromhex("c0000021")), rekey_sa, ike.Nonce(nonce=rng(32)),
        *selectors], message_id=2)]
    messages += [(R, I, 4500, m) for m in sealed_v2(rng, b, "CREATE_CHILD_SA", [
        rekey_sa, ike.Nonce(nonce=rng(32)), *selectors], message_id=2, response=True)]
    messages += [(I, R, 4500, m) for m in sealed_v2(rng, b, "INFORMATIONAL", [
        ike.Delete(protocol="ESP", spi_size=4, spi_count=1, spi_data=bytes.fromhex("c0000021"))], message_id=3)]
    messages += [(R, I, 4500, m) for m in sealed_v2(rng, b, "INFORMATIONAL", [], message_id=3, response=True)]
    return [frame(src, dst, port, data) for src, dst, port, data in messages]


BUILDERS = {"ikev1_main_mode.pcap": main_mode, "ikev1_aggressive_xauth.pcap": aggressive_xauth,
            "ikev2_intermediate.pcap": intermediate}


def write_all(folder: Path = HERE) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: write(folder / name, build()) for name, build in BUILDERS.items()}


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for name, count in write_all(folder).items():
        print(f"wrote {count} frames to {folder / name}")


if __name__ == "__main__":
    main()
