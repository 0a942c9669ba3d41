"""Opening what the daemons encrypted, with the keys they exported or a person gave: IKEv2's SK and SKF payloads,
IKEv1's encrypted messages, and ESP packets. What was opened is read by the IKE description
(harness.protocols.ipsec.ike); nothing here knows a payload's layout.

IKEv2 (RFC 7296 3.14): the integrity checksum covers the whole message up to the checksum and is verified before
anything is decrypted; AEAD ciphers (RFC 5282: AES-GCM, AES-CCM; RFC 7634: ChaCha20-Poly1305) authenticate the IKE
header and the SK payload header as associated data instead. Fragments (SKF, RFC 7383) are opened one by one here
and joined by the caller.

IKEv1 (RFC 2409 Appendix B): everything after the header is one CBC ciphertext, without an integrity check of its
own. The IV chains from message to message: phase 1 starts from hash(g^xi | g^xr), each later message of an
exchange from the last cipher block of the one before, and each phase 2 or informational exchange from
hash(last phase 1 block | message ID). decrypt_v1 opens one message given its IV; the caller keeps the chain.

A wrong key, a damaged byte or an algorithm we cannot run is never an exception: it is the `problem` of the result
("ICV mismatch"), which a transcript prints. ESP goes through scapy's SecurityAssociation (tunnel or transport
mode, plain or UDP-encapsulated).
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, ChaCha20Poly1305
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation
from scapy.packet import Packet

from harness.protocols.ipsec import ike
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys

SKF_PAYLOAD = 53  # RFC 7383: Encrypted Fragment
FRAGMENT_HEADER = struct.Struct("!HH")      # RFC 7383 2.5: fragment number, total fragments
ICV_MISMATCH = "ICV mismatch"
FLAG_INITIATOR = ike.FLAG_INITIATOR


# --- algorithms -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Encryption:
    mode: str               # "cbc", "ctr", "gcm", "ccm", "chacha20-poly1305"
    key_size: int           # bytes, without the salt
    salt_size: int = 0      # trailing bytes of the exported key: the nonce's fixed part (RFC 4106, 5282)
    iv_size: int = 8
    icv_size: int = 0       # the AEAD tag; 0 for ciphers that need an integrity transform

    @property
    def is_aead(self) -> bool:
        return self.icv_size > 0


_AES_BITS = (128, 192, 256)
# IKE SK payloads, keyed by the scenario's transform names (keys.py).
IKE_ENCRYPTION: dict[str, _Encryption] = {
    **{f"ENCR_AES_CBC_{bits}": _Encryption("cbc", bits // 8, iv_size=16) for bits in _AES_BITS},
    **{f"ENCR_AES_CTR_{bits}": _Encryption("ctr", bits // 8, salt_size=4) for bits in _AES_BITS},  # RFC 5930
    **{f"ENCR_AES_GCM_{icv}_{bits}": _Encryption("gcm", bits // 8, salt_size=4, icv_size=icv)
       for icv in (8, 12, 16) for bits in _AES_BITS},
    **{f"ENCR_AES_CCM_{icv}_{bits}": _Encryption("ccm", bits // 8, salt_size=3, icv_size=icv)
       for icv in (8, 12, 16) for bits in _AES_BITS},
    "ENCR_CHACHA20_POLY1305": _Encryption("chacha20-poly1305", 32, salt_size=4, icv_size=16),
}
IKE_INTEGRITY: dict[str, tuple[type[hashes.HashAlgorithm], int]] = {   # hash, truncated ICV length
    "AUTH_HMAC_MD5_96": (hashes.MD5, 12),
    "AUTH_HMAC_SHA1_96": (hashes.SHA1, 12),
    "AUTH_HMAC_SHA2_256_128": (hashes.SHA256, 16),
    "AUTH_HMAC_SHA2_384_192": (hashes.SHA384, 24),
    "AUTH_HMAC_SHA2_512_256": (hashes.SHA512, 32),
}
# ESP through scapy: scenario name -> (scapy crypt_algo, ICV length for AEAD or None).
ESP_ENCRYPTION: dict[str, tuple[str, int | None]] = {
    "ENCR_NULL": ("NULL", None),
    "ENCR_3DES": ("3DES", None),
    **{f"ENCR_AES_CBC_{bits}": ("AES-CBC", None) for bits in _AES_BITS},
    **{f"ENCR_AES_CTR_{bits}": ("AES-CTR", None) for bits in _AES_BITS},
    **{f"ENCR_AES_GCM_{icv}_{bits}": ("AES-GCM", icv) for icv in (8, 12, 16) for bits in _AES_BITS},
    **{f"ENCR_AES_CCM_{icv}_{bits}": ("AES-CCM", icv) for icv in (8, 12, 16) for bits in _AES_BITS},
    **{f"ENCR_NULL_AUTH_AES_GMAC_{bits}": ("AES-NULL-GMAC", 16) for bits in _AES_BITS},
    "ENCR_CHACHA20_POLY1305": ("CHACHA20-POLY1305", 16),
}
ESP_INTEGRITY: dict[str, str] = {
    "AUTH_HMAC_MD5_96": "HMAC-MD5-96",
    "AUTH_HMAC_SHA1_96": "HMAC-SHA1-96",
    "AUTH_HMAC_SHA2_256_128": "SHA2-256-128",
    "AUTH_HMAC_SHA2_384_192": "SHA2-384-192",
    "AUTH_HMAC_SHA2_512_256": "SHA2-512-256",
    "AUTH_AES_CMAC_96": "AES-CMAC-96",
}


class _Undecryptable(Exception):
    """Why an encrypted payload could not be opened; becomes the result's `problem`, never escapes."""


