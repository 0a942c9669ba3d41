#!/usr/bin/python3
"""A user-space PPP endpoint that stands in for pppd where the host has no /dev/ppp (no ppp_generic module).

An L2TP daemon in user space (xl2tpd) runs pppd with one end of a pty as its stdin and stdout and carries
whatever pppd writes there, async HDLC frames (RFC 1662), in L2TP data messages. This program speaks that:
LCP (RFC 1661), PAP or CHAP-MD5 (RFC 1334, RFC 1994) in either direction, IPCP (RFC 1332), then IPv4 between
the PPP link and a TUN device holding the local address with a /32 route to the peer.

It reads what the daemon's pppd arguments do not say from a JSON file (CONFIG, or $L2TP_PPP_CONFIG):

    {"interface": "ppp0",           # the TUN device to create
     "local": "198.19.200.1",       # our IPCP address; null: ask the peer to assign one (0.0.0.0)
     "remote": "198.19.200.2",      # the address we assign to the peer; null: accept the peer's own
     "auth": "pap",                 # "none", "pap" or "chap": what we demand of the peer
     "username": "...", "password": "...",   # checked as authenticator, sent as peer
     "mru": 1400, "log": ["/var/log/l2tp-ppp.log"]}

A "local:remote" argument (what pppd takes for IPCP addresses) fills local and remote where the file does not.
Standard library only: it runs inside vendor containers, with the image's python3.
"""
from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import tty

CONFIG = "/etc/l2tp-ppp.json"

# --- async HDLC framing (RFC 1662 section 4) ------------------------------------------------------------------

FLAG, ESCAPE = 0x7E, 0x7D
FCS_INIT, FCS_GOOD = 0xFFFF, 0xF0B8
ADDRESS_CONTROL = b"\xff\x03"


def _fcs_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0x8408 if value & 1 else value >> 1
        table.append(value)
    return table


FCS_TABLE = _fcs_table()


def fcs16(data: bytes, fcs: int = FCS_INIT) -> int:
    """The running FCS-16 over data. Over a frame and its (complemented, little-endian) FCS it is FCS_GOOD."""
    for byte in data:
        fcs = (fcs >> 8) ^ FCS_TABLE[(fcs ^ byte) & 0xFF]
    return fcs


def _escapes(accm: int) -> list[bytes]:
    return [bytes([ESCAPE, b ^ 0x20]) if b in (FLAG, ESCAPE) or (b < 0x20 and accm >> b & 1) else bytes([b])
            for b in range(256)]


ESCAPE_ALL = _escapes(0xFFFFFFFF)


def frame(payload: bytes, escapes: list[bytes] = ESCAPE_ALL) -> bytes:
    """One async HDLC frame: flag, payload and FCS escaped, flag. Escaping every control character is always
    allowed (the ACCM only says what the sender must escape), so the default escapes them all."""
    body = payload + struct.pack("<H", fcs16(payload) ^ 0xFFFF)
    return b"\x7e" + b"".join(escapes[b] for b in body) + b"\x7e"


_ESCAPED = re.compile(rb"\x7d(.)", re.S)


class Deframer:
    """Bytes from the line in, whole frames (without flags and FCS) out; frames with a bad FCS are counted
    and dropped, as RFC 1662 asks."""

    def __init__(self):
        self.pending = b""
        self.bad_fcs = 0

    def feed(self, data: bytes) -> list[bytes]:
        *complete, self.pending = (self.pending + data).split(b"\x7e")
        frames = []
        for raw in complete:
            body = _ESCAPED.sub(lambda m: bytes([m[1][0] ^ 0x20]), raw)
            if len(body) < 4:
                continue  # back-to-back flags, or line noise
            if fcs16(body) != FCS_GOOD:
                self.bad_fcs += 1
                continue
            frames.append(body[:-2])
        return frames


def split_protocol(payload: bytes) -> tuple[int, bytes] | None:
    """(protocol, information) of a frame, with or without address/control and protocol field compression."""
    if payload[:2] == ADDRESS_CONTROL:
        payload = payload[2:]
    if not payload:
        return None
    if payload[0] & 1:  # a compressed (one byte) protocol field: PFC
        return payload[0], payload[1:]
    if len(payload) < 2:
        return None
    return (payload[0] << 8) | payload[1], payload[2:]


# --- PPP packets ------------------------------------------------------------------------------------------------

LCP, PAP, CHAP, IPCP, IPV4 = 0xC021, 0xC023, 0xC223, 0x8021, 0x0021
PROTOCOL_NAMES = {LCP: "LCP", PAP: "PAP", CHAP: "CHAP", IPCP: "IPCP", IPV4: "IPv4"}
CONF_REQ, CONF_ACK, CONF_NAK, CONF_REJ, TERM_REQ, TERM_ACK, CODE_REJ = 1, 2, 3, 4, 5, 6, 7
PROTO_REJ, ECHO_REQ, ECHO_REPLY, DISCARD_REQ = 8, 9, 10, 11
CODE_NAMES = {1: "Configure-Request", 2: "Configure-Ack", 3: "Configure-Nak", 4: "Configure-Reject",
              5: "Terminate-Request", 6: "Terminate-Ack", 7: "Code-Reject", 8: "Protocol-Reject",
              9: "Echo-Request", 10: "Echo-Reply", 11: "Discard-Request"}
