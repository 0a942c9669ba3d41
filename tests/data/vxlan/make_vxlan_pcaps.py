"""Writes the VXLAN and Geneve test captures next to this file. Deterministic (fixed times, IP ids, source
ports, MACs), so re-running it reproduces the checked-in files byte for byte.

    python tests/data/vxlan/make_vxlan_pcaps.py [FOLDER]

The VTEPs are 198.18.0.2 (V1) and 198.18.0.3 (V2), a third V3 198.18.0.4; inner hosts follow
harness.protocols.vxlan.scenario (VNI 100: 198.19.100.1/.2, MACs 02:4f:49:64:00:01/02). The VXLAN and
Geneve headers are packed by hand so that reserved bits and odd options are exactly what the file says.

  vxlan_ping_4789.pcap   1 underlay ARP (not overlay), then at 4789: ARP request (broadcast) V1->V2, ARP reply
                         V2->V1, echo request/reply seq 1..3; one UDP 53 datagram (not overlay) in between
  vxlan_ping_8472.pcap   the same exchange at the Linux port 8472
  vxlan_two_vnis.pcap    VNI 100 and VNI 200 echoes, and VNI 200 from V3 too; source ports differ per flow
  vxlan_reserved.pcap    flags 0x88 (an R bit), 24-bit reserved 0x000001, 8-bit reserved 0x01, I flag clear,
                         and one inner frame with an 802.1Q tag
  geneve.pcap            Geneve at 6081: no option; a non-critical option (class 0xfff0 type 0x01); a critical
                         option with C set; a critical option with C clear; Geneve carrying IPv4 directly
  vxlan_fragments.pcap   a 1500-byte inner packet: its VXLAN datagram in 2 outer fragments (reassembled); a
                         second datagram whose last fragment is missing; a lone later fragment (unclaimable)
  vxlan_ipv6_underlay.pcap  an echo request and reply with an IPv6 underlay
  vxlan_port_unreachable.pcap  a VXLAN ARP request answered by ICMP port unreachable, over IPv4 and over
                         IPv6 (ICMPv6); then a port unreachable about UDP 53 (not overlay)
  vxlan_malformed.pcap   UDP 4789 payloads: 3 bytes; a VXLAN header and nothing else; an inner Ethernet header
                         cut to 10 bytes; an inner IPv4 packet cut short; a UDP length past the captured bytes;
                         Geneve options overrunning the datagram; a Geneve option overrunning the options; a UDP
                         length shorter than its header; then a well-formed echo request
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000.0
V1, V2, V3 = "198.18.0.2", "198.18.0.3", "198.18.0.4"
V1_6, V2_6 = "2001:db8::2", "2001:db8::3"
UNDERLAY_MACS = {V1: "02:00:00:00:00:02", V2: "02:00:00:00:00:03", V3: "02:00:00:00:00:04",
                 V1_6: "02:00:00:00:00:02", V2_6: "02:00:00:00:00:03"}
BROADCAST = "ff:ff:ff:ff:ff:ff"
GENEVE_OPTION = (0xFFF0, 0x01, bytes.fromhex("4f490001"))   # as harness.protocols.vxlan.scenario.GENEVE_OPTION
CRITICAL_OPTION = (0xFFF0, 0x81, bytes.fromhex("0000000a"))


def host(k: int, i: int) -> tuple[str, str]:
    """Inner address and MAC of VTEP i in segment k (harness.protocols.vxlan.scenario.Segment)."""
    return f"198.19.{k}.{i}", f"02:4f:49:{k:02x}:00:{i:02x}"


def vxlan_header(vni: int, flags: int = 0x08, reserved24: int = 0, reserved8: int = 0) -> bytes:
    return struct.pack("!B3sI", flags, reserved24.to_bytes(3, "big"), (vni << 8) | reserved8)


def geneve_header(vni: int, options=(), *, critical: bool | None = None, protocol: int = 0x6558) -> bytes:
    body = b"".join(struct.pack("!HBB", cls, kind, len(data) // 4) + data for cls, kind, data in options)
    if critical is None:
        critical = any(kind & 0x80 for _cls, kind, _data in options)
    return struct.pack("!BBHI", len(body) // 4, 0x40 if critical else 0, protocol, vni << 8) + body


def outer(src: str, dst: str, sport: int, dport: int, payload: bytes, *, ip_id: int = 0, df: bool = True):
    """The underlay datagram. Over IPv4 the UDP checksum is zero, as VTEPs send it (RFC 7348 5); over IPv6
    it is computed (RFC 6935 allows zero only where both ends are configured for it)."""
    if ":" in src:
        ip, checksum = IPv6(src=src, dst=dst, hlim=64), None
    else:
        ip, checksum = IP(src=src, dst=dst, id=ip_id, flags="DF" if df else 0, ttl=64), 0
    return (Ether(src=UNDERLAY_MACS[src], dst=UNDERLAY_MACS[dst]) / ip / UDP(sport=sport, dport=dport, chksum=checksum)
            / Raw(payload))


def arp_request(k: int, i: int, j: int) -> bytes:
    (sip, smac), tip = host(k, i), host(k, j)[0]
    return bytes(Ether(src=smac, dst=BROADCAST) / ARP(op=1, hwsrc=smac, psrc=sip, pdst=tip))


def arp_reply(k: int, i: int, j: int) -> bytes:
    (sip, smac), (tip, tmac) = host(k, i), host(k, j)
    return bytes(Ether(src=smac, dst=tmac) / ARP(op=2, hwsrc=smac, psrc=sip, hwdst=tmac, pdst=tip))


def echo(k: int, i: int, j: int, seq: int, reply: bool = False, size: int = 56, ident: int = 0x4f49) -> bytes:
    (sip, smac), (dip, dmac) = host(k, i), host(k, j)
    return bytes(Ether(src=smac, dst=dmac) / IP(src=sip, dst=dip, id=seq, flags="DF", ttl=64)
                 / ICMP(type=0 if reply else 8, id=ident, seq=seq) / Raw(bytes(size)))


class Capture:
    """Frames with times 1 ms apart."""

    def __init__(self) -> None:
        self.frames = []

    def add(self, frame) -> None:
        frame.time = T0 + len(self.frames) * 0.001
        self.frames.append(frame)

    def vxlan(self, src: str, dst: str, inner: bytes, *, vni: int = 100, port: int = 4789, sport: int = 49152,
              **header) -> None:
        self.add(outer(src, dst, sport, port, vxlan_header(vni, **header) + inner))

    def ping(self, src: str, dst: str, k: int, i: int, j: int, *, vni: int, port: int = 4789, count: int = 3,
             sport: int = 49152, sport_back: int = 49153) -> None:
        for seq in range(1, count + 1):
            self.vxlan(src, dst, echo(k, i, j, seq), vni=vni, port=port, sport=sport)
            self.vxlan(dst, src, echo(k, j, i, seq, reply=True), vni=vni, port=port, sport=sport_back)

    def write(self, path: Path) -> None:
        wrpcap(str(path), self.frames, linktype=1)


def ping_exchange(port: int) -> Capture:
    c = Capture()
    c.add(Ether(src=UNDERLAY_MACS[V1], dst=BROADCAST) / ARP(op=1, hwsrc=UNDERLAY_MACS[V1], psrc=V1, pdst=V2))
    c.vxlan(V1, V2, arp_request(100, 1, 2), port=port, sport=51234)
    c.vxlan(V2, V1, arp_reply(100, 2, 1), port=port, sport=40000)
    c.ping(V1, V2, 100, 1, 2, vni=100, port=port, count=1, sport=51000, sport_back=52000)
    c.add(Ether(src=UNDERLAY_MACS[V1], dst=UNDERLAY_MACS[V2]) / IP(src=V1, dst=V2, id=7) / UDP(sport=5353, dport=53)
          / Raw(b"not overlay"))
    for seq in (2, 3):
        c.vxlan(V1, V2, echo(100, 1, 2, seq), port=port, sport=51000)
        c.vxlan(V2, V1, echo(100, 2, 1, seq, reply=True), port=port, sport=52000)
    return c


def two_vnis() -> Capture:
    c = Capture()
    c.ping(V1, V2, 100, 1, 2, vni=100, count=2, sport=50100, sport_back=50101)
    c.ping(V1, V2, 200, 1, 2, vni=200, count=2, sport=50200, sport_back=50201)
    c.ping(V3, V2, 200, 3, 2, vni=200, count=1, sport=50300, sport_back=50301)
    return c


def reserved_bits() -> Capture:
    c = Capture()
    c.vxlan(V1, V2, echo(100, 1, 2, 1), flags=0x88)
    c.vxlan(V1, V2, echo(100, 1, 2, 2), reserved24=0x000001)
    c.vxlan(V1, V2, echo(100, 1, 2, 3), reserved8=0x01)
    c.vxlan(V1, V2, echo(100, 1, 2, 4), flags=0x00)
    (sip, smac), (dip, dmac) = host(100, 1), host(100, 2)
    tagged = Ether(src=smac, dst=dmac) / Dot1Q(vlan=10) / IP(src=sip, dst=dip, id=5) / ICMP(id=0x4f49, seq=5)
    c.vxlan(V1, V2, bytes(tagged))
    return c


def geneve() -> Capture:
    c = Capture()
    c.add(outer(V1, V2, 50000, 6081, geneve_header(100) + echo(100, 1, 2, 1)))
    c.add(outer(V2, V1, 50001, 6081, geneve_header(100, [GENEVE_OPTION]) + echo(100, 2, 1, 1, reply=True)))
    c.add(outer(V1, V2, 50000, 6081, geneve_header(100, [GENEVE_OPTION, CRITICAL_OPTION]) + echo(100, 1, 2, 2)))
    c.add(outer(V1, V2, 50000, 6081, geneve_header(100, [CRITICAL_OPTION], critical=False) + echo(100, 1, 2, 3)))
    direct = bytes(IP(src="198.19.100.1", dst="198.19.100.2", id=4) / ICMP(id=0x4f49, seq=4))
    c.add(outer(V1, V2, 50000, 6081, geneve_header(100, protocol=0x0800) + direct))
    return c


def fragments() -> Capture:
    c = Capture()
    big = outer(V1, V2, 51000, 4789, vxlan_header(100) + echo(100, 1, 2, 1, size=1472), ip_id=0x1234, df=False)
    for piece in fragment(big[IP], fragsize=1480):
        c.add(Ether(src=UNDERLAY_MACS[V1], dst=UNDERLAY_MACS[V2]) / piece)
    lost = outer(V1, V2, 51000, 4789, vxlan_header(100) + echo(100, 1, 2, 2, size=1472), ip_id=0x1235, df=False)
    c.add(Ether(src=UNDERLAY_MACS[V1], dst=UNDERLAY_MACS[V2]) / fragment(lost[IP], fragsize=1480)[0])
    orphan = outer(V1, V2, 51000, 4789, vxlan_header(100) + echo(100, 1, 2, 3, size=1472), ip_id=0x1236, df=False)
    c.add(Ether(src=UNDERLAY_MACS[V1], dst=UNDERLAY_MACS[V2]) / fragment(orphan[IP], fragsize=1480)[1])
    c.ping(V2, V1, 100, 2, 1, vni=100, count=1)
    return c


def ipv6_underlay() -> Capture:
    c = Capture()
    c.vxlan(V1_6, V2_6, echo(100, 1, 2, 1))
    c.vxlan(V2_6, V1_6, echo(100, 2, 1, 1, reply=True))
    return c


def port_unreachable() -> Capture:
    c = Capture()
    for underlay in ((V1, V2), (V1_6, V2_6)):
        src, dst = underlay
        sent = outer(src, dst, 41863, 4789, vxlan_header(100) + arp_request(100, 1, 2))
        c.add(sent)
        if ":" in src:
            error = IPv6(src=dst, dst=src) / ICMPv6DestUnreach(code=4) / sent[IPv6]
        else:
            error = IP(src=dst, dst=src, id=9) / ICMP(type=3, code=3) / sent[IP]
        c.add(Ether(src=UNDERLAY_MACS[dst], dst=UNDERLAY_MACS[src]) / error)
    dns = IP(src=V1, dst=V2, id=8) / UDP(sport=5353, dport=53) / Raw(b"not overlay")
    c.add(Ether(src=UNDERLAY_MACS[V2], dst=UNDERLAY_MACS[V1]) / IP(src=V2, dst=V1, id=10) / ICMP(type=3, code=3) / dns)
    return c


def malformed() -> Capture:
    c = Capture()
    c.add(outer(V1, V2, 49152, 4789, b"\x08\x00\x00"))
    c.add(outer(V1, V2, 49152, 4789, vxlan_header(100)))
    c.add(outer(V1, V2, 49152, 4789, vxlan_header(100) + echo(100, 1, 2, 1)[:10]))
    c.add(outer(V1, V2, 49152, 4789, vxlan_header(100) + echo(100, 1, 2, 2)[:30]))
    overrun = outer(V1, V2, 49152, 4789, vxlan_header(100) + echo(100, 1, 2, 3))
    overrun[UDP].len = 400
    c.add(overrun)
    c.add(outer(V1, V2, 49152, 6081, struct.pack("!BBHI", 5, 0, 0x6558, 100 << 8) + b"\xff\xf0\x01\x01"))
    c.add(outer(V1, V2, 49152, 6081, struct.pack("!BBHI", 1, 0, 0x6558, 100 << 8) + b"\xff\xf0\x01\x03"))
    short = outer(V1, V2, 49152, 4789, vxlan_header(100) + echo(100, 1, 2, 4))
    short[UDP].len = 4
    c.add(short)
    c.vxlan(V1, V2, echo(100, 1, 2, 5))
    return c


CAPTURES = {
    "vxlan_ping_4789.pcap": lambda: ping_exchange(4789),
    "vxlan_ping_8472.pcap": lambda: ping_exchange(8472),
    "vxlan_two_vnis.pcap": two_vnis,
    "vxlan_reserved.pcap": reserved_bits,
    "geneve.pcap": geneve,
    "vxlan_fragments.pcap": fragments,
    "vxlan_ipv6_underlay.pcap": ipv6_underlay,
    "vxlan_port_unreachable.pcap": port_unreachable,
    "vxlan_malformed.pcap": malformed,
}


def main(folder: Path = HERE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in CAPTURES.items():
        capture = build()
        capture.write(folder / name)
        print(f"wrote {len(capture.frames)} frames to {folder / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
