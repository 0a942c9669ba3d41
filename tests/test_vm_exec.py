"""vm-exec, the client `docker exec` runs in a VM node's container to reach the broker (harness/vm_image)."""
from __future__ import annotations

import importlib.util
import socket
import threading
import time

from support import ROOT


def _vm_exec():
    spec = importlib.util.spec_from_file_location("vm_exec", ROOT / "harness" / "vm_image" / "vm-exec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_request_made_before_the_broker_listens_waits_for_it(tmp_path):
    vm_exec = _vm_exec()
    path = str(tmp_path / "exec.sock")
    server = socket.socket(socket.AF_UNIX)

    def broker_comes_late():
        time.sleep(0.3)
        server.bind(path)
        server.listen(1)
    threading.Thread(target=broker_comes_late, daemon=True).start()
    sock = vm_exec.connect(path, wait=5)
    try:
        assert sock.getpeername() == path
    finally:
        sock.close()
        server.close()


def test_no_broker_at_all_is_still_reported(tmp_path):
    vm_exec = _vm_exec()
    started = time.monotonic()
    try:
        vm_exec.connect(str(tmp_path / "exec.sock"), wait=0.2)
    except FileNotFoundError:
        assert time.monotonic() - started < 2
    else:
        raise AssertionError("connected to a broker that does not exist")
