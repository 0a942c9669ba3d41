"""Helpers on scapy packets that every wire reader needs, whatever the protocol."""
from __future__ import annotations

import os
from collections.abc import Iterator

import scapy.layers.l2  # noqa: F401  (registers the Ethernet and Linux cooked link types with the reader)
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import PcapReader


class Frames:
    """The frames of a capture as (number, frame), numbered from 1 as Wireshark counts. Never raises on what the
    file holds: a missing or unreadable file has no frames; a damaged record (a capture cut short) ends the
    reading, since what follows it cannot be framed either, and sets `damaged`."""

    def __init__(self, path: str | os.PathLike):
        self.path = path
        self.damaged = False

    def __iter__(self) -> Iterator[tuple[int, Packet]]:
        try:
            reader = PcapReader(os.fspath(self.path))
        except Exception:  # missing, empty, or not a capture at all
            return
        with reader:
            number = 0
            while True:
                try:
                    frame = reader.read_packet()
                except EOFError:
                    return
                except Exception:
                    self.damaged = True
                    return
                number += 1
                yield number, frame


def captured(layer: Packet) -> bytes:
    """The bytes as captured from this layer on (scapy keeps them per layer, already cut to the IP length)."""
    return bytes(getattr(layer, "original", None) or b"")


def network_layer(frame: Packet) -> IP | IPv6 | None:
    """The outermost IP header: the underlay the peers talk over."""
    for layer in frame.iterpayloads():
        if isinstance(layer, (IP, IPv6)):
            return layer
    return None
