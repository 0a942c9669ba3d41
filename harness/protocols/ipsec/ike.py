"""ISAKMP, IKEv1 and IKEv2 messages (RFC 2408, RFC 2409, RFC 7296): one declarative description, used to decode
what a capture holds and to build what the probes send.

Each payload and substructure is a scapy layer (a list of fields); the message is `Isakmp`, the header both
versions share (RFC 7296 3.1 keeps RFC 2408's) followed by the payload chain. Numbers that a registry names come
back as `Name`s -- a str (the IANA or RFC name) that also equals its number -- so that a case reads

    message = decode(data)
    message.exchange == "IKE_SA_INIT" == 34
    message.payloads[0].proposals[0].transforms[0].algorithm == "ENCR_AES_CBC_128"

and a suite asks the same of a message on the wire (`wire.IkeMessage`) or opened (`transcript.DecryptedMessage`),
which both take PayloadLookup's accessors:

    message.notify("INVALID_KE_PAYLOAD").group == "MODP_2048"        # the notify's typed data
    message.payload("KE").group, message.sa.proposals[0].transforms, message.names, message.errors

Decoding never raises. The chain and every substructure are walked by the lengths their headers give, checked
against the bytes there are: where a length overruns, a count disagrees or a field is cut short, what came before is
kept and `problems(message)` says what could not be read and why. Building fills in what the description can
compute: lengths, counts, SPI sizes, next-payload types, the "more follow" marks of proposals and transforms.

    bytes(Isakmp(ispi=spi, exchange="IKE_SA_INIT", flags="I", payloads=[SecurityAssociation(...), KeyExchange(
        group="MODP_2048", key_data=public), Nonce(nonce=n)]))

IKEv1 messages with the E flag carry their payloads encrypted: `Isakmp.encrypted_body` holds the ciphertext and
`decode_chain` reads what crypto.py opened. IKEv2's SK and SKF payloads end the chain in the clear the same way.
"""
from __future__ import annotations

import functools
import ipaddress
import struct
from typing import Callable, Iterable, Mapping

from cryptography import x509
from scapy.fields import (BitField, ByteField, ConditionalField, Field, FieldLenField, FieldListField, FlagsField,
                          IntField, IP6Field, IPField, PacketListField, ShortField, StrField, StrLenField,
                          XStrField, XStrFixedLenField)
from scapy.packet import NoPayload, Packet, Raw

from harness.protocols.ipsec import ikev1_names as v1names
from harness.protocols.ipsec import ikev2_names as v2names

HEADER_SIZE = 28                # RFC 7296 3.1, RFC 2408 3.1
GENERIC_HEADER_SIZE = 4         # next payload, critical bit and reserved bits, payload length
IKEV1, IKEV2 = 1, 2
HEADER_FLAGS = ["E", "C", "A", "I", "V", "R", "bit6", "bit7"]  # IKEv1: E C A (RFC 2408 3.1); IKEv2: I V R (3.1)
FLAG_INITIATOR, FLAG_RESPONSE = 0x08, 0x20
ADDKE1, ADDKE7 = 6, 12          # RFC 9370 2.2.2: transform types 6 to 12 are the additional key exchanges


# --- names --------------------------------------------------------------------------------------------------

class Name(str):
    """A number a registry names: the name as a string ("MODP_2048"), the number as `.number` (14). It equals
    both, and a string of the number's digits, so a case compares with whichever it has at hand. It hashes as the
    name: a set of Names and a set of names agree; a set of numbers does not."""

    def __new__(cls, text: str, number: int):
        self = super().__new__(cls, text)
        self.number = number
        return self

    def __eq__(self, other):
        if isinstance(other, bool):
            return False
        if isinstance(other, int):
            return self.number == other
        if isinstance(other, str) and not isinstance(other, Name) and other.isdigit():
            return self.number == int(other) or str.__eq__(self, other)
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __int__(self) -> int:
        return self.number

    __index__ = __int__

    def __reduce__(self):
        return Name, (str(self), self.number)


class Registry:
    """Number <-> name for one registry; a number it does not know is named by `unknown` ("ENCR_{}" names 1000
    "ENCR_1000"), and that name is read back."""

    def __init__(self, names: Mapping[int, str], unknown: str = "{}"):
        self.names = dict(names)
        self.numbers = {}
        for number, name in self.names.items():
            self.numbers.setdefault(name, number)
        self.prefix, _, self.suffix = unknown.partition("{}")

    @functools.lru_cache(maxsize=4096)
    def __call__(self, number: int) -> Name:
        name = self.names.get(number)
        return Name(f"{self.prefix}{number}{self.suffix}" if name is None else name, number)

    def number(self, value: int | str) -> int:
        """The number of a name, of a Name, or a number itself; ValueError for a name the registry cannot say."""
        if isinstance(value, Name):
            return value.number
        if isinstance(value, int):
            return value
        if value in self.numbers:
            return self.numbers[value]
        if value.isdigit():
            return int(value)
        middle = value[len(self.prefix):len(value) - len(self.suffix) if self.suffix else None]
        if value.startswith(self.prefix) and value.endswith(self.suffix) and middle.isdigit():
            return int(middle)
        raise ValueError(f"no number for {value!r}")

    def __contains__(self, name: str) -> bool:
        return name in self.numbers


EXCHANGES = {IKEV1: Registry(v1names.EXCHANGE_TYPES), IKEV2: Registry(v2names.EXCHANGE_TYPES)}
PAYLOAD_NAMES = {IKEV1: Registry(v1names.PAYLOAD_TYPES), IKEV2: Registry(v2names.PAYLOAD_TYPES)}
NOTIFY_NAMES = {IKEV1: Registry(v1names.NOTIFY_TYPES), IKEV2: Registry(v2names.NOTIFY_TYPES)}
V2_PROTOCOLS = Registry({**v2names.PROTOCOL_IDS, 4: "FC_ESP_HEADER", 5: "FC_CT_AUTHENTICATION"})
V1_PROTOCOLS = Registry(v1names.PROTOCOL_IDS)
DOI = Registry(v1names.DOMAINS_OF_INTERPRETATION)
KE_METHODS = Registry(v2names.KEY_EXCHANGE_METHODS)
# FIPS 203 table 3 (ML-KEM's parameter sets; RFC 9370 with draft-ietf-ipsecme-ikev2-mlkem): the initiator's KE
# data is the encapsulation key (384k + 32 bytes), the responder's the ciphertext (32(du k + dv) bytes).
ML_KEM_SIZES = {"ML_KEM_512": (800, 768), "ML_KEM_768": (1184, 1088), "ML_KEM_1024": (1568, 1568)}


def ml_kem_sizes(method: str) -> tuple[int, int]:
    """(encapsulation key, ciphertext) in bytes: what the initiator's and the responder's KE payload carry."""
    return ML_KEM_SIZES[method]
TRANSFORM_TYPES = Registry(v2names.TRANSFORM_TYPES, "TYPE{}")
TRANSFORM_IDS = {t: Registry(table, f"{v2names.TRANSFORM_TYPES[t]}_{{}}")
                 for t, table in v2names.TRANSFORM_IDS.items()}
V1_TRANSFORM_IDS = {p: Registry(table, f"{v1names.PROTOCOL_IDS[p].removeprefix('PROTO_')}_{{}}")
                    for p, table in v1names.TRANSFORM_IDS.items()}
IP_PROTOCOLS = Registry({0: "any", 1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6",
                          115: "L2TP", 132: "SCTP"})


def transform_ids(transform_type: int) -> Registry:
    """IKEv2 transform IDs of one type; an unassigned type names its IDs "TYPE200_1"."""
    known = TRANSFORM_IDS.get(transform_type)
    return known if known is not None else _unknown_type_ids(transform_type)


@functools.lru_cache(maxsize=64)
def _unknown_type_ids(transform_type: int) -> Registry:
    return Registry({}, f"TYPE{transform_type}_{{}}")


# Every payload and notify name either version has: a misspelt name is an error, never a silent "not there".
KNOWN_PAYLOADS = frozenset(v1names.PAYLOAD_TYPES.values()) | frozenset(v2names.PAYLOAD_TYPES.values())
KNOWN_NOTIFIES = frozenset(v1names.NOTIFY_TYPES.values()) | frozenset(v2names.NOTIFY_TYPES.values())
KNOWN_EXCHANGES = frozenset(v1names.EXCHANGE_TYPES.values()) | frozenset(v2names.EXCHANGE_TYPES.values())


def check_known(name: str, known: Iterable[str], what: str) -> None:
    """A misspelt name would otherwise quietly match nothing, and "no such notify" would pass a test."""
    if name not in known and not str(name).isdigit():
        raise ValueError(f"unknown {what} {name!r}")


# --- fields -------------------------------------------------------------------------------------------------

def _note(pkt: Packet, text: str) -> None:
    """Say on the layer being read what could not be read; problems() collects these."""
    pkt.__dict__.setdefault("_notes", []).append(text)


class NamedField(Field):
    """A number on the wire that a registry names: `layer.field` is a Name; a name or a number may be given."""
    __slots__ = ["registry"]

    def __init__(self, name: str, default, registry: Registry | Callable[[Packet], Registry], fmt: str = "B"):
        self.registry = registry
        super().__init__(name, default, fmt)

    def _names(self, pkt) -> Registry:
        return self.registry if isinstance(self.registry, Registry) else self.registry(pkt)

    def i2h(self, pkt, x):
        return None if x is None else self._names(pkt)(x)

    def any2i(self, pkt, x):
        if x is None or isinstance(x, int) and not isinstance(x, Name):
            return x
        return self._names(pkt).number(x)

    h2i = any2i

    def i2repr(self, pkt, x):
        return "None" if x is None else str(self.i2h(pkt, x))


