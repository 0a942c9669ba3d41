#!/usr/bin/env python3
"""Hold packets in user space until N are held, then release them together: packets that would follow each other
(two peers' requests, each sent on its own timer or command) are made to cross. Runs in a lab node's network
namespace (harness.faults), reading the NFQUEUE that the node's nftables or iptables rules send candidates to.

    hold QUEUE TIMEOUT_S COUNT MATCH [COUNT MATCH ...]

Each COUNT MATCH pair is a stage, done in order. MATCH says which candidates the stage holds, in bytes of the
transport header (nftables' @th, here in bytes): alternatives separated by "|", each a comma-separated list of
OFFSET:HEX or OFFSET:HEX/MASK, all of which must hold ("2:01f4,26:24,27:00/20": destination port 500, byte 26 is
0x24, bit 0x20 of byte 27 clear). Every other candidate passes at once. The stage holds the first COUNT matching
packets; once COUNT are held it releases them in the order they came and the next stage begins; after the last
one every packet passes. TIMEOUT_S after a stage began it releases what it holds all the same (the output says
so). A later stage lets two answers cross as well as the requests they answer: an endpoint that got the answer
to its own request before it handled its peer's would see no crossing at all.
Prints one line per event: "bound", "stage S: held I/COUNT ...", "stage S: released N" or
"stage S: timeout: released N of COUNT". Standard library and libnetfilter_queue (ctypes) only.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

NF_ACCEPT = 1
NFQNL_COPY_PACKET = 2
COPY_RANGE = 0xFFFF
IPPROTO_HEADERS = {6, 17, 132, 136}  # TCP, UDP, SCTP, UDP-Lite: a transport header right after the IP header


def parse_match(text: str) -> list[list[tuple[int, bytes, bytes]]]:
    """MATCH as (offset, value, mask) triples per alternative; ValueError naming the part that is wrong."""
    alternatives = []
    for alternative in text.split("|"):
        triples = []
        for part in alternative.split(","):
            offset, sep, rest = part.strip().partition(":")
            value, _, mask = rest.partition("/")
            try:
                if not sep or not value:
                    raise ValueError
                at, data = int(offset), bytes.fromhex(value)
                bits = bytes.fromhex(mask) if mask else b"\xff" * len(data)
            except ValueError:
                raise ValueError(f"match part {part!r} is not OFFSET:HEX or OFFSET:HEX/MASK") from None
            if at < 0 or len(bits) != len(data):
                raise ValueError(f"match part {part!r}: a negative offset, or a mask not as long as the value")
            triples.append((at, data, bits))
        alternatives.append(triples)
    return alternatives


def transport(packet: bytes) -> bytes | None:
    """The packet from its transport header on (IPv4 with options, IPv6 without extension headers), or None."""
    if len(packet) >= 20 and packet[0] >> 4 == 4 and packet[9] in IPPROTO_HEADERS:
        return packet[(packet[0] & 0x0F) * 4:]
    if len(packet) >= 40 and packet[0] >> 4 == 6 and packet[6] in IPPROTO_HEADERS:
        return packet[40:]
    return None


def matches(packet: bytes, alternatives: list[list[tuple[int, bytes, bytes]]]) -> bool:
    """Whether the IP packet satisfies every (offset, value, mask) of one alternative, offsets counted from its
    transport header. A packet too short for an offset does not match."""
    header = transport(packet)
    if header is None:
        return False
    for triples in alternatives:
        if all(len(header) >= at + len(value) and
               all(b & m == v & m for b, v, m in zip(header[at:at + len(value)], value, mask))
               for at, value, mask in triples):
            return True
    return False


class _PacketHeader(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("packet_id", ctypes.c_uint32), ("hw_protocol", ctypes.c_uint16), ("hook", ctypes.c_uint8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def say(line: str) -> None:
    print(line, flush=True)


def serve(queue: int, timeout_s: float, stages: list[tuple[int, list]]) -> int:
    nfq = ctypes.CDLL("libnetfilter_queue.so.1", use_errno=True)
    nfq.nfq_open.restype = ctypes.c_void_p
    nfq.nfq_create_queue.restype = ctypes.c_void_p
    nfq.nfq_create_queue.argtypes = [ctypes.c_void_p, ctypes.c_uint16, _CALLBACK, ctypes.c_void_p]
    nfq.nfq_set_mode.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32]
    nfq.nfq_fd.argtypes = [ctypes.c_void_p]
    nfq.nfq_handle_packet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    nfq.nfq_get_msg_packet_hdr.restype = ctypes.POINTER(_PacketHeader)
    nfq.nfq_get_msg_packet_hdr.argtypes = [ctypes.c_void_p]
    nfq.nfq_get_payload.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_char))]
    nfq.nfq_set_verdict.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                    ctypes.c_void_p]

    handle = nfq.nfq_open()
    if not handle:
        say(f"error: nfq_open failed (errno {ctypes.get_errno()})")
        return 1
    held: list[int] = []
    state = {"stage": 0, "began": time.monotonic(), "queue": None}

    def release(why: str = "") -> None:
        count = stages[state["stage"]][0]
        for packet_id in held:
            nfq.nfq_set_verdict(state["queue"], packet_id, NF_ACCEPT, 0, None)
        say(f"stage {state['stage'] + 1}: {why}released {len(held)}" + (f" of {count}" if why else ""))
        held.clear()
        state["stage"] += 1
        state["began"] = time.monotonic()

    def on_packet(queue_handle, _message, data, _user) -> int:
        header = nfq.nfq_get_msg_packet_hdr(data)
        packet_id = int.from_bytes(header.contents.packet_id.to_bytes(4, sys.byteorder), "big")
        payload = ctypes.POINTER(ctypes.c_char)()
        length = nfq.nfq_get_payload(data, ctypes.byref(payload))
        packet = ctypes.string_at(payload, length) if length > 0 else b""
        if state["stage"] >= len(stages) or not matches(packet, stages[state["stage"]][1]):
            return nfq.nfq_set_verdict(queue_handle, packet_id, NF_ACCEPT, 0, None)
        held.append(packet_id)
        count = stages[state["stage"]][0]
        say(f"stage {state['stage'] + 1}: held {len(held)}/{count} at {time.monotonic() - start:.3f}s: "
            f"{len(packet)} bytes, {packet[:64].hex()}")
        if len(held) == count:
            release()
        return 0

    start = time.monotonic()
    callback = _CALLBACK(on_packet)  # kept referenced: the C library calls it for as long as the queue lives
    state["queue"] = nfq.nfq_create_queue(handle, queue, callback, None)
    if not state["queue"]:
        say(f"error: cannot bind NFQUEUE {queue} (errno {ctypes.get_errno()}): another listener, or no "
            f"nfnetlink_queue in this kernel")
        return 1
    if nfq.nfq_set_mode(state["queue"], NFQNL_COPY_PACKET, COPY_RANGE) < 0:
        say("error: nfq_set_mode failed")
        return 1
    fd = nfq.nfq_fd(handle)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    say("bound")
    while True:
        waiting = state["stage"] < len(stages)
        ready, _, _ = select.select([fd], [], [], max(0.0, state["began"] + timeout_s - time.monotonic())
                                    if waiting else None)
        if not ready:
            release("timeout: ")
            continue
        try:
            received = os.read(fd, 1 << 16)
        except OSError:  # ENOBUFS: the kernel had more for us than the socket held; what it kept comes next
            continue
        nfq.nfq_handle_packet(handle, received, len(received))


def main(argv: list[str]) -> int:
    try:
        queue, timeout_s, rest = int(argv[0]), float(argv[1]), argv[2:]
        if not rest or len(rest) % 2:
            raise ValueError("give stages as COUNT MATCH pairs")
        stages = [(int(count), parse_match(match)) for count, match in zip(rest[::2], rest[1::2])]
        if any(count < 1 for count, _ in stages):
            raise ValueError("a COUNT below 1")
    except (IndexError, ValueError) as exc:
        say(f"usage: hold QUEUE TIMEOUT_S COUNT MATCH [COUNT MATCH ...] ({exc})")
        return 2
    return serve(queue, timeout_s, stages)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
