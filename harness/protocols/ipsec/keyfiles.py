"""Key files: Wireshark's and tcpdump's, read and written from one description per format.

The harness writes Wireshark's for every pair, so a person can open the capture decrypted:

    <pair folder>/keys/ikev2_decryption_table   the IKEv2 Decryption Table (one line per IKE SA)
    <pair folder>/keys/ikev1_decryption_table   the IKEv1 Decryption Table, when there are IKEv1 keys
    <pair folder>/keys/esp_sa                   the ESP SAs (one line per SA and direction)
    <pair folder>/keys/preferences              turns on ESP decryption, which is off by default

The folder is a complete Wireshark configuration directory:

    WIRESHARK_CONFIG_DIR=<pair folder>/keys tshark -r capture.pcap -V
    WIRESHARK_CONFIG_DIR=<pair folder>/keys wireshark capture.pcap

(or copy the two tables into a profile). `overlay-interop transcript FILE --keys PATH` reads those files, and the
ones an engineer brings from elsewhere (read_key_files):

- Wireshark's tables (User Accessible Tables: one record per line, comma-separated fields, text fields quoted,
  byte fields bare hex, '#' comment lines): ikev2_decryption_table, ikev1_decryption_table, esp_sa. Algorithm
  names are the exact strings of Wireshark's enums (checked against Wireshark 4.0.17's packet-isakmp.c and
  packet-ipsec.c): a name Wireshark does not know is an error loading the table, so the writer leaves out an SA
  with an algorithm Wireshark lacks (ChaCha20-Poly1305, AES-CCM for ESP) or whose IKE SPIs are unknown, with a
  comment line saying so. The reader accepts what Wireshark accepts: ESP SAs with "*" for any address or SPI,
  "10.1.*.*" and "10.1.0.0/16" addresses, keys as 0x-hex or text; and checks the key lengths Wireshark checks.
- tcpdump's -E secrets file (print-esp.c): `spi@address algorithm:secret` per ESP SA (the address is the
  destination; the algorithm an OpenSSL CBC cipher name, "-cbc" optional, "-hmac96" saying a 96-bit ICV follows;
  the secret 0x-hex, or else the text itself), `algorithm:secret` alone for every SA, `ikev2 I|R 0xSPIi 0xSPIr
  integrity:key encryption:key` per direction of an IKEv2 SA, `file NAME` to read another file, '#' comments.
  tcpdump has no IKEv1 line.

A file that cannot be read, or a line in no known format, is one ConfigError naming the file and the line. In a
folder, a file in no key format is skipped with a note (a Wireshark profile holds other files too).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable

from harness.errors import ConfigError
from harness.protocols.ipsec import crypto
from harness.protocols.ipsec.keys import (ANY, ANY_INTEGRITY, EspSaKeys, IkeSaKeys, IkeV1SaKeys, parse_number,
                                          valid_address_pattern)

KEYS_FOLDER = "keys"
IKE_TABLE = "ikev2_decryption_table"
IKEV1_TABLE = "ikev1_decryption_table"
ESP_TABLE = "esp_sa"
PREFERENCES = "preferences"
ESP_PREFERENCES = "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n"
UNKNOWN_SPI = bytes(8)
SPI_SIZE = 8
NESTING = 8          # tcpdump's `file NAME` lines, one inside another: deeper is a loop

_AES_BITS = (128, 192, 256)

# --- names: the harness's (IANA transform names, keys.py) <-> each file format's ---------------------------

# The IKEv2 Decryption Table's "Encryption algorithm" and "Integrity algorithm" (packet-isakmp.c).
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
    "AUTH_HMAC_SHA2_256_96": "HMAC_SHA2_256_96 [draft-ietf-ipsec-ciph-sha-256-00]",
    "AUTH_HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
    "AUTH_HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]",
    "AUTH_HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]",
    **{f"{ANY_INTEGRITY}{bits}": f"ANY {bits}-bits of Authentication [No Checking]"
       for bits in (64, 96, 128, 160, 192, 256)},
}
# The key lengths Wireshark checks when it loads the IKEv2 table (a mismatch is an error there too): the
# encryption key with its salt; an HMAC key as long as the hash's output (RFC 4868 2.1.1); none for "ANY".
IKE_KEY_LENGTHS = {
    "ENCR_NULL": 0, "ENCR_3DES": 24,
    **{name: crypto.IKE_ENCRYPTION[name].key_size + crypto.IKE_ENCRYPTION[name].salt_size
       for name in IKE_ENCRYPTION if name in crypto.IKE_ENCRYPTION},
    None: 0, "AUTH_HMAC_MD5_96": 16, "AUTH_HMAC_SHA1_96": 20, "AUTH_HMAC_MD5_128": 16, "AUTH_HMAC_SHA1_160": 20,
    "AUTH_HMAC_SHA2_256_96": 32, "AUTH_HMAC_SHA2_256_128": 32, "AUTH_HMAC_SHA2_384_192": 48,
    "AUTH_HMAC_SHA2_512_256": 64, **{f"{ANY_INTEGRITY}{bits}": 0 for bits in (64, 96, 128, 160, 192, 256)},
}
# The ESP SAs table's "Encryption" (packet-ipsec.c), as (harness name, Wireshark name) pairs: Wireshark names
# AES by mode only, so reading picks the harness name by the key's length. Where two pairs share a harness name
# the writer uses the first ("AES-GCM [RFC4106]" is Wireshark's deprecated name for the 16-octet ICV).
ESP_ENCRYPTION_PAIRS: tuple[tuple[str, str], ...] = (
    ("ENCR_NULL", "NULL"),
    ("ENCR_3DES", "TripleDES-CBC [RFC2451]"),
    ("ENCR_DES", "DES-CBC [RFC2405]"),
    ("ENCR_CAST_128", "CAST5-CBC [RFC2144]"),
    ("ENCR_BLOWFISH_128", "BLOWFISH-CBC [RFC2451]"),
    ("ENCR_TWOFISH_128", "TWOFISH-CBC"), ("ENCR_TWOFISH_256", "TWOFISH-CBC"),
    *((f"ENCR_AES_CBC_{bits}", "AES-CBC [RFC3602]") for bits in _AES_BITS),
    *((f"ENCR_AES_CTR_{bits}", "AES-CTR [RFC3686]") for bits in _AES_BITS),
    *((f"ENCR_AES_GCM_{icv}_{bits}", f"AES-GCM with {icv} octet ICV [RFC4106]")
      for icv in (8, 12, 16) for bits in _AES_BITS),
    *((f"ENCR_AES_GCM_16_{bits}", "AES-GCM [RFC4106]") for bits in _AES_BITS),
)
ESP_ENCRYPTION = dict(reversed(ESP_ENCRYPTION_PAIRS))   # harness name -> Wireshark name (the first pair wins)
# ... and "Authentication". "ANY n bit" skips an ICV of that length unchecked.
ESP_INTEGRITY = {
    None: "NULL",
    "AUTH_HMAC_SHA1_96": "HMAC-SHA-1-96 [RFC2404]",
    "AUTH_HMAC_SHA2_256_96": "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]",
    "AUTH_HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
    "AUTH_HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
    "AUTH_HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
    "AUTH_HMAC_MD5_96": "HMAC-MD5-96 [RFC2403]",
    "AUTH_HMAC_RIPEMD160_96": "MAC-RIPEMD-160-96 [RFC2857]",
    **{f"{ANY_INTEGRITY}{bits}": f"ANY {bits} bit authentication [no checking]" for bits in (64, 96, 128, 192, 256)},
}
ESP_FAMILIES = ("IPv4", "IPv6")

# tcpdump: what OpenSSL's EVP_get_cipherbyname finds for the name print-esp.c passes it (the algorithm without
# "-hmac96" and "-cbc"; tcpdump adds "3des"), for the CBC ciphers ESP uses; "none" as its man page lists it.
TCPDUMP_ENCRYPTION = {
    "none": "ENCR_NULL", "des": "ENCR_DES", "3des": "ENCR_3DES", "des3": "ENCR_3DES",
    **{f"aes{bits}": f"ENCR_AES_CBC_{bits}" for bits in _AES_BITS},
    **{f"camellia{bits}": f"ENCR_CAMELLIA_CBC_{bits}" for bits in _AES_BITS},
    "blowfish": "ENCR_BLOWFISH_128", "bf": "ENCR_BLOWFISH_128",
    "cast128": "ENCR_CAST_128", "cast": "ENCR_CAST_128", "cast5": "ENCR_CAST_128",
}
TCPDUMP_HMAC96 = "-hmac96"      # the one integrity suffix print-esp.c knows: a 12-byte ICV, never checked
TCPDUMP_CBC = "-cbc"
# The integrity names of `ikev2` lines: what Libreswan writes there (its integ_tcpdump_name); tcpdump ignores them.
TCPDUMP_INTEGRITY = {
    "none": None, "md5": "AUTH_HMAC_MD5_96", "sha1": "AUTH_HMAC_SHA1_96", "sha256": "AUTH_HMAC_SHA2_256_128",
    "sha2_256": "AUTH_HMAC_SHA2_256_128", "sha384": "AUTH_HMAC_SHA2_384_192", "sha2_384": "AUTH_HMAC_SHA2_384_192",
    "sha512": "AUTH_HMAC_SHA2_512_256", "sha2_512": "AUTH_HMAC_SHA2_512_256", "aes_xcbc": "AUTH_AES_XCBC_96",
    "aes_cmac": "AUTH_AES_CMAC_96",
}


class _BadLine(Exception):
    """What is wrong with one line; the reader turns it into a ConfigError naming file and line."""


def _shown(text: str) -> str:
    """A field of a key file as an error may show it: a key in the wrong column must not be printed, so only what
    comes before a ':' (an algorithm name), and nothing of anything that looks like key material."""
    head = text.partition(":")[0].strip()
    if head[:2].lower() == "0x" or re.search(r"[0-9a-fA-F]{8}", head) or len(head) > 40:
        return f"<{len(text)} characters, not shown>"
    return repr(head)


def _known(value: str, names: dict, what: str) -> object:
    """The harness name of a file's algorithm name."""
    for harness, written in names.items():
        if written == value:
            return harness
    raise _BadLine(f"{what} {_shown(value)} is not one Wireshark knows; known: "
                   f"{', '.join(dict.fromkeys(names.values()))}")


