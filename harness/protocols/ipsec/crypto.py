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
("ICV mismatch"), which a transcript prints. An IKEv2 message whose ICV does not verify is decrypted all the same
(SkPlaintext.unverified: "ICV mismatch: shown unverified" where its payloads can be read), and one whose key file
gives no integrity key is opened with its ICV unchecked.

ESP (tunnel or transport mode, plain or UDP-encapsulated) is opened here too, also without an integrity key
and past an ICV that does not verify (see the ESP section).
"""
from __future__ import annotations

import functools
import hmac as std_hmac
import socket
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, ChaCha20Poly1305
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw

from harness.protocols.ipsec import ike
from harness.protocols.ipsec.keys import ANY_INTEGRITY, EspSaKeys, IkeSaKeys

SKF_PAYLOAD = 53  # RFC 7383: Encrypted Fragment
FRAGMENT_HEADER = struct.Struct("!HH")      # RFC 7383 2.5: fragment number, total fragments
ICV_MISMATCH = "ICV mismatch"
SHOWN_UNVERIFIED = f"{ICV_MISMATCH}: shown unverified"   # decrypted all the same (ESP packets, IKE messages)
NOT_CHECKED = "integrity not checked"                    # decrypted without an integrity key
VERIFIED = None
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

    @property
    def unverified(self) -> bool:
        """Decrypted, but nothing verified it: its ICV does not (ICV_MISMATCH), or there was nothing to check
        it with (NOT_CHECKED). Whether the plaintext means anything is for the caller to judge."""
        return bool(self.chain) and self.problem is not None


def sender_keys(keys: IkeSaKeys, message: bytes) -> tuple[bytes, bytes]:
    """(encryption key, integrity key) of the message's sender: the I flag says whether it was sent by the
    original initiator of the IKE SA (SK_ei/SK_ai) or by its responder (SK_er/SK_ar), whatever the exchange."""
    flags = message[19] if len(message) > 19 else 0
    return (keys.sk_ei, keys.sk_ai) if flags & FLAG_INITIATOR else (keys.sk_er, keys.sk_ar)


def decrypt_sk(message: bytes, keys: IkeSaKeys) -> SkPlaintext:
    """Verify and open the SK (or SKF) payload of one whole IKE message (header included, no non-ESP marker).
    Never raises: a wrong key or a flipped byte is SkPlaintext(problem="ICV mismatch"), with the chain the
    encryption key gives all the same (garbage, for a wrong key: see SkPlaintext.unverified)."""
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
        chain, verdict = _open(message, offset, length, header_size, keys)
    except _Undecryptable as why:
        return SkPlaintext(first_payload, fragment=fragment, problem=str(why))
    return SkPlaintext(first_payload, chain, fragment=fragment, problem=verdict)


def _open(message: bytes, offset: int, length: int, header_size: int, keys: IkeSaKeys) -> tuple[bytes, str | None]:
    """The chain and what verified it: None (the ICV), ICV_MISMATCH or NOT_CHECKED (decrypted all the same)."""
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
    verdict = None
    if cipher.is_aead:
        icv_size = cipher.icv_size
    elif (keys.integrity or "").startswith(ANY_INTEGRITY):   # a key file that gives the ICV's length only
        icv_size, verdict = int(keys.integrity[len(ANY_INTEGRITY):]) // 8, f"{NOT_CHECKED}: {keys.integrity}"
    else:
        if keys.integrity not in IKE_INTEGRITY:
            raise _Undecryptable(f"unsupported integrity algorithm {keys.integrity} for {keys.encryption}")
        hash_algorithm, icv_size = IKE_INTEGRITY[keys.integrity]
        if not integ_key:
            verdict = f"{NOT_CHECKED}: no integrity key"
    if ciphertext_start > end - icv_size:
        raise _Undecryptable("encrypted payload shorter than its IV and ICV")
    iv = message[iv_start:ciphertext_start]
    ciphertext, icv = message[ciphertext_start:end - icv_size], message[end - icv_size:end]
    key, salt = enc_key[:cipher.key_size], enc_key[cipher.key_size:]

    if cipher.is_aead:
        aad = message[:iv_start]  # RFC 5282 5.1: the IKE header through the (fragment) payload header
        try:
            plaintext = _aead_decrypt(cipher, key, salt + iv, ciphertext, icv, aad)
        except InvalidTag:   # the same keystream, unchecked: shown if the caller finds payloads in it
            plaintext, verdict = _aead_keystream(cipher.mode, key, salt + iv, ciphertext), ICV_MISMATCH
    else:
        if verdict is None:
            mac = hmac.HMAC(integ_key, hash_algorithm())
            mac.update(message[:end - icv_size])
            if mac.finalize()[:icv_size] != icv:
                verdict = ICV_MISMATCH   # decrypted all the same: shown if the caller finds payloads in it
        if cipher.mode == "cbc":
            if len(ciphertext) % 16:
                raise _Undecryptable("ciphertext is not a whole number of AES blocks")
            mode = modes.CBC(iv)
        else:  # RFC 5930: the counter block is nonce | IV | a 32-bit counter starting at 1
            mode = modes.CTR(salt + iv + b"\x00\x00\x00\x01")
        decryptor = Cipher(algorithms.AES(key), mode).decryptor()
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    if not plaintext or plaintext[-1] + 1 > len(plaintext):
        raise _Undecryptable(verdict if verdict == ICV_MISMATCH else "bad padding")
    return plaintext[:len(plaintext) - plaintext[-1] - 1], verdict


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
# RFC 4303 and the RFC of each cipher, written here rather than taken from scapy's SecurityAssociation: a
# transcript opens what a receiver would drop. A packet whose ICV does not verify is decrypted all the same and
# marked; one whose integrity key nobody gave is decrypted with its ICV skipped. Only the verdict differs.

ESP_HEADER = struct.Struct("!II")       # SPI, sequence number (the low 32 bits of an extended one)
NO_NEXT_HEADER = 59                     # RFC 4303 2.6: a dummy packet (traffic flow confidentiality)
# What an ESP payload carries: an IP protocol number a peer puts in Next Header. A decryption that was not
# verified must end in one of these, after RFC 4303 2.4's default padding (1, 2, 3, ...), to be shown.
_PLAUSIBLE_NEXT_HEADERS = frozenset({1, 2, 4, 6, 17, 41, 47, 50, 51, 58, 59, 89, 97, 103, 112, 115, 132, 136, 143})


@dataclass(frozen=True)
class _EspCipher:
    cipher: object          # a key -> cryptography cipher algorithm; None for NULL
    mode: str               # "null", "cbc", "ctr", "gcm", "ccm", "gmac", "chacha20-poly1305"
    key_size: int           # bytes, without the salt
    salt_size: int = 0      # trailing bytes of the key: the nonce's fixed part (RFC 3686, 4106, 4309, 4543, 7634)
    iv_size: int = 0
    block_size: int = 4     # the ciphertext is a whole number of blocks (RFC 4303 2.4: at least 4-byte aligned)
    icv_size: int = 0       # a combined-mode cipher's tag

    @property
    def key_length(self) -> int:
        """What a key file or a key log gives: the key and the salt."""
        return self.key_size + self.salt_size


def _des(key: bytes):   # single DES is 3DES with the key three times: cryptography has no DES of its own
    return decrepit.TripleDES(key * 3)


ESP_ENCRYPTION: dict[str, _EspCipher] = {
    "ENCR_NULL": _EspCipher(None, "null", 0),                                                   # RFC 2410
    "ENCR_DES": _EspCipher(_des, "cbc", 8, iv_size=8, block_size=8),                            # RFC 2405
    "ENCR_3DES": _EspCipher(decrepit.TripleDES, "cbc", 24, iv_size=8, block_size=8),            # RFC 2451
    "ENCR_CAST_128": _EspCipher(decrepit.CAST5, "cbc", 16, iv_size=8, block_size=8),            # RFC 2451
    **{f"ENCR_BLOWFISH_{bits}": _EspCipher(decrepit.Blowfish, "cbc", bits // 8, iv_size=8, block_size=8)
       for bits in _AES_BITS},                                                                  # RFC 2451
    **{f"ENCR_AES_CBC_{bits}": _EspCipher(algorithms.AES, "cbc", bits // 8, iv_size=16, block_size=16)
       for bits in _AES_BITS},                                                                  # RFC 3602
    **{f"ENCR_CAMELLIA_CBC_{bits}": _EspCipher(decrepit.Camellia, "cbc", bits // 8, iv_size=16, block_size=16)
       for bits in _AES_BITS},                                                                  # RFC 4312
    **{f"ENCR_AES_CTR_{bits}": _EspCipher(algorithms.AES, "ctr", bits // 8, 4, iv_size=8)
       for bits in _AES_BITS},                                                                  # RFC 3686
    **{f"ENCR_AES_GCM_{icv}_{bits}": _EspCipher(algorithms.AES, "gcm", bits // 8, 4, iv_size=8, icv_size=icv)
       for icv in (8, 12, 16) for bits in _AES_BITS},                                           # RFC 4106
    **{f"ENCR_AES_CCM_{icv}_{bits}": _EspCipher(algorithms.AES, "ccm", bits // 8, 3, iv_size=8, icv_size=icv)
       for icv in (8, 12, 16) for bits in _AES_BITS},                                           # RFC 4309
    **{f"ENCR_NULL_AUTH_AES_GMAC_{bits}": _EspCipher(algorithms.AES, "gmac", bits // 8, 4, iv_size=8, icv_size=16)
       for bits in _AES_BITS},                                                                  # RFC 4543
    "ENCR_CHACHA20_POLY1305": _EspCipher(None, "chacha20-poly1305", 32, 4, iv_size=8, icv_size=16),  # RFC 7634
}


def _hmac(digest: str):
    return lambda key, data: std_hmac.new(key, data, digest).digest()


def _aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


# Integrity transform -> (ICV bytes, MAC over SPI..ciphertext; None: the ICV is skipped, never checked).
ESP_INTEGRITY: dict[str, tuple[int, object]] = {
    "AUTH_HMAC_MD5_96": (12, _hmac("md5")),                     # RFC 2403
    "AUTH_HMAC_SHA1_96": (12, _hmac("sha1")),                   # RFC 2404
    "AUTH_HMAC_RIPEMD160_96": (12, _hmac("ripemd160")),         # RFC 2857
    "AUTH_HMAC_SHA2_256_96": (12, _hmac("sha256")),             # draft-ietf-ipsec-ciph-sha-256-00 (old Linux)
    "AUTH_HMAC_SHA2_256_128": (16, _hmac("sha256")),            # RFC 4868
    "AUTH_HMAC_SHA2_384_192": (24, _hmac("sha384")),
    "AUTH_HMAC_SHA2_512_256": (32, _hmac("sha512")),
    "AUTH_AES_CMAC_96": (12, _aes_cmac),                        # RFC 4494
    "AUTH_AES_XCBC_96": (12, None),                             # RFC 3566: not implemented here
    **{f"{ANY_INTEGRITY}{bits}": (bits // 8, None) for bits in (64, 96, 128, 160, 192, 256)},
}


@dataclass(frozen=True)
class EspPlaintext:
    """What one ESP packet carried. `data` is None when it could not be opened, `problem` says why; when it was
    opened, `problem` is None if its ICV verified, else NOT_CHECKED (with the reason) or SHOWN_UNVERIFIED."""
    data: bytes | None                   # the payload: padding, Pad Length and Next Header removed
    next_header: int = 0
    problem: str | None = None
    src: str = field(default="", repr=False)   # the outer addresses: a transport-mode payload has no IP header
    dst: str = field(default="", repr=False)
    # Whether the ICV verified with the high half of an extended sequence number signed (True) or without it
    # (False): RFC 4303 2.2.1/3.3.2, the sender applied ESN or not. None: nothing verified, so nothing tells.
    esn: bool | None = None

    @property
    def opened(self) -> bool:
        return self.data is not None

    @functools.cached_property
    def packet(self) -> Packet | None:
        """The payload as scapy reads it: the inner IP packet in tunnel mode; in transport mode the outer
        IP header (rebuilt from the addresses) with the transport segment. Built on first use: dissecting is
        slow, and a transcript needs only summary()."""
        if self.data is None:
            return None
        return _dissect(self.next_header, self.data, self.src, self.dst)

    def summary(self) -> str:
        return summarize_payload(self.next_header, self.data or b"", self.src, self.dst)


def _dissect(next_header: int, data: bytes, src: str, dst: str) -> Packet:
    try:
        if next_header == 4:
            return IP(data)
        if next_header == 41:
            return IPv6(data)
        if next_header != NO_NEXT_HEADER:
            outer = IPv6(src=src, dst=dst, nh=next_header) if ":" in dst else IP(src=src, dst=dst, proto=next_header)
            return outer.__class__(bytes(outer / Raw(data)))
    except Exception:   # scapy on a payload cut short: struct.error, IndexError, ... (the summary says what it is)
        pass
    return Raw(data)


def decrypt_esp(esp: bytes, src: str, dst: str, keys: EspSaKeys, seq_high: int = 0) -> EspPlaintext:
    """Open one ESP packet (from the SPI on: for ESP-in-UDP, what follows the UDP header). Never raises.
    The keys do not say whether ESN was negotiated, so the ICV is tried both ways: without the high half of the
    sequence number, and with it (RFC 4303 2.2.1: signed, never sent). `seq_high` is that high half, which only a
    receiver counting the SA's packets knows (RFC 4303 Appendix A: the low half wrapped); `esn` in the result
    says which way verified."""
    def failed(problem: str) -> EspPlaintext:
        return EspPlaintext(None, problem=problem, src=src, dst=dst)

    cipher = ESP_ENCRYPTION.get(keys.encryption)
    if cipher is None:
        return failed(f"unsupported algorithm {keys.encryption}")
    if keys.integrity is not None and keys.integrity not in ESP_INTEGRITY:
        return failed(f"unsupported algorithm {keys.integrity}")
    if len(keys.enc_key) != cipher.key_length:
        return failed(f"{keys.encryption} needs a {cipher.key_length}-byte key, got {len(keys.enc_key)}")
    icv_size, mac = ESP_INTEGRITY.get(keys.integrity or "", (0, None))
    icv_size += cipher.icv_size
    body_start = ESP_HEADER.size + cipher.iv_size
    if len(esp) < body_start + icv_size + 2:
        return failed(f"undecodable: {len(esp)} bytes, shorter than an ESP header, IV, trailer and ICV")
    signed, icv = esp[:len(esp) - icv_size], esp[len(esp) - icv_size:]
    iv, ciphertext = esp[ESP_HEADER.size:body_start], signed[body_start:]
    if len(ciphertext) % cipher.block_size:
        return failed(f"undecodable: the ciphertext ({len(ciphertext)} bytes) is not a whole number of "
                      f"{cipher.block_size}-byte blocks")
    key, salt = keys.enc_key[:cipher.key_size], keys.enc_key[cipher.key_size:]
    high = struct.pack("!I", seq_high & 0xFFFFFFFF)
    try:
        if cipher.icv_size:
            plaintext, verdict, esn = _open_aead(cipher, key, salt, esp[:ESP_HEADER.size], iv, ciphertext, icv, high)
        else:
            verdict, esn = _check_icv(keys, mac, signed, icv, high)
            plaintext = _decrypt(cipher, key, salt, iv, ciphertext)
    except ValueError as why:   # a key cryptography refuses (a weak DES key, a bad Blowfish length)
        return failed(f"bad key: {why}")
    trailer = _trailer(plaintext, strict=verdict is not VERIFIED)
    if trailer is None:
        if verdict is VERIFIED:
            return failed("bad padding")
        return failed(ICV_MISMATCH if verdict == SHOWN_UNVERIFIED else
                      f"no ESP trailer inside ({verdict}; a wrong encryption key?)")
    data, next_header = trailer
    return EspPlaintext(data, next_header, verdict, src, dst, esn)


def _check_icv(keys: EspSaKeys, mac, signed: bytes, icv: bytes, high: bytes) -> tuple[str | None, bool | None]:
    """The verdict on the ICV, and whether it verified with the ESN high half signed (None: it did not verify)."""
    if not icv:
        return (VERIFIED if keys.integrity is None else f"{NOT_CHECKED}: no ICV"), None
    if mac is None:
        return (f"{NOT_CHECKED}: {keys.integrity} is only an ICV length" if keys.integrity.startswith(
            ANY_INTEGRITY) else f"{NOT_CHECKED}: {keys.integrity} is not implemented here"), None
    if not keys.auth_key:
        return f"{NOT_CHECKED}: no integrity key", None
    try:
        # RFC 4303 2.2.1/3.3.2: with ESN the high-order half of the sequence number is appended to what the ICV
        # covers (after the payload), though never sent
        for esn, esn_high in ((False, b""), (True, high)):
            if std_hmac.compare_digest(mac(keys.auth_key, signed + esn_high)[:len(icv)], icv):
                return VERIFIED, esn
    except ValueError as why:   # a digest this OpenSSL lacks (RIPEMD-160), an AES-CMAC key of a wrong length
        return f"{NOT_CHECKED}: {why}", None
    return SHOWN_UNVERIFIED, None


def _decrypt(cipher: _EspCipher, key: bytes, salt: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if cipher.mode == "null":
        return ciphertext
    if cipher.mode == "cbc":
        mode = modes.CBC(iv)
    else:   # RFC 3686 4: the counter block is nonce | IV | a 32-bit counter starting at 1
        mode = modes.CTR(salt + iv + b"\x00\x00\x00\x01")
    decryptor = Cipher(cipher.cipher(key), mode).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _open_aead(cipher: _EspCipher, key: bytes, salt: bytes, header: bytes, iv: bytes, ciphertext: bytes,
               tag: bytes, high: bytes) -> tuple[bytes, str | None, bool | None]:
    """The plaintext, whether the tag verified, and whether it did with ESN. The associated data is SPI | sequence
    number (RFC 4106 5, 4309 5, 7634 2.1), with ESN SPI | high half | low half; GMAC authenticates everything and
    encrypts nothing (RFC 4543 3.3). A tag that does not verify: the same keystream, without the check."""
    nonce = salt + iv
    for esn, aad in ((False, header), (True, header[:4] + high + header[4:])):
        try:
            if cipher.mode == "gmac":
                _gcm(key, nonce, b"", tag, aad + iv + ciphertext)
                return ciphertext, VERIFIED, esn
            if cipher.mode == "gcm":
                return _gcm(key, nonce, ciphertext, tag, aad), VERIFIED, esn
            if cipher.mode == "ccm":
                return AESCCM(key, tag_length=len(tag)).decrypt(nonce, ciphertext + tag, aad), VERIFIED, esn
            return ChaCha20Poly1305(key).decrypt(nonce, ciphertext + tag, aad), VERIFIED, esn
        except InvalidTag:
            continue
    if cipher.mode == "gmac":
        return ciphertext, SHOWN_UNVERIFIED, None
    return _aead_keystream(cipher.mode, key, nonce, ciphertext), SHOWN_UNVERIFIED, None


def _aead_keystream(mode: str, key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """A combined-mode ciphertext decrypted without its tag (ESP and IKE build the nonce alike: salt | IV)."""
    if mode == "gcm":      # RFC 4106 / NIST SP 800-38D: the payload's counter starts at 2 (1 masks the tag)
        stream = Cipher(algorithms.AES(key), modes.CTR(nonce + b"\x00\x00\x00\x02"))
    elif mode == "ccm":    # RFC 3610 2.3: flags (L - 1 = 3) | nonce | counter from 1
        stream = Cipher(algorithms.AES(key), modes.CTR(b"\x03" + nonce + b"\x00\x00\x00\x01"))
    else:                  # RFC 8439 2.8: the block counter starts at 1 (block 0 keys Poly1305)
        stream = Cipher(algorithms.ChaCha20(key, b"\x01\x00\x00\x00" + nonce), mode=None)
    decryptor = stream.decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _gcm(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    # the Cipher API, because AESGCM only takes 16-byte tags
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag, min_tag_length=len(tag))).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def _trailer(plaintext: bytes, strict: bool) -> tuple[bytes, int] | None:
    """(payload, next header) after RFC 4303 2.4-2.6's padding, Pad Length and Next Header. `strict`, for a
    decryption nothing verified: the padding must be the default one and Next Header a protocol ESP carries, or
    it is taken for what a wrong key gives."""
    if len(plaintext) < 2 or plaintext[-2] + 2 > len(plaintext):
        return None
    pad_length, next_header = plaintext[-2], plaintext[-1]
    end = len(plaintext) - 2 - pad_length
    if strict and (next_header not in _PLAUSIBLE_NEXT_HEADERS
                   or plaintext[end:len(plaintext) - 2] != bytes(range(1, pad_length + 1))):
        return None
    return plaintext[:end], next_header


# --- what an ESP payload is, in one line -------------------------------------------------------------------

ICMP_TYPES = {0: "echo-reply", 3: "dest-unreach", 5: "redirect", 8: "echo-request", 11: "time-exceeded"}
ICMPV6_TYPES = {1: "dest-unreach", 2: "packet-too-big", 3: "time-exceeded", 128: "echo-request", 129: "echo-reply",
                135: "neighbor-solicitation", 136: "neighbor-advertisement"}
IPV6_EXTENSION_HEADERS = frozenset({0, 43, 60})   # hop-by-hop, routing, destination options: walked past
TCP_FLAGS = "FSRPAUECN"                           # bit 0 first, as tcpdump and scapy print them


def summarize_payload(next_header: int, data: bytes, src: str = "?", dst: str = "?") -> str:
    """One line for what ESP carried, read from the bytes (scapy takes a hundred times longer): "ICMP
    echo-request 198.19.1.1 > 198.19.2.1 id=7 seq=1". `src` and `dst` stand in where the payload has no IP
    header of its own (transport mode: the outer one's). Never raises: what is cut short says so."""
    try:
        return _summary(next_header, data, src, dst)
    except (struct.error, IndexError, ValueError):
        return f"IP proto={next_header} {src} > {dst} len={len(data)} (cut short)"


def _summary(protocol: int, data: bytes, src: str, dst: str) -> str:
    if protocol == NO_NEXT_HEADER:
        return f"dummy packet (no next header) len={len(data)}"
    offset, end, fragment = 0, len(data), False
    if protocol == 4:
        header = (data[0] & 0x0F) * 4
        total, flags_offset, protocol = struct.unpack_from("!H2xHxB", data, 2)
        src, dst = socket.inet_ntop(socket.AF_INET, data[12:16]), socket.inet_ntop(socket.AF_INET, data[16:20])
        offset, end, fragment = header, min(total, len(data)), flags_offset & 0x1FFF != 0
    elif protocol == 41:
        payload_length, protocol = struct.unpack_from("!HB", data, 4)
        src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
        offset, end = 40, min(40 + payload_length, len(data))
        while protocol in IPV6_EXTENSION_HEADERS or protocol == 44:
            if protocol == 44:   # a fragment header: only the first fragment has the transport header
                fragment = struct.unpack_from("!H", data, offset + 2)[0] & 0xFFF8 != 0
            protocol, length = data[offset], 8 if protocol == 44 else (data[offset + 1] + 1) * 8
            offset += length
    segment = data[offset:end]
    if fragment or offset > end:
        return f"IP proto={protocol} {src} > {dst} len={len(segment)}" + (" (a later fragment)" if fragment else "")
    if protocol in (1, 58):
        kind_type, code = segment[0], segment[1]
        names = ICMP_TYPES if protocol == 1 else ICMPV6_TYPES
        name = "ICMP" if protocol == 1 else "ICMPv6"
        kind = names.get(kind_type, f"type={kind_type} code={code}")
        echo = ""
        if (protocol, kind_type) in ((1, 0), (1, 8), (58, 128), (58, 129)):
            ident, sequence = struct.unpack_from("!HH", segment, 4)
            echo = f" id={ident} seq={sequence}"
        return f"{name} {kind} {src} > {dst}{echo}"
    if protocol == 6:
        sport, dport, header_words, flags = struct.unpack_from("!HH8xBB", segment)
        flags |= (header_words & 0x01) << 8
        letters = "".join(letter for bit, letter in enumerate(TCP_FLAGS) if flags >> bit & 1)
        return f"TCP {src}:{sport} > {dst}:{dport} [{letters}] len={max(0, len(segment) - (header_words >> 4) * 4)}"
    if protocol == 17:
        sport, dport, length = struct.unpack_from("!HHH", segment)
        return f"UDP {src}:{sport} > {dst}:{dport} len={max(0, min(length, len(segment)) - 8)}"
    return f"IP proto={protocol} {src} > {dst} len={len(segment)}"
