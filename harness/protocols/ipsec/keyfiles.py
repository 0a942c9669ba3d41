"""Wireshark's key files for a pair, so a person can open the capture decrypted:

    <pair folder>/keys/ikev2_decryption_table   the IKEv2 Decryption Table (one line per IKE SA)
    <pair folder>/keys/ikev1_decryption_table   the IKEv1 Decryption Table, when there are IKEv1 keys
    <pair folder>/keys/esp_sa                   the ESP SAs (one line per SA and direction)
    <pair folder>/keys/preferences              turns on ESP decryption, which is off by default

The folder is a complete Wireshark configuration directory:

    WIRESHARK_CONFIG_DIR=<pair folder>/keys tshark -r capture.pcap -V
    WIRESHARK_CONFIG_DIR=<pair folder>/keys wireshark capture.pcap

(or copy the two tables into a profile). Algorithm names are the exact strings of Wireshark's UAT enums
(checked against Wireshark 4.0.17): a name Wireshark does not know is an error loading the table, so an SA
with an algorithm it lacks (ChaCha20-Poly1305, AES-CCM for ESP) or whose IKE SPIs are unknown is left out,
with a comment line saying so ('#' lines are comments to Wireshark's table loader).
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterable

from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, IkeV1SaKeys

KEYS_FOLDER = "keys"
IKE_TABLE = "ikev2_decryption_table"
IKEV1_TABLE = "ikev1_decryption_table"
ESP_TABLE = "esp_sa"
PREFERENCES = "preferences"

_AES_BITS = (128, 192, 256)
# The scenario's names (keys.py) -> Wireshark's "Encryption algorithm" / "Integrity algorithm" of the
# IKEv2 Decryption Table (packet-isakmp.c).
IKE_ENCRYPTION = {
    "ENCR_NULL": "NULL [RFC2410]",
    "ENCR_3DES": "3DES [RFC2451]",
    **{f"ENCR_AES_CBC_{bits}": f"AES-CBC-{bits} [RFC3602]" for bits in _AES_BITS},
    **{f"ENCR_AES_CTR_{bits}": f"AES-CTR-{bits} [RFC5930]" for bits in _AES_BITS},
    **{f"ENCR_AES_GCM_{icv}_{bits}": f"AES-GCM-{bits} with {icv} octet ICV [RFC5282]"
       for icv in (8, 12, 16) for bits in _AES_BITS},
    **{f"ENCR_AES_CCM_{icv}_{bits}": f"AES-CCM-{bits} with {icv} octet ICV [RFC5282]"
       for icv in (8, 12, 16) for bits in _AES_BITS},
}
IKE_INTEGRITY = {
    None: "NONE [RFC4306]",   # AEAD
    "AUTH_HMAC_MD5_96": "HMAC_MD5_96 [RFC2403]",
    "AUTH_HMAC_SHA1_96": "HMAC_SHA1_96 [RFC2404]",
    "AUTH_HMAC_MD5_128": "HMAC_MD5_128 [RFC4595]",
    "AUTH_HMAC_SHA1_160": "HMAC_SHA1_160 [RFC4595]",
    "AUTH_HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
    "AUTH_HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]",
    "AUTH_HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]",
}
# ... and of the ESP SAs table (packet-ipsec.c). AES-GCM there takes the key with its salt and NULL integrity.
ESP_ENCRYPTION = {
    "ENCR_NULL": "NULL",
    "ENCR_3DES": "TripleDES-CBC [RFC2451]",
    **{f"ENCR_AES_CBC_{bits}": "AES-CBC [RFC3602]" for bits in _AES_BITS},
    **{f"ENCR_AES_CTR_{bits}": "AES-CTR [RFC3686]" for bits in _AES_BITS},
    **{f"ENCR_AES_GCM_{icv}_{bits}": f"AES-GCM with {icv} octet ICV [RFC4106]"
       for icv in (8, 12, 16) for bits in _AES_BITS},
}
ESP_INTEGRITY = {
    None: "NULL",
    "AUTH_HMAC_MD5_96": "HMAC-MD5-96 [RFC2403]",
    "AUTH_HMAC_SHA1_96": "HMAC-SHA-1-96 [RFC2404]",
    "AUTH_HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
    "AUTH_HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
    "AUTH_HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
}
ESP_PREFERENCES = "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n"

UNKNOWN_SPI = bytes(8)


def ike_line(keys: IkeSaKeys) -> str:
    """One IKEv2 Decryption Table record: hex fields bare, the algorithm names quoted. Raises KeyError for an
    algorithm Wireshark has no name for."""
    encryption, integrity = IKE_ENCRYPTION[keys.encryption], IKE_INTEGRITY[keys.integrity]
    return ",".join([keys.ispi.hex(), keys.rspi.hex(), keys.sk_ei.hex(), keys.sk_er.hex(), f'"{encryption}"',
                     keys.sk_ai.hex(), keys.sk_ar.hex(), f'"{integrity}"'])


def ikev1_line(keys: IkeV1SaKeys) -> str:
    """One IKEv1 Decryption Table record: the initiator's cookie and the encryption key, hex (Wireshark takes the
    cipher, the hash and g^xi/g^xr from the capture's phase 1, as the transcript does)."""
    return f"{keys.icookie.hex()},{keys.enc_key.hex()}"


