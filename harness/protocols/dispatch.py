"""Which decoder claims an IP datagram: one table, read by the transcript command and by every protocol's wire
reader, so that a datagram is decoded by one protocol, never by two, and the command's count of frames per
protocol is what each protocol's transcript then shows.

The rules, in order:
1. The IP protocols of the table claim their datagrams whatever they carry: ESP (50), L2TPv3 over IP (115).
2. UDP: a port the caller names for this capture (a VTEP configured on another port; `Dispatch.with_ports`)
   decides first, as Wireshark's "Decode As" does; then, of the two ports, the lower one decides when the table
   has it, else the higher one. Lower first is how Wireshark decides between two registered ports, so the
   transcript agrees with tshark frame by frame; it gives both directions of a conversation to the same decoder;
   and well-known ports are low where senders pick high source ports (RFC 7348 5 and RFC 8926 3.3 ask VTEPs for
   49152-65535, and NAT-T's 4500 is on one side of every ESP-in-UDP datagram, RFC 3948 2.2). So UDP
   4500 -> 8472 is IPsec (NAT-T, a peer behind a NAT that mapped it to 8472) where nothing else is said, and
   VXLAN for a reader told its VTEPs use 8472; 8472 -> 4789 is VXLAN either way. Unlike Wireshark, the table
   never looks at the bytes to turn a datagram away: a datagram to a port is that port's protocol's to judge.
3. TCP: of the two ports, the lower one decides when the table has it, else the higher one (BGP's 179 is on one
   side of every session).
4. What the table has no row for is nobody's (ICMP, other TCP, ...); a reader may still look at ICMP errors quoting its
   own datagrams (the VXLAN reader does). A fragment that never became whole is claimed by its IP protocol, or by
   its ports when its first piece came; without them it is nobody's.
Within a row the protocol's reader tells formats apart by the bytes, as the RFC says: on 4500 a zero non-ESP
marker starts IKE, 0xff alone is a NAT keepalive, anything else is ESP (RFC 3948 2); on 1701 the version field
says L2TPv2 or L2TPv3 (RFC 3931 3.2.2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

UDP, IP, TCP = "UDP port", "IP protocol", "TCP port"
IPPROTO_UDP, IPPROTO_TCP = 17, 6


@dataclass(frozen=True)
class Row:
    carrier: str        # UDP (a port) or IP (a protocol number)
    number: int
    protocol: str       # the protocol package that decodes it (harness.protocols.<protocol>)
    format: str         # what that package reads it as
    what: str           # in words, with the RFC

    def describe(self) -> str:
        return f"{self.carrier} {self.number}: {self.protocol} ({self.what})"


TABLE = (
    #   carrier  number  protocol  format        what
    Row(UDP,     500,    "ipsec",  "ike",        "IKE: ISAKMP header first, RFC 7296 2, RFC 2408 3.1"),
    Row(UDP,     4500,   "ipsec",  "nat-t",      "IKE after the non-ESP marker, else ESP in UDP, RFC 3948 2"),
    Row(UDP,     1701,   "l2tp",   "l2tp",       "L2TPv2, RFC 2661; L2TPv3 by its version field, RFC 3931 4.1.2.1"),
    Row(UDP,     4789,   "vxlan",  "vxlan",      "VXLAN, RFC 7348 5"),
    Row(UDP,     8472,   "vxlan",  "vxlan",      "VXLAN on the Linux kernel's default port before IANA's"),
    Row(UDP,     4790,   "vxlan",  "vxlan-gpe",  "VXLAN-GPE, draft-ietf-nvo3-vxlan-gpe"),
    Row(UDP,     6081,   "vxlan",  "geneve",     "Geneve, RFC 8926 3.3"),
    Row(TCP,     179,    "evpn",   "bgp",        "BGP (EVPN routes, RFC 7432), RFC 4271"),
    Row(IP,      50,     "ipsec",  "esp",        "ESP, RFC 4303"),
    Row(IP,      115,    "l2tp",   "l2tpv3-ip",  "L2TPv3 over IP, RFC 3931 4.1.1"),
)


class Dispatch:
    """The table, and the rules above."""

    def __init__(self, rows=TABLE, given=()):
        self.rows = tuple(rows)
        self.given: dict[int, Row] = {row.number: row for row in given}   # UDP ports named for one capture
        self.udp: dict[int, Row] = {}
        self.ip: dict[int, Row] = {}
        self.tcp: dict[int, Row] = {}
        for row in self.rows:
            table = {UDP: self.udp, TCP: self.tcp, IP: self.ip}[row.carrier]
            if row.number in table and table[row.number] != row:
                raise ValueError(f"{row.carrier} {row.number} is claimed twice: {table[row.number]} and {row}")
            table[row.number] = row

    def with_ports(self, protocol: str, ports: Mapping[int, str]) -> Dispatch:
        """This table with UDP ports named for one capture and given to `protocol` ({port: format}): they decide
        before the table's."""
        given = {**self.given, **{int(port): Row(UDP, int(port), protocol, fmt, f"{fmt}: a port named for this capture")
                                  for port, fmt in ports.items()}}
        return Dispatch(self.rows, given.values())

    def claim(self, datagram) -> Row | None:
        """The row that claims a datagram (anything with `proto` and `ports`), or None."""
        row = self.ip.get(datagram.proto)
        if row is not None or datagram.proto not in (IPPROTO_UDP, IPPROTO_TCP):
            return row
        ports = datagram.ports
        if ports is None:
            return None
        low, high = (ports[0], ports[1]) if ports[0] <= ports[1] else (ports[1], ports[0])
        if datagram.proto == IPPROTO_TCP:
            return self.tcp.get(low) or self.tcp.get(high)
        if self.given:
            row = self.given.get(low) or self.given.get(high)
            if row is not None:
                return row
        return self.udp.get(low) or self.udp.get(high)

    def owner(self, datagram) -> str | None:
        row = self.claim(datagram)
        return row.protocol if row else None

    def describe(self) -> str:
        return "\n".join(row.describe() for row in (*self.given.values(), *self.rows))


DISPATCH = Dispatch()
claim = DISPATCH.claim
owner = DISPATCH.owner