class NamedBitField(BitField):
    """NamedField for a number narrower than a byte boundary (an attribute type after its format bit)."""
    __slots__ = ["registry"]

    def __init__(self, name: str, default, size: int, registry: Registry | Callable[[Packet], Registry]):
        self.registry = registry
        super().__init__(name, default, size)

    _names = NamedField._names
    i2h = NamedField.i2h
    any2i = NamedField.any2i
    h2i = NamedField.any2i
    i2repr = NamedField.i2repr


class Sized(StrLenField):
    """Bytes whose length another field gives; a length beyond the bytes there are is noted, not silently cut."""

    def getfield(self, pkt, s):
        size = self.length_from(pkt)
        if size > len(s):
            _note(pkt, f"{self.name.replace('_', ' ')} of {size} byte(s) runs past the end ({len(s)} left)")
        return s[size:], self.m2i(pkt, s[:size])


def _generic_length(data: bytes) -> int:
    return struct.unpack_from("!H", data, 2)[0]


def _attribute_length(data: bytes) -> int:
    """RFC 2408 3.3, RFC 7296 3.3.5: TV (the AF bit set) is 4 bytes; TLV is 4 and the length it gives."""
    return 4 if data[0] & 0x80 else 4 + struct.unpack_from("!H", data, 2)[0]


class Items(PacketListField):
    """Substructures in a row (proposals, transforms, attributes, traffic selectors): the size of each is read from
    its own header (`size_of`), within the rest of the layer, and up to the count the layer announces
    (`count_from`). Where a size overruns or a count disagrees with the bytes, the walk stops with a note; what came
    before is kept. `more` is the value of the "more follow" byte (2 for proposals, 3 for transforms; RFC 7296
    3.3.1, RFC 2408 3.5): filled in when building, checked when reading."""
    __slots__ = ["choose", "what", "size_of", "header", "more"]

    def __init__(self, name: str, cls, *, what: str, size_of: Callable[[bytes], int] = _generic_length,
                 header: int = GENERIC_HEADER_SIZE, count_from=None, more: int | None = None):
        super().__init__(name, [], cls if isinstance(cls, type) else None, count_from=count_from)
        self.choose = cls
        self.what, self.size_of, self.header, self.more = what, size_of, header, more

    def _class(self, pkt, data: bytes):
        return self.choose if isinstance(self.choose, type) else self.choose(pkt, data)

    def getfield(self, pkt, s):
        count = self.count_from(pkt) if self.count_from is not None else None
        items, at, broken = [], 0, False
        while at < len(s) and (count is None or len(items) < count):
            number, left = len(items) + 1, len(s) - at
            if left < self.header:
                _note(pkt, f"{self.what} {number}: {left} byte(s) left, its header needs {self.header}")
                broken = True
                break
            size = self.size_of(s[at:])
            if size < self.header:
                _note(pkt, f"{self.what} {number}: length {size}, less than its {self.header}-byte header")
                broken = True
                break
            if size > left:
                _note(pkt, f"{self.what} {number}: length {size} runs past the end ({left} byte(s) left)")
                broken = True
                break
            data = s[at:at + size]
            try:
                item = self._class(pkt, data)(data, _parent=pkt)
            except Exception as exc:   # a field cut short inside the item: keep its bytes, say why
                item = Raw(data)
                _note(pkt, f"{self.what} {number}: unreadable ({type(exc).__name__}: {exc})")
            items.append(item)
            at += size
        if not broken:
            if count is not None and len(items) < count:
                _note(pkt, f"{count} {self.what}s announced, {len(items)} found")
            elif at < len(s):
                _note(pkt, f"{len(s) - at} byte(s) after the last {self.what}")
            elif self.more is not None:
                for number, item in enumerate(items, 1):
                    mark = item.getfieldval("more") if isinstance(item, Packet) and "more" in item.fieldtype else None
                    wanted = 0 if number == len(items) else self.more
                    if mark is not None and mark != wanted:
                        _note(pkt, f"{self.what} {number} is marked {mark}, {wanted} was due "
                                   f"({'the last one' if wanted == 0 else 'more follow'})")
        return b"", items        # what follows a break is not read: the note says so

    def addfield(self, pkt, s, val):
        out = []
        for number, item in enumerate(val or (), 1):
            if self.more is not None and "more" in item.fieldtype and item.getfieldval("more") is None:
                item = item.copy()
                item.more = 0 if number == len(val) else self.more
            out.append(bytes(item))
        return s + b"".join(out)


def _fill_length(pkt: bytes, pay: bytes, at: int, fmt: str = "!H") -> bytes:
    """The layer with its length field (at `at`) set to its size, payload included; then the payload."""
    size = struct.calcsize(fmt)
    return pkt[:at] + struct.pack(fmt, len(pkt) + len(pay)) + pkt[at + size:] + pay


def _hex(data: bytes, shown: int = 16) -> str:
    return data[:shown].hex() + ("..." if len(data) > shown else "")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _address(data: bytes) -> str:
    return str(ipaddress.ip_address(data)) if len(data) in (4, 16) else data.hex()


class Layer(Packet):
    """What every layer here shares: read from exactly its own bytes (the walks cut them), nothing after it is a
    scapy payload unless a layer says so."""

    def extract_padding(self, s):
        return b"", s

    def describe(self) -> str:
        return self.name


# --- substructures: attributes ------------------------------------------------------------------------------

class Attribute(Layer):
    """A data attribute (RFC 2408 3.3, RFC 7296 3.3.5): the AF bit set is Type/Value, the value in two bytes;
    clear, Type/Length/Value. Subclasses say which registry names the type and, per type, the values."""
    name = "Attribute"
    types = Registry({})
    values: dict[int, Registry] = {}
    numeric: frozenset[int] = frozenset()    # TLV types whose value is a number (a lifetime, a key length)
    fields_desc = [
        BitField("af", 1, 1),
        NamedBitField("type", 0, 15, lambda p: p.types),
        ConditionalField(ShortField("tv_value", 0), lambda p: p.af),
        ConditionalField(FieldLenField("length", None, length_of="data"), lambda p: not p.af),
        ConditionalField(Sized("data", b"", length_from=lambda p: p.length), lambda p: not p.af),
    ]

    @property
    def value(self):
        """The value as it means: a Name where the attribute's values are named, a number for TV and numeric
        TLV attributes, else the bytes."""
        number = int(self.type)
        if self.af:
            raw: int | bytes = self.tv_value
        else:
            data = self.data or b""
            if number not in self.values and number not in self.numeric or not 0 < len(data) <= 8:
                return data
            raw = int.from_bytes(data, "big")
        names = self.values.get(number)
        return names(raw) if names is not None else raw

    @property
    def shown(self) -> str:
        value = self.value
        return _hex(value) if isinstance(value, bytes) else str(value)

    def describe(self) -> str:
        return f"{self.type}={self.shown}"


def _values(table: Mapping[int, Mapping[int, str]]) -> dict[int, Registry]:
    return {number: Registry(names) for number, names in table.items()}


class TransformAttribute(Attribute):
    """IKEv2 transform attributes (RFC 7296 3.3.5): Key Length is the only one."""
    name = "IKEv2 Transform Attribute"
    types = Registry({14: "Key Length"})
    numeric = frozenset({14})


class IkeAttribute(Attribute):
    """IKEv1 phase 1 attributes (RFC 2409 Appendix A)."""
    name = "IKE Attribute"
    types = Registry(v1names.IKE_ATTRIBUTES)
    values = _values(v1names.IKE_ATTRIBUTE_VALUES)
    numeric = frozenset({12, 14, 15})


class IpsecAttribute(Attribute):
    """IKEv1 phase 2 attributes (RFC 2407 4.5)."""
    name = "IPsec Attribute"
    types = Registry(v1names.IPSEC_ATTRIBUTES)
    values = _values(v1names.IPSEC_ATTRIBUTE_VALUES)
    numeric = frozenset({2, 6, 7, 8, 12})


def _cfg_value(number: int, data: bytes, addresses: frozenset[int], text: frozenset[int], version: int):
    """A configuration attribute's value as it means (RFC 7296 3.15.1; draft-ietf-ipsec-isakmp-mode-cfg 3.3)."""
    if not data:
        return ""
    if number in addresses and len(data) in (4, 16):
        return str(ipaddress.ip_address(data))
    if number in addresses and len(data) == 17:                        # IPv6 address and prefix length
        return f"{ipaddress.ip_address(data[:16])}/{data[16]}"
    if number == 13 and len(data) % 8 == 0:                            # IPv4 subnets: address and netmask
        return " ".join(str(ipaddress.ip_network(f"{ipaddress.ip_address(data[i:i + 4])}/"
                                                 f"{ipaddress.ip_address(data[i + 4:i + 8])}", strict=False))
                        for i in range(0, len(data), 8))
    if number == 15 and len(data) % 17 == 0:                           # IPv6 subnets: address and prefix length
        return " ".join(f"{ipaddress.ip_address(data[i:i + 16])}/{data[i + 16]}" for i in range(0, len(data), 17))
    if number == 14 and len(data) % 2 == 0:                            # SUPPORTED_ATTRIBUTES
        names = CFG_V1_TYPES if version == IKEV1 else CFG_V2_TYPES
        return " ".join(names(int.from_bytes(data[i:i + 2], "big") & 0x7FFF) for i in range(0, len(data), 2))
    if number in text:
        return _text(data)
    if version == IKEV1 and number == 5 and len(data) == 4:            # INTERNAL_ADDRESS_EXPIRY, seconds
        return int.from_bytes(data, "big")
    return data


