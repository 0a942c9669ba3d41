"""How a transcript line about one message starts, whatever the protocol: the frame number as Wireshark numbers
it (from 1), the time since the capture's first frame (seconds, 6 decimals, Wireshark's default "seconds since
beginning of capture"), then the addresses and ports; the protocol's own description follows.

    message_line(4, 1700000000.75, 1700000000.0, "198.18.0.3", "198.18.0.2", "ZLB tunnel 17 ...", 1701, 1701)
    -> "#4 0.750000 198.18.0.3:1701 > 198.18.0.2:1701 ZLB tunnel 17 ..."

Lines that detail the message go under it, indented by DETAIL. Knows no protocol.
"""
from __future__ import annotations

DETAIL = "    "


def endpoint(address: str, port: int | None = None) -> str:
    """An address, with its port when there is one; an IPv6 address in brackets then, so the port reads apart."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def message_line(number: int, time: float, start: float, src: str, dst: str, text: str,
                 sport: int | None = None, dport: int | None = None) -> str:
    """The line that introduces one message: frame number, time since `start` (the capture's first frame, not
    the protocol's first message: the times then read as in Wireshark), `src` > `dst`, then `text`."""
    head = f"#{number} {time - start:.6f} {endpoint(src, sport)} > {endpoint(dst, dport)}"
    return f"{head} {text}" if text else head
