"""Helpers on scapy packets that every wire reader needs, whatever the protocol."""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import scapy.layers.l2  # noqa: F401  (registers the Ethernet and Linux cooked link types with the reader)
from scapy.error import Scapy_Exception
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import MTU, PcapReader, RawPcapReader

from harness.errors import CaptureError

PCAP_HEADER = 24                # the file header: magic, version, thiszone, sigfigs, snaplen, linktype
RECORD_HEADER = 16              # seconds, sub-seconds, captured length, length on the wire
MAX_SNAPLEN = 262144            # libpcap's largest snapshot length: a record claiming more is garbage


class _Damaged(Exception):
    """A record that cannot be framed: cut short, or claiming more bytes than any capture holds."""


class _WholeRecords(RawPcapReader):
    """scapy's pcap reader hands over a record cut short as a shorter record, and a record header cut short as the
    end of the file: read so, a capture that lost its tail looks whole. Here both are damage."""

    def _read_packet(self, size: int = MTU):
        header = self.f.read(RECORD_HEADER)
        if not header:
            raise EOFError
        if len(header) < RECORD_HEADER:
            raise _Damaged(f"header cut short ({len(header)} of {RECORD_HEADER} bytes)")
        sec, usec, caplen, wirelen = struct.unpack(self.endian + "IIII", header)
        if caplen > max(self.snaplen, MAX_SNAPLEN):
            raise _Damaged(f"claims {caplen} bytes, more than any capture holds")
        data = self.f.read(caplen)
        if len(data) < caplen:
            raise _Damaged(f"cut short ({len(data)} of {caplen} bytes)")
        return data[:size], RawPcapReader.PacketMetadata(sec=sec, usec=usec, wirelen=wirelen, caplen=caplen)


class _WholePcapReader(PcapReader, _WholeRecords):
    """PcapReader dissecting the records _WholeRecords reads (PcapReader reads through super(PcapReader, ...))."""


def _reader(path: str | os.PathLike, raw: bool = False):
    """A classic pcap reader that checks every record; pcapng (whose blocks carry their own lengths) falls back to
    scapy's own reader. The file is opened here so that a file that is neither is closed at once."""
    f = open(path, "rb")
    try:
        try:
            return (_WholeRecords if raw else _WholePcapReader)(f)
        except Scapy_Exception:
            f.seek(0)
            return (RawPcapReader if raw else PcapReader)(f)
    except BaseException:
        f.close()
        raise


class Frames:
    """The frames of a capture as (number, frame), numbered from 1 as Wireshark counts. Never raises on what the
    file holds: a missing or unreadable file has no frames; a damaged record (cut short or unframeable) ends the
    reading, since what follows it cannot be framed either, and sets `damaged` (and `problem`, in words). A capture
    read while tcpdump still writes it (Capture.peek) may end so; a finished one must not (see `damage`)."""

    def __init__(self, path: str | os.PathLike | None):
        if path is None:  # Capture.stop of a capture that never started: there is no wire to read, not an empty one
            raise CaptureError("no capture to read: it never started")
        self.path = path
        self.damaged = False
        self.problem: str | None = None

    def __iter__(self) -> Iterator[tuple[int, Packet]]:
        try:
            reader = _reader(self.path)
        except Exception:  # missing, empty, or not a capture at all
            return
        with reader:
            number = 0
            while True:
                try:
                    frame = reader.read_packet()
                except EOFError:
                    return
                except Exception as exc:
                    self.damaged, self.problem = True, f"record {number + 1} {exc}"
                    return
                number += 1
                yield number, frame


def damage(path: str | os.PathLike) -> str | None:
    """What makes a finished capture unfit to judge from, in words, or None: missing, empty (tcpdump never wrote
    its header), not a capture, or a record cut short or unframeable. Records are framed, not dissected, so this is
    quick on a large capture. A header and no records is a whole capture of silence: only the case knows whether
    silence is what it expects (see Capture.confirm)."""
    path = Path(path)
    if not path.is_file():
        return "no capture file"
    size = path.stat().st_size
    if size == 0:
        return "empty: no pcap header (tcpdump never wrote to it)"
    try:
        reader = _reader(path, raw=True)
    except Exception:
        if size < PCAP_HEADER:
            return f"no whole pcap header ({size} of {PCAP_HEADER} bytes)"
        return f"not a capture: no pcap header (it begins 0x{path.read_bytes()[:4].hex()})"
    with reader:
        number = 0
        while True:
            try:
                reader._read_packet()
            except EOFError:
                return None
            except Exception as exc:
                reason = exc if isinstance(exc, _Damaged) else f"cannot be read ({exc})"
                return f"damaged: record {number + 1} {reason}"
            number += 1


def captured(layer: Packet) -> bytes:
    """The bytes as captured from this layer on (scapy keeps them per layer, already cut to the IP length)."""
    return bytes(getattr(layer, "original", None) or b"")


def network_layer(frame: Packet) -> IP | IPv6 | None:
    """The outermost IP header: the underlay the peers talk over."""
    for layer in frame.iterpayloads():
        if isinstance(layer, (IP, IPv6)):
            return layer
    return None
