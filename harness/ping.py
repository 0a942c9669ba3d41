"""ICMP echo from inside a node (iputils ping): the data-plane probe every protocol's cases use."""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.lab import Node


@dataclass(frozen=True)
class Ping:
    sent: int
    received: int
    output: str
    refused_locally: bool = False  # ping could not send at all (e.g. "message too long" under -M do)

    @property
    def all_answered(self) -> bool:
        return self.sent > 0 and self.received == self.sent


def ping(node: Node, dst: str, *, source: str | None = None, count: int = 3, interval: float = 0.05,
         size: int | None = None, dont_fragment: bool = False, wait_s: float = 1) -> Ping:
    """`count` echo requests from `node` to `dst` (from the address or interface `source`); never raises
    for lost answers: the caller judges."""
    # No -w: with it ping keeps sending until `count` replies are in, so the wire would carry more echoes than
    # `sent` says. (Without it, once a reply is in, iputils waits ~2 round trips, not -W, after its last echo: a
    # reply much later than the others, as from a loaded microVM, counts as lost though it is on the wire.)
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait_s:g}"]
    if source:
        argv += ["-I", source]
    if size is not None:
        argv += ["-s", str(size)]
    if dont_fragment:
        argv += ["-M", "do"]
    result = node.exec([*argv, dst], timeout=count * (interval + wait_s) + 5,
                       what=f"ping {source or node.name} -> {dst}")
    match = re.search(r"(\d+) packets transmitted, (\d+) received", result.output)
    sent, received = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    refused = "message too long" in result.output.lower() or "frag needed" in result.output.lower()
    return Ping(sent, received, result.output.strip(), refused_locally=refused and received == 0)