# --- IKE: the SK and SKF payloads -------------------------------------------------------------------------

@dataclass(frozen=True)
class SkPlaintext:
    """One opened SK payload, or one SKF fragment of a message."""
    first_payload: int                      # type of the first inner payload; 0 in fragments after the first
    chain: bytes = field(default=b"", repr=False)  # the inner payloads, padding removed
    fragment: tuple[int, int] | None = None  # (number, total) for SKF
    problem: str | None = None               # None when opened; else "ICV mismatch", "unsupported ..."

    @property
    def ok(self) -> bool:
        return self.problem is None


def sender_keys(keys: IkeSaKeys, message: bytes) -> tuple[bytes, bytes]:
    """(encryption key, integrity key) of the message's sender: the I flag says whether it was sent by the
    original initiator of the IKE SA (SK_ei/SK_ai) or by its responder (SK_er/SK_ar), whatever the exchange."""
    flags = message[19] if len(message) > 19 else 0
    return (keys.sk_ei, keys.sk_ai) if flags & FLAG_INITIATOR else (keys.sk_er, keys.sk_ar)


def decrypt_sk(message: bytes, keys: IkeSaKeys) -> SkPlaintext:
    """Verify and open the SK (or SKF) payload of one whole IKE message (header included, no non-ESP marker).
    Never raises: a wrong key or a flipped byte is SkPlaintext(problem="ICV mismatch")."""
    decoded = ike.decode(message)
    found = ike.encrypted_payload(decoded) if decoded is not None and decoded.major == ike.IKEV2 else None
    if found is None:
        return SkPlaintext(0, problem="no encrypted payload")
    payload, offset = found
    first_payload, length = payload.next_payload, payload.length
    header_size = ike.GENERIC_HEADER_SIZE
    fragment = None
    if isinstance(payload, ike.EncryptedFragment):
        fragment = (payload.fragment_number, payload.total_fragments)
        header_size += FRAGMENT_HEADER.size
    try:
        chain = _open(message, offset, length, header_size, keys)
    except _Undecryptable as why:
        return SkPlaintext(first_payload, fragment=fragment, problem=str(why))
    return SkPlaintext(first_payload, chain, fragment=fragment)


