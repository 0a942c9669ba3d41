"""DOCKER_HOST pointing at another engine: the harness reaches the engine only through the Docker API (never a
local socket path, never the docker CLI), so a run through a TCP endpoint works like a local one. The "other
engine" is this machine's, behind a TCP relay: what the harness sees is an engine at tcp://127.0.0.1:<port>."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from support import ROOT

RUN_TIMEOUT_S = 300


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tcp_engine():
    """A TCP listener on loopback relaying every connection to the local engine's socket."""
    engine_url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")  # the SDK's default
    if not engine_url.startswith("unix://"):
        pytest.fail(f"this test relays to a local engine socket; DOCKER_HOST is already {engine_url}")
    socket_path = engine_url.removeprefix("unix://")
    server = socket.socket()
    relayed = []
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve():
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            relayed.append(client)
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(socket_path)
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", relayed
    server.close()


def test_a_run_through_docker_host_works(tcp_engine, tmp_path):
    url, relayed = tcp_engine
    env = dict(os.environ, DOCKER_HOST=url)
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-n", "0", "--protocols", "vxlan",
                             "--vendors", "linux", "-k", "unicast", "--reports-dir", str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    records = json.loads((tmp_path / "matrix.json").read_text())
    assert [(r["case"], r["verdict"]) for r in records] == [("unicast", "passed")]
    assert (tmp_path / "pairs/vxlan/unicast/linux__linux/capture.pcap").stat().st_size > 0
    assert relayed, "the run never connected to the engine at DOCKER_HOST"
