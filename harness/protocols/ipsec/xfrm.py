"""ESP keys from the Linux kernel's SA database, as `ip xfrm state` prints it (iproute2's xfrm_state_print):

    src 198.18.0.2 dst 198.18.0.3
        proto esp spi 0xc1b2a3f4 reqid 1 mode transport
        replay-window 0 flag af-unspec
        auth-trunc hmac(sha1) 0x7a... 96
        enc cbc(aes) 0x1f...
        sel src 198.18.0.2/32 dst 198.18.0.3/32 proto udp sport 1701

Whatever daemon negotiated an SA, the kernel holds its keys once it carries ESP: a node on kernel ESP can be
decrypted even where its daemon exports nothing (Libreswan keeps keys inside NSS). The kernel's algorithm names
(crypto API: "cbc(aes)", "hmac(sha256)", "rfc4106(gcm(aes))") map to IANA transform names here; an SA with an
algorithm not mapped, or not ESP, is left out and named in `skipped`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.protocols.ipsec.keys import EspSaKeys

# enc <name> 0x<key>: the cipher by its key length in bits
ENCRYPTION = {
    "cbc(aes)": lambda bits: f"ENCR_AES_CBC_{bits}",
    "cbc(des3_ede)": lambda bits: "ENCR_3DES",
    "cbc(des)": lambda bits: "ENCR_DES",
    "ecb(cipher_null)": lambda bits: "ENCR_NULL",
    "cipher_null": lambda bits: "ENCR_NULL",
    "rfc3686(ctr(aes))": lambda bits: f"ENCR_AES_CTR_{bits - 32}",  # the key ends with the 4-byte nonce
}
# aead <name> 0x<key> <ICV bits>: the key ends with the salt (4 bytes; 3 for CCM)
AEAD = {
    "rfc4106(gcm(aes))": lambda bits, icv: f"ENCR_AES_GCM_{icv // 8}_{bits - 32}",
    "rfc4309(ccm(aes))": lambda bits, icv: f"ENCR_AES_CCM_{icv // 8}_{bits - 24}",
    "rfc4543(gcm(aes))": lambda bits, icv: f"ENCR_NULL_AUTH_AES_GMAC_{bits - 32}",
    "rfc7539esp(chacha20,poly1305)": lambda bits, icv: "ENCR_CHACHA20_POLY1305",
}
# auth-trunc <name> 0x<key> <ICV bits> (and the older `auth <name> 0x<key>`, which truncates to 96 bits)
INTEGRITY = {
    ("hmac(md5)", 96): "AUTH_HMAC_MD5_96",
    ("hmac(sha1)", 96): "AUTH_HMAC_SHA1_96",
    ("hmac(sha256)", 96): "AUTH_HMAC_SHA2_256_96",
    ("hmac(sha256)", 128): "AUTH_HMAC_SHA2_256_128",
    ("hmac(sha384)", 192): "AUTH_HMAC_SHA2_384_192",
    ("hmac(sha512)", 256): "AUTH_HMAC_SHA2_512_256",
    ("hmac(rmd160)", 96): "AUTH_HMAC_RIPEMD160_96",
    ("cmac(aes)", 96): "AUTH_AES_CMAC_96",
}
OLD_AUTH_BITS = 96

_HEAD = re.compile(r"src (\S+) dst (\S+)\s*$")
_PROTO = re.compile(r"proto (\S+) spi (0x[0-9a-fA-F]+)")
_KEY = re.compile(r"(enc|auth|auth-trunc|aead) (\S+) 0x([0-9a-fA-F]*)(?: (\d+))?")


@dataclass
class XfrmState:
    keys: list[EspSaKeys] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per SA left out, saying why


def parse_xfrm_state(text: str) -> XfrmState:
    """Every ESP SA in `ip xfrm state` output whose algorithms are known, as EspSaKeys for its SPI and addresses."""
    found = XfrmState()
    for block in _blocks(text):
        head = _HEAD.match(block[0].strip())
        proto = next((m for m in map(_PROTO.search, block) if m), None)
        if head is None or proto is None:
            continue
        src, dst = head.groups()
        where = f"SA spi {proto[2]} {src} -> {dst}"
        if proto[1] != "esp":
            found.skipped.append(f"{where}: proto {proto[1]}, not esp")
            continue
        keys = {m[1]: m for m in (_KEY.search(line.strip()) for line in block) if m}
        try:
            found.keys.append(_esp(int(proto[2], 16), src, dst, keys))
        except ValueError as exc:
            found.skipped.append(f"{where}: {exc}")
    return found


def _blocks(text: str) -> list[list[str]]:
    """The output split into one list of lines per SA (each starts, unindented, with `src ... dst ...`)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("src "):
            blocks.append([line])
        elif blocks and line.strip():
            blocks[-1].append(line)
    return blocks


def _esp(spi: int, src: str, dst: str, keys: dict) -> EspSaKeys:
    if "aead" in keys:
        aead = keys["aead"]
        name, key = aead[2], bytes.fromhex(aead[3])
        if name not in AEAD or aead[4] is None:
            raise ValueError(f"aead {name} is not one the transcript opens")
        return EspSaKeys(spi, src, dst, AEAD[name](len(key) * 8, int(aead[4])), None, key, b"")
    if "enc" not in keys:
        raise ValueError("no enc or aead line")
    name, key = keys["enc"][2], bytes.fromhex(keys["enc"][3])
    if name not in ENCRYPTION:
        raise ValueError(f"enc {name} is not one the transcript opens")
    auth = keys.get("auth-trunc") or keys.get("auth")
    integrity, auth_key = None, b""
    if auth is not None:
        bits = int(auth[4]) if auth[1] == "auth-trunc" and auth[4] else OLD_AUTH_BITS
        integrity = INTEGRITY.get((auth[2], bits))
        if integrity is None:
            raise ValueError(f"{auth[1]} {auth[2]} ({bits} bits) is not one the transcript checks")
        auth_key = bytes.fromhex(auth[3])
    return EspSaKeys(spi, src, dst, ENCRYPTION[name](len(key) * 8), integrity, key, auth_key)
