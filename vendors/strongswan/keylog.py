"""The IKE and ESP keys charon wrote to its log, for decrypting the capture.

With `ike = 4` and `chd = 4` in its filelog, charon dumps every derived key as hex under a label:

    07[IKE] <lab|1> Sk_ei secret => 16 bytes @ 0x7f6e54001ea0
    07[IKE] <lab|1>    0: FB EC 8A 7C 33 87 22 90 9B F5 D8 67 33 46 AA 61  ...|3."....g3F.a

The rows of a dump carry the thread number of their label line; threads interleave, so rows are joined to
their label by thread. What the keys belong to comes from lines around them:

- IKE SA keys (Sk_ai, Sk_ar, Sk_ei, Sk_er; Sk_ai/Sk_ar are absent for AEAD) are named from the SA's point of
  view: "i" is whoever initiated that IKE SA, also for one created by a rekey. The algorithms are the last
  "selected proposal: IKE:..." of the same IKE SA (the `<name|N>` prefix, `ike_name = yes`), or of the same
  thread: a rekey's responder selects under the old IKE SA and dumps the new SA's keys under the new one.
- Their SPIs are not printed as such. The NAT-D input (`natd_chunk`: SPIi | SPIr | address | port) and the
  AUTH octets (which start with the IKE_SA_INIT message) carry them for an IKE SA set up by IKE_SA_INIT.
  A rekeyed IKE SA's keys are dumped without anything naming its SPIs: those keys come with zero SPIs, and
  the transcript binds them to the IKE SA on the wire whose messages they authenticate.
- CHILD SA keys ("encryption initiator key", ...) are named from the exchange that created the CHILD SA:
  this daemon initiated it if the message it parsed just before (same thread) was a response. Then
  "adding inbound/outbound ESP SA" + "SPI 0x..., src A dst B" say which SA each pair of keys went into
  (or "registering outbound ESP SA": a CHILD rekey's responder adds that one later, on another thread).

- An IKEv1 (ISAKMP) SA's encryption key is dumped as "encryption key Ka" (RFC 2409 Appendix B: SKEYID_e, or Ka
  derived from it where SKEYID_e is too short); its initiator cookie comes from the next natd_chunk of the same
  SA (CKY-I | CKY-R | address | port, RFC 3947 3.2). The cipher, the hash and the IVs come from the capture's
  phase 1, as Wireshark's ikev1_decryption_table takes them.

The PSK (`secret => ...`), the DH secret and every other dump are ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys, IkeV1SaKeys

UNKNOWN_SPI = bytes(8)

# "03:13:14 07[IKE] <lab|1> text": the time format is configurable, the thread and group are not.
LINE = re.compile(r"(?:^|\s)(?P<thread>\d+)\[(?P<group>[A-Z]+)\] (?:<(?P<sa>[^>]*)> )?(?P<text>.*)$")
DUMP = re.compile(r"^(?P<label>\S.*?) => (?P<size>\d+) bytes @ \S+\s*$")
ROW = re.compile(r"^\s*(?P<offset>\d+): (?P<hex>(?:[0-9A-Fa-f]{2}(?: |$)){1,16})")
PROPOSAL = re.compile(r"selected proposal: (?P<protocol>IKE|ESP|AH):(?P<algorithms>\S+)")
PARSED = re.compile(r"parsed \S+ (?P<kind>request|response) \d+")
# A CHILD rekey's responder "registers" the outbound SA and adds it later, on another thread, once the old SA
# is deleted: the registration already names SPI and addresses, so that is where its keys are taken.
ADDING = re.compile(r"(?:adding|registering) (?P<direction>inbound|outbound) ESP SA")
SA_LINE = re.compile(r"SPI 0x(?P<spi>[0-9a-fA-F]+), src (?P<src>\S+) dst (?P<dst>\S+)")

IKE_KEYS = {"Sk_ai secret": "ai", "Sk_ar secret": "ar", "Sk_ei secret": "ei", "Sk_er secret": "er"}
CHILD_KEYS = {"encryption initiator key": "enc_i", "encryption responder key": "enc_r",
              "integrity initiator key": "integ_i", "integrity responder key": "integ_r"}
SPI_CARRIERS = ("natd_chunk", "octets = message + nonce")

# strongSwan's algorithm names (proposal_keywords / the %N enum names) -> the scenario's IANA names.
ENCRYPTION = {
    "AES_CBC": "ENCR_AES_CBC", "AES_CTR": "ENCR_AES_CTR", "3DES_CBC": "ENCR_3DES", "NULL": "ENCR_NULL",
    "AES_GCM_8": "ENCR_AES_GCM_8", "AES_GCM_12": "ENCR_AES_GCM_12", "AES_GCM_16": "ENCR_AES_GCM_16",
    "AES_CCM_8": "ENCR_AES_CCM_8", "AES_CCM_12": "ENCR_AES_CCM_12", "AES_CCM_16": "ENCR_AES_CCM_16",
    "NULL_AES_GMAC": "ENCR_NULL_AUTH_AES_GMAC", "CAMELLIA_CBC": "ENCR_CAMELLIA_CBC",
    "CHACHA20_POLY1305": "ENCR_CHACHA20_POLY1305",
}
FIXED_KEY_SIZE = {"ENCR_CHACHA20_POLY1305", "ENCR_3DES", "ENCR_NULL"}   # IANA names carry no size
INTEGRITY = {
    "HMAC_MD5_96": "AUTH_HMAC_MD5_96", "HMAC_SHA1_96": "AUTH_HMAC_SHA1_96", "AES_XCBC_96": "AUTH_AES_XCBC_96",
    "AES_CMAC_96": "AUTH_AES_CMAC_96", "HMAC_SHA2_256_128": "AUTH_HMAC_SHA2_256_128",
    "HMAC_SHA2_384_192": "AUTH_HMAC_SHA2_384_192", "HMAC_SHA2_512_256": "AUTH_HMAC_SHA2_512_256",
    "HMAC_MD5_128": "AUTH_HMAC_MD5_128", "HMAC_SHA1_160": "AUTH_HMAC_SHA1_160",
}


@dataclass(frozen=True)
class Algorithms:
    encryption: str
    integrity: str | None


def algorithms(proposal: str) -> Algorithms | None:
    """'AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048' -> ENCR_AES_CBC_128, AUTH_HMAC_SHA2_256_128.
    None when the encryption algorithm is not one we know a name for."""
    encryption = integrity = None
    for part in proposal.split("/"):
        if part in INTEGRITY:
            integrity = INTEGRITY[part]
            continue
        base, _, bits = part.rpartition("_")
        if bits.isdigit() and base in ENCRYPTION:        # "AES_CBC_128", "AES_GCM_16_256", "CHACHA20_POLY1305_256"
            name = ENCRYPTION[base]
            encryption = name if name in FIXED_KEY_SIZE else f"{name}_{bits}"
        elif part in ENCRYPTION:                          # "3DES_CBC", "NULL"
            encryption = ENCRYPTION[part]
    return Algorithms(encryption, integrity) if encryption else None


@dataclass
class _Dump:
    label: str
    size: int
    sa: str
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _ChildInstall:
    keys: dict[str, bytes]
    algorithms: Algorithms | None
    we_initiated: bool
    direction: str | None = None
    done: set[str] = field(default_factory=set)   # directions already exported


class KeyLog:
    """Reads one charon log top to bottom; `ike` and `esp` hold what it found, in log order."""

    def __init__(self) -> None:
        self.ike: list[IkeSaKeys | IkeV1SaKeys] = []
        self.esp: list[EspSaKeys] = []
        self._dumps: dict[str, _Dump] = {}                 # thread -> dump being read
        # Last selected IKE / ESP proposal, by IKE SA and by thread (see _proposal).
        self._proposals: dict[tuple[str, str], Algorithms] = {}
        self._spis: dict[str, tuple[bytes, bytes]] = {}    # IKE SA -> SPIs seen, not yet given to keys
        self._spis_given: set[tuple[bytes, bytes]] = set()
        self._ike_keys: dict[str, dict[str, bytes]] = {}   # IKE SA -> SK_* collected so far
        self._child: dict[str, _ChildInstall] = {}         # thread -> CHILD SA keys being installed
        self._parsed: dict[str, str] = {}                  # thread -> "request"/"response" it last parsed
        self._v1_keys: dict[str, bytes] = {}               # IKE SA -> IKEv1 Ka, waiting for its cookies

    def feed(self, text: str) -> KeyLog:
        for line in text.splitlines():
            self._line(line)
        return self

    def _line(self, line: str) -> None:
        match = LINE.search(line)
        if not match:
            return
        thread, text = match["thread"], match["text"]
        # Without `ike_name = yes` nothing tells IKE SAs apart: the whole log is then one context.
        sa = _sa_number(match["sa"]) if match["sa"] is not None else ""
        dump = self._dumps.get(thread)
        if dump is not None:
            row = ROW.match(text)
            if row and int(row["offset"]) == len(dump.data):
                wanted = min(16, dump.size - len(dump.data))
                dump.data += bytes.fromhex(row["hex"].replace(" ", "")[:2 * wanted])
                if len(dump.data) >= dump.size:
                    del self._dumps[thread]
                    self._dumped(thread, dump)
                return
            del self._dumps[thread]  # a dump cut short by another line: its bytes are not trustworthy
        header = DUMP.match(text)
        if header:
            dump = _Dump(header["label"], int(header["size"]), sa)
            if dump.size == 0:
                self._dumped(thread, dump)
            else:
                self._dumps[thread] = dump
            return
        self._event(thread, sa, text)

    def _event(self, thread: str, sa: str, text: str) -> None:
        if match := PROPOSAL.search(text):
            chosen = algorithms(match["algorithms"])
            if chosen:
                kind = "IKE" if match["protocol"] == "IKE" else "CHILD"
                self._proposals[kind, f"sa {sa}"] = self._proposals[kind, f"thread {thread}"] = chosen
        elif match := PARSED.search(text):
            self._parsed[thread] = match["kind"]
        elif match := ADDING.search(text):
            if thread in self._child:
                self._child[thread].direction = match["direction"]
        elif match := SA_LINE.search(text):
            self._install(thread, int(match["spi"], 16), match["src"], match["dst"])

    def _dumped(self, thread: str, dump: _Dump) -> None:
        data = bytes(dump.data)
        if dump.label.startswith(SPI_CARRIERS):
            spis = (data[:8], data[8:16])
            # The AUTH octets come after the keys: SPIs already given must not go to a later (rekeyed) SA.
            if len(data) >= 16 and spis[1] != UNKNOWN_SPI and spis not in self._spis_given:
                self._spis[dump.sa] = spis
                self._ikev1_sa(dump.sa)
        elif dump.label == "encryption key Ka":
            self._v1_keys[dump.sa] = data
            self._ikev1_sa(dump.sa)
        elif dump.label == "Sk_d secret":
            self._ike_keys[dump.sa] = {}
        elif dump.label in IKE_KEYS and dump.sa in self._ike_keys:
            collected = self._ike_keys[dump.sa]
            collected[IKE_KEYS[dump.label]] = data
            if dump.label == "Sk_er secret":
                del self._ike_keys[dump.sa]
                self._ike_sa(dump.sa, thread, collected)
        elif dump.label in CHILD_KEYS:
            install = self._child.get(thread)
            if install is None or CHILD_KEYS[dump.label] in install.keys:  # a new CHILD SA's keys
                install = self._child[thread] = _ChildInstall(
                    {}, self._proposal("CHILD", dump.sa, thread), we_initiated=self._parsed.get(thread) == "response")
            install.keys[CHILD_KEYS[dump.label]] = data

    def _proposal(self, kind: str, sa: str, thread: str) -> Algorithms | None:
        """The proposal the keys just dumped were derived for. Usually selected under the same IKE SA (though
        maybe on another thread: a responder derives its keys when IKE_AUTH arrives). A rekey's new IKE SA is
        the exception: its responder selects the proposal under the old IKE SA and dumps the keys under the
        new one, on the same thread."""
        return self._proposals.get((kind, f"sa {sa}")) or self._proposals.get((kind, f"thread {thread}"))

    def _ike_sa(self, sa: str, thread: str, keys: dict[str, bytes]) -> None:
        chosen = self._proposal("IKE", sa, thread)
        if chosen is None or "ei" not in keys:
            return
        # The SPIs seen for this IKE SA belong to the first keys derived under it; keys derived later under
        # the same prefix (a rekey's new IKE SA) have SPIs only the wire can tell.
        ispi, rspi = self._spis.pop(sa, (UNKNOWN_SPI, UNKNOWN_SPI))
        self._spis_given.add((ispi, rspi))
        self.ike.append(IkeSaKeys(ispi=ispi, rspi=rspi, encryption=chosen.encryption,
                                  integrity=chosen.integrity if keys.get("ai") else None,
                                  sk_ei=keys["ei"], sk_er=keys["er"],
                                  sk_ai=keys.get("ai", b""), sk_ar=keys.get("ar", b"")))

    def _ikev1_sa(self, sa: str) -> None:
        """The IKEv1 SA's keys, once both its Ka and its cookies are known."""
        if sa not in self._v1_keys or sa not in self._spis:
            return
        icookie, rcookie = self._spis.pop(sa)
        self._spis_given.add((icookie, rcookie))
        self.ike.append(IkeV1SaKeys(icookie=icookie, enc_key=self._v1_keys.pop(sa)))

    def _install(self, thread: str, spi: int, src: str, dst: str) -> None:
        install = self._child.get(thread)
        if install is None or install.direction is None:
            return
        direction, install.direction = install.direction, None
        exported = any((k.spi, k.src, k.dst) == (spi, src, dst) for k in self.esp)  # registered, now added
        if install.algorithms is not None and not exported:
            # Inbound traffic comes from the peer: from the CHILD SA's responder if we initiated it.
            side = "i" if (direction == "outbound") == install.we_initiated else "r"
            self.esp.append(EspSaKeys(spi=spi, src=src, dst=dst, encryption=install.algorithms.encryption,
                                      integrity=install.algorithms.integrity,
                                      enc_key=install.keys.get(f"enc_{side}", b""),
                                      auth_key=install.keys.get(f"integ_{side}", b"")))
        install.done.add(direction)
        if install.done == {"inbound", "outbound"}:
            del self._child[thread]   # so a later "adding" on this thread can never reuse these keys


def _sa_number(prefix: str) -> str:
    """'lab|1' and '1' are the same IKE SA (the name appears once a config is chosen)."""
    return prefix.rpartition("|")[2]


def parse(log: str) -> tuple[list[IkeSaKeys | IkeV1SaKeys], list[EspSaKeys]]:
    """All IKE and ESP SA keys a charon log dumped, in log order. IKE keys whose SPIs the log does not show
    have zero SPIs (see the module docstring)."""
    keylog = KeyLog().feed(log)
    return keylog.ike, keylog.esp


def ike_keys(log: str) -> list[IkeSaKeys]:
    return parse(log)[0]


def esp_keys(log: str) -> list[EspSaKeys]:
    return parse(log)[1]