# --- Wireshark's User Accessible Tables -------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One field of a table: `key` is the attribute of the keys dataclass it holds; `title` is Wireshark's."""
    key: str
    title: str
    kind: str = "text"            # "text": a quoted string; "hex": bare hex bytes
    names: dict | None = None     # for an algorithm: harness name -> Wireshark name
    size: int | None = None       # for "hex": the exact number of bytes
    by_name: bool = True          # False: read the Wireshark name as it is (the record resolves it)


@dataclass(frozen=True)
class UatTable:
    """One Wireshark table: its file name, its columns, and the keys dataclass a record is."""
    file_name: str
    title: str
    columns: tuple[Column, ...]
    record: type
    check: Callable[[dict], None] = lambda values: None    # raises _BadLine where Wireshark refuses a record
    prepare: Callable[[object], dict] = lambda keys: {f.name: getattr(keys, f.name) for f in fields(keys)}

    def parse(self, line: str) -> object:
        """The record of one line. Fields past the table's are ignored, as Wireshark ignores them (a newer
        Wireshark may have added columns)."""
        values = _uat_fields(line)
        if len(values) < len(self.columns):
            raise _BadLine(f"{len(values)} field(s), the {self.title} has {len(self.columns)}: "
                           f"{', '.join(c.title for c in self.columns)}")
        parsed = {}
        for column, (text, _quoted) in zip(self.columns, values):
            if column.kind == "hex":
                parsed[column.key] = _hex_field(text, column)
            elif column.names is not None and column.by_name:
                parsed[column.key] = _known(text, column.names, column.title)
            else:
                parsed[column.key] = text
        self.check(parsed)
        return self.record(**parsed)

    def render(self, keys) -> str:
        """One record; raises KeyError for an algorithm Wireshark has no name for."""
        values = self.prepare(keys)
        out = []
        for column in self.columns:
            value = values[column.key]
            if column.kind == "hex":
                out.append(value.hex())
            else:
                out.append(_quote(column.names[value] if column.names is not None else value))
        return ",".join(out)


