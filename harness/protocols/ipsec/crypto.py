"""Opening what the daemons encrypted, with the keys they exported: IKEv2 SK/SKF payloads and ESP packets.

IKE (RFC 7296 3.14): the integrity checksum covers the whole message up to the checksum and is verified
before anything is decrypted; AEAD ciphers (RFC 5282: AES-GCM, AES-CCM; RFC 7634: ChaCha20-Poly1305)
authenticate the IKE header and the SK payload header as associated data instead. Fragments (SKF, RFC 7383)
are opened one by one here and joined by the caller. A wrong key, a damaged byte or an algorithm we cannot
run is never an exception: it is the `problem` of the result ("ICV mismatch"), which a transcript prints.

The opened payload chain is decoded into typed payloads (IDi, AUTH, SA, TSi, Notify, ...) whose describe()
gives one transcript line. The clear payloads of IKE_SA_INIT decode the same way.

ESP (tunnel or transport mode, plain or UDP-encapsulated) is opened here too, also without an integrity key
and past an ICV that does not verify (see the ESP section).
"""
from __future__ import annotations

import functools
import hmac as std_hmac
import ipaddress
import socket
import struct
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import CAST5, Blowfish, Camellia, TripleDES
from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, ChaCha20Poly1305
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw

from harness.protocols.ipsec import ikev2_names as names
from harness.protocols.ipsec.keys import ANY_INTEGRITY, EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.wire import (ENCRYPTED_PAYLOADS, FLAG_INITIATOR, GENERIC_PAYLOAD_HEADER, IKE_HEADER,
                                          NOTIFY_HEADER, NOTIFY_TYPES, PAYLOAD_TYPES, Notify)

SKF_PAYLOAD = 53  # RFC 7383: Encrypted Fragment
FRAGMENT_HEADER = struct.Struct("!HH")      # RFC 7383 2.5: fragment number, total fragments
ICV_MISMATCH = "ICV mismatch"
SHOWN_UNVERIFIED = f"{ICV_MISMATCH}: shown unverified"   # decrypted all the same (ESP packets, IKE messages)
NOT_CHECKED = "integrity not checked"                    # decrypted without an integrity key
VERIFIED = None


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
    where = parse_payloads(message[16], message, IKE_HEADER.size).encrypted if len(message) > 16 else None
    if where is None:
        return SkPlaintext(0, problem="no encrypted payload")
    payload_type, offset, length = where
    first_payload = message[offset]
    header_size = GENERIC_PAYLOAD_HEADER.size
    fragment = None
    if payload_type == SKF_PAYLOAD:
        if length < header_size + FRAGMENT_HEADER.size:
            return SkPlaintext(first_payload, problem="truncated fragment header")
        fragment = FRAGMENT_HEADER.unpack_from(message, offset + header_size)
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


# --- IKE: payloads ----------------------------------------------------------------------------------------

def _name(table: dict[int, str], number: int, prefix: str = "") -> str:
    return table.get(number, f"{prefix}{number}")


@dataclass(frozen=True, kw_only=True)
class Payload:
    """A payload shown by name only (CERT, CERTREQ, EAP bodies, ...); the typed ones below add fields."""
    type: str
    critical: bool = False
    body: bytes = field(default=b"", repr=False)

    def describe(self) -> str:
        return self.type


@dataclass(frozen=True, kw_only=True)
class Identification(Payload):
    id_type: str        # "FQDN", "IPv4", "RFC822", "KEY_ID", ... (ikev2_names.ID_TYPES)
    value: str

    def describe(self) -> str:
        return f"{self.type} {self.id_type} {self.value}".rstrip()


@dataclass(frozen=True, kw_only=True)
class Authentication(Payload):
    method: str         # "shared-key", "RSA-signature", "digital-signature", ...
    signature: str | None = None  # for "digital-signature" (RFC 7427): "sha256WithRSAEncryption", ...

    def describe(self) -> str:
        return " ".join(filter(None, [self.type, self.method, self.signature]))


@dataclass(frozen=True, kw_only=True)
class NotifyPayload(Payload):
    notify: Notify      # wire.py's Notify: name, type, data
    protocol: str | None = None
    spi: bytes = b""

    def describe(self) -> str:
        spi = f" {self.protocol} spi=0x{self.spi.hex()}" if self.spi else ""
        return self.notify.describe() + spi