def _open(message: bytes, offset: int, length: int, header_size: int, keys: IkeSaKeys) -> bytes:
    cipher = IKE_ENCRYPTION.get(keys.encryption)
    if cipher is None:
        raise _Undecryptable(f"unsupported algorithm {keys.encryption}")
    enc_key, integ_key = sender_keys(keys, message)
    if len(enc_key) != cipher.key_size + cipher.salt_size:
        raise _Undecryptable(f"{keys.encryption} needs a {cipher.key_size + cipher.salt_size}-byte key, "
                             f"got {len(enc_key)}")
    end = offset + length
    iv_start = offset + header_size
    ciphertext_start = iv_start + cipher.iv_size
    if cipher.is_aead:
        icv_size = cipher.icv_size
    else:
        if keys.integrity not in IKE_INTEGRITY:
            raise _Undecryptable(f"unsupported integrity algorithm {keys.integrity} for {keys.encryption}")
        hash_algorithm, icv_size = IKE_INTEGRITY[keys.integrity]
    if ciphertext_start > end - icv_size:
        raise _Undecryptable("encrypted payload shorter than its IV and ICV")
    iv = message[iv_start:ciphertext_start]
    ciphertext, icv = message[ciphertext_start:end - icv_size], message[end - icv_size:end]
    key, salt = enc_key[:cipher.key_size], enc_key[cipher.key_size:]

    if cipher.is_aead:
        aad = message[:iv_start]  # RFC 5282 5.1: the IKE header through the (fragment) payload header
        try:
            plaintext = _aead_decrypt(cipher, key, salt + iv, ciphertext, icv, aad)
        except InvalidTag:
            raise _Undecryptable(ICV_MISMATCH) from None
    else:
        mac = hmac.HMAC(integ_key, hash_algorithm())
        mac.update(message[:end - icv_size])
        if mac.finalize()[:icv_size] != icv:
            raise _Undecryptable(ICV_MISMATCH)
        if cipher.mode == "cbc":
            if len(ciphertext) % 16:
                raise _Undecryptable("ciphertext is not a whole number of AES blocks")
            mode = modes.CBC(iv)
        else:  # RFC 5930: the counter block is nonce | IV | a 32-bit counter starting at 1
            mode = modes.CTR(salt + iv + b"\x00\x00\x00\x01")
        decryptor = Cipher(algorithms.AES(key), mode).decryptor()
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    if not plaintext or plaintext[-1] + 1 > len(plaintext):
        raise _Undecryptable("bad padding")
    return plaintext[:len(plaintext) - plaintext[-1] - 1]


def _aead_decrypt(cipher: _Encryption, key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes,
                  aad: bytes) -> bytes:
    if cipher.mode == "gcm":  # the Cipher API, because AESGCM only takes 16-byte tags
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag, min_tag_length=len(tag))).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(ciphertext) + decryptor.finalize()
    if cipher.mode == "ccm":
        return AESCCM(key, tag_length=len(tag)).decrypt(nonce, ciphertext + tag, aad)
    return ChaCha20Poly1305(key).decrypt(nonce, ciphertext + tag, aad)


# --- IKEv1: the encrypted body (RFC 2409 Appendix B) ---------------------------------------------------------

# The phase 1 Encryption Algorithm attribute -> (cipher, block bytes, key bytes when no Key Length attribute says).
V1_CIPHERS = {
    "DES-CBC": (lambda key: decrepit.TripleDES(key * 3), 8, 8),    # single DES: 3DES with one key thrice
    "3DES-CBC": (decrepit.TripleDES, 8, 24),
    "AES-CBC": (algorithms.AES, 16, 16),
    "CAMELLIA-CBC": (decrepit.Camellia, 16, 16),
    "Blowfish-CBC": (decrepit.Blowfish, 8, 16),
    "CAST-CBC": (decrepit.CAST5, 8, 16),
    "IDEA-CBC": (decrepit.IDEA, 8, 16),
}
# The phase 1 Hash Algorithm attribute -> hash: what the IVs are derived with.
V1_HASHES = {"MD5": hashes.MD5, "SHA": hashes.SHA1, "SHA2-256": hashes.SHA256, "SHA2-384": hashes.SHA384,
             "SHA2-512": hashes.SHA512}


def _digest(hash_name: str, data: bytes) -> bytes:
    digest = hashes.Hash(V1_HASHES[hash_name]())
    digest.update(data)
    return digest.finalize()


def v1_block_size(encryption: str) -> int | None:
    known = V1_CIPHERS.get(encryption)
    return known[1] if known else None


def v1_phase1_iv(hash_name: str, gxi: bytes, gxr: bytes, block_size: int) -> bytes | None:
    """RFC 2409 Appendix B: the IV of phase 1's first encrypted message is hash(g^xi | g^xr), cut to the block.
    None for a hash we cannot compute."""
    return _digest(hash_name, gxi + gxr)[:block_size] if hash_name in V1_HASHES else None


def v1_phase2_iv(hash_name: str, last_phase1_block: bytes, message_id: int, block_size: int) -> bytes | None:
    """RFC 2409 Appendix B: a Quick Mode's (and an informational exchange's) first IV is hash(the last phase 1 CBC
    output block | its message ID), cut to the block."""
    if hash_name not in V1_HASHES:
        return None
    return _digest(hash_name, last_phase1_block + struct.pack("!I", message_id))[:block_size]


