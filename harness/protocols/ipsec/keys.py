"""Session keys a vendor adapter exports so the capture can be decrypted (by the harness's transcript and
by Wireshark/tshark from the per-pair key files). Algorithms use IANA transform names, like the scenario."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IkeSaKeys:
    ispi: bytes  # 8 bytes; ispi and rspi all zero: the exporter could not tell (a rekeyed SA, whose SPIs
    rspi: bytes  # strongSwan does not log): the transcript binds such keys to the SA on the wire they open
    encryption: str  # e.g. "ENCR_AES_CBC_128", "ENCR_AES_GCM_16_256"
    integrity: str | None  # e.g. "AUTH_HMAC_SHA2_256_128"; None for AEAD
    sk_ei: bytes
    sk_er: bytes
    sk_ai: bytes
    sk_ar: bytes


@dataclass(frozen=True)
class EspSaKeys:
    spi: int
    src: str
    dst: str
    encryption: str
    integrity: str | None
    enc_key: bytes  # for AES-GCM: key followed by the 4-byte salt (RFC 4106)
    auth_key: bytes