_BARE_FIELD = re.compile(r'[^,\s"]*')


def _uat_fields(line: str) -> list[tuple[str, bool]]:
    """The fields of one record as Wireshark's loader (epan/uat_load.l) splits them: quoted strings (with
    backslash escapes), bare hex, or empty, separated by commas; blanks around them ignored."""
    values, position = [], 0
    while True:
        while position < len(line) and line[position] in " \t":
            position += 1
        if position < len(line) and line[position] == '"':
            end = position + 1
            while end < len(line) and line[end] != '"':
                end += 2 if line[end] == "\\" else 1
            if end >= len(line):
                raise _BadLine(f"a quoted field is not closed (it opens at column {position + 1})")
            values.append((_unescape(line[position + 1:end]), True))
            position = end + 1
        else:
            match = _BARE_FIELD.match(line, position)
            values.append((match.group(), False))
            position = match.end()
        while position < len(line) and line[position] in " \t":
            position += 1
        if position >= len(line):
            return values
        if line[position] != ",":
            raise _BadLine(f"unexpected {line[position]!r} at column {position + 1}: fields are separated by commas")
        position += 1


def _unescape(text: str) -> str:
    """uat_undquote: \\xNN, \\NNN (octal), \\", \\\\ and the C letters."""
    letters = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            following = text[i + 1]
            if following == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            if re.fullmatch(r"[0-7]{3}", text[i + 1:i + 4]):
                out.append(chr(int(text[i + 1:i + 4], 8)))
                i += 4
                continue
            out.append(letters.get(following, following))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _quote(text: str) -> str:
    """uat_esc: a quote, a backslash and anything unprintable as \\xNN."""
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in text) + '"'


