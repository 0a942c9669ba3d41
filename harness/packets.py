"""Helpers on scapy packets that every wire reader needs, whatever the protocol."""
from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet


def captured(layer: Packet) -> bytes:
    """The bytes as captured from this layer on (scapy keeps them per layer, already cut to the IP length)."""
    return bytes(getattr(layer, "original", None) or b"")


def network_layer(frame: Packet) -> IP | IPv6 | None:
    """The outermost IP header: the underlay the peers talk over."""
    for layer in frame.iterpayloads():
        if isinstance(layer, (IP, IPv6)):
            return layer
    return None
