"""The L2TP wire: every L2TP datagram in a capture (UDP port 1701 over IPv4 or IPv6, reassembled where the IP
layer fragmented it), decoded by the codec. Control messages (SCCRQ ... ZLB) with their tunnel and session ids and
Ns/Nr, and data messages with the PPP they carry. L2TPv3 (RFC 3931: over UDP, told apart by its version field,
and over IP protocol 115) is recognised and its header shown (harness.protocols.l2tp.v3: header only). Never
raises on what a capture holds: an unreadable datagram is counted, a damaged message is marked malformed.

A control message sent again while unacknowledged (RFC 2661 5.8) is a retransmission: readers see each message
once unless they ask for `retransmissions=True`, as the IPsec wire does with IKE."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from scapy.layers.ppp import PPP_LCP_Configure

from harness.packets import Datagrams
from harness.protocols.dispatch import claim
from harness.protocols.l2tp import v3
from harness.protocols.l2tp.codec import L2tpMessage, decode, header_length
from harness.textfmt import DETAIL, message_line

PROTOCOL = "l2tp"                   # its rows in the dispatch table
UDP_HEADER = struct.Struct("!HHHH")

OUTER_IPV4_UDP = 20 + 8
PPP_ADDRESS_CONTROL = b"\xff\x03"  # RFC 1662 3.1: all-stations address, unnumbered information
PPP_PROTOCOL = 2                    # RFC 1661 2: two bytes unless Protocol-Field-Compression was negotiated
LCP_CONFIGURE_ACK = 2
PPP_LCP = 0xC021
LCP_PFC, LCP_ACFC = 7, 8            # RFC 1661 6.5, 6.6: Protocol- and Address-and-Control-Field-Compression


@dataclass(frozen=True)
class L2tpDatagram:
    number: int  # the frame's number in the capture (1-based, as Wireshark counts; a reassembled one: its last)
    time: float
    src: str
    dst: str
    sport: int | None  # None over IP (L2TPv3, protocol 115)
    dport: int | None
    message: L2tpMessage | v3.L2tpv3Message

    @property
    def retransmission_key(self) -> tuple | None:
        """What two sendings of one control message share (RFC 2661 5.8: a retransmission keeps its Ns and
        content; only Nr is brought up to date, so Nr is left out); None for what is never retransmitted: data
        messages, ZLBs (not acknowledged, so never sent again) and messages too damaged to have an Ns."""
        m = self.message
        if not m.is_control or self.kind in ("ZLB", "malformed") or m.ns is None or m.version != 2:
            return None
        body = m.data[header_length(m.flags, m.offset_size or 0):]
        return self.src, self.dst, self.sport, self.dport, m.flags, m.tunnel_id, m.session_id, m.ns, body

    @property
    def kind(self) -> str:
        """The control message type (SCCRQ ... ZLB), "data", or "malformed"."""
        if self.message.malformed and self.message.message_type is None:
            return "malformed"
        return self.message.message_type or "data"

    def describe(self, t0: float = 0.0) -> str:
        head, *rest = self.message.describe().splitlines()
        return "\n".join([message_line(self.number, self.time, t0, self.src, self.dst, head, self.sport, self.dport),
                          *(f"{DETAIL}{line.strip()}" for line in rest)])


@dataclass(frozen=True)
class Encapsulation:
    """The bytes the RFCs put around the packet a data message carries (see Wire.encapsulation)."""
    l2tp: int
    ppp: int
    outer: int = OUTER_IPV4_UDP

    @property
    def total(self) -> int:
        return self.outer + self.l2tp + self.ppp

    def describe(self) -> str:
        return f"{self.total} (outer IPv4 and UDP {self.outer}, L2TP header {self.l2tp}, PPP header {self.ppp})"


@dataclass(frozen=True)
class Wire:
    datagrams: tuple[L2tpDatagram, ...] = ()
    unreadable: int = 0  # frames on the L2TP port that were not even IPv4/UDP
    start: float = 0.0

    @classmethod
    def from_pcap(cls, path, secret: bytes | str | None = None) -> "Wire":
        """With the tunnel `secret`, hidden AVPs are unhidden. A missing or unreadable capture is an empty Wire; one
        cut short (a capture read while it goes on) keeps what was read. `path`: a capture file, "-", or a
        harness.packets.Capture already read."""
        datagrams, unreadable = [], 0
        found = Datagrams(path)
        for datagram in found:
            row = claim(datagram)
            if row is None or row.protocol != PROTOCOL:
                continue
            try:
                read = _read(datagram, row.format, secret)
            except Exception:  # one datagram that breaks the reader costs only itself
                read = None
            if read is None:
                unreadable += 1
            else:
                datagrams.append(read)
        return cls(tuple(datagrams), unreadable, found.start or 0.0)

    @cached_property
    def retransmitted(self) -> dict[int, int]:
        """The frame number of each retransmission, mapped to that of the message's first sending."""
        first: dict[tuple, int] = {}
        copies = {}
        for d in self.datagrams:
            key = d.retransmission_key
            if key in first:
                copies[d.number] = first[key]
            elif key is not None:
                first[key] = d.number
        return copies

    def control(self, src: str | None = None, dst: str | None = None, *,
                retransmissions: bool = False) -> list[L2tpDatagram]:
        """The control messages (ZLBs included) in capture order, from `src` / to `dst` if given, each once:
        retransmissions are left out unless asked for, so a case judges the conversation, not how often a peer
        had to repeat itself."""
        return [d for d in self.datagrams if d.message.is_control and (src is None or d.src == src)
                and (dst is None or d.dst == dst) and (retransmissions or d.number not in self.retransmitted)]

    def data(self, src: str | None = None, dst: str | None = None) -> list[L2tpDatagram]:
        return [d for d in self.datagrams if d.message.is_control is False and (src is None or d.src == src)
                and (dst is None or d.dst == dst)]

    def may_compress(self, src: str, before: float | None = None) -> tuple[bool, bool]:
        """Whether `src` may leave PPP's Address and Control field out, and send a one-byte Protocol field (by
        `before`, a capture time): only once it agreed to, by a Configure-Ack of its own carrying ACFC / PFC
        (RFC 1661 6.5, 6.6: the option is the receiver's request to get frames so; by default both MUST be sent
        in full)."""
        agreed = {option.type for d in self.data(src=src) if d.message.ppp_protocol == PPP_LCP
                  and (before is None or d.time <= before)
                  for lcp in [d.message.ppp.getlayer(PPP_LCP_Configure)]
                  if lcp is not None and lcp.code == LCP_CONFIGURE_ACK for option in lcp.options}
        return LCP_ACFC in agreed, LCP_PFC in agreed

    def encapsulation(self, datagram: L2tpDatagram) -> Encapsulation:
        """The bytes a data message may put around the packet it carries, sized by the RFCs from its header's
        flag bits, not measured: outer IPv4 and UDP; the L2TP header (RFC 2661 3.1: 6, +2 Length with the L bit,
        +4 Ns and Nr with S, +2 Offset Size and the offset padding with O); PPP's Address and Control (2) and
        Protocol (2) fields, less what its sender had agreed to compress (may_compress) and did."""
        m = datagram.message
        l2tp = header_length(m.flags, m.offset_size or 0)
        frame = m.data[l2tp:]
        acfc, pfc = self.may_compress(datagram.src, before=datagram.time)
        sent_address_control = frame.startswith(PPP_ADDRESS_CONTROL)
        address_control = 0 if acfc and not sent_address_control else len(PPP_ADDRESS_CONTROL)
        protocol_at = len(PPP_ADDRESS_CONTROL) if sent_address_control else 0
        one_byte_protocol = len(frame) > protocol_at and frame[protocol_at] & 1  # RFC 1661 2: the low byte is odd
        return Encapsulation(l2tp, address_control + (1 if pfc and one_byte_protocol else PPP_PROTOCOL))

    def sent(self, src: str, kind: str, *, retransmissions: bool = False) -> list[L2tpDatagram]:
        """The control messages of one type ("SCCRQ", "ZLB", ...) from `src`."""
        return [d for d in self.control(src=src, retransmissions=retransmissions) if d.kind == kind]

    def acknowledgement(self, message: L2tpDatagram) -> L2tpDatagram | None:
        """The first control message from the other side whose Nr covers `message` (RFC 2661 5.8: Nr is the next
        Ns expected, so it acknowledges every Ns before it; 16-bit, wrapping), or None. A retransmission counts:
        its Nr is brought up to date, so it may be the first to acknowledge."""
        return next((d for d in self.control(src=message.dst, retransmissions=True) if d.time >= message.time
                     and 0 < (d.message.nr - message.message.ns) & 0xFFFF < 0x8000), None)

    def sequence_error(self, src: str) -> str | None:
        """What is wrong with the Ns and Nr of the control messages `src` sent, or None (RFC 2661 5.8): Ns counts
        them from 0, one up per message but not for a ZLB (which carries the next Ns); Nr never goes back. A
        retransmission is the same message again and counts once; a new message reusing an Ns does not."""
        expected, last_nr = 0, 0
        for d in self.control(src=src):
            if d.message.ns != expected:
                return f"{src} sent {d.kind} (#{d.number}) with Ns {d.message.ns}, expected {expected}"
            if 0 < (last_nr - d.message.nr) & 0xFFFF < 0x8000:
                return f"{src}'s Nr went back from {last_nr} to {d.message.nr} in {d.kind} (#{d.number})"
            expected = (expected + (d.kind != "ZLB")) & 0xFFFF
            last_nr = d.message.nr
        return None

    def said(self, src: str) -> str:
        """One line of what `src` sent, for a verdict: its control message types, and the Result Code of any
        StopCCN or CDN ("nothing" when it sent no control message)."""
        kinds = self.message_types(src, retransmissions=True)  # "StopCCN x5": how often it had to say it
        if not kinds:
            return "nothing"
        results = []
        for d in self.control(src=src, retransmissions=True):
            found = d.message.avp("Result Code") if d.kind in ("StopCCN", "CDN") else None
            if found is not None and found.value is not None:
                layer = found.layer
                message = layer.fields.get("error_message") or b""
                results.append(f"{d.kind} result {layer.result_code} error {layer.fields.get('error_code')}"
                               + (f" {message.decode(errors='replace')!r}" if message else ""))
        runs: list[list] = []  # consecutive repeats counted: "SCCRQ, ZLB, StopCCN x5"
        for kind in kinds:
            if runs and runs[-1][0] == kind:
                runs[-1][1] += 1
            else:
                runs.append([kind, 1])
        listed = ", ".join(kind if n == 1 else f"{kind} x{n}" for kind, n in runs)
        return listed + (f" ({'; '.join(dict.fromkeys(results))})" if results else "")

    def message_types(self, src: str | None = None, zlb: bool = True, *, retransmissions: bool = False) -> list[str]:
        return [d.kind for d in self.control(src, retransmissions=retransmissions) if zlb or d.kind != "ZLB"]

    def malformed(self) -> list[L2tpDatagram]:
        return [d for d in self.datagrams if d.message.malformed]

    def describe(self) -> str:
        lines = [d.describe(self.start) + (f"\n    retransmission of #{self.retransmitted[d.number]}"
                                           if d.number in self.retransmitted else "")
                 for d in self.datagrams] or ["no L2TP on the wire"]
        if self.unreadable:
            lines.append(f"{self.unreadable} L2TP datagram(s) not readable (IP fragments missing, or no UDP header)")
        return "\n".join(lines)


def _read(datagram, form: str, secret: bytes | str | None) -> L2tpDatagram | None:
    """One datagram the dispatch table gave L2TP; None when not even its UDP header is there to read."""
    if not datagram.complete:
        return None
    if form == "l2tpv3-ip":
        return L2tpDatagram(datagram.number, datagram.time, datagram.src, datagram.dst, None, None,
                            v3.decode(datagram.payload, over="IP"))
    segment = datagram.payload
    if len(segment) < UDP_HEADER.size:
        return None
    sport, dport, length, _checksum = UDP_HEADER.unpack_from(segment)
    body = segment[UDP_HEADER.size:length] if length >= UDP_HEADER.size else segment[UDP_HEADER.size:]
    if len(body) >= 2 and body[1] & 0x0F == v3.VERSION:  # RFC 3931 4.1.2.1: the version field tells them apart
        message = v3.decode(body, over="UDP")
    else:
        message = decode(body, secret)
    return L2tpDatagram(datagram.number, datagram.time, datagram.src, datagram.dst, sport, dport, message)
