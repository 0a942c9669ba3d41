"""Overlay frames built by the harness itself (scapy for the inner Ethernet, the 8-byte headers by hand: scapy's
VXLAN layer sets the GPE bit by default): what the conformance probes and injections send as UDP payload."""
from __future__ import annotations

import struct

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

I_FLAG = 0x08
BROADCAST = "ff:ff:ff:ff:ff:ff"


def vxlan(vni: int, inner: bytes, *, flags: int = I_FLAG, reserved24: int = 0, reserved8: int = 0) -> bytes:
    """RFC 7348 5: flags (8), reserved (24), VNI (24), reserved (8), then the inner Ethernet frame."""
    return struct.pack("!I", (flags << 24) | reserved24) + struct.pack("!I", (vni << 8) | reserved8) + inner


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    return bytes(Ether(src=src_mac, dst=BROADCAST) / ARP(op=1, hwsrc=src_mac, psrc=src_ip, pdst=target_ip))


def echo_request(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, *, ident: int, seq: int) -> bytes:
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=ident, seq=seq)
                 / b"overlay-interop probe")
