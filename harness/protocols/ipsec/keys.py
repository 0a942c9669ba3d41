"""Session keys a vendor adapter exports so the capture can be decrypted (by the harness's transcript and
by Wireshark/tshark from the per-pair key files). Algorithms use IANA transform names, like the scenario."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.protocols.ipsec.wire import Wire


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
class IkeV1SaKeys:
    """What opens an IKEv1 (ISAKMP) SA's encrypted messages, as Wireshark's ikev1_decryption_table gives it: the
    initiator's cookie and the encryption key (RFC 2409 Appendix B: derived from SKEYID_e; SKEYID_e itself does
    when it is at least as long as the key). The cipher, the hash the IVs are derived with and g^xi/g^xr come from
    the capture's phase 1; `encryption` ("AES-CBC", "3DES-CBC"), `key_length` (bits), `hash` ("SHA") and the
    phase 1 `iv` stand in where the capture does not show them."""
    icookie: bytes
    enc_key: bytes
    encryption: str | None = None
    key_length: int | None = None
    hash: str | None = None
    iv: bytes | None = None


@dataclass(frozen=True)
class EspSaKeys:
    spi: int
    src: str
    dst: str
    encryption: str
    integrity: str | None
    enc_key: bytes  # for AES-GCM: key followed by the 4-byte salt (RFC 4106)
    auth_key: bytes


def unexported(wire: Wire, address: str, ike: list[IkeSaKeys], esp: list[EspSaKeys]) -> list[str]:
    """What a daemon at `address` that exports its keys (feature key_export) should have exported but did not,
    going by what it sent: an encrypted IKE message needs its IKE SA's keys, an ESP packet its ESP SA's.
    Empty when nothing is missing (a daemon that never got past IKE_SA_INIT has no keys to give)."""
    missing = []
    sealed = [m for m in wire.ike() if m.encrypted and m.src == address]
    if sealed and not ike:
        missing.append(f"IKE SA keys (it sent {len(sealed)} encrypted IKE message(s), the first: "
                       f"{sealed[0].exchange} #{sealed[0].message_id})")
    flows = [f for f in wire.esp() if f.src == address]
    if flows and not esp:
        missing.append(f"ESP SA keys (it sent ESP, SPI 0x{flows[0].spi:08x})")
    return missing
