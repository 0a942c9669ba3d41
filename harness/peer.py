"""An active peer in the lab: a sidecar from the harness's tools image, sharing a node's network namespace
(so it speaks from that node's address, which the node's peers are configured to trust), that sends
datagrams the harness built (a protocol package builds them, e.g. with scapy) and reports the replies.
It knows no protocol."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from harness.errors import HarnessError
from harness.lab import Lab, Node


@dataclass(frozen=True)
class Reply:
    step: int  # index of the datagram this reply followed
    src: str
    sport: int
    data: bytes


class UdpPeer:
    def __init__(self, lab: Lab, beside: Node, tools_image: str, name: str = "peer"):
        if getattr(beside, "bridge_ports", None):  # a VM node's container has no address of its own to speak from
            pytest.skip(f"{beside.name} runs as a microVM (harness.vm) and the case sends its own datagrams from "
                        f"{beside.name}'s address, which no peer beside a VM can (its container has no address)")
        container = lab.sidecar(f"{name}-{beside.name}", tools_image, of=beside, command=["sleep", "infinity"],
                                cap_add=[])
        container.start()
        self.node = Node(container, f"{name} beside {beside.name}", beside.address, beside.network)

    def exchange(self, datagrams: list[bytes], to: tuple[str, int], *, sport: int, wait: float = 0.5,
                 zero_checksum: bool = False) -> list[Reply]:
        """Send each datagram from `sport`, collecting replies for `wait` seconds after each one; with a zero
        UDP checksum if asked (what tunnel encapsulations send, RFC 7348 5)."""
        spec = {"bind": ["0.0.0.0", sport], "to": list(to), "zero_checksum": zero_checksum,
                "steps": [{"send": d.hex(), "wait": wait} for d in datagrams]}
        self.node.put_files({"/tmp/udp-peer.json": json.dumps(spec)})
        result = self.node.exec(["sh", "-c", "udp-peer < /tmp/udp-peer.json"],
                                timeout=len(datagrams) * wait + 10, what=f"the UDP peer's exchange with {to[0]}:{to[1]}")
        if not result.ok:
            raise HarnessError(f"{self.node.name}: udp-peer failed ({result.exit_code}): {result.output.strip()[-300:]}")
        replies = []
        for line in result.output.splitlines():
            record = json.loads(line)
            replies.append(Reply(record["step"], record["from"][0], record["from"][1], bytes.fromhex(record["data"])))
        return replies