def _hex_field(text: str, column: Column) -> bytes:
    text = text.strip()
    if text[:2].lower() == "0x":   # not what Wireshark writes, but what people paste
        text = text[2:]
    try:
        value = bytes.fromhex(text)
    except ValueError:
        # Never echoed: a key column holds a secret, and errors are printed (and may be logged by CI).
        raise _BadLine(f"{column.title} is not hex bytes ({len(text)} characters)") from None
    if column.size is not None and len(value) != column.size:
        raise _BadLine(f"{column.title} must be {column.size} bytes, is {len(value)}")
    return value


def _key_text(text: str, what: str) -> bytes:
    """Wireshark's ESP keys and tcpdump's secrets: "0x" and hex digits, else the text's own bytes."""
    if text[:2].lower() == "0x":
        digits = text[2:]
        if len(digits) % 2:   # Wireshark reads an odd count as if a 0 came first
            digits = "0" + digits
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise _BadLine(f"{what} is not hex after its 0x (not shown: it is a secret)") from None
    return text.encode()


def _check_ike(values: dict) -> None:
    for key, algorithm, title in (("sk_ei", "encryption", "SK_ei"), ("sk_er", "encryption", "SK_er"),
                                  ("sk_ai", "integrity", "SK_ai"), ("sk_ar", "integrity", "SK_ar")):
        wanted = IKE_KEY_LENGTHS.get(values[algorithm])
        if wanted is not None and len(values[key]) != wanted:
            raise _BadLine(f"{title} is {len(values[key])} bytes; {values[algorithm] or 'no integrity'} "
                           f"takes {wanted} (Wireshark refuses the table too)")


IKEV2 = UatTable(IKE_TABLE, "IKEv2 Decryption Table", (
    Column("ispi", "Initiator's SPI", "hex", size=SPI_SIZE),
    Column("rspi", "Responder's SPI", "hex", size=SPI_SIZE),
    Column("sk_ei", "SK_ei", "hex"),
    Column("sk_er", "SK_er", "hex"),
    Column("encryption", "Encryption algorithm", names=IKE_ENCRYPTION),
    Column("sk_ai", "SK_ai", "hex"),
    Column("sk_ar", "SK_ar", "hex"),
    Column("integrity", "Integrity algorithm", names=IKE_INTEGRITY),
), IkeSaKeys, check=_check_ike)

IKEV1 = UatTable(IKEV1_TABLE, "IKEv1 Decryption Table", (
    Column("icookie", "Initiator's COOKIE", "hex", size=SPI_SIZE),
    Column("enc_key", "Encryption Key", "hex"),
), IkeV1SaKeys)


def _esp_record(**values) -> EspSaKeys:
    """An ESP SAs record: the encryption name with the key's length gives the harness's name."""
    name, key = values["encryption"], _key_text(values["enc_key"], "Encryption Key")
    candidates = [harness for harness, written in ESP_ENCRYPTION_PAIRS if written == name]
    if not candidates:
        _known(name, {written: written for _, written in ESP_ENCRYPTION_PAIRS}, "Encryption")   # raises
    lengths = {harness: crypto.ESP_ENCRYPTION[harness].key_length for harness in candidates
               if harness in crypto.ESP_ENCRYPTION}
    chosen = next((harness for harness, length in lengths.items() if length == len(key)), None)
    if chosen is None and len(lengths) == len(candidates):
        wanted = " or ".join(str(n) for n in sorted(set(lengths.values())))
        raise _BadLine(f"{name} takes a {wanted}-byte key, the Encryption Key is {len(key)} bytes")
    chosen = chosen or next((h for h in candidates if h.endswith(f"_{len(key) * 8}")), candidates[0])
    spi_text = values["spi"].strip()
    spi = spi_text if ANY in spi_text else parse_number(spi_text)
    if spi is None or (isinstance(spi, str) and not re.fullmatch(r"\*|0[xX][0-9a-fA-F*]{8}", spi)):
        raise _BadLine(f"SPI {spi_text!r} is not a number, '*', or 0x and eight hex digits or '*'s")
    addresses = {"Src IP": values["src"].strip(), "Dest IP": values["dst"].strip()}
    for title, address in addresses.items():
        if not valid_address_pattern(address):
            raise _BadLine(f"{title} {address!r} is not an address, '*', an IPv4 address with '*' bytes, "
                           f"or a network/prefix")
        if address != ANY and (":" in address) != (values["family"] == "IPv6"):
            raise _BadLine(f"{title} {address} is not an {values['family']} address (the Protocol field)")
    src, dst = addresses.values()
    # The family matters only where no address says it; kept there, the keys equal a daemon's export elsewhere.
    family = values["family"] if (src, dst) == (ANY, ANY) else None
    auth_key = _key_text(values["auth_key"], "Authentication Key")
    wanted = ESP_AUTH_KEY_LENGTHS.get(values["integrity"])
    if auth_key and wanted and len(auth_key) != wanted:  # else every packet would read "ICV mismatch"
        raise _BadLine(f"{values['integrity']} takes a {wanted}-byte key, the Authentication Key is "
                       f"{len(auth_key)} bytes")
    return EspSaKeys(spi=spi, src=src, dst=dst, encryption=chosen, integrity=values["integrity"], enc_key=key,
                     auth_key=auth_key, family=family)


