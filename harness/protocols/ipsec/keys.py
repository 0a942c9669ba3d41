"""Session keys, so the capture can be decrypted (by the harness's transcript and by Wireshark/tshark from the
per-pair key files): exported by a vendor adapter, read from a daemon's log, or read from a key file a user
brings (keyfiles.py). Algorithms use IANA transform names, like the scenario; where a key file names an integrity
transform only by its ICV length (Wireshark's "ANY 96 bit authentication [no checking]", tcpdump's "-hmac96"),
the name is AUTH_ANY_<bits>: its ICV is skipped, never checked."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.protocols.ipsec.wire import Wire

ANY = "*"                # Wireshark's wildcard, for an address, an address byte or an SPI digit
ANY_INTEGRITY = "AUTH_ANY_"


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
    spi: int | str   # an int is one SA; a str is a Wireshark SPI pattern: "*", or "0x0000ab**" (a '*' per digit)
    src: str         # addresses; "*" is any address, and Wireshark's "10.0.*.*" and "10.0.0.0/8" several
    dst: str
    encryption: str
    integrity: str | None  # None: no integrity transform (AEAD, or an SA without); AUTH_ANY_<bits>: see above
    enc_key: bytes   # for AES-GCM: key followed by the 4-byte salt (RFC 4106)
    auth_key: bytes  # b"" where only the encryption key is known: the ICV is then not checked
    family: str | None = None  # "IPv4" or "IPv6" where a key file says so; None: what the addresses say

    @property
    def exact(self) -> bool:
        """One SA between two addresses, nothing wildcarded."""
        return isinstance(self.spi, int) and _single(self.src) and _single(self.dst)

    def matches(self, spi: int, src: str, dst: str) -> bool:
        """Whether a packet with this SPI between these addresses belongs to this SA (Wireshark's matching:
        the address family, both addresses and the SPI, each possibly wildcarded)."""
        if self.family is not None and self.family != ("IPv6" if ":" in dst else "IPv4"):
            return False
        return _spi_matches(self.spi, spi) and _address_matches(self.src, src) and _address_matches(self.dst, dst)


def _single(address: str) -> bool:
    return ANY not in address and "/" not in address


def _spi_matches(pattern: int | str, spi: int) -> bool:
    if isinstance(pattern, int):
        return pattern == spi
    if pattern == ANY:
        return True
    if ANY not in pattern:
        return parse_number(pattern) == spi
    written = f"0x{spi:08x}"   # a pattern is compared digit by digit with the SPI as Wireshark prints it
    return len(pattern) == len(written) and all(p in (ANY, w) for p, w in zip(pattern[2:].lower(), written[2:]))


def parse_number(text: str) -> int | None:
    """An SPI as C's strtoul(text, 0) reads it (the tools whose files we read do): 0x hex, 0 octal, decimal."""
    text = text.strip()
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16)
        return int(text, 8) if len(text) > 1 and text.startswith("0") else int(text, 10)
    except ValueError:
        return None


def _address_matches(pattern: str, address: str) -> bool:
    if pattern == ANY or pattern == address:
        return True
    try:
        packet_address = ipaddress.ip_address(address)
        if "/" in pattern:
            return packet_address in ipaddress.ip_network(pattern, strict=False)
        if ANY in pattern and "." in pattern:   # IPv4 with wildcard bytes: "190.*.*.1"
            parts = pattern.split(".")
            return len(parts) == 4 and all(p in (ANY, str(b)) for p, b in zip(parts, packet_address.packed))
        return ipaddress.ip_address(pattern) == packet_address
    except ValueError:
        return False


def valid_address_pattern(pattern: str) -> bool:
    """An address, "*", an IPv4 address with "*" bytes, or a network with its prefix length."""
    if pattern == ANY:
        return True
    try:
        if "/" in pattern:
            ipaddress.ip_network(pattern, strict=False)
        elif ANY in pattern:
            parts = pattern.split(".")
            return len(parts) == 4 and all(p == ANY or (p.isdigit() and int(p) < 256) for p in parts)
        else:
            ipaddress.ip_address(pattern)
        return True
    except ValueError:
        return False


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