CFG_V1_TYPES = Registry(v1names.CFG_ATTRIBUTES)
CFG_V2_TYPES = Registry(v2names.CFG_ATTRIBUTES)


class ModeConfigAttribute(Attribute):
    """Mode Config, XAUTH and Unity attributes in IKEv1's Attribute payload."""
    name = "Mode Config Attribute"
    types = CFG_V1_TYPES
    values = _values(v1names.CFG_ATTRIBUTE_VALUES)

    @property
    def value(self):
        number = int(self.type)
        if self.af:
            names = self.values.get(number)
            return names(self.tv_value) if names is not None else self.tv_value
        return _cfg_value(number, self.data or b"", v1names.CFG_ADDRESSES, v1names.CFG_TEXT, IKEV1)

    def describe(self) -> str:
        shown = self.shown
        return f"{self.type}={shown}" if shown else str(self.type)


class ConfigurationAttribute(Layer):
    """IKEv2 configuration attribute (RFC 7296 3.15.1): a reserved bit, the 15-bit type, a length, the value."""
    name = "IKEv2 Configuration Attribute"
    fields_desc = [BitField("reserved", 0, 1), NamedBitField("type", 0, 15, CFG_V2_TYPES),
                   FieldLenField("length", None, length_of="data"),
                   Sized("data", b"", length_from=lambda p: p.length)]

    @property
    def value(self):
        return _cfg_value(int(self.type), self.data or b"", frozenset({1, 2, 3, 4, 6, 8, 10, 12, 20, 21}),
                          frozenset({7, 25}), IKEV2)

    def describe(self) -> str:
        value = self.value
        shown = _hex(value) if isinstance(value, bytes) else str(value)
        return f"{self.type}={shown}" if shown else str(self.type)


# --- substructures: transforms, proposals, traffic selectors ------------------------------------------------

class Transform(Layer):
    """IKEv2 transform substructure (RFC 7296 3.3.2)."""
    name = "IKEv2 Transform"
    fields_desc = [
        ByteField("more", None), ByteField("reserved", 0), ShortField("length", None),
        NamedField("type", 1, TRANSFORM_TYPES, "B"), ByteField("reserved2", 0),
        NamedField("id", 0, lambda p: transform_ids(p.getfieldval("type") or 0), "H"),
        Items("attributes", TransformAttribute, what="attribute", size_of=_attribute_length),
    ]

    def post_build(self, pkt, pay):
        return _fill_length(pkt, pay, 2) if self.length is None else pkt + pay

    @property
    def key_length(self) -> int | None:
        return next((a.value for a in self.attributes if isinstance(a, Attribute) and a.type == 14), None)

    @property
    def algorithm(self) -> str:
        """The transform as the scenario names it: the ID's name with the key length appended
        ("ENCR_AES_CBC_128", "MODP_2048", "NO_ESN", "ENCR_1000" for an ID no name is known for); an additional
        key exchange (RFC 9370) with its type, which says which round it is ("ADDKE1=ML_KEM_768")."""
        key_length = self.key_length
        name = f"{self.id}_{key_length}" if key_length is not None else str(self.id)
        return f"{self.type}={name}" if ADDKE1 <= int(self.type) <= ADDKE7 else name

    def describe(self) -> str:
        return self.algorithm


# Building a transform before it is in a proposal: any protocol's transform name (they have prefixes) is read.
V1_ANY_TRANSFORM = Registry({n: name for table in reversed(list(v1names.TRANSFORM_IDS.values()))
                             for n, name in table.items()})
V1_ANY_TRANSFORM.numbers = {name: n for table in v1names.TRANSFORM_IDS.values() for n, name in table.items()}


def _v1_transform_ids(pkt: Packet) -> Registry:
    parent = pkt.parent
    if not isinstance(parent, Packet):
        return V1_ANY_TRANSFORM
    protocol = int(parent.getfieldval("protocol") or 0)
    return V1_TRANSFORM_IDS.get(protocol) or _unknown_type_ids(0)


def _v1_attributes(pkt: Packet, _data: bytes = b""):
    parent = pkt.parent
    protocol = int(parent.getfieldval("protocol") or 0) if isinstance(parent, Packet) else v1names.PROTO_ISAKMP
    return IkeAttribute if protocol == v1names.PROTO_ISAKMP else IpsecAttribute


class V1Transform(Layer):
    """ISAKMP transform payload (RFC 2408 3.6): its attributes carry the algorithms (RFC 2409 Appendix A for
    phase 1, RFC 2407 4.5 for phase 2), its ID names the protocol's transform (KEY_IKE, ESP_AES-CBC)."""
    name = "ISAKMP Transform"
    fields_desc = [
        ByteField("more", None), ByteField("reserved", 0), ShortField("length", None),
        ByteField("number", 1), NamedField("id", 1, _v1_transform_ids, "B"), ShortField("reserved2", 0),
        Items("attributes", _v1_attributes, what="attribute", size_of=_attribute_length),
    ]

    def post_build(self, pkt, pay):
        return _fill_length(pkt, pay, 2) if self.length is None else pkt + pay

    def attribute(self, name: str):
        """The value of the first attribute of this type ("Encryption Algorithm", "Key Length"), or None."""
        return next((a.value for a in self.attributes if isinstance(a, Attribute) and a.type == name), None)

    @property
    def attribute_values(self) -> dict[str, object]:
        return {str(a.type): a.value for a in self.attributes if isinstance(a, Attribute)}

    @property
    def key_length(self) -> int | None:
        return self.attribute("Key Length")

    @property
    def algorithm(self) -> str:
        key_length = self.key_length
        return f"{self.id}_{key_length}" if key_length is not None else str(self.id)

    def describe(self) -> str:
        attributes = ", ".join(a.describe() for a in self.attributes if isinstance(a, Attribute))
        return f"#{self.number} {self.id}({attributes})" if attributes else f"#{self.number} {self.id}"


class Proposal(Layer):
    """IKEv2 proposal substructure (RFC 7296 3.3.1)."""
    name = "IKEv2 Proposal"
    protocols = V2_PROTOCOLS
    transform_class: type = Transform
    fields_desc = [
        ByteField("more", None), ByteField("reserved", 0), ShortField("length", None),
        ByteField("number", 1), NamedField("protocol", 1, lambda p: p.protocols, "B"),
        FieldLenField("spi_size", None, length_of="spi", fmt="B"),
        FieldLenField("transform_count", None, count_of="transforms", fmt="B"),
        Sized("spi", b"", length_from=lambda p: p.spi_size),
        Items("transforms", lambda p, _data: p.transform_class, what="transform", count_from=lambda p:
              p.transform_count, more=3),
    ]

    def post_build(self, pkt, pay):
        return _fill_length(pkt, pay, 2) if self.length is None else pkt + pay

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Each transform as the scenario names it ("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", "MODP_2048")."""
        return tuple(t.algorithm for t in self.transforms if isinstance(t, (Transform, V1Transform)))

    def describe(self) -> str:
        spi = [f"spi=0x{self.spi.hex()}"] if self.spi else []
        return " ".join([f"{self.protocol}:", *self.algorithms, *spi])


class V1Proposal(Proposal):
    """ISAKMP proposal payload (RFC 2408 3.5): the layout of IKEv2's, its transforms alternatives to each other."""
    name = "ISAKMP Proposal"
    protocols = V1_PROTOCOLS
    transform_class = V1Transform

    def describe(self) -> str:
        spi = f" spi=0x{self.spi.hex()}" if self.spi else ""
        transforms = " or ".join(t.describe() for t in self.transforms if isinstance(t, V1Transform))
        return f"#{self.number} {self.protocol}{spi}: {transforms}"


TS_TYPES = Registry(v2names.TS_TYPES)


class TrafficSelector(Layer):
    """IKEv2 traffic selector (RFC 7296 3.13.1): an address range, a protocol and a port range."""
    name = "IKEv2 Traffic Selector"
    fields_desc = [
        NamedField("ts_type", 7, TS_TYPES, "B"), NamedField("ip_protocol", 0, IP_PROTOCOLS, "B"),
        ShortField("length", None), ShortField("start_port", 0), ShortField("end_port", 65535),
        Sized("addresses", b"", length_from=lambda p: max((p.length or 0) - 8, 0)),
    ]

    def post_build(self, pkt, pay):
        return _fill_length(pkt, pay, 2) if self.length is None else pkt + pay

    def _range(self) -> tuple[str, str]:
        data = self.addresses or b""
        if self.ts_type in (v2names.TS_IPV4_ADDR_RANGE, v2names.TS_IPV6_ADDR_RANGE) and len(data) in (8, 32):
            half = len(data) // 2
            return str(ipaddress.ip_address(data[:half])), str(ipaddress.ip_address(data[half:]))
        return data.hex(), data.hex()

    @property
    def start(self) -> str:
        return self._range()[0]

    @property
    def end(self) -> str:
        return self._range()[1]

    def networks(self) -> tuple[str, ...]:
        """The range as CIDR blocks, e.g. ("198.19.1.0/24",)."""
        try:
            first, last = ipaddress.ip_address(self.start), ipaddress.ip_address(self.end)
            return tuple(str(n) for n in ipaddress.summarize_address_range(first, last))
        except (ValueError, TypeError):
            return ()

    def describe(self) -> str:
        start, end = self._range()
        text = start if start == end else f"{start}-{end}"
        if self.ip_protocol != 0:
            text += f" proto={self.ip_protocol}"
        if (self.start_port, self.end_port) != (0, 65535):
            ports = self.start_port if self.start_port == self.end_port else f"{self.start_port}-{self.end_port}"
            text += f" port={ports}"
        return text


