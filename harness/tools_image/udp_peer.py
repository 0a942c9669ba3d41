#!/usr/bin/env python3
"""Send datagrams from this lab node and print what comes back: the harness's active peer.

Reads a JSON spec on stdin: {"bind": [addr, port], "to": [addr, port], "steps": [{"send": hex, "wait": s}],
"zero_checksum": false}. zero_checksum: send with a zero UDP checksum (IPv4 allows it), as tunnel encapsulations
do; else the kernel leaves the checksum to an offload that never happens on a veth, and a user-space receiver
(Open vSwitch's netdev datapath) sees it as bad.
Each step sends one datagram, then collects replies for `wait` seconds. Prints one JSON line per reply:
{"step": i, "from": [addr, port], "data": hex}. Standard library only: it runs inside a lab container.
"""
import json
import select
import socket
import sys
import time

SO_NO_CHECK = 11  # Linux: transmit UDP without a checksum


def main() -> int:
    spec = json.load(sys.stdin)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if spec.get("zero_checksum"):
        sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    sock.bind(tuple(spec["bind"]))
    target = tuple(spec["to"])
    for index, step in enumerate(spec["steps"]):
        sock.sendto(bytes.fromhex(step["send"]), target)
        deadline = time.monotonic() + float(step.get("wait", 0))
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if ready:
                data, sender = sock.recvfrom(65535)
                print(json.dumps({"step": index, "from": list(sender), "data": data.hex()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