AUTH_CODE_NAMES = {PAP: {1: "Authenticate-Request", 2: "Authenticate-Ack", 3: "Authenticate-Nak"},
                   CHAP: {1: "Challenge", 2: "Response", 3: "Success", 4: "Failure"}}


# LCP options (RFC 1661 6, RFC 1662 7)
MRU, ACCM, AUTH, MAGIC, PFC, ACFC = 1, 2, 3, 5, 7, 8
# IPCP option (RFC 1332 3.3)
IP_ADDRESS = 3
CHAP_MD5 = 5


def packet(code: int, ident: int, data: bytes = b"") -> bytes:
    return struct.pack("!BBH", code, ident, 4 + len(data)) + data


def parse_packet(info: bytes) -> tuple[int, int, bytes] | None:
    if len(info) < 4:
        return None
    code, ident, length = struct.unpack("!BBH", info[:4])
    if length < 4 or length > len(info):
        return None
    return code, ident, info[4:length]  # bytes past Length are padding


def parse_options(data: bytes) -> list[tuple[int, bytes]] | None:
    options = []
    while data:
        if len(data) < 2 or data[1] < 2 or data[1] > len(data):
            return None
        options.append((data[0], data[2:data[1]]))
        data = data[data[1]:]
    return options


def options_bytes(options: list[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes([kind, 2 + len(value)]) + value for kind, value in options)


# --- what a PPP frame says, as text: this endpoint's log, and the L2TP transcript and ladder -------------------
# Values read as an engineer reads them: text as text, binary as hex, addresses dotted, numbers with their
# RFC names. Here, not in a shared module, because this file runs alone (standard library only) in containers.

def printable(data: bytes) -> str:
    """Text as it reads: UTF-8 where it decodes; control characters, backslashes and bytes that do not decode
    as \\xNN, so nothing is hidden and nothing reads as a Python literal."""
    out = []
    for char in bytes(data).decode("utf-8", "surrogateescape"):
        point = ord(char)
        if 0xDC80 <= point <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{point - 0xDC00:02x}")
        elif point < 0x20 or 0x7F <= point < 0xA0 or char == "\\":
            out.append(f"\\x{point:02x}")
        else:
            out.append(char)
    return "".join(out)


def quoted(data: bytes) -> str:
    """Text set apart from what surrounds it: in double quotes, a quote inside escaped."""
    return '"' + printable(data).replace('"', "\\x22") + '"'


def octets(data: bytes) -> str:
    """Binary as hex, 0x-prefixed (Wireshark's way with bytes); "(empty)" for none."""
    return f"0x{bytes(data).hex()}" if data else "(empty)"


def text_or_octets(data: bytes) -> str:
    """Data a protocol leaves uninterpreted: quoted when it is all printable ASCII (a pppd message), hex else."""
    data = bytes(data)
    return quoted(data) if data and all(0x20 <= b < 0x7F for b in data) else octets(data)


IPV6CP, CCP, IPV6 = 0x8057, 0x80FD, 0x0057
EAP, LQR = 0xC227, 0xC025
PROTOCOL_NAMES.update({IPV6CP: "IPV6CP", CCP: "CCP", IPV6: "IPv6", EAP: "EAP", LQR: "LQR"})
LCP_CODE_NAMES = {**CODE_NAMES, 12: "Identification", 13: "Time-Remaining"}  # RFC 1570 2.2, 2.3
NCP_CODES = range(1, 8)     # RFC 1661 10: a network control protocol has LCP's codes 1 to 7
LCP_OPTION_NAMES = {1: "Maximum-Receive-Unit", 2: "Async-Control-Character-Map", 3: "Authentication-Protocol",
                    4: "Quality-Protocol", 5: "Magic-Number", 7: "Protocol-Field-Compression",
                    8: "Address-and-Control-Field-Compression", 13: "Callback", 17: "Multilink-MRRU",
                    18: "Multilink-Short-Sequence-Number-Header-Format", 19: "Multilink-Endpoint-Discriminator"}
IPCP_OPTION_NAMES = {1: "IP-Addresses", 2: "IP-Compression-Protocol", 3: "IP-Address", 129: "Primary-DNS-Address",
                     130: "Primary-NBNS-Address", 131: "Secondary-DNS-Address", 132: "Secondary-NBNS-Address"}
IPV6CP_OPTION_NAMES = {1: "Interface-Identifier", 2: "IPv6-Compression-Protocol"}  # RFC 5072 4
OPTION_NAMES = {LCP: LCP_OPTION_NAMES, IPCP: IPCP_OPTION_NAMES, IPV6CP: IPV6CP_OPTION_NAMES}
CHAP_ALGORITHMS = {5: "MD5", 0x80: "MS-CHAP", 0x81: "MS-CHAP-v2"}  # RFC 1994 3, RFC 2433, RFC 2759
IP_COMPRESSION = {0x002D: "Van Jacobson"}   # RFC 1332 3.2
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6"}
ICMP_NAMES = {0: "echo-reply", 3: "dest-unreach", 8: "echo-request", 11: "time-exceeded",
              128: "echo-request", 129: "echo-reply"}   # 128, 129: ICMPv6


def protocol_name(protocol: int) -> str:
    return PROTOCOL_NAMES.get(protocol, f"protocol 0x{protocol:04x}")


def _number(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _protocol_value(data: bytes) -> str:
    """A 2-byte protocol number and what follows it (Authentication- and Quality-Protocol options)."""
    if len(data) < 2:
        return octets(data)
    protocol = _number(data[:2])
    text = f"{protocol_name(protocol)} (0x{protocol:04x})"
    rest = data[2:]
    if protocol == CHAP and len(rest) == 1:
        return f"{text} algorithm {CHAP_ALGORITHMS.get(rest[0], 'unknown')} ({rest[0]})"
    if protocol == LQR and len(rest) == 4:
        return f"{text} reporting period {_number(rest)}"
    return f"{text} {octets(rest)}" if rest else text


def _ipv4(data: bytes) -> str:
    return ".".join(str(b) for b in data) if len(data) == 4 else octets(data)


def option_value(protocol: int, kind: int, data: bytes) -> str:
    """One option's value, as its RFC defines it (RFC 1661 6, RFC 1662 7.1, RFC 1332 3, RFC 1877, RFC 5072);
    hex where the option is unknown or its size is not the RFC's."""
    sized = {(LCP, 1): 2, (LCP, 2): 4, (LCP, 5): 4, (LCP, 7): 0, (LCP, 8): 0, (LCP, 17): 2, (LCP, 18): 0,
             (IPCP, 3): 4, (IPCP, 129): 4, (IPCP, 130): 4, (IPCP, 131): 4, (IPCP, 132): 4, (IPCP, 1): 8}
    size = sized.get((protocol, kind))
    if size is not None and len(data) != size:
        return f"{octets(data)} (a {len(data)}-byte value, the RFC's is {size})"
    if protocol == LCP:
        if kind in (1, 17):
            return str(_number(data))
        if kind in (2, 5):
            return f"0x{_number(data):08x}"
        if kind in (3, 4):
            return _protocol_value(data)
        if kind == 13 and data:
            return f"operation {data[0]}" + (f" message {text_or_octets(data[1:])}" if data[1:] else "")
        if kind == 19 and data:
            return f"class {data[0]} address {octets(data[1:])}"
    elif protocol == IPCP:
        if kind == 1:
            return f"{_ipv4(data[:4])} {_ipv4(data[4:])}"
        if kind == 2 and len(data) >= 2:
            compression = _number(data[:2])
            text = f"{IP_COMPRESSION.get(compression, 'unknown')} (0x{compression:04x})"
            if compression == 0x002D and len(data) == 4:
                return f"{text} max slot {data[2]} compress slot {data[3]}"
            return f"{text} {octets(data[2:])}" if data[2:] else text
        if kind in (3, 129, 130, 131, 132):
            return _ipv4(data)
    elif protocol == IPV6CP and kind == 1 and len(data) == 8:
        return ":".join(data[i:i + 2].hex() for i in range(0, 8, 2))
    return octets(data) if data else ""


def describe_options(protocol: int, data: bytes) -> list[str]:
    """Each option of a Configure packet as "Name value"; where the list stops making sense, what is left as
    hex with the reason."""
    names = OPTION_NAMES.get(protocol, {})
    shown, at = [], 0
    while at < len(data):
        if len(data) - at < 2 or data[at + 1] < 2 or at + data[at + 1] > len(data):
            shown.append(f"unreadable option at byte {at}: {octets(data[at:])}")
            break
        kind, end = data[at], at + data[at + 1]
        value = option_value(protocol, kind, data[at + 2:end])
        shown.append(" ".join(part for part in (names.get(kind, f"option {kind}"), value) if part))
        at = end
    return shown


def _magic(data: bytes) -> list[str]:
    return [f"magic 0x{_number(data[:4]):08x}"] if len(data) >= 4 else [f"magic cut short: {octets(data)}"]


def _body(protocol: int, code: int, data: bytes) -> list[str]:
    """What a control packet carries after its header, by protocol and code."""
    if protocol == PAP:
        if code == 1 and data and len(data) > data[0]:
            peer = data[1:1 + data[0]]
            rest = data[1 + data[0]:]
            if rest and len(rest) > rest[0]:
                return [f"peer-id {quoted(peer)}", f"password {quoted(rest[1:1 + rest[0]])}"]
        if code in (2, 3) and data and len(data) > data[0]:
            return [f"message {quoted(data[1:1 + data[0]])}"]
    elif protocol == CHAP:
        if code in (1, 2) and data and len(data) > data[0]:
            return [f"value {octets(data[1:1 + data[0]])}", f"name {quoted(data[1 + data[0]:])}"]
        if code in (3, 4):
            return [f"message {quoted(data)}"] if data else []
    elif code in (CONF_REQ, CONF_ACK, CONF_NAK, CONF_REJ):
        return describe_options(protocol, data)
    elif code in (TERM_REQ, TERM_ACK):
        return [f"data {text_or_octets(data)}"] if data else []
    elif code == CODE_REJ:
        return [f"rejected packet {octets(data)}"]
    elif code == PROTO_REJ and len(data) >= 2:
        rejected = _number(data[:2])
        return [f"rejected protocol {protocol_name(rejected)} (0x{rejected:04x})"] + (
            [f"information {octets(data[2:])}"] if data[2:] else [])
    elif protocol == LCP and code in (ECHO_REQ, ECHO_REPLY, DISCARD_REQ, 12):
        return _magic(data) + ([f"data {text_or_octets(data[4:])}"] if data[4:] else [])
    elif protocol == LCP and code == 13 and len(data) >= 8:
        return _magic(data) + [f"seconds remaining {_number(data[4:8])}"] + (
            [f"message {text_or_octets(data[8:])}"] if data[8:] else [])
    return [f"data {octets(data)}"] if data else []


def _code_name(protocol: int, code: int) -> str:
    names = AUTH_CODE_NAMES.get(protocol) or (LCP_CODE_NAMES if protocol == LCP else
                                              {c: CODE_NAMES[c] for c in NCP_CODES})
    return names.get(code, f"code {code}")


def describe_packet(protocol: int, code: int, ident: int, data: bytes) -> str:
    """One control packet (its header read): "LCP Configure-Request id 7: Maximum-Receive-Unit 1400, ...". """
    headline, details = packet_summary(protocol, code, ident, data)
    return f"{headline}: {', '.join(details)}" if details else headline


def packet_summary(protocol: int, code: int, ident: int, data: bytes) -> tuple[str, list[str]]:
    return f"{protocol_name(protocol)} {_code_name(protocol, code)} id {ident}", _body(protocol, code, data)


def _ip_summary(version: int, info: bytes) -> tuple[str, list[str]]:
    """An IP packet a PPP frame carries: addresses, protocol, ports or ICMP type, length."""
    if version == 4:
        if len(info) < 20 or info[0] >> 4 != 4:
            return "IPv4", [f"header cut short or not IPv4: {octets(info[:40])}"]
        header, proto, length = (info[0] & 0x0F) * 4, info[9], _number(info[2:4])
        src, dst = _ipv4(info[12:16]), _ipv4(info[16:20])
    else:
        if len(info) < 40 or info[0] >> 4 != 6:
            return "IPv6", [f"header cut short or not IPv6: {octets(info[:40])}"]
        header, proto, length = 40, info[6], _number(info[4:6])
        src, dst = str(ipaddress.IPv6Address(info[8:24])), str(ipaddress.IPv6Address(info[24:40]))
    upper = info[header:]
    name = IP_PROTOCOLS.get(proto, f"protocol {proto}")
    if proto in (6, 17) and len(upper) >= 4:
        sport, dport = _number(upper[:2]), _number(upper[2:4])
        src, dst = (f"[{src}]:{sport}", f"[{dst}]:{dport}") if version == 6 else (f"{src}:{sport}", f"{dst}:{dport}")
    elif proto in (1, 58) and len(upper) >= 2:
        name += f" {ICMP_NAMES.get(upper[0], f'type {upper[0]} code {upper[1]}')}"
    return f"IPv{version} {src} > {dst} {name} len={length}", []


def frame_summary(payload: bytes) -> tuple[str, list[str]]:
    """What one PPP frame (address and control fields optional, protocol field compressed or not) carries: a
    headline ("LCP Configure-Request id 1", "IPv4 198.19.200.1 > 198.19.200.2 ICMP echo-request len=84") and
    its details ("Maximum-Receive-Unit 1400", ...). Never raises."""
    parsed = split_protocol(bytes(payload))
    if parsed is None:
        return "PPP frame cut short", [octets(payload)] if payload else []
    protocol, info = parsed
    if protocol in (IPV4, IPV6):
        return _ip_summary(4 if protocol == IPV4 else 6, info)
    if protocol in (LCP, PAP, CHAP) or protocol & 0xC000 == 0x8000:  # RFC 1661 2: 8xxx-bxxx are NCPs
        if len(info) < 4:
            return f"{protocol_name(protocol)} packet cut short", [octets(info)] if info else []
        code, ident, length = struct.unpack("!BBH", info[:4])
        headline, details = packet_summary(protocol, code, ident, info[4:min(length, len(info))])
        if length < 4 or length > len(info):
            details.append(f"length {length}, {len(info)} bytes on the wire")
        elif length < len(info):
            details.append(f"{len(info) - length} byte(s) of padding")
        return headline, details
    return f"{protocol_name(protocol)} {len(info)} bytes", []


def describe_frame(payload: bytes) -> str:
    """frame_summary on one line: "LCP Configure-Request id 1: Maximum-Receive-Unit 1400, Magic-Number ..."."""
    headline, details = frame_summary(payload)
    return f"{headline}: {', '.join(details)}" if details else headline


# --- the option negotiation automaton (RFC 1661 4), shared by LCP and IPCP --------------------------------------

RESTART_S, MAX_CONFIGURE = 1.0, 10


class Negotiation:
    """One control protocol's Configure exchange. Subclasses say what to ask for (`wanted`), what to make of
    the peer's request (`judge`) and of its Nak/Reject (`nakked`, `rejected`), and what to do once open."""

    protocol = 0
    name = "?"

    def __init__(self, link: "Link"):
        self.link = link
        self.state = "initial"
        self.ident = random.randrange(256)
        self.sent_options: list[tuple[int, bytes]] = []
        self.refused: set[int] = set()  # options the peer rejected: never asked for again
        self.retries = 0
        self.deadline: float | None = None

    def open(self) -> None:
        self.retries = MAX_CONFIGURE
        self.send_request()
        self.state = "req-sent"

    def send(self, code: int, ident: int, data: bytes = b"") -> None:
        self.link.send_control(self.protocol, code, ident, data)

    def send_request(self) -> None:
        self.ident = (self.ident + 1) & 0xFF
        self.sent_options = [option for option in self.wanted() if option[0] not in self.refused]
        self.send(CONF_REQ, self.ident, options_bytes(self.sent_options))
        self.deadline = self.link.now() + RESTART_S

    def tick(self, now: float) -> None:
        if self.deadline is None or now < self.deadline or self.state not in ("req-sent", "ack-rcvd", "ack-sent"):
            return
        if self.retries <= 0:
            self.deadline = None
            self.link.fail(f"{self.name}: no answer to {MAX_CONFIGURE} Configure-Requests")
            return
        self.retries -= 1
        if self.state == "ack-rcvd":
            self.state = "req-sent"
        self.send_request()

    def receive(self, code: int, ident: int, data: bytes) -> None:
        if code == CONF_REQ:
            self._on_request(ident, data)
        elif code in (CONF_ACK, CONF_NAK, CONF_REJ):
            if ident != self.ident:
                self.link.log(f"{self.name}: {CODE_NAMES[code]} id {ident} is not for our request {self.ident}")
                return
            self._on_answer(code, data)
        elif code == TERM_REQ:
            self.send(TERM_ACK, ident)
            self._leave_opened()
            self.state = "stopped"
            self.link.terminated(f"{self.name}: the peer sent Terminate-Request")
        elif code == TERM_ACK:
            self.state = "closed"
        elif code in (CODE_REJ, PROTO_REJ):
            self.link.log(f"{self.name}: peer sent {CODE_NAMES[code]} {data[:8].hex()}")
        elif not self.extra(code, ident, data):
            self.send(CODE_REJ, (self.ident + 100) & 0xFF, packet(code, ident, data)[:64])

    def _on_request(self, ident: int, data: bytes) -> None:
        options = parse_options(data)
        if options is None:
            self.link.log(f"{self.name}: malformed Configure-Request dropped: {data.hex()}")
            return
        code, answer = self.judge(options)
        self.send(code, ident, options_bytes(answer))
        if code == CONF_ACK:
            if self.state == "opened":
                self._leave_opened()
                self.send_request()
                self.state = "ack-sent"
            elif self.state == "ack-rcvd":
                self._enter_opened()
            elif self.state in ("req-sent", "ack-sent"):
                self.state = "ack-sent"
        else:
            if self.state == "opened":
                self._leave_opened()
                self.send_request()
                self.state = "req-sent"
            elif self.state == "ack-sent":
                self.state = "req-sent"

    def _on_answer(self, code: int, data: bytes) -> None:
        if code == CONF_ACK:
            if options_bytes(self.sent_options) != data:
                self.link.log(f"{self.name}: Configure-Ack does not repeat our request; dropped")
                return
            self.retries = MAX_CONFIGURE
            if self.state == "req-sent":
                self.state = "ack-rcvd"
                self.deadline = self.link.now() + RESTART_S
            elif self.state == "ack-sent":
                self._enter_opened()
            elif self.state in ("ack-rcvd", "opened"):
                self._leave_opened()
                self.send_request()
                self.state = "req-sent"
            return
        options = parse_options(data)
        if options is None:
            return
        if code == CONF_NAK:
            self.nakked(options)
        else:
            self.refused |= {kind for kind, _ in options}
            self.rejected(options)
        if self.link.failed:
            return
        if self.state == "opened":
            self._leave_opened()
        if self.state != "ack-sent":
            self.state = "req-sent"
        self.send_request()

    def _enter_opened(self) -> None:
        self.state = "opened"
        self.deadline = None
        self.link.log(f"{self.name}: opened")
        self.up()

    def _leave_opened(self) -> None:
        if self.state == "opened":
            self.link.log(f"{self.name}: down")
            self.down()

    # what subclasses define
    def wanted(self) -> list[tuple[int, bytes]]:
        return []

    def judge(self, options: list[tuple[int, bytes]]) -> tuple[int, list[tuple[int, bytes]]]:
        """Configure-Ack with the options, or Configure-Nak/-Reject with those to change or drop."""
        return CONF_ACK, options

    def nakked(self, options: list[tuple[int, bytes]]) -> None:
        pass

    def rejected(self, options: list[tuple[int, bytes]]) -> None:
        pass

    def extra(self, code: int, ident: int, data: bytes) -> bool:
        return False

    def up(self) -> None:
        pass

    def down(self) -> None:
        pass


def verdict(rejects: list, naks: list, acks: list) -> tuple[int, list]:
    if rejects:
        return CONF_REJ, rejects
    if naks:
        return CONF_NAK, naks
    return CONF_ACK, acks


class Lcp(Negotiation):
    protocol, name = LCP, "LCP"

    def __init__(self, link: "Link"):
        super().__init__(link)
        self.mru = link.config["mru"]
        self.magic = random.getrandbits(32) or 1
        self.demand = {"pap": PAP, "chap": CHAP}.get(link.config["auth"])  # what we ask the peer to do
        self.peer_mru = 1500
        self.peer_magic = 0
        self.peer_demand: tuple[int, bytes] | None = None  # (protocol, data) the peer asked of us, once acked

    def wanted(self):
        options = [(MRU, struct.pack("!H", self.mru)), (MAGIC, struct.pack("!I", self.magic))]
        if self.demand == PAP:
            options.append((AUTH, struct.pack("!H", PAP)))
        elif self.demand == CHAP:
            options.append((AUTH, struct.pack("!HB", CHAP, CHAP_MD5)))
        return options

    def judge(self, options):
        rejects, naks, acks = [], [], []
        demand = None
        for kind, value in options:
            if kind == MRU and len(value) == 2:
                acks.append((kind, value))
            elif kind == ACCM and len(value) == 4:
                acks.append((kind, value))  # we escape every control character anyway
            elif kind == MAGIC and len(value) == 4:
                if value == struct.pack("!I", self.magic):  # a looped-back line, or a rare coincidence
                    naks.append((kind, struct.pack("!I", random.getrandbits(32) or 1)))
                else:
                    acks.append((kind, value))
            elif kind == AUTH and len(value) >= 2:
                protocol = struct.unpack("!H", value[:2])[0]
                if not self.link.config.get("password"):
                    rejects.append((kind, value))  # nothing to authenticate with
                elif protocol == PAP or (protocol == CHAP and value[2:] == bytes([CHAP_MD5])):
                    demand = (protocol, value[2:])
                    acks.append((kind, value))
                else:
                    naks.append((kind, struct.pack("!HB", CHAP, CHAP_MD5)))  # what we can do
            else:
                rejects.append((kind, value))  # PFC, ACFC and the rest: frames stay uncompressed
        code, answer = verdict(rejects, naks, acks)
        if code == CONF_ACK:
            values = dict(options)
            self.peer_mru = struct.unpack("!H", values[MRU])[0] if MRU in values else 1500
            self.peer_magic = struct.unpack("!I", values[MAGIC])[0] if MAGIC in values else 0
            self.peer_demand = demand
        return code, answer

    def nakked(self, options):
        for kind, value in options:
            if kind == MRU and len(value) == 2:
                self.mru = struct.unpack("!H", value)[0]
            elif kind == MAGIC:
                self.magic = random.getrandbits(32) or 1
            elif kind == AUTH:
                self.link.log(f"LCP: the peer will not authenticate with {self.link.config['auth']} "
                              f"(suggests {value.hex()}); asking again")

    def rejected(self, options):
        for kind, _ in options:
            if kind == AUTH:
                self.link.fail("LCP: the peer refused to authenticate (Configure-Reject of Authentication-Protocol)")
            elif kind == MRU:
                self.mru = 1500

    def extra(self, code, ident, data):
        if code == ECHO_REQ:
            if self.state == "opened":
                self.send(ECHO_REPLY, ident, struct.pack("!I", self.magic) + data[4:])
            return True
        if code in (ECHO_REPLY, DISCARD_REQ):
            return True
        return False

    def up(self):
        self.link.lcp_up()

    def down(self):
        self.link.lcp_down()


def address(value: bytes) -> str:
    return str(ipaddress.IPv4Address(value))


class Ipcp(Negotiation):
    protocol, name = IPCP, "IPCP"

    def __init__(self, link: "Link"):
        super().__init__(link)
        self.local = link.config.get("local") or "0.0.0.0"
        self.fixed_local = bool(link.config.get("local"))
        self.remote = link.config.get("remote")  # the address we assign; None: accept the peer's

    def wanted(self):
        return [(IP_ADDRESS, ipaddress.IPv4Address(self.local).packed)]

    def judge(self, options):
        rejects, naks, acks = [], [], []
        peer = None
        for kind, value in options:
            if kind == IP_ADDRESS and len(value) == 4:
                if self.remote and address(value) != self.remote:
                    naks.append((kind, ipaddress.IPv4Address(self.remote).packed))  # assign it
                elif address(value) == "0.0.0.0":
                    rejects.append((kind, value))  # asks to be assigned and we have nothing to give
                else:
                    peer = address(value)
                    acks.append((kind, value))
            else:
                rejects.append((kind, value))  # VJ compression, DNS/NBNS addresses: not offered
        code, answer = verdict(rejects, naks, acks)
        if code == CONF_ACK:
            self.remote = peer or self.remote
        return code, answer

    def nakked(self, options):
        for kind, value in options:
            if kind == IP_ADDRESS and len(value) == 4 and not self.fixed_local:
                self.local = address(value)  # the address the peer assigns us

    def up(self):
        if self.local == "0.0.0.0" or not self.remote:
            self.link.fail(f"IPCP: opened without both addresses (local {self.local}, remote {self.remote})")
            return
        self.link.ipcp_up(self.local, self.remote)

    def down(self):
        self.link.ipcp_down()


# --- the link: phases, authentication, data ---------------------------------------------------------------------

class Link:
    """One PPP link. I/O is injected (`write` takes a whole PPP frame payload, `clock` the time) so the state
    machine can be driven by canned frames; `events` records the phase changes a caller acts on."""

    def __init__(self, config: dict, write, clock=time.monotonic, log=None):
        self.config = {"auth": "none", "mru": 1400, **config}
        self.write = write
        self.now = clock
        self.log = log or (lambda message: None)
        self.failed: str | None = None
        self.finished = False
        self.events: list[tuple] = []
        self.lcp = Lcp(self)
        self.ipcp = Ipcp(self)
        self.ipcp_open = False
        self.auth_ident = random.randrange(256)
        self.authenticated_peer = False  # the peer proved itself (or we asked nothing)
        self.authenticated_self = False  # we proved ourselves (or were asked nothing)
        self.auth_deadline: float | None = None
        self.auth_retries = 0
        self.challenge = b""
        self.on_ipcp_up = lambda local, remote: None
        self.on_ipcp_down = lambda: None
        self.on_ipv4 = lambda datagram: None

    # sending
    def send(self, protocol: int, info: bytes) -> None:
        self.write(ADDRESS_CONTROL + struct.pack("!H", protocol) + info)

    def send_control(self, protocol: int, code: int, ident: int, data: bytes = b"") -> None:
        self.log(f"sent {describe_packet(protocol, code, ident, data)}")
        self.send(protocol, packet(code, ident, data))

    def send_ipv4(self, datagram: bytes) -> None:
        if self.ipcp_open:
            self.send(IPV4, datagram)

    # receiving
    def start(self) -> None:
        self.lcp.open()

    def receive(self, payload: bytes) -> None:
        parsed = split_protocol(payload)
        if parsed is None:
            return
        protocol, info = parsed
        if protocol == IPV4:
            if self.ipcp_open:
                self.on_ipv4(info)
            return
        control = parse_packet(info)
        if control is None:
            self.log(f"malformed {PROTOCOL_NAMES.get(protocol, hex(protocol))} packet dropped: {info[:32].hex()}")
            return
        code, ident, data = control
        self.log(f"received {describe_packet(protocol, code, ident, data)}")
        if protocol == LCP:
            self.lcp.receive(code, ident, data)
        elif self.lcp.state != "opened":
            return  # RFC 1661 3.4: only LCP before the link is up
        elif protocol == PAP:
            self._pap(code, ident, data)
        elif protocol == CHAP:
            self._chap(code, ident, data)
        elif protocol == IPCP:
            if self.authenticated_peer and self.authenticated_self:
                self.ipcp.receive(code, ident, data)
        else:  # IPv6CP, CCP, ...: RFC 1661 5.7
            self.lcp.send(PROTO_REJ, (self.lcp.ident + 50) & 0xFF, struct.pack("!H", protocol) + info[:64])

    def tick(self, now: float) -> None:
        self.lcp.tick(now)
        self.ipcp.tick(now)
        if self.auth_deadline is not None and now >= self.auth_deadline:
            if self.auth_retries <= 0:
                self.fail("authentication: no answer")
            else:
                self.auth_retries -= 1
                self._auth_send()

    # phases
    def lcp_up(self) -> None:
        self.events.append(("lcp-up",))
        self.authenticated_peer = self.lcp.demand is None
        demand = self.lcp.peer_demand
        self.authenticated_self = demand is None
        self.auth_retries = MAX_CONFIGURE
        if self.lcp.demand == CHAP:
            self.challenge = os.urandom(16)
        if demand and demand[0] == PAP or self.lcp.demand == CHAP:
            self._auth_send()
        self._maybe_network()

    def lcp_down(self) -> None:
        self.events.append(("lcp-down",))
        if self.ipcp.state == "opened":
            self.ipcp._leave_opened()
        self.ipcp.state = "initial"
        self.ipcp.deadline = None
        self.auth_deadline = None

    def _maybe_network(self) -> None:
        if self.authenticated_peer and self.authenticated_self and self.ipcp.state == "initial":
            self.auth_deadline = None
            self.ipcp.open()

    def ipcp_up(self, local: str, remote: str) -> None:
        self.ipcp_open = True
        self.events.append(("ipcp-up", local, remote))
        self.log(f"IPCP: local {local} remote {remote}")
        self.on_ipcp_up(local, remote)

    def ipcp_down(self) -> None:
        self.ipcp_open = False
        self.events.append(("ipcp-down",))
        self.on_ipcp_down()

    def fail(self, why: str) -> None:
        if self.failed:
            return
        self.failed = why
        self.log(f"failed: {why}")
        self.close()

    def close(self) -> None:
        """Terminate-Request to the peer; the caller exits soon after (xl2tpd then clears the call)."""
        if self.lcp.state not in ("closed", "stopped"):
            self.lcp.send(TERM_REQ, (self.lcp.ident + 1) & 0xFF)
            self.lcp.state = "closing"
            self.lcp.deadline = None
        self.finished = True

    def terminated(self, why: str) -> None:
        self.log(why)
        self.ipcp_open = False
        self.finished = True

    # authentication
    def _auth_send(self) -> None:
        """(Re)send what our side of authentication starts with: our PAP request, or our CHAP challenge."""
        self.auth_deadline = self.now() + RESTART_S
        if not self.authenticated_self and self.lcp.peer_demand and self.lcp.peer_demand[0] == PAP:
            user, password = self.config["username"].encode(), self.config["password"].encode()
            self.auth_ident = (self.auth_ident + 1) & 0xFF
            self.send_control(PAP, 1, self.auth_ident, bytes([len(user)]) + user + bytes([len(password)]) + password)
        if not self.authenticated_peer and self.lcp.demand == CHAP:
            name = self.config.get("name", "l2tp-ppp").encode()
            self.send_control(CHAP, 1, self.auth_ident, bytes([len(self.challenge)]) + self.challenge + name)

    def _pap(self, code: int, ident: int, data: bytes) -> None:
        if code == 1 and self.lcp.demand == PAP:  # Authenticate-Request
            user_len = data[0] if data else 0
            user = data[1:1 + user_len]
            rest = data[1 + user_len:]
            password = rest[1:1 + rest[0]] if rest else b""
            good = (user == self.config["username"].encode() and password == self.config["password"].encode())
            message = b"Login ok" if good else b"Login incorrect"
            self.send_control(PAP, 2 if good else 3, ident, bytes([len(message)]) + message)
            if not good:
                self.fail(f"PAP: the peer's credentials ({user!r}) are wrong")
                return
            if not self.authenticated_peer:
                self.authenticated_peer = True
                self.events.append(("authenticated-peer", "pap", user.decode(errors="replace")))
            self._maybe_network()
        elif code in (2, 3) and ident == self.auth_ident and not self.authenticated_self:
            if code == 3:
                self.fail("PAP: the peer refused our credentials")
                return
            self.authenticated_self = True
            self.events.append(("authenticated-self", "pap"))
            self._maybe_network()

    def _chap(self, code: int, ident: int, data: bytes) -> None:
        secret = self.config["password"].encode()
        if code == 1 and self.lcp.peer_demand and self.lcp.peer_demand[0] == CHAP:  # Challenge
            challenge = data[1:1 + data[0]] if data else b""
            value = hashlib.md5(bytes([ident]) + secret + challenge).digest()
            name = self.config["username"].encode()
            self.send_control(CHAP, 2, ident, bytes([len(value)]) + value + name)
        elif code == 2 and self.lcp.demand == CHAP and ident == self.auth_ident:  # Response
            value = data[1:1 + data[0]] if data else b""
            name = data[1 + len(value):]
            good = (name == self.config["username"].encode()
                    and value == hashlib.md5(bytes([ident]) + secret + self.challenge).digest())
            self.send_control(CHAP, 3 if good else 4, ident, b"Welcome" if good else b"Access denied")
            if not good:
                self.fail(f"CHAP: the peer's response ({name!r}) is wrong")
                return
            if not self.authenticated_peer:
                self.authenticated_peer = True
                self.events.append(("authenticated-peer", "chap", name.decode(errors="replace")))
            self._maybe_network()
        elif code == 3 and not self.authenticated_self:
            self.authenticated_self = True
            self.events.append(("authenticated-self", "chap"))
            self._maybe_network()
        elif code == 4 and not self.authenticated_self:
            self.fail("CHAP: the peer refused our response")


# --- the program: pty on stdin/stdout, a TUN device --------------------------------------------------------------

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def attach_tun(link: Link, name: str, log) -> int:
    """A TUN device `name` for the link's IPv4: addressed (local, peer /32) when IPCP opens, flushed when it closes;
    the caller passes what the device gives to `link.send_ipv4`. Returns the device's file descriptor."""
    tun = open_tun(name)

    def ipcp_up(local: str, remote: str) -> None:
        mtu = min(link.lcp.peer_mru, link.lcp.mru)
        try:
            ip("link", "set", "dev", name, "mtu", str(mtu), "up")
            ip("addr", "replace", local, "peer", f"{remote}/32", "dev", name)
        except subprocess.CalledProcessError as exc:
            link.fail(f"could not configure {name}: {exc.stderr.strip()}")
            return
        log(f"{name} up: {local} peer {remote}, mtu {mtu}")

    def ipcp_down() -> None:
        subprocess.run(["ip", "addr", "flush", "dev", name], capture_output=True)

    link.on_ipcp_up, link.on_ipcp_down = ipcp_up, ipcp_down
    link.on_ipv4 = lambda datagram: os.write(tun, datagram)
    return tun


class Logger:
    def __init__(self, paths: list[str]):
        self.files = []
        for path in paths:
            try:
                self.files.append(open(path, "a", buffering=1))
            except OSError:
                pass

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} l2tp-ppp[{os.getpid()}]: {message}\n"
        for f in self.files:
            try:
                f.write(line)
            except OSError:
                pass


def load_config(argv: list[str]) -> dict:
    path = os.environ.get("L2TP_PPP_CONFIG", CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        config = {}
    for arg in argv:  # pppd's "local:remote"
        local, colon, remote = arg.partition(":")
        if colon and all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a or "0.0.0.0") for a in (local, remote)):
            config.setdefault("local", local or None)
            config.setdefault("remote", remote or None)
    return config


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def main(argv: list[str]) -> int:
    config = load_config(argv[1:])
    log = Logger(config.get("log", ["/dev/stderr"]))
    log(f"started as {' '.join(argv)}")
    if os.isatty(0):
        # The pty must pass every byte as is: no echo, no CR/LF mapping, no signals. TCSANOW, not setraw's
        # default TCSAFLUSH: that discards what the peer already sent, and its first LCP request was lost so.
        tty.setraw(0, termios.TCSANOW)
    link = Link(config, write=lambda payload: write_all(1, frame(payload)), log=log)
    tun = attach_tun(link, config.get("interface", "ppp0"), log)
    stopping = []
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda signum, _: stopping.append(signum))
    deframer = Deframer()
    link.start()
    while not link.finished:
        if stopping:
            log(f"signal {stopping[0]}: closing the link")
            link.close()
            break
        try:
            readable, _, _ = select.select([0, tun], [], [], 0.2)
        except InterruptedError:
            continue
        if 0 in readable:
            try:
                data = os.read(0, 65536)
            except OSError:
                data = b""
            if not data:
                log("the line closed")
                break
            for payload in deframer.feed(data):
                link.receive(payload)
        if tun in readable:
            link.send_ipv4(os.read(tun, 65536))
        link.tick(time.monotonic())
    if deframer.bad_fcs:
        log(f"{deframer.bad_fcs} frames with a bad FCS dropped")
    log(f"exiting: {link.failed or 'link closed'}")
    time.sleep(0.1)  # let the Terminate-Request leave before the pty closes
    return 1 if link.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