@dataclass(frozen=True, kw_only=True)
class Deletion(Payload):
    protocol: str
    spis: tuple[bytes, ...]

    def describe(self) -> str:
        return " ".join([self.type, self.protocol, *(f"0x{spi.hex()}" for spi in self.spis)])


@dataclass(frozen=True)
class TrafficSelector:
    ts_type: str
    ip_protocol: int    # 0: any
    start_port: int
    end_port: int
    start: str
    end: str

    def networks(self) -> tuple[str, ...]:
        """The range as CIDR blocks, e.g. ("198.19.1.0/24",)."""
        try:
            first, last = ipaddress.ip_address(self.start), ipaddress.ip_address(self.end)
            return tuple(str(n) for n in ipaddress.summarize_address_range(first, last))
        except (ValueError, TypeError):
            return ()

    def describe(self) -> str:
        text = self.start if self.start == self.end else f"{self.start}-{self.end}"
        if self.ip_protocol:
            text += f" proto={self.ip_protocol}"
        if (self.start_port, self.end_port) != (0, 65535):
            ports = self.start_port if self.start_port == self.end_port else f"{self.start_port}-{self.end_port}"
            text += f" port={ports}"
        return text


@dataclass(frozen=True, kw_only=True)
class TrafficSelectors(Payload):
    selectors: tuple[TrafficSelector, ...]

    def networks(self) -> tuple[str, ...]:
        return tuple(n for s in self.selectors for n in s.networks())

    def describe(self) -> str:
        return " ".join([self.type, *(s.describe() for s in self.selectors)])


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol: str                   # "IKE", "AH", "ESP"
    spi: bytes
    transforms: tuple[str, ...]     # scenario names: "ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", "NO_ESN"

    def describe(self) -> str:
        spi = [f"spi=0x{self.spi.hex()}"] if self.spi else []
        return " ".join([f"{self.protocol}:", *self.transforms, *spi])


@dataclass(frozen=True, kw_only=True)
class SecurityAssociationPayload(Payload):
    proposals: tuple[Proposal, ...]

    def describe(self) -> str:
        return f"{self.type} " + " | ".join(p.describe() for p in self.proposals)


@dataclass(frozen=True, kw_only=True)
class KeyExchange(Payload):
    group: str

    def describe(self) -> str:
        return f"{self.type} {self.group}"


@dataclass(frozen=True, kw_only=True)
class NoncePayload(Payload):
    def describe(self) -> str:
        return f"{self.type} {len(self.body)} bytes"


@dataclass(frozen=True, kw_only=True)
class Configuration(Payload):
    cfg_type: str
    attributes: tuple[str, ...]     # "INTERNAL_IP4_ADDRESS" when empty, "INTERNAL_IP4_ADDRESS=10.3.0.1" with a value

    def describe(self) -> str:
        return " ".join([self.type, self.cfg_type, *self.attributes])


@dataclass(frozen=True, kw_only=True)
class VendorIdPayload(Payload):
    def describe(self) -> str:
        return f"{self.type} {self.body[:16].hex()}{'...' if len(self.body) > 16 else ''}"


@dataclass(frozen=True, kw_only=True)
class Certificate(Payload):
    """CERT (what is sent) or CERTREQ (the CAs asked for: 20-byte SHA-1 hashes of their public keys)."""
    encoding: str
    subject: str | None = None      # CERT, X.509: the certificate's subject
    authorities: int | None = None  # CERTREQ: how many CA hashes

    def describe(self) -> str:
        if self.type == "CERTREQ":
            return f"{self.type} {self.encoding} CAs={self.authorities}"
        return " ".join(filter(None, [self.type, self.encoding, self.subject, f"{len(self.body) - 1} bytes"]))


@dataclass(frozen=True, kw_only=True)
class EapPayload(Payload):
    code: str

    def describe(self) -> str:
        return f"{self.type} {self.code}"