# The key lengths the RFCs give each ESP integrity algorithm (RFC 2403, 2404, 2857, 4868, 4494, 3566).
ESP_AUTH_KEY_LENGTHS = {"AUTH_HMAC_MD5_96": 16, "AUTH_HMAC_SHA1_96": 20, "AUTH_HMAC_RIPEMD160_96": 20,
                        "AUTH_HMAC_SHA2_256_96": 32, "AUTH_HMAC_SHA2_256_128": 32, "AUTH_HMAC_SHA2_384_192": 48,
                        "AUTH_HMAC_SHA2_512_256": 64, "AUTH_AES_CMAC_96": 16, "AUTH_AES_XCBC_96": 16}


def _esp_values(keys: EspSaKeys) -> dict:
    family = keys.family or ("IPv6" if ":" in keys.dst or ":" in keys.src else "IPv4")
    spi = f"0x{keys.spi:08x}" if isinstance(keys.spi, int) else keys.spi
    return {"family": family, "src": keys.src, "dst": keys.dst, "spi": spi, "encryption": keys.encryption,
            "enc_key": f"0x{keys.enc_key.hex()}", "integrity": keys.integrity,
            "auth_key": f"0x{keys.auth_key.hex()}" if keys.auth_key else ""}


ESP = UatTable(ESP_TABLE, "ESP SAs table", (
    Column("family", "Protocol", names={f: f for f in ESP_FAMILIES}),
    Column("src", "Src IP"),
    Column("dst", "Dest IP"),
    Column("spi", "SPI"),
    Column("encryption", "Encryption", names=ESP_ENCRYPTION, by_name=False),
    Column("enc_key", "Encryption Key"),
    Column("integrity", "Authentication", names=ESP_INTEGRITY),
    Column("auth_key", "Authentication Key"),
), _esp_record, prepare=_esp_values)
TABLES = {table.file_name: table for table in (IKEV2, IKEV1, ESP)}


def ike_line(keys: IkeSaKeys) -> str:
    """One IKEv2 Decryption Table record: hex fields bare, the algorithm names quoted. Raises KeyError for an
    algorithm Wireshark has no name for."""
    return IKEV2.render(keys)


def ikev1_line(keys: IkeV1SaKeys) -> str:
    """One IKEv1 Decryption Table record: the initiator's cookie and the encryption key, hex (Wireshark takes the
    cipher, the hash and g^xi/g^xr from the capture's phase 1, as the transcript does)."""
    return IKEV1.render(keys)


def esp_line(keys: EspSaKeys) -> str:
    """One ESP SA record: every field a quoted string. Raises KeyError like ike_line."""
    return ESP.render(keys)


# --- tcpdump's -E secrets -----------------------------------------------------------------------------------

TCPDUMP = "tcpdump -E secrets"
TCPDUMP_IKEV2 = "ikev2"
TCPDUMP_FILE = "file"


@dataclass(frozen=True)
class _IkeDirection:
    """One `ikev2` line: the keys of one direction of an IKE SA (I: the original initiator's SK_ei and SK_ai)."""
    initiator: bool
    ispi: bytes
    rspi: bytes
    encryption: str
    integrity: str | None
    enc_key: bytes
    auth_key: bytes


def _tcpdump_algorithm(text: str) -> tuple[str, str | None]:
    """'aes128-cbc-hmac96' -> (ENCR_AES_CBC_128, AUTH_ANY_96), as print-esp.c strips the suffixes."""
    name, integrity = text.lower(), None
    if name.endswith(TCPDUMP_HMAC96) and len(name) > len(TCPDUMP_HMAC96):
        name, integrity = name[:-len(TCPDUMP_HMAC96)], f"{ANY_INTEGRITY}96"
    if name.endswith(TCPDUMP_CBC) and len(name) > len(TCPDUMP_CBC):
        name = name[:-len(TCPDUMP_CBC)]
    if name not in TCPDUMP_ENCRYPTION:
        raise _BadLine(f"algorithm {_shown(text)} is not one tcpdump decrypts; known: "
                       f"{', '.join(n + '-cbc' if n != 'none' else n for n in TCPDUMP_ENCRYPTION)} "
                       f"(each optionally with {TCPDUMP_HMAC96})")
    return TCPDUMP_ENCRYPTION[name], integrity