# --- payloads -----------------------------------------------------------------------------------------------

def _generic() -> list:
    """The generic payload header (RFC 7296 3.2, RFC 2408 3.2): the C bit is IKEv2's (IKEv1 keeps it reserved)."""
    return [ByteField("next_payload", None), BitField("critical", 0, 1), BitField("reserved", 0, 7),
            ShortField("length", None)]


PAYLOAD_CLASSES: dict[tuple[int, int], type] = {}


def _payload(version: int, number: int):
    def register(cls):
        cls.version, cls.type_number = version, number
        cls.kind = PAYLOAD_NAMES[version](number)
        PAYLOAD_CLASSES[(version, number)] = cls
        return cls
    return register


class Payload(Layer):
    """A payload: the generic header, then what its type says."""
    name = "IKE payload"
    version = IKEV2
    type_number = 0
    kind: str = "?"
    fields_desc = _generic()

    def post_build(self, pkt, pay):
        return _fill_length(pkt, pay, 2) if self.length is None else pkt + pay

    @property
    def body(self) -> bytes:
        """The payload's bytes after the generic header."""
        return bytes(self)[GENERIC_HEADER_SIZE:]

    def describe(self) -> str:
        return self.kind


class Opaque(Payload):
    """A payload shown by name only: a type no layer reads (GSPM, group key payloads) or no registry knows."""
    name = "IKE payload (opaque)"
    fields_desc = _generic() + [StrField("data", b"")]

    @classmethod
    def of(cls, number: int, data: bytes = b"", *, critical: bool = False, version: int = IKEV2) -> Opaque:
        """A payload of type `number` (which may be one no one assigned), for a probe to send."""
        layer = cls(critical=int(critical), data=data)
        layer.set_type(number, version)
        return layer

    def set_type(self, number: int, version: int) -> None:
        self.type_number, self.version, self.kind = number, version, PAYLOAD_NAMES[version](number)


# IKEv2 ------------------------------------------------------------------------------------------------------

@_payload(IKEV2, 33)
class SecurityAssociation(Payload):
    """RFC 7296 3.3: proposals, each with its transforms."""
    name = "IKEv2 SA"
    proposal_class: type = Proposal
    fields_desc = _generic() + [
        Items("proposals", lambda p, _data: p.proposal_class, what="proposal", more=2)]

    def describe(self) -> str:
        return " ".join([str(self.kind), " | ".join(p.describe() for p in self.proposals if isinstance(p, Proposal))
                         or "(no proposal)"])


@_payload(IKEV2, 34)
class KeyExchange(Payload):
    """RFC 7296 3.4: the group (Key Exchange Method) and the public value."""
    name = "IKEv2 KE"
    fields_desc = _generic() + [NamedField("group", 0, KE_METHODS, "H"), ShortField("reserved2", 0),
                                XStrField("key_data", b"")]

    def describe(self) -> str:
        """"KE ML_KEM_768 1184 bytes": the size says which half of a KEM it is (ML_KEM_SIZES)."""
        return f"{self.kind} {self.group} {len(self.key_data or b'')} bytes"


ID_TYPES = Registry(v2names.ID_TYPES)


@_payload(IKEV2, 35)
class IDi(Payload):
    """RFC 7296 3.5: the identity's type and its data."""
    name = "IKEv2 Identification"
    fields_desc = _generic() + [NamedField("id_type", 2, ID_TYPES, "B"), XStrFixedLenField("reserved2", b"\0" * 3, 3),
                                XStrField("id_data", b"")]

    @property
    def value(self) -> str:
        data, id_type = self.id_data or b"", int(self.id_type)
        if id_type in (v2names.ID_FQDN, v2names.ID_RFC822_ADDR):
            return _text(data)
        if id_type in (v2names.ID_IPV4_ADDR, v2names.ID_IPV6_ADDR) and len(data) in (4, 16):
            return str(ipaddress.ip_address(data))
        if id_type == v2names.ID_NULL:
            return ""
        return data[:32].hex() + ("..." if len(data) > 32 else "")

    def describe(self) -> str:
        return f"{self.kind} {self.id_type} {self.value}".rstrip()



@_payload(IKEV2, 36)
class IDr(IDi):
    pass


CERT_ENCODINGS = Registry(v2names.CERT_ENCODINGS)