class _Malformed(Exception):
    pass


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise _Malformed(f"{what} shorter than {size} bytes")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _identification(kind: str, critical: bool, body: bytes) -> Identification:
    _need(body, 4, kind)
    id_type, data = body[0], body[4:]
    if id_type in (names.ID_FQDN, names.ID_RFC822_ADDR):
        value = _text(data)
    elif id_type in (names.ID_IPV4_ADDR, names.ID_IPV6_ADDR) and len(data) in (4, 16):
        value = str(ipaddress.ip_address(data))
    elif id_type == names.ID_NULL:
        value = ""
    else:
        value = data[:32].hex() + ("..." if len(data) > 32 else "")
    return Identification(type=kind, critical=critical, body=body, id_type=_name(names.ID_TYPES, id_type),
                          value=value)


def _oids(der: bytes) -> list[str]:
    """The object identifiers in a DER blob, in order (enough for an AlgorithmIdentifier and its params)."""
    found, i = [], 0
    while i + 2 <= len(der):
        tag, length = der[i], der[i + 1]
        if tag == 0x06 and length < 0x80 and i + 2 + length <= len(der) and length:
            encoded, arcs, value = der[i + 2:i + 2 + length], [], 0
            for byte in encoded:
                value = value << 7 | byte & 0x7F
                if not byte & 0x80:
                    arcs.append(value)
                    value = 0
            if not arcs or value:  # the last byte still says "more follows": the OID is cut short
                raise _Malformed(f"object identifier {encoded.hex()} is cut short")
            first = min(arcs[0] // 40, 2)
            found.append(".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]])))
            i += 2 + length
        elif tag in (0x30, 0xA0, 0xA1, 0xA2) and length < 0x80:   # constructed: look inside
            i += 2
        else:
            i += 2 + (length if length < 0x80 else 0)
    return found


def _signature_algorithm(data: bytes) -> str | None:
    """RFC 7427 3: AUTH data = length of the AlgorithmIdentifier, the AlgorithmIdentifier, the signature.
    RSASSA-PSS names its hash in the parameters."""
    if not data or len(data) < 1 + data[0]:
        return None
    oids = _oids(data[1:1 + data[0]])
    if not oids:
        return None
    name = names.SIGNATURE_ALGORITHMS.get(oids[0], oids[0])
    hashes_named = [names.HASH_ALGORITHMS[o] for o in oids[1:] if o in names.HASH_ALGORITHMS]
    return f"{name}({hashes_named[0]})" if oids[0] == names.RSASSA_PSS and hashes_named else name


def _authentication(kind: str, critical: bool, body: bytes) -> Authentication:
    _need(body, 4, kind)
    signature = _signature_algorithm(body[4:]) if body[0] == names.AUTH_DIGITAL_SIGNATURE else None
    return Authentication(type=kind, critical=critical, body=body,
                          method=_name(names.AUTH_METHODS, body[0], "method-"), signature=signature)


def _notify(kind: str, critical: bool, body: bytes) -> NotifyPayload:
    _need(body, NOTIFY_HEADER.size, kind)
    protocol, spi_size, notify_type = NOTIFY_HEADER.unpack_from(body)
    spi_end = NOTIFY_HEADER.size + spi_size
    _need(body, spi_end, "notify SPI")
    notify = Notify(name=_name(NOTIFY_TYPES, notify_type), type=notify_type, data=bytes(body[spi_end:]))
    return NotifyPayload(type=kind, critical=critical, body=body, notify=notify,
                         protocol=names.PROTOCOL_IDS.get(protocol), spi=bytes(body[NOTIFY_HEADER.size:spi_end]))


def _deletion(kind: str, critical: bool, body: bytes) -> Deletion:
    _need(body, 4, kind)
    protocol, spi_size, count = struct.unpack_from("!BBH", body)
    _need(body, 4 + spi_size * count, "delete SPIs")
    spis = tuple(bytes(body[4 + i * spi_size:4 + (i + 1) * spi_size]) for i in range(count)) if spi_size else ()
    return Deletion(type=kind, critical=critical, body=body, protocol=_name(names.PROTOCOL_IDS, protocol), spis=spis)


def _traffic_selectors(kind: str, critical: bool, body: bytes) -> TrafficSelectors:
    _need(body, 4, kind)
    selectors, offset = [], 4
    for _ in range(body[0]):
        _need(body, offset + 8, "traffic selector")
        ts_type, ip_protocol, length, start_port, end_port = struct.unpack_from("!BBHHH", body, offset)
        if length < 8 or offset + length > len(body):
            raise _Malformed(f"traffic selector length {length}")
        addresses = body[offset + 8:offset + length]
        if ts_type in (names.TS_IPV4_ADDR_RANGE, names.TS_IPV6_ADDR_RANGE) and len(addresses) in (8, 32):
            half = len(addresses) // 2
            start, end = (str(ipaddress.ip_address(addresses[:half])), str(ipaddress.ip_address(addresses[half:])))
        else:
            start = end = addresses.hex()
        selectors.append(TrafficSelector(_name(names.TS_TYPES, ts_type), ip_protocol, start_port, end_port,
                                         start, end))
        offset += length
    return TrafficSelectors(type=kind, critical=critical, body=body, selectors=tuple(selectors))


def _transform_name(transform_type: int, transform_id: int, key_length: int | None) -> str:
    table = names.TRANSFORM_IDS.get(transform_type)
    type_name = _name(names.TRANSFORM_TYPES, transform_type, "TYPE")
    name = table.get(transform_id, f"{type_name}_{transform_id}") if table else f"{type_name}_{transform_id}"
    return f"{name}_{key_length}" if key_length is not None else name


def _proposal(data: bytes) -> Proposal:
    _need(data, 8, "proposal")
    number, protocol, spi_size, count = struct.unpack_from("!BBBB", data, 4)
    offset = 8 + spi_size
    _need(data, offset, "proposal SPI")
    spi, transforms = bytes(data[8:offset]), []
    for _ in range(count):
        _need(data, offset + 8, "transform")
        _last, _reserved, length, transform_type, _reserved2, transform_id = struct.unpack_from(
            "!BBHBBH", data, offset)
        if length < 8 or offset + length > len(data):
            raise _Malformed(f"transform length {length}")
        key_length, attribute = None, offset + 8
        while attribute + 4 <= offset + length:
            attribute_type, value = struct.unpack_from("!HH", data, attribute)
            if attribute_type & 0x8000:             # TV format: the value is the two bytes
                if attribute_type & 0x7FFF == names.KEY_LENGTH_ATTRIBUTE:
                    key_length = value
                attribute += 4
            else:                                   # TLV: value is the length of what follows
                attribute += 4 + value
        transforms.append(_transform_name(transform_type, transform_id, key_length))
        offset += length
    return Proposal(number, _name(names.PROTOCOL_IDS, protocol), spi, tuple(transforms))


def _security_association(kind: str, critical: bool, body: bytes) -> SecurityAssociationPayload:
    proposals, offset = [], 0
    while offset < len(body):
        _need(body, offset + 8, "proposal")
        last, _reserved, length = struct.unpack_from("!BBH", body, offset)
        if length < 8 or offset + length > len(body):
            raise _Malformed(f"proposal length {length}")
        proposals.append(_proposal(body[offset:offset + length]))
        offset += length
        if not last:
            break
    return SecurityAssociationPayload(type=kind, critical=critical, body=body, proposals=tuple(proposals))


def _key_exchange(kind: str, critical: bool, body: bytes) -> KeyExchange:
    _need(body, 4, kind)
    group = struct.unpack_from("!H", body)[0]
    return KeyExchange(type=kind, critical=critical, body=body, group=_name(names.KEY_EXCHANGE_METHODS, group))


def _cfg_value(attribute: int, value: bytes) -> str:
    if not value:
        return ""
    if len(value) in (4, 16) and attribute in (1, 2, 3, 4, 6, 20, 8, 10, 12, 21):
        return str(ipaddress.ip_address(value))
    if len(value) == 17 and attribute in (8, 15, 18):   # IPv6 address and prefix length
        return f"{ipaddress.ip_address(value[:16])}/{value[16]}"
    if len(value) == 8 and attribute == 13:              # IPv4 subnet: address and netmask
        return str(ipaddress.ip_network(f"{ipaddress.ip_address(value[:4])}/{ipaddress.ip_address(value[4:])}",
                                         strict=False))
    if attribute in (7, 25):
        return _text(value)
    return value.hex()


def _configuration(kind: str, critical: bool, body: bytes) -> Configuration:
    _need(body, 4, kind)
    attributes, offset = [], 4
    while offset + 4 <= len(body):
        attribute, length = struct.unpack_from("!HH", body, offset)
        attribute &= 0x7FFF
        value = body[offset + 4:offset + 4 + length]
        if len(value) < length:
            raise _Malformed("configuration attribute overruns the payload")
        text = _cfg_value(attribute, value)
        name = _name(names.CFG_ATTRIBUTES, attribute, "ATTRIBUTE_")
        attributes.append(f"{name}={text}" if text else name)
        offset += 4 + length
    return Configuration(type=kind, critical=critical, body=body, cfg_type=_name(names.CFG_TYPES, body[0]),
                         attributes=tuple(attributes))


def _certificate(kind: str, critical: bool, body: bytes) -> Certificate:
    _need(body, 1, kind)
    encoding, data = body[0], body[1:]
    if kind == "CERTREQ":
        return Certificate(type=kind, critical=critical, body=body, encoding=_name(names.CERT_ENCODINGS, encoding),
                           authorities=len(data) // 20)
    subject = None
    if encoding == names.CERT_X509_SIGNATURE:
        try:
            subject = x509.load_der_x509_certificate(data).subject.rfc4514_string()
        except ValueError:
            subject = "(unparsable)"
    return Certificate(type=kind, critical=critical, body=body, encoding=_name(names.CERT_ENCODINGS, encoding),
                       subject=subject)


EAP_CODES = {1: "Request", 2: "Response", 3: "Success", 4: "Failure"}


def _eap(kind: str, critical: bool, body: bytes) -> EapPayload:
    _need(body, 4, kind)
    code = _name(EAP_CODES, body[0], "code-")
    if body[0] in (1, 2) and len(body) > 4:
        code += f" type={body[4]}"
    return EapPayload(type=kind, critical=critical, body=body, code=code)


def _plain(kind: str, critical: bool, body: bytes) -> Payload:
    return Payload(type=kind, critical=critical, body=body)


def _nonce(kind: str, critical: bool, body: bytes) -> NoncePayload:
    return NoncePayload(type=kind, critical=critical, body=body)


def _vendor_id(kind: str, critical: bool, body: bytes) -> VendorIdPayload:
    return VendorIdPayload(type=kind, critical=critical, body=body)


# Payload type -> decoder of its body (what follows the generic header). Anything else is a plain Payload.
DECODERS = {
    33: _security_association, 34: _key_exchange, 35: _identification, 36: _identification,
    37: _certificate, 38: _certificate, 39: _authentication, 40: _nonce, 41: _notify, 42: _deletion, 43: _vendor_id, 44: _traffic_selectors,
    45: _traffic_selectors, 47: _configuration, 48: _eap,
}


@dataclass(frozen=True)
class PayloadChain:
    payloads: tuple[Payload, ...]
    encrypted: tuple[int, int, int] | None = None   # (type, offset, length) of an SK/SKF that ended the chain
    problem: str | None = None                      # "malformed: ..." if the chain broke off


def parse_payloads(first_payload: int, data: bytes, offset: int = 0, end: int | None = None) -> PayloadChain:
    """Decode a payload chain (the clear part of a message, or an opened SK payload). Stops at an SK/SKF
    payload, which the caller opens. Never raises: a chain that breaks off keeps what came before it."""
    end = len(data) if end is None else end
    payloads: list[Payload] = []
    next_payload = first_payload
    while next_payload:
        if offset + GENERIC_PAYLOAD_HEADER.size > end:
            return PayloadChain(tuple(payloads), problem=f"malformed: payload chain runs past the end at {offset}")
        following, flags, length = GENERIC_PAYLOAD_HEADER.unpack_from(data, offset)
        if length < GENERIC_PAYLOAD_HEADER.size or offset + length > end:
            return PayloadChain(tuple(payloads), problem=f"malformed: payload length {length} at {offset}")
        if next_payload in ENCRYPTED_PAYLOADS:
            return PayloadChain(tuple(payloads), encrypted=(next_payload, offset, length))
        kind = _name(PAYLOAD_TYPES, next_payload)
        body = bytes(data[offset + GENERIC_PAYLOAD_HEADER.size:offset + length])
        try:
            payloads.append(DECODERS.get(next_payload, _plain)(kind, bool(flags & 0x80), body))
        except (_Malformed, ValueError, struct.error) as why:
            payloads.append(Payload(type=kind, critical=bool(flags & 0x80), body=body))
            return PayloadChain(tuple(payloads), problem=f"malformed: {kind}: {why}")
        next_payload, offset = following, offset + length
    return PayloadChain(tuple(payloads))


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
    return TripleDES(key * 3)


ESP_ENCRYPTION: dict[str, _EspCipher] = {
    "ENCR_NULL": _EspCipher(None, "null", 0),                                                   # RFC 2410
    "ENCR_DES": _EspCipher(_des, "cbc", 8, iv_size=8, block_size=8),                            # RFC 2405
    "ENCR_3DES": _EspCipher(TripleDES, "cbc", 24, iv_size=8, block_size=8),                     # RFC 2451
    "ENCR_CAST_128": _EspCipher(CAST5, "cbc", 16, iv_size=8, block_size=8),                     # RFC 2451
    **{f"ENCR_BLOWFISH_{bits}": _EspCipher(Blowfish, "cbc", bits // 8, iv_size=8, block_size=8)  # RFC 2451
       for bits in _AES_BITS},
    **{f"ENCR_AES_CBC_{bits}": _EspCipher(algorithms.AES, "cbc", bits // 8, iv_size=16, block_size=16)
       for bits in _AES_BITS},                                                                  # RFC 3602
    **{f"ENCR_CAMELLIA_CBC_{bits}": _EspCipher(Camellia, "cbc", bits // 8, iv_size=16, block_size=16)
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


def decrypt_esp(esp: bytes, src: str, dst: str, keys: EspSaKeys) -> EspPlaintext:
    """Open one ESP packet (from the SPI on: for ESP-in-UDP, what follows the UDP header). Never raises.
    An SA with extended sequence numbers is tried with the high half 0 as well, which holds for the first 2^32
    packets; the keys do not say whether ESN was negotiated."""
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
    try:
        if cipher.icv_size:
            plaintext, verdict = _open_aead(cipher, key, salt, esp[:ESP_HEADER.size], iv, ciphertext, icv)
        else:
            verdict = _check_icv(keys, mac, signed, icv)
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
    return EspPlaintext(data, next_header, verdict, src, dst)


def _check_icv(keys: EspSaKeys, mac, signed: bytes, icv: bytes) -> str | None:
    if not icv:
        return VERIFIED if keys.integrity is None else f"{NOT_CHECKED}: no ICV"
    if mac is None:
        return f"{NOT_CHECKED}: {keys.integrity} is only an ICV length" if keys.integrity.startswith(
            ANY_INTEGRITY) else f"{NOT_CHECKED}: {keys.integrity} is not implemented here"
    if not keys.auth_key:
        return f"{NOT_CHECKED}: no integrity key"
    try:
        # RFC 4303 2.2.1: with ESN the high-order half of the sequence number is signed, though never sent
        for esn_high in (b"", bytes(4)):
            if std_hmac.compare_digest(mac(keys.auth_key, signed + esn_high)[:len(icv)], icv):
                return VERIFIED
    except ValueError as why:   # a digest this OpenSSL lacks (RIPEMD-160), an AES-CMAC key of a wrong length
        return f"{NOT_CHECKED}: {why}"
    return SHOWN_UNVERIFIED


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
               tag: bytes) -> tuple[bytes, str | None]:
    """The plaintext and whether the tag verified. The associated data is SPI | sequence number (RFC 4106 5,
    4309 5, 7634 2.1), with ESN SPI | high half | low half; GMAC authenticates everything and encrypts nothing
    (RFC 4543 3.3). A tag that does not verify: the same keystream, without the check."""
    nonce = salt + iv
    for aad in (header, header[:4] + bytes(4) + header[4:]):
        try:
            if cipher.mode == "gmac":
                _gcm(key, nonce, b"", tag, aad + iv + ciphertext)
                return ciphertext, VERIFIED
            if cipher.mode == "gcm":
                return _gcm(key, nonce, ciphertext, tag, aad), VERIFIED
            if cipher.mode == "ccm":
                return AESCCM(key, tag_length=len(tag)).decrypt(nonce, ciphertext + tag, aad), VERIFIED
            return ChaCha20Poly1305(key).decrypt(nonce, ciphertext + tag, aad), VERIFIED
        except InvalidTag:
            continue
    if cipher.mode == "gmac":
        return ciphertext, SHOWN_UNVERIFIED
    return _aead_keystream(cipher.mode, key, nonce, ciphertext), SHOWN_UNVERIFIED


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