def _secret(text: str, separator: str = ":") -> tuple[str, bytes]:
    algorithm, colon, secret = text.partition(separator)
    if not colon or not algorithm:
        raise _BadLine("not algorithm:secret (the secret is not shown)")
    return algorithm, _key_text(secret.rstrip(), "the secret")


def _check_length(name: str, key: bytes, lengths: dict, what: str) -> None:
    wanted = lengths.get(name)
    if wanted is not None and len(key) != wanted:
        raise _BadLine(f"{what} is {len(key)} bytes; {name} takes {wanted}")


def _esp_secret(decode: str, spi: int | str, dst: str) -> EspSaKeys:
    algorithm, key = _secret(decode)
    encryption, integrity = _tcpdump_algorithm(algorithm)
    if encryption != "ENCR_NULL":
        _check_length(encryption, key, {n: c.key_length for n, c in crypto.ESP_ENCRYPTION.items()}, "the secret")
    return EspSaKeys(spi=spi, src=ANY, dst=dst, encryption=encryption, integrity=integrity,
                     enc_key=key if encryption != "ENCR_NULL" else b"", auth_key=b"")


def _ikev2_direction(fields_: list[str]) -> _IkeDirection:
    if len(fields_) != 5:
        raise _BadLine(f"an ikev2 line has 5 fields after 'ikev2' (I|R, 0xSPIi, 0xSPIr, integrity:key, "
                       f"encryption:key), this one {len(fields_)}")
    side, ispi, rspi, integrity_text, encryption_text = fields_
    if side[:1] not in ("I", "R"):
        raise _BadLine(f"{_shown(side)} is not I (the initiator's keys) or R (the responder's)")
    spis = []
    for spi in (ispi, rspi):
        if not re.fullmatch(r"0x[0-9a-fA-F]{16}", spi):
            raise _BadLine(f"SPI {spi!r} is not 0x and 16 hex digits")
        spis.append(bytes.fromhex(spi[2:]))
    integrity_name, auth_key = _secret(integrity_text)
    if integrity_name.lower() not in TCPDUMP_INTEGRITY:
        raise _BadLine(f"integrity algorithm {_shown(integrity_name)} is not one of {', '.join(TCPDUMP_INTEGRITY)}")
    integrity = TCPDUMP_INTEGRITY[integrity_name.lower()]
    encryption_name, enc_key = _secret(encryption_text)
    encryption, _ = _tcpdump_algorithm(encryption_name)
    _check_length(encryption, enc_key, IKE_KEY_LENGTHS, "the encryption key")
    _check_length(integrity, auth_key, IKE_KEY_LENGTHS, "the integrity key")
    return _IkeDirection(side[0] == "I", spis[0], spis[1], encryption, integrity, enc_key, auth_key)


def _tcpdump_line(line: str):
    """One line as print-esp.c's esp_print_decode_onesecret reads it: an EspSaKeys, an _IkeDirection, or
    (TCPDUMP_FILE, name)."""
    first, _, rest = line.strip().partition(" ")
    if "\t" in first:
        first, _, more = first.partition("\t")
        rest = f"{more} {rest}"
    rest = rest.strip()
    if not rest:                       # one token: the secret for every SA nothing else names
        return _esp_secret(first, ANY, ANY)
    if first.lower() == TCPDUMP_FILE:
        return TCPDUMP_FILE, rest
    if first.lower() == TCPDUMP_IKEV2:
        return _ikev2_direction(rest.split())
    spi_text, at, address = first.partition("@")
    spi = parse_number(spi_text)
    if not at or spi is None:
        raise _BadLine(f"{_shown(first)} is not spi@address (e.g. 0x12345678@192.0.2.1)")
    if not valid_address_pattern(address) or ANY in address or "/" in address:
        raise _BadLine(f"{address!r} is not an IPv4 or IPv6 address")
    return _esp_secret(rest, spi, address)