def esp_line(keys: EspSaKeys) -> str:
    """One ESP SA record: every field a quoted string. Raises KeyError like ike_line."""
    encryption, integrity = ESP_ENCRYPTION[keys.encryption], ESP_INTEGRITY[keys.integrity]
    family = "IPv6" if ":" in keys.dst else "IPv4"
    fields = [family, keys.src, keys.dst, f"0x{keys.spi:08x}", encryption, f"0x{keys.enc_key.hex()}",
              integrity, f"0x{keys.auth_key.hex()}" if keys.auth_key else ""]
    return ",".join(f'"{f}"' for f in fields)


def _lines(records: Iterable, render, unusable) -> list[str]:
    lines = []
    for record in dict.fromkeys(records):   # both daemons export each SA: once is enough
        reason = unusable(record)
        if reason is None:
            try:
                lines.append(render(record))
                continue
            except KeyError as missing:
                reason = f"Wireshark has no name for {missing.args[0]}"
        lines.append(f"# left out: {reason}")
    return lines


def write_key_files(folder: Path, ike: list[IkeSaKeys | IkeV1SaKeys], esp: list[EspSaKeys]) -> list[Path]:
    """Write the key files into `folder`/keys/ (created) and return their paths. IKE keys still without
    SPIs must first be bound to the wire (transcript.bind_ike_keys) to be usable here."""
    keys_folder = Path(folder) / KEYS_FOLDER
    keys_folder.mkdir(parents=True, exist_ok=True)
    ikev1 = [k for k in ike if isinstance(k, IkeV1SaKeys)]
    ike = [k for k in ike if not isinstance(k, IkeV1SaKeys)]
    ike_lines = _lines(ike, ike_line,
                       lambda k: "IKE SA keys whose SPIs are unknown" if (k.ispi, k.rspi) == (UNKNOWN_SPI,) * 2
                       else None)
    esp_lines = _lines(esp, esp_line, lambda k: None)
    written = []
    for name, lines in ((IKE_TABLE, ike_lines), (ESP_TABLE, esp_lines)):
        path = keys_folder / name
        path.write_text("".join(f"{line}\n" for line in lines))
        written.append(path)
    if ikev1:
        path = keys_folder / IKEV1_TABLE
        path.write_text("".join(f"{line}\n" for line in _lines(ikev1, ikev1_line, lambda k: None)))
        written.append(path)
    preferences = keys_folder / PREFERENCES
    preferences.write_text(ESP_PREFERENCES)
    return written + [preferences]


def tshark_command(pcap: Path, keys_folder: Path) -> str:
    """The command line a person pastes to read the capture decrypted (`keys_folder` as written by
    write_key_files: the pair folder's keys/)."""
    return (f"WIRESHARK_CONFIG_DIR={shlex.quote(str(keys_folder))} "
            f"tshark -r {shlex.quote(str(pcap))} -V -Y {shlex.quote('isakmp or esp')}")
