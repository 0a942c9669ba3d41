#!/usr/bin/python3
"""vm-exec TIMEOUT SCRIPT_B64 [STDIN_B64] | vm-exec --reboot: one request to the broker (vmkit-run), run inside a
VM node's container with `docker exec`. Prints the command's output and exits with its status; 124 when it timed
out (as coreutils' timeout); 125 with a line "oi-vm: ..." on stderr when the broker or the VM failed."""
import base64
import json
import socket
import sys
import time

SOCKET = "/run/vm/exec.sock"
# The broker binds its socket only after it has made the bridge, a moment after the container starts, and the
# harness puts the node's files as soon as the container runs: a request that comes first waits for the broker
# instead of failing (seen: "[Errno 2] No such file or directory" for the first tar into a VM node).
BROKER_WAIT_S = 30


def connect(path: str = SOCKET, wait: float = BROKER_WAIT_S) -> socket.socket:
    deadline = time.monotonic() + wait
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    sock = connect()
    if argv[0] == "--reboot":
        sock.sendall(b'{"reboot": true}\n')
        return json.loads(sock.makefile("rb").readline())["code"]
    timeout = float(argv[0])
    script = base64.b64decode(argv[1])
    stdin = base64.b64decode(argv[2]) if len(argv) > 2 else b""
    sock.settimeout(timeout + 120)
    sock.sendall(json.dumps({"timeout": timeout, "script": len(script), "stdin": len(stdin)}).encode() + b"\n"
                 + script + stdin)
    f = sock.makefile("rb")
    answer = json.loads(f.readline())
    if "error" in answer:
        print(f"oi-vm: {answer['error']}", file=sys.stderr)
        return 125
    sys.stdout.buffer.write(f.read(answer["length"]))
    return 124 if answer["timed_out"] else answer["code"]


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError) as exc:
        print(f"oi-vm: no answer from the VM's broker: {exc}", file=sys.stderr)
        sys.exit(125)