def _subject(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return "(unparsable)"


@_payload(IKEV2, 37)
class Certificate(Payload):
    """RFC 7296 3.6: the encoding and the certificate."""
    name = "IKEv2 CERT"
    fields_desc = _generic() + [NamedField("encoding", 4, CERT_ENCODINGS, "B"), XStrField("cert_data", b"")]

    @property
    def subject(self) -> str | None:
        return _subject(self.cert_data or b"") if self.encoding == v2names.CERT_X509_SIGNATURE else None

    def describe(self) -> str:
        return " ".join(filter(None, [self.kind, self.encoding, self.subject, f"{len(self.cert_data or b'')} bytes"]))


@_payload(IKEV2, 38)
class CertificateRequest(Payload):
    """RFC 7296 3.7: the encoding and the SHA-1 hashes of the public keys of the CAs asked for."""
    name = "IKEv2 CERTREQ"
    fields_desc = _generic() + [NamedField("encoding", 4, CERT_ENCODINGS, "B"), XStrField("authorities_data", b"")]

    @property
    def authorities(self) -> int:
        return len(self.authorities_data or b"") // 20

    def describe(self) -> str:
        return f"{self.kind} {self.encoding} CAs={self.authorities}"


AUTH_METHODS = Registry(v2names.AUTH_METHODS, "method-{}")


def _oids(der: bytes) -> list[str | None]:
    """The object identifiers in a DER blob, in order (enough for an AlgorithmIdentifier and its parameters); None
    last where one is cut short."""
    found: list[str | None] = []
    i = 0
    while i + 2 <= len(der):
        tag, length = der[i], der[i + 1]
        if tag == 0x06 and length < 0x80 and i + 2 + length <= len(der) and length:
            arcs, value = [], 0
            for byte in der[i + 2:i + 2 + length]:
                value = value << 7 | byte & 0x7F
                if not byte & 0x80:
                    arcs.append(value)
                    value = 0
            if not arcs or value:   # the last byte still says "more follows": cut short
                return found + [None]
            first = min(arcs[0] // 40, 2)
            found.append(".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]])))
            i += 2 + length
        elif tag in (0x30, 0xA0, 0xA1, 0xA2) and length < 0x80:   # constructed: look inside
            i += 2
        else:
            i += 2 + (length if length < 0x80 else 0)
    return found


@_payload(IKEV2, 39)
class Authentication(Payload):
    """RFC 7296 3.8: the method and the authentication data (RFC 7427: an AlgorithmIdentifier first)."""
    name = "IKEv2 AUTH"
    fields_desc = _generic() + [NamedField("method", 2, AUTH_METHODS, "B"),
                                XStrFixedLenField("reserved2", b"\0" * 3, 3), XStrField("auth_data", b"")]

    def post_dissect(self, s):
        data = self.auth_data or b""
        if self.method == v2names.AUTH_DIGITAL_SIGNATURE:
            if not data or len(data) < 1 + data[0]:
                _note(self, "RFC 7427 3: the AlgorithmIdentifier runs past the authentication data")
            elif None in _oids(data[1:1 + data[0]]):
                _note(self, "RFC 7427 3: an object identifier in the AlgorithmIdentifier is cut short")
        return s

    @property
    def signature(self) -> str | None:
        """For a digital-signature (RFC 7427 3): the signature algorithm, RSASSA-PSS with its hash."""
        data = self.auth_data or b""
        if self.method != v2names.AUTH_DIGITAL_SIGNATURE or not data or len(data) < 1 + data[0]:
            return None
        oids = [o for o in _oids(data[1:1 + data[0]]) if o is not None]
        if not oids:
            return None
        name = v2names.SIGNATURE_ALGORITHMS.get(oids[0], oids[0])
        hashes = [v2names.HASH_ALGORITHMS[o] for o in oids[1:] if o in v2names.HASH_ALGORITHMS]
        return f"{name}({hashes[0]})" if oids[0] == v2names.RSASSA_PSS and hashes else name

    def describe(self) -> str:
        return " ".join(filter(None, [self.kind, self.method, self.signature]))


@_payload(IKEV2, 40)
class Nonce(Payload):
    """RFC 7296 3.9."""
    name = "IKEv2 Nonce"
    fields_desc = _generic() + [XStrField("nonce", b"")]

    def describe(self) -> str:
        return f"{self.kind} {len(self.nonce or b'')} bytes"


# Notify data, typed where the RFC gives it a structure: (version, notify type) -> layer.
NOTIFY_DATA: dict[tuple[int, int], type] = {}
DATA_FIELDS: set[str] = set()


def _data(version: int, *types: int, size: tuple[int, int | None] = (0, None), even: bool = False):
    def register(cls):
        cls.size, cls.even = size, even
        for number in types:
            NOTIFY_DATA[(version, number)] = cls
        DATA_FIELDS.update(f.name for f in cls.fields_desc)
        DATA_FIELDS.update(getattr(cls, "properties", ()))
        return cls
    return register


class NotifyData(Layer):
    """The data of a notify whose type gives it a structure; chosen only when the data has a size it allows."""
    name = "Notify data"
    size: tuple[int, int | None] = (0, None)
    even = False
    properties: tuple[str, ...] = ()

    @classmethod
    def fits(cls, size: int) -> bool:
        low, high = cls.size
        return low <= size and (high is None or size <= high) and (not cls.even or size % 2 == 0)

    def summary(self) -> str:
        return " ".join(str(self.getfieldval(f.name)) for f in self.fields_desc)


@_data(IKEV2, 17, size=(2, 2))
class GroupData(NotifyData):
    """INVALID_KE_PAYLOAD (RFC 7296 3.10.1): the Key Exchange Method the responder wants."""
    fields_desc = [NamedField("group", 0, KE_METHODS, "H")]

    def summary(self) -> str:
        return str(self.group)


@_data(IKEV2, 1, size=(1, 1))
class PayloadTypeData(NotifyData):
    """UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 3.10.1): the one-octet type of the payload refused."""
    fields_desc = [NamedField("payload_type", 0, PAYLOAD_NAMES[IKEV2], "B")]

    def summary(self) -> str:
        return str(self.payload_type)


@_data(IKEV2, 5, size=(1, 1))
class VersionData(NotifyData):
    """INVALID_MAJOR_VERSION: the highest version the sender supports."""
    fields_desc = [BitField("major_version", 2, 4), BitField("minor_version", 0, 4)]

    def summary(self) -> str:
        return f"{self.major_version}.{self.minor_version}"


@_data(IKEV2, 9, size=(4, 4))
class MessageIdData(NotifyData):
    """INVALID_MESSAGE_ID: the message ID refused."""
    fields_desc = [IntField("invalid_message_id", 0)]


@_data(IKEV2, 11, size=(1, None))
class SpiData(NotifyData):
    """INVALID_SPI: the SPI that was not recognised."""
    fields_desc = [XStrField("invalid_spi", b"")]

    def summary(self) -> str:
        return f"0x{(self.invalid_spi or b'').hex()}"


@_data(IKEV2, 16385, size=(4, 4))
class WindowSizeData(NotifyData):
    """SET_WINDOW_SIZE (RFC 7296 2.3)."""
    fields_desc = [IntField("window_size", 1)]


@_data(IKEV2, 16387, size=(3, 3))
class IpcompData(NotifyData):
    """IPCOMP_SUPPORTED (RFC 7296 3.10.1): the CPI and the IPComp transform."""
    fields_desc = [ShortField("cpi", 0), NamedField("ipcomp_transform", 2, Registry(
        {1: "IPCOMP_OUI", 2: "IPCOMP_DEFLATE", 3: "IPCOMP_LZS", 4: "IPCOMP_LZJH"}), "B")]


@_data(IKEV2, 16388, 16389, size=(20, 20))
class HashData(NotifyData):
    """NAT_DETECTION_SOURCE_IP and _DESTINATION_IP (RFC 7296 2.23): SHA-1(SPIs | IP address | port)."""
    fields_desc = [XStrField("hash", b"")]

    def summary(self) -> str:
        return _hex(self.hash or b"", 20)


@_data(IKEV2, 16390, 16401, size=(1, 64))
class CookieData(NotifyData):
    """COOKIE (RFC 7296 2.6, 1 to 64 octets) and COOKIE2 (RFC 4555)."""
    fields_desc = [XStrField("cookie", b"")]

    def summary(self) -> str:
        return _hex(self.cookie or b"")


@_data(IKEV2, 16397, size=(4, 4))
class Ipv4AddressData(NotifyData):
    """ADDITIONAL_IP4_ADDRESS (RFC 4555)."""
    fields_desc = [IPField("address", "0.0.0.0")]


@_data(IKEV2, 16398, size=(16, 16))
class Ipv6AddressData(NotifyData):
    """ADDITIONAL_IP6_ADDRESS (RFC 4555)."""
    fields_desc = [IP6Field("address", "::")]


@_data(IKEV2, 16403, size=(4, 4))
class LifetimeData(NotifyData):
    """AUTH_LIFETIME (RFC 4478): seconds until the peer must reauthenticate."""
    fields_desc = [IntField("lifetime", 0)]


GATEWAY_TYPES = Registry(v2names.GATEWAY_IDENTITY_TYPES)


@_data(IKEV2, 16407, 16408, size=(2, None))
class GatewayData(NotifyData):
    """REDIRECT and REDIRECTED_FROM (RFC 5685 8): the gateway's identity (and a nonce, for REDIRECT)."""
    properties = ("gateway",)
    fields_desc = [NamedField("gateway_type", 1, GATEWAY_TYPES, "B"),
                   FieldLenField("gateway_length", None, length_of="gateway_data", fmt="B"),
                   Sized("gateway_data", b"", length_from=lambda p: p.gateway_length),
                   XStrField("redirect_nonce", b"")]

    @property
    def gateway(self) -> str:
        data = self.gateway_data or b""
        return _text(data) if self.gateway_type == 3 else _address(data)

    def summary(self) -> str:
        return self.gateway


@_data(IKEV2, 16409, size=(4, None))
class TicketData(NotifyData):
    """TICKET_LT_OPAQUE (RFC 5723 6.2): the ticket's lifetime and the ticket."""
    fields_desc = [IntField("lifetime", 0), XStrField("ticket", b"")]

    def summary(self) -> str:
        return f"lifetime={self.lifetime}"


@_data(IKEV2, 16424, size=(0, None), even=True)
class PasswordMethodsData(NotifyData):
    """SECURE_PASSWORD_METHODS (RFC 6467): the methods the sender supports."""
    fields_desc = [FieldListField("methods", [], ShortField("", 0))]


HASH_IDS = Registry(v2names.HASH_ALGORITHM_IDS)


@_data(IKEV2, 16431, size=(0, None), even=True)
class HashAlgorithmsData(NotifyData):
    """SIGNATURE_HASH_ALGORITHMS (RFC 7427 4): the hash algorithms the sender supports."""
    properties = ("hashes",)
    fields_desc = [FieldListField("hash_ids", [], ShortField("", 0))]

    @property
    def hashes(self) -> tuple[Name, ...]:
        return tuple(HASH_IDS(n) for n in self.hash_ids)

    def summary(self) -> str:
        return " ".join(self.hashes)


PPK_ID_TYPES = Registry(v2names.PPK_ID_TYPES)


@_data(IKEV2, 16436, size=(1, None))
class PpkIdentityData(NotifyData):
    """PPK_IDENTITY (RFC 8784 3): the PPK_ID's type and the identity."""
    fields_desc = [NamedField("ppk_id_type", 1, PPK_ID_TYPES, "B"), XStrField("ppk_id", b"")]

    def summary(self) -> str:
        return f"{self.ppk_id_type} {_hex(self.ppk_id or b'')}".rstrip()


@_data(IKEV2, 16441, size=(1, None))
class LinkData(NotifyData):
    """ADDITIONAL_KEY_EXCHANGE (RFC 9370 2.2.4): the link the next IKE_FOLLOWUP_KE must carry."""
    fields_desc = [XStrField("link", b"")]

    def summary(self) -> str:
        return _hex(self.link or b"")


@_data(IKEV1, 36136, 36137, size=(4, 4))
class SequenceData(NotifyData):
    """R-U-THERE and R-U-THERE-ACK (RFC 3706 5): the sequence number."""
    fields_desc = [IntField("sequence", 0)]


@_data(IKEV1, 24577, size=(4, 4))
class ReplayStatusData(NotifyData):
    """REPLAY-STATUS (RFC 2407 4.6.3.2): whether the sender checks for replays."""
    fields_desc = [NamedField("replay_detection", 0, Registry({0: "disabled", 1: "enabled"}), "I")]


def _lifetime_attributes(pkt: Packet, _data: bytes = b""):
    notify = pkt.underlayer
    protocol = int(notify.getfieldval("protocol") or 0) if isinstance(notify, Packet) else 0
    return IkeAttribute if protocol == v1names.PROTO_ISAKMP else IpsecAttribute


@_data(IKEV1, 24576, size=(4, None))
class LifetimeAttributesData(NotifyData):
    """RESPONDER-LIFETIME (RFC 2407 4.6.3.1): the lifetime attributes the responder chose."""
    fields_desc = [Items("lifetime_attributes", _lifetime_attributes, what="attribute", size_of=_attribute_length)]

    def summary(self) -> str:
        return " ".join(a.describe() for a in self.lifetime_attributes if isinstance(a, Attribute))


class _NotifyBase(Payload):
    """A notify's data is its scapy payload: typed (NOTIFY_DATA) when the type gives it a structure and the size
    fits, else Raw. Its fields read through: `notify.group`; a field of typed data this notify lacks is None.
    Its scapy `name` is its type's ("INVALID_KE_PAYLOAD"): what show() titles it, and what a case says."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = str(self.type)

    def extract_padding(self, s):
        return s, b""

    def guess_payload_class(self, payload):
        cls = NOTIFY_DATA.get((self.version, int(self.getfieldval("type") or 0)))
        return cls if cls is not None and cls.fits(len(payload)) else Raw

    def __getattr__(self, attr):
        try:
            return super().__getattr__(attr)
        except AttributeError:
            if attr in DATA_FIELDS:   # a property of typed data (hashes), or a field this notify's data lacks
                data = self.payload
                return getattr(data, attr, None) if isinstance(data, NotifyData) else None
            raise

    @property
    def data(self) -> bytes:
        """The notification data as bytes, whatever its type."""
        return b"" if isinstance(self.payload, NoPayload) else bytes(self.payload)

    @property
    def typed(self) -> NotifyData | None:
        return self.payload if isinstance(self.payload, NotifyData) else None

    @property
    def is_error(self) -> bool:
        return 0 < int(self.type) < v2names.FIRST_STATUS_NOTIFY

    def summary(self) -> str:
        """N(NAME), with an error's data (what it says where the type gives it a structure: the group wanted)."""
        typed, data = self.typed, self.data
        if self.is_error and data:
            return f"N({self.type}: {typed.summary() if typed is not None else _hex(data)})"
        return f"N({self.type})"

    def describe(self) -> str:
        """summary(), with the data of a status notify that has a structure, and the SPI the notify is about."""
        text = self.summary()
        typed = self.typed
        if not self.is_error and typed is not None and typed.summary():
            text = f"N({self.type}: {typed.summary()})"
        spi = self.spi or b""
        return f"{text} {self.protocol} spi=0x{spi.hex()}" if spi else text


@_payload(IKEV2, 41)
class Notify(_NotifyBase):
    """RFC 7296 3.10: protocol, SPI size, notify type, SPI, then the data."""
    name = "IKEv2 Notify"
    fields_desc = _generic() + [
        NamedField("protocol", 0, V2_PROTOCOLS, "B"), FieldLenField("spi_size", None, length_of="spi", fmt="B"),
        NamedField("type", 0, NOTIFY_NAMES[IKEV2], "H"), Sized("spi", b"", length_from=lambda p: p.spi_size)]


@_payload(IKEV2, 42)
class Delete(Payload):
    """RFC 7296 3.11: the protocol and the SPIs of the SAs deleted (none for the IKE SA: its SPIs are in the
    header)."""
    name = "IKEv2 Delete"
    protocols = V2_PROTOCOLS
    fields_desc = _generic() + [
        NamedField("protocol", 1, lambda p: p.protocols, "B"), ByteField("spi_size", 0),
        ShortField("spi_count", 0), Sized("spi_data", b"", length_from=lambda p: p.spi_size * p.spi_count)]

    @property
    def spis(self) -> tuple[bytes, ...]:
        data, size = self.spi_data or b"", self.spi_size
        return tuple(data[i:i + size] for i in range(0, len(data) - size + 1, size)) if size else ()

    def describe(self) -> str:
        return " ".join([self.kind, str(self.protocol), *(f"0x{spi.hex()}" for spi in self.spis)])


@_payload(IKEV2, 43)
class VendorId(Payload):
    """RFC 7296 3.12."""
    name = "IKEv2 Vendor ID"
    fields_desc = _generic() + [XStrField("vid", b"")]

    @property
    def vendor(self) -> str | None:
        return v1names.vendor_name(self.vid or b"")

    def describe(self) -> str:
        vendor = self.vendor
        return f"{self.kind} {vendor}" if vendor else f"{self.kind} {_hex(self.vid or b'')}"


def _selector_class(_pkt, data: bytes):
    return TrafficSelectorLabel if data[0] == 10 else TrafficSelector


class TrafficSelectorLabel(Layer):
    """TS_SECLABEL (RFC 9478): a security label instead of addresses and ports."""
    name = "IKEv2 Security Label Selector"
    fields_desc = [NamedField("ts_type", 10, TS_TYPES, "B"), ByteField("reserved", 0), ShortField("length", None),
                   XStrField("label", b"")]

    def networks(self) -> tuple[str, ...]:
        return ()

    def describe(self) -> str:
        label = (self.label or b"").rstrip(bytes(1))
        return f"label={_text(label)}"


@_payload(IKEV2, 44)
class TSi(Payload):
    """RFC 7296 3.13: the number of selectors, then the selectors."""
    name = "IKEv2 Traffic Selectors"
    fields_desc = _generic() + [
        FieldLenField("ts_count", None, count_of="selectors", fmt="B"), XStrFixedLenField("reserved2", b"\0" * 3, 3),
        Items("selectors", _selector_class, what="traffic selector", header=4, count_from=lambda p: p.ts_count)]

    def networks(self) -> tuple[str, ...]:
        return tuple(n for s in self.selectors if hasattr(s, "networks") for n in s.networks())

    def describe(self) -> str:
        return " ".join([self.kind, *(s.describe() for s in self.selectors if isinstance(s, Layer))])



@_payload(IKEV2, 45)
class TSr(TSi):
    pass


@_payload(IKEV2, 46)
class Encrypted(Payload):
    """SK (RFC 7296 3.14): the next-payload field names the first payload inside; IV, ciphertext and checksum."""
    name = "IKEv2 Encrypted"
    fields_desc = _generic() + [XStrField("encrypted", b"")]


@_payload(IKEV2, 53)
class EncryptedFragment(Payload):
    """SKF (RFC 7383 2.5): fragment number and total in the clear, then as SK."""
    name = "IKEv2 Encrypted Fragment"
    fields_desc = _generic() + [ShortField("fragment_number", 1), ShortField("total_fragments", 1),
                                XStrField("encrypted", b"")]

    def post_dissect(self, s):
        number, total = self.fragment_number, self.total_fragments
        if not 1 <= number <= total:
            _note(self, f"fragment number {number} of {total} (RFC 7383 2.5: from 1 to the total)")
        return s

    def describe(self) -> str:
        return f"{self.kind} {self.fragment_number}/{self.total_fragments}"


CFG_TYPES = Registry(v2names.CFG_TYPES)


@_payload(IKEV2, 47)
class Configuration(Payload):
    """CP (RFC 7296 3.15): the configuration type and its attributes."""
    name = "IKEv2 Configuration"
    fields_desc = _generic() + [NamedField("cfg_type", 1, CFG_TYPES, "B"), XStrFixedLenField("reserved2", b"\0" * 3, 3),
                                Items("attributes", ConfigurationAttribute, what="attribute",
                                      size_of=lambda d: 4 + struct.unpack_from("!H", d, 2)[0])]

    def describe(self) -> str:
        return " ".join([self.kind, str(self.cfg_type),
                         *(a.describe() for a in self.attributes if isinstance(a, ConfigurationAttribute))])


EAP_CODES = Registry(v2names.EAP_CODES, "code-{}")
EAP_TYPES = Registry(v2names.EAP_TYPES)


@_payload(IKEV2, 48)
class Eap(Payload):
    """RFC 7296 3.16: one EAP message (RFC 3748 4): code, identifier, length, and a type for requests and
    responses."""
    name = "IKEv2 EAP"
    fields_desc = _generic() + [
        NamedField("code", 1, EAP_CODES, "B"), ByteField("identifier", 0), ShortField("eap_length", None),
        ConditionalField(NamedField("eap_type", 1, EAP_TYPES, "B"),
                         lambda p: p.code in (1, 2) and (p.eap_length is None or p.eap_length > 4)),
        XStrField("eap_data", b"")]

    def post_build(self, pkt, pay):
        if self.eap_length is None:
            pkt = pkt[:6] + struct.pack("!H", len(pkt) + len(pay) - GENERIC_HEADER_SIZE) + pkt[8:]
        return super().post_build(pkt, pay)

    def describe(self) -> str:
        kind = f"{self.kind} {self.code}"
        return f"{kind} type={self.eap_type}" if self.eap_type is not None else kind


# IKEv1 ------------------------------------------------------------------------------------------------------

@_payload(IKEV1, 1)
class V1SecurityAssociation(SecurityAssociation):
    """RFC 2408 3.4: the DOI and the situation (RFC 2407 4.2 for the IPsec DOI), then proposal payloads."""
    name = "ISAKMP SA"
    proposal_class = V1Proposal
    fields_desc = _generic() + [
        NamedField("doi", v1names.IPSEC_DOI, DOI, "I"),
        FlagsField("situation", 1, 32, v1names.SITUATION_FLAGS),
        Items("proposals", lambda p, _data: p.proposal_class, what="proposal", more=2)]

    def describe(self) -> str:
        situation = "|".join(n for i, n in enumerate(v1names.SITUATION_FLAGS) if int(self.situation) >> i & 1)
        head = f"{self.kind} {self.doi} {situation or hex(int(self.situation))}"
        return f"{head}: " + " | ".join(p.describe() for p in self.proposals if isinstance(p, Proposal))


@_payload(IKEV1, 4)
class V1KeyExchange(Payload):
    """RFC 2408 3.7: the public value (the group is the SA's)."""
    name = "ISAKMP KE"
    fields_desc = _generic() + [XStrField("key_data", b"")]

    def describe(self) -> str:
        return f"{self.kind} {len(self.key_data or b'')} bytes"


V1_ID_TYPES = Registry(v1names.ID_TYPES)


@_payload(IKEV1, 5)
class V1Identification(Payload):
    """RFC 2408 3.8 with the IPsec DOI's layout (RFC 2407 4.6.2): type, protocol, port, the identity."""
    name = "ISAKMP ID"
    fields_desc = _generic() + [NamedField("id_type", 1, V1_ID_TYPES, "B"),
                                NamedField("protocol", 0, IP_PROTOCOLS, "B"), ShortField("port", 0),
                                XStrField("id_data", b"")]

    @property
    def value(self) -> str:
        data, id_type = self.id_data or b"", int(self.id_type)
        try:
            if id_type in (1, 5):
                return _address(data)
            if id_type in (2, 3):
                return _text(data)
            if id_type in (4, 6) and len(data) in (8, 32):     # address and netmask
                half = len(data) // 2
                mask = ipaddress.ip_address(data[half:])
                return str(ipaddress.ip_network(f"{ipaddress.ip_address(data[:half])}/{mask}", strict=False))
            if id_type in (7, 8) and len(data) in (8, 32):     # first and last address
                half = len(data) // 2
                return f"{ipaddress.ip_address(data[:half])}-{ipaddress.ip_address(data[half:])}"
        except ValueError:
            pass
        return _hex(data, 32)

    def describe(self) -> str:
        where = ""
        if self.protocol != 0 or self.port:
            where = f" {self.protocol}" + (f":{self.port}" if self.port else "")
        return f"{self.kind} {self.id_type} {self.value}{where}".rstrip()


V1_CERT_ENCODINGS = Registry(v1names.CERT_ENCODINGS)


@_payload(IKEV1, 6)
class V1Certificate(Certificate):
    """RFC 2408 3.9."""
    name = "ISAKMP CERT"
    fields_desc = _generic() + [NamedField("encoding", 4, V1_CERT_ENCODINGS, "B"), XStrField("cert_data", b"")]

    @property
    def subject(self) -> str | None:
        return _subject(self.cert_data or b"") if self.encoding == 4 else None


@_payload(IKEV1, 7)
class V1CertificateRequest(Payload):
    """RFC 2408 3.10: the certificate type and, optionally, the certificate authority (a distinguished name)."""
    name = "ISAKMP CR"
    fields_desc = _generic() + [NamedField("encoding", 4, V1_CERT_ENCODINGS, "B"), XStrField("authority", b"")]

    def describe(self) -> str:
        authority = f" authority {len(self.authority)} bytes" if self.authority else ""
        return f"{self.kind} {self.encoding}{authority}"


@_payload(IKEV1, 8)
class V1Hash(Payload):
    """RFC 2408 3.11."""
    name = "ISAKMP HASH"
    fields_desc = _generic() + [XStrField("hash_data", b"")]

    def describe(self) -> str:
        return f"{self.kind} {len(self.hash_data or b'')} bytes"


@_payload(IKEV1, 9)
class V1Signature(Payload):
    """RFC 2408 3.12."""
    name = "ISAKMP SIG"
    fields_desc = _generic() + [XStrField("signature_data", b"")]

    def describe(self) -> str:
        return f"{self.kind} {len(self.signature_data or b'')} bytes"


@_payload(IKEV1, 10)
class V1Nonce(Nonce):
    """RFC 2408 3.13."""
    name = "ISAKMP Nonce"


@_payload(IKEV1, 11)
class V1Notify(_NotifyBase):
    """RFC 2408 3.14: DOI, protocol, SPI size, notify type, SPI, then the data."""
    name = "ISAKMP Notify"
    fields_desc = _generic() + [
        NamedField("doi", v1names.IPSEC_DOI, DOI, "I"), NamedField("protocol", 1, V1_PROTOCOLS, "B"),
        FieldLenField("spi_size", None, length_of="spi", fmt="B"), NamedField("type", 0, NOTIFY_NAMES[IKEV1], "H"),
        Sized("spi", b"", length_from=lambda p: p.spi_size)]


@_payload(IKEV1, 12)
class V1Delete(Delete):
    """RFC 2408 3.15: DOI, protocol, SPI size and count, the SPIs."""
    name = "ISAKMP Delete"
    protocols = V1_PROTOCOLS
    fields_desc = _generic() + [
        NamedField("doi", v1names.IPSEC_DOI, DOI, "I"), NamedField("protocol", 1, V1_PROTOCOLS, "B"),
        ByteField("spi_size", 0), ShortField("spi_count", 0),
        Sized("spi_data", b"", length_from=lambda p: p.spi_size * p.spi_count)]


@_payload(IKEV1, 13)
class V1VendorId(VendorId):
    """RFC 2408 3.16."""
    name = "ISAKMP Vendor ID"


V1_CFG_TYPES = Registry(v1names.CFG_TYPES)


@_payload(IKEV1, 14)
class ModeConfig(Payload):
    """The Attribute payload (draft-ietf-ipsec-isakmp-mode-cfg-05 3.2): Mode Config and XAUTH."""
    name = "ISAKMP Attributes"
    fields_desc = _generic() + [NamedField("cfg_type", 1, V1_CFG_TYPES, "B"), ByteField("reserved2", 0),
                                ShortField("identifier", 0),
                                Items("attributes", ModeConfigAttribute, what="attribute", size_of=_attribute_length)]

    def attribute(self, name: str):
        """The value of the first attribute of this type ("XAUTH_USER_NAME"), "" for one without a value; None."""
        return next((a.value for a in self.attributes if isinstance(a, Attribute) and a.type == name), None)

    def describe(self) -> str:
        return " ".join([self.kind, str(self.cfg_type), f"id={self.identifier}",
                         *(a.describe() for a in self.attributes if isinstance(a, Attribute))])


@_payload(IKEV1, 20)
class NatD(Payload):
    """NAT-D (RFC 3947 3.2): the hash of an address and port."""
    name = "ISAKMP NAT-D"
    fields_desc = _generic() + [XStrField("hash", b"")]

    def describe(self) -> str:
        draft = " (draft)" if self.type_number in v1names.DRAFT_NAT_PAYLOADS else ""
        return f"{self.kind}{draft} {_hex(self.hash or b'', 20)}"


@_payload(IKEV1, 21)
class NatOa(Payload):
    """NAT-OA (RFC 3947 5.2): the sender's original address."""
    name = "ISAKMP NAT-OA"
    fields_desc = _generic() + [NamedField("id_type", 1, V1_ID_TYPES, "B"),
                                XStrFixedLenField("reserved2", b"\0" * 3, 3), XStrField("address_data", b"")]

    @property
    def address(self) -> str:
        return _address(self.address_data or b"")

    def describe(self) -> str:
        draft = " (draft)" if self.type_number in v1names.DRAFT_NAT_PAYLOADS else ""
        return f"{self.kind}{draft} {self.address}"


@_payload(IKEV1, 130)
class NatDDraft(NatD):
    pass


@_payload(IKEV1, 131)
class NatOaDraft(NatOa):
    pass


@_payload(IKEV1, 132)
class V1Fragment(Payload):
    """IKEv1 fragmentation (Cisco's, also strongSwan's and Libreswan's): fragment ID, number, the last flag."""
    name = "ISAKMP Fragment"
    fields_desc = _generic() + [ShortField("fragment_id", 0), ByteField("fragment_number", 1),
                                FlagsField("fragment_flags", 0, 8, ["last"]), XStrField("fragment_data", b"")]

    def describe(self) -> str:
        last = " last" if int(self.fragment_flags) & 1 else ""
        return f"{self.kind} id={self.fragment_id} #{self.fragment_number}{last}"


# --- the message ----------------------------------------------------------------------------------------------

def payload_class(version: int, number: int) -> type:
    return PAYLOAD_CLASSES.get((version, number), Opaque)


def read_payload(version: int, number: int, data: bytes) -> Payload:
    """One payload of type `number` from exactly its bytes. Never raises: a layer that cannot read them leaves an
    Opaque payload saying why."""
    cls = payload_class(version, number)
    try:
        layer = cls(data)
    except struct.error:
        layer = Opaque(data)
        _note(layer, f"{len(data) - GENERIC_HEADER_SIZE} byte(s) after its header, too few for its fields")
        cls = Opaque
    except Exception as exc:
        layer = Opaque(data)
        _note(layer, f"unreadable ({type(exc).__name__}: {exc})")
        cls = Opaque
    if cls is Opaque:
        layer.set_type(number, version)
    return layer


def walk_chain(first: int, data: bytes, version: int, *, base: int = 0) -> tuple[list[Payload], list[str], int]:
    """The payloads of a chain starting with type `first`, the notes of where it broke, and the bytes it used.
    IKEv2's SK and SKF end the chain in the clear. `base` is where `data` starts in the message, for the notes."""
    payloads: list[Payload] = []
    notes: list[str] = []
    at, kind = 0, first
    names = PAYLOAD_NAMES[version]
    while kind:
        left = len(data) - at
        if left < GENERIC_HEADER_SIZE:
            where = f"{names(kind)} payload at byte {base + at}"
            notes.append(f"{where}: {left} byte(s) left, a payload header needs {GENERIC_HEADER_SIZE}" if left else
                         f"{where}: the chain names it, the message ends before it")
            break
        following, _flags, size = struct.unpack_from("!BBH", data, at)
        if size < GENERIC_HEADER_SIZE:
            notes.append(f"{names(kind)} payload at byte {base + at}: length {size}, less than its "
                         f"{GENERIC_HEADER_SIZE}-byte header")
            break
        if size > left:
            notes.append(f"{names(kind)} payload at byte {base + at}: length {size} runs past the end "
                         f"({left} byte(s) left)")
            break
        payloads.append(read_payload(version, kind, data[at:at + size]))
        at += size
        if version == IKEV2 and kind in v2names.ENCRYPTED_PAYLOADS:
            break
        kind = following
    return payloads, notes, at


def _chain_type(payload: Payload) -> int:
    return payload.type_number


class PayloadChain(Field):
    """The payloads after the header: the header names the first one's type, each payload the next one's
    (RFC 7296 3.2, RFC 2408 3.2). Bounded by the header's length, checked against the bytes there are."""
    islist = 1
    holds_packets = 1

    def __init__(self, name: str):
        super().__init__(name, [], fmt="B")   # unused: getfield and addfield walk the chain

    def getfield(self, pkt, s):
        version, total = pkt.major, pkt.length
        if _encrypted_v1(pkt):
            if total < HEADER_SIZE:
                _note(pkt, f"length {total}, less than the {HEADER_SIZE}-byte header")
            return s, []      # the body is ciphertext: Isakmp.encrypted_body
        if version not in (IKEV1, IKEV2):
            _note(pkt, f"major version {version}: neither ISAKMP (1) nor IKEv2 (2)")
            return s[len(s):], []
        if total < HEADER_SIZE:
            _note(pkt, f"length {total}, less than the {HEADER_SIZE}-byte header")
            return s[len(s):], []
        end = total - HEADER_SIZE
        if end > len(s):
            _note(pkt, f"length {total}, {HEADER_SIZE + len(s)} bytes on the wire: the message is cut short")
            end = len(s)
        payloads, notes, used = walk_chain(pkt.next_payload, s[:end], version, base=HEADER_SIZE)
        for note in notes:
            _note(pkt, note)
        if not notes and used < end and not _alignment(version, s[used:end]):
            _note(pkt, f"{end - used} byte(s) after the last payload")
        return s[end:], payloads

    def addfield(self, pkt, s, val):
        out = []
        for number, payload in enumerate(val or ()):
            if payload.getfieldval("next_payload") is None:
                payload = payload.copy()
                payload.next_payload = _chain_type(val[number + 1]) if number + 1 < len(val) else 0
            out.append(bytes(payload))
        return s + b"".join(out)

    def i2repr(self, pkt, x):
        return "[" + ", ".join(p.kind for p in x or ()) + "]"


def _encrypted_v1(pkt) -> bool:
    return pkt.major == IKEV1 and bool(int(pkt.flags or 0) & v1names.FLAG_ENCRYPTION)


class Isakmp(Packet):
    """The message: the header (RFC 7296 3.1, RFC 2408 3.1), then the payload chain -- or, for IKEv1 with the E
    flag, the encrypted body."""
    name = "ISAKMP"
    fields_desc = [
        XStrFixedLenField("ispi", bytes(8), 8), XStrFixedLenField("rspi", bytes(8), 8),
        ByteField("next_payload", None),
        BitField("major", IKEV2, 4), BitField("minor", 0, 4),
        NamedField("exchange", 0, lambda p: EXCHANGES.get(p.major) or EXCHANGES[IKEV2], "B"),
        FlagsField("flags", 0, 8, HEADER_FLAGS),
        IntField("message_id", 0),
        IntField("length", None),
        PayloadChain("payloads"),
        ConditionalField(Sized("encrypted_body", b"", length_from=lambda p: max((p.length or 0) - HEADER_SIZE, 0)),
                         _encrypted_v1),
    ]

    def post_build(self, pkt, pay):
        if self.next_payload is None and self.payloads:
            pkt = pkt[:16] + bytes([_chain_type(self.payloads[0])]) + pkt[17:]
        return _fill_length(pkt, pay, 24, "!I") if self.length is None else pkt + pay

    def extract_padding(self, s):
        return b"", s

    @property
    def version(self) -> int:
        return self.major

    @property
    def encrypted(self) -> bool:
        """IKEv1: the E flag; IKEv2: an SK or SKF payload ends the chain."""
        if self.major == IKEV1:
            return _encrypted_v1(self)
        return any(isinstance(p, (Encrypted, EncryptedFragment)) for p in self.payloads)


def problems(layer: Packet, where: str = "") -> list[str]:
    """What could not be read in a layer and everything in it, each with where it was ("SA: proposal 2: ...")."""
    found = [f"{where}{note}" for note in layer.__dict__.get("_notes", ())]
    for field in layer.fields_desc:
        if isinstance(field, PayloadChain):
            for payload in layer.getfieldval(field.name) or ():
                found += problems(payload, f"{where}{payload.kind}: ")
        elif isinstance(field, Items):
            for number, item in enumerate(layer.getfieldval(field.name) or (), 1):
                if isinstance(item, Packet):
                    found += problems(item, f"{where}{field.what} {number}: ")
    if isinstance(layer.payload, Layer):
        found += problems(layer.payload, where)
    return found


def said(found: Iterable[str]) -> str | None:
    """Problems as one line: each once, in order, with how often it was seen ("... (x200)")."""
    counts: dict[str, int] = {}
    for text in found:
        counts[text] = counts.get(text, 0) + 1
    return "; ".join(text if n == 1 else f"{text} (x{n})" for text, n in counts.items()) or None


def decode(data: bytes) -> Isakmp | None:
    """The message in `data` (without any non-ESP marker), or None when it is shorter than a header. Never raises:
    what could not be read is in problems()."""
    if len(data) < HEADER_SIZE:
        return None
    return _decode(bytes(data))


@functools.lru_cache(maxsize=2048)
def _decode(data: bytes) -> Isakmp:
    """A retransmission is the same bytes: read once. The layers are shared, so they are not to be changed."""
    try:
        return Isakmp(data)
    except Exception as exc:   # a bug of ours must not cost the capture this message: keep the header
        header = Isakmp(data[:16] + b"\0" + data[17:HEADER_SIZE - 4] + struct.pack("!I", HEADER_SIZE))
        _note(header, f"payloads not decodable ({type(exc).__name__}: {exc})")
        return header


def _alignment(version: int, trailing: bytes) -> bool:
    """Whether bytes after an ISAKMP message's last payload are alignment, not damage: Libreswan 4.10 (pluto) ends
    its IKEv1 messages on a 4-byte boundary with up to 3 zero bytes its header's length counts (seen after an
    Identification payload of 21 bytes). RFC 2408 3.1 has no such padding, but nothing is lost in it: calling the
    message damaged would cost its KE, and with it every IV of the phase 1 SA."""
    return version == IKEV1 and len(trailing) < 4 and not any(trailing)


def decode_chain(first: int, data: bytes, version: int = IKEV2) -> tuple[tuple[Payload, ...], str | None]:
    """The payloads of an opened SK payload or IKEv1 body (`first` is the type of the first), and why the chain
    broke off, if it did. IKEv1's body ends with padding (RFC 2409 Appendix B), so bytes after its last payload are
    not a problem there."""
    try:
        payloads, notes, used = walk_chain(first, data, version)
    except Exception as exc:
        return (), f"payloads not decodable ({type(exc).__name__}: {exc})"
    if not notes and used < len(data) and version == IKEV2:
        notes.append(f"{len(data) - used} byte(s) after the last payload")
    found = notes + [p for payload in payloads for p in problems(payload, f"{payload.kind}: ")]
    return tuple(payloads), said(found)


def encrypted_payload(message: Isakmp) -> tuple[Payload, int] | None:
    """The SK or SKF payload that ends an IKEv2 message's chain, and where it starts in the message."""
    offset = HEADER_SIZE
    for payload in message.payloads:
        if isinstance(payload, (Encrypted, EncryptedFragment)):
            return payload, offset
        offset += payload.length or 0
    return None


# --- what a suite asks of a message ---------------------------------------------------------------------------

NOTIFY_CLASSES = (Notify, V1Notify)


class PayloadLookup:
    """The accessors of anything with `payloads` (typed layers): a message on the wire, or opened."""
    payloads: tuple

    @property
    def names(self) -> tuple[str, ...]:
        """The payload types in order ("SA", "KE", "Nonce", "Notify")."""
        return tuple(str(p.kind) for p in self.payloads)

    def payload(self, kind: str):
        """The first payload of this type ("IDi", "TSr", "SA", "NAT-D"), or None."""
        check_known(kind, KNOWN_PAYLOADS, "payload type")
        return next((p for p in self.payloads if p.kind == kind), None)

    def payloads_of(self, kind: str) -> tuple:
        check_known(kind, KNOWN_PAYLOADS, "payload type")
        return tuple(p for p in self.payloads if p.kind == kind)

    @property
    def notifies(self) -> tuple:
        return tuple(p for p in self.payloads if isinstance(p, NOTIFY_CLASSES))

    def notify(self, name: str):
        """The first notify of this type ("INVALID_KE_PAYLOAD", "R-U-THERE"), or None. Its typed data reads
        through: notify("INVALID_KE_PAYLOAD").group."""
        check_known(name, KNOWN_NOTIFIES, "notify type")
        return next((n for n in self.notifies if n.type == name), None)

    @property
    def errors(self) -> tuple:
        return tuple(n for n in self.notifies if n.is_error)

    @property
    def sa(self):
        """The first SA payload, or None."""
        return next((p for p in self.payloads if isinstance(p, SecurityAssociation)), None)

    @property
    def vendor_ids(self) -> tuple[str, ...]:
        """Each Vendor ID by its well-known name, or its bytes in hex."""
        return tuple(p.vendor or p.vid.hex() for p in self.payloads if isinstance(p, VendorId))


# --- building -------------------------------------------------------------------------------------------------

def transform(transform_type: int | str, algorithm: str | int, *, key_length: int | None = None) -> Transform:
    """An IKEv2 transform from its name as the scenario writes it: "ENCR_AES_CBC_128" is ENCR_AES_CBC with a Key
    Length attribute of 128; "ENCR_1000" is ENCR ID 1000. Raises ValueError for a name no registry says."""
    number = TRANSFORM_TYPES.number(transform_type)
    ids = transform_ids(number)
    if isinstance(algorithm, str) and algorithm not in ids and key_length is None:
        base, _, bits = algorithm.rpartition("_")
        if bits.isdigit() and base in ids:
            algorithm, key_length = base, int(bits)
    try:
        transform_id = ids.number(algorithm)
    except ValueError:
        raise ValueError(f"no IANA transform id for {algorithm}") from None
    attributes = [TransformAttribute(type="Key Length", tv_value=key_length)] if key_length is not None else []
    return Transform(type=number, id=transform_id, attributes=attributes)


def notify(kind: str | int, data: bytes = b"", *, version: int = IKEV2, protocol: int | str = 0, spi: bytes = b"",
           **typed) -> _NotifyBase:
    """A Notify of either version; typed data by its fields (group="MODP_2048"), or raw `data`."""
    cls = Notify if version == IKEV2 else V1Notify
    layer = cls(type=kind, protocol=protocol or (1 if version == IKEV1 else 0), spi=spi)
    number = layer.getfieldval("type")
    if typed:
        data_class = NOTIFY_DATA.get((version, number))
        if data_class is None:
            raise ValueError(f"notify {layer.type} has no typed data")
        return layer / data_class(**typed)
    return layer / Raw(data) if data else layer