def _join_directions(path: Path, directions: list[tuple[int, _IkeDirection]]) -> list[IkeSaKeys]:
    """tcpdump wants one `ikev2` line per direction; an IKE SA is both (a missing one leaves its keys empty)."""
    joined: dict[tuple[bytes, bytes], dict[bool, _IkeDirection]] = {}
    for number, direction in directions:
        sides = joined.setdefault((direction.ispi, direction.rspi), {})
        other = sides.get(not direction.initiator)
        if other is not None and (other.encryption, other.integrity) != (direction.encryption, direction.integrity):
            raise ConfigError(str(path), f"line {number}", f"this IKE SA's other ikev2 line names "
                                                           f"{other.encryption} and {other.integrity} ({TCPDUMP})")
        sides[direction.initiator] = direction
    keys = []
    for (ispi, rspi), sides in joined.items():
        i, r = sides.get(True), sides.get(False)
        some = i or r
        keys.append(IkeSaKeys(ispi, rspi, some.encryption, some.integrity, i.enc_key if i else b"",
                              r.enc_key if r else b"", i.auth_key if i else b"", r.auth_key if r else b""))
    return keys


# Writing: the first tcpdump name of each cipher that tcpdump's OpenSSL finds ("cast128" is in its man page only).
_TCPDUMP_NAMES = {"ENCR_DES": "des", "ENCR_3DES": "3des", "ENCR_BLOWFISH_128": "blowfish",
                  "ENCR_CAST_128": "cast", **{f"ENCR_AES_CBC_{b}": f"aes{b}" for b in _AES_BITS},
                  **{f"ENCR_CAMELLIA_CBC_{b}": f"camellia{b}" for b in _AES_BITS}}
_TCPDUMP_INTEGRITY_NAMES = {harness: name for name, harness in reversed(TCPDUMP_INTEGRITY.items())}


def tcpdump_lines(ike: Iterable[IkeSaKeys], esp: Iterable[EspSaKeys]) -> list[str]:
    """A secrets file for `tcpdump -E file NAME`: what tcpdump can open (CBC ciphers; no ICV or a 96-bit one,
    which it skips unchecked), and a comment for each SA it cannot."""
    lines = []
    for k in dict.fromkeys(esp):
        name, icv = _TCPDUMP_NAMES.get(k.encryption), crypto.ESP_INTEGRITY.get(k.integrity or "", (0, None))[0]
        if name is None or icv not in (0, 12) or not k.exact:
            why = (f"tcpdump has no {k.encryption}" if name is None else f"tcpdump skips only 96-bit ICVs, "
                   f"not {k.integrity}" if icv not in (0, 12) else "tcpdump names one SPI at one address")
            lines.append(f"# left out: ESP SPI {k.spi} to {k.dst}: {why}")
            continue
        lines.append(f"0x{k.spi:08x}@{k.dst} {name}-cbc{TCPDUMP_HMAC96 if icv else ''}:0x{k.enc_key.hex()}")
    for k in dict.fromkeys(ike):
        name, integrity = _TCPDUMP_NAMES.get(k.encryption), _TCPDUMP_INTEGRITY_NAMES.get(k.integrity, "none")
        if name is None or (k.ispi, k.rspi) == (UNKNOWN_SPI, UNKNOWN_SPI):
            lines.append(f"# left out: IKE SA {k.ispi.hex()}/{k.rspi.hex()}: "
                         + (f"tcpdump has no {k.encryption}" if name is None else "its SPIs are unknown"))
            continue
        for side, enc_key, auth_key in (("I", k.sk_ei, k.sk_ai), ("R", k.sk_er, k.sk_ar)):
            lines.append(f"{TCPDUMP_IKEV2} {side} 0x{k.ispi.hex()} 0x{k.rspi.hex()} {integrity}:0x{auth_key.hex()} "
                         f"{name}:0x{enc_key.hex()}")
    return lines


# --- reading files and folders ------------------------------------------------------------------------------

@dataclass
class KeySet:
    """What key files gave, and one line per file saying what (or why nothing)."""
    ike: list[IkeSaKeys] = field(default_factory=list)
    ikev1: list[IkeV1SaKeys] = field(default_factory=list)
    esp: list[EspSaKeys] = field(default_factory=list)
    report: list[str] = field(default_factory=list)

    def add(self, other: KeySet) -> None:
        self.ike += other.ike
        self.ikev1 += other.ikev1
        self.esp += other.esp
        self.report += other.report

    def counts(self) -> str:
        counted = [(len(self.ike), "IKE SA key set(s)"), (len(self.ikev1), "IKEv1 SA key(s)"),
                   (len(self.esp), "ESP SA key set(s)")]
        return ", ".join(f"{n} {what}" for n, what in counted if n) or "no keys"


class _NotAKeyFile(Exception):
    """A file (in a folder) whose first record is in no key format: skipped, with this reason."""