@dataclass(frozen=True)
class V1Plaintext:
    """One IKEv1 message's body, opened: the payload chain (its padding still after it), and its last cipher
    block -- the IV of the next message of the same exchange."""
    first_payload: int
    chain: bytes = field(default=b"", repr=False)
    last_block: bytes = b""
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def decrypt_v1(message: bytes, key: bytes, encryption: str, iv: bytes, key_length: int | None = None) -> V1Plaintext:
    """Open the body of one IKEv1 message with the E flag (header included, no non-ESP marker), given its IV.
    `key` is the cipher key (RFC 2409 Appendix B: derived from SKEYID_e; a longer one is cut to the key size);
    `key_length` the phase 1 Key Length attribute in bits, where there was one. Never raises; CBC says nothing
    about a wrong key, so the caller judges the plaintext by whether its payloads can be read."""
    first = message[16] if len(message) > 16 else 0
    if encryption not in V1_CIPHERS:
        return V1Plaintext(first, problem=f"unsupported algorithm {encryption}")
    make, block, default_size = V1_CIPHERS[encryption]
    size = key_length // 8 if key_length else default_size
    if len(key) < size:
        return V1Plaintext(first, problem=f"{encryption} needs a {size}-byte key, got {len(key)}")
    if len(iv) != block:
        return V1Plaintext(first, problem=f"an IV of {len(iv)} bytes for a {block}-byte block")
    decoded = ike.decode(message)
    body = decoded.encrypted_body if decoded is not None and decoded.encrypted_body else b""
    if not body or len(body) % block:
        return V1Plaintext(first, problem=f"an encrypted body of {len(body)} bytes is not whole {block}-byte blocks")
    try:
        decryptor = Cipher(make(key[:size]), modes.CBC(iv)).decryptor()
        plaintext = decryptor.update(body) + decryptor.finalize()
    except ValueError as why:   # a key size the cipher does not take
        return V1Plaintext(first, problem=f"{encryption}: {why}")
    return V1Plaintext(first, plaintext, last_block=body[-block:])


# --- ESP --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EspPlaintext:
    packet: Packet | None        # the inner packet: IP/IPv6 in tunnel mode, the transport header otherwise
    problem: str | None = None


def decrypt_esp(esp: bytes, src: str, dst: str, keys: EspSaKeys) -> EspPlaintext:
    """Verify and decrypt one ESP packet (from the SPI on: for ESP-in-UDP, what follows the UDP header).
    Never raises. An SA with extended sequence numbers is tried with the high half 0 as well, which holds for
    the first 2^32 packets; the keys do not say whether ESN was negotiated."""
    encryption = ESP_ENCRYPTION.get(keys.encryption)
    if encryption is None:
        return EspPlaintext(None, f"unsupported algorithm {keys.encryption}")
    if keys.integrity is not None and keys.integrity not in ESP_INTEGRITY:
        return EspPlaintext(None, f"unsupported algorithm {keys.integrity}")
    try:
        sa = _security_association(keys, ":" in dst)
    except (TypeError, ValueError) as why:
        return EspPlaintext(None, f"bad keys: {why}")
    problem = ICV_MISMATCH
    for esn in (False, True):
        try:
            # Built inside the try: scapy dissects ESP(esp) at once, and raises on fewer than 4 bytes.
            outer = (IPv6(src=src, dst=dst, nh=50) if ":" in dst else IP(src=src, dst=dst, proto=50)) / ESP(esp)
            return EspPlaintext(sa.decrypt(outer, esn_en=esn, esn=0))
        except IPSecIntegrityError:
            continue
        except Exception as why:  # scapy on a truncated or mangled packet: an IndexError, struct.error, ...
            problem = f"undecodable: {type(why).__name__}: {why}"
            break
    return EspPlaintext(None, problem)


@functools.lru_cache(maxsize=256)
def _security_association(keys: EspSaKeys, ipv6: bool) -> SecurityAssociation:
    """One per SA and address family, not per packet (decrypting does not change it)."""
    crypt_algo, icv_size = ESP_ENCRYPTION[keys.encryption]
    return SecurityAssociation(ESP, spi=keys.spi, crypt_algo=crypt_algo, crypt_key=keys.enc_key or None,
                               crypt_icv_size=icv_size, auth_algo=ESP_INTEGRITY.get(keys.integrity or ""),
                               auth_key=keys.auth_key or None, tunnel_header=IPv6() if ipv6 else IP())