def _records(text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of each line that is not blank or a '#' comment (both formats' comments)."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, line.rstrip("\r\n")


def _shape(line: str) -> str:
    """Which format a line is meant to be in, from its shape: Wireshark's records are comma-separated (ESP's
    first field quoted, the IKE tables' bare hex), tcpdump's lines are not."""
    try:
        values = _uat_fields(line)
    except _BadLine:
        values = []
    if len(values) > 1:
        if values[0][1]:
            return ESP_TABLE
        return IKEV1_TABLE if len(values) == len(IKEV1.columns) else IKE_TABLE
    return TCPDUMP


FORMAT_TITLES = {IKE_TABLE: "Wireshark IKEv2 Decryption Table", IKEV1_TABLE: "Wireshark IKEv1 Decryption Table",
                 ESP_TABLE: "Wireshark ESP SAs", TCPDUMP: TCPDUMP}


def read_key_file(path: Path, *, in_folder: bool = False, depth: int = 0) -> KeySet:
    """One key file. Raises ConfigError naming the file and line; in a folder, a file whose first record is in
    no format raises _NotAKeyFile instead (the caller skips it)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(str(path), "--keys", f"cannot read it ({exc.strerror or exc})") from None
    records = list(_records(text))
    if path.name in TABLES:
        kind = path.name
    elif records:
        kind = _shape(records[0][1])
    else:
        kind = None
    found = KeySet()
    directions: list[tuple[int, _IkeDirection]] = []
    ignored = []
    for index, (number, line) in enumerate(records):
        try:
            if kind == TCPDUMP:
                record = _tcpdump_line(line)
            else:
                record = TABLES[kind].parse(line)
                if len(_uat_fields(line)) > len(TABLES[kind].columns):
                    ignored.append(number)
        except _BadLine as why:
            if in_folder and index == 0 and path.name not in TABLES:
                raise _NotAKeyFile(f"line {number}: {why}") from None
            raise ConfigError(str(path), f"line {number}", f"{why} ({FORMAT_TITLES[kind]})") from None
        if isinstance(record, IkeSaKeys):
            found.ike.append(record)
        elif isinstance(record, IkeV1SaKeys):
            found.ikev1.append(record)
        elif isinstance(record, EspSaKeys):
            found.esp.append(record)
        elif isinstance(record, _IkeDirection):
            directions.append((number, record))
        else:
            found.add(_include(path, record[1], number, depth))
    found.ike += _join_directions(path, directions)
    title = FORMAT_TITLES.get(kind, "no records")
    found.report.insert(0, f"keys: {path} ({title}): {found.counts()}")
    if ignored:
        found.report.insert(1, f"keys: {path}: line(s) {', '.join(map(str, ignored))}: more fields than the "
                               f"table has, the rest ignored (as Wireshark ignores them)")
    return found


def _include(path: Path, name: str, number: int, depth: int) -> KeySet:
    """tcpdump's `file NAME`: NAME as tcpdump opens it (from the working folder), else beside this file."""
    if depth >= NESTING:
        raise ConfigError(str(path), f"line {number}", f"'file {name}': files include each other {NESTING} deep")
    included = Path(name)
    if not included.exists() and not included.is_absolute():
        included = path.parent / name
    if not included.is_file():   # a device or a FIFO could be read forever
        problem = "not a regular file" if included.exists() else "no such file"
        raise ConfigError(str(path), f"line {number}", f"'file {name}': {problem}")
    return read_key_file(included, depth=depth + 1)


def read_key_files(paths: Iterable[Path]) -> KeySet:
    """Every key file given, a folder meaning each key file in it (not its subfolders). Raises ConfigError."""
    found = KeySet()
    for path in map(Path, paths):
        if path.is_dir():
            found.add(_read_folder(path))
        elif path.exists():   # a file, or a pipe (`--keys <(ssh box cat esp_sa)`): read to its end
            found.add(read_key_file(path))
        else:
            raise ConfigError(str(path), "--keys", "no such file or folder")
    return found


def _read_folder(folder: Path) -> KeySet:
    found = KeySet()
    entries = sorted(folder.iterdir())
    for path in entries:
        if not path.is_file():   # a subfolder; a FIFO in a folder would wait for a writer forever
            found.report.append(f"keys: {path}: {'a folder' if path.is_dir() else 'not a regular file'}, skipped")
            continue
        try:
            found.add(read_key_file(path, in_folder=True))
        except _NotAKeyFile as why:
            found.report.append(f"keys: {path}: not a key file, skipped ({why})")
    if not entries:
        found.report.append(f"keys: {folder}: an empty folder")
    return found


def key_format(text: str) -> str | None:
    """The key file format `text` is in (its first record parses), or None."""
    records = list(_records(text))
    if not records:
        return None
    kind = _shape(records[0][1])
    try:
        _tcpdump_line(records[0][1]) if kind == TCPDUMP else TABLES[kind].parse(records[0][1])
    except _BadLine:
        return None
    return FORMAT_TITLES[kind]


# --- writing a pair's keys/ folder --------------------------------------------------------------------------

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
