"""An L2TP device under test the harness knows nothing of: the test starts an xl2tpd LNS itself (the project's
xl2tpd image, `docker run` with no network, a label of the test's own so no reaper of the harness touches it) on the
far end of a veth pair whose host end is the device's "NIC", under `control = "manual"`: the test answers as the
operator, reading each case's settings file in the pair folder, writing the xl2tpd config into the container,
(re)starting xl2tpd and creating the confirmation file the harness waits for. This kernel has no PPP: as in the
harness's own xl2tpd nodes, the harness's user-space PPP endpoint stands in for pppd. tunnel_setup and
session_setup run against the harness's LACs, verdicts from the wire. Needs root and a Docker engine here."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import docker
import pytest

from harness.devices import on_host
from harness.images import Images
from harness.shipping import harness_files

ROOT = Path(__file__).resolve().parent.parent
DEVICE, PEER = "198.18.252.10/24", "198.18.252.1/24"
LABEL = "overlay-interop-test.device"  # not the harness's: its reaper must leave the device alone
NAME = "xl-dut"
RUN_TIMEOUT_S = 900
PIDFILE = "/var/run/xl2tpd.pid"
CONTROL_PIPE = "/var/run/xl2tpd/l2tp-control"


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def xl2tpd_files(s: dict) -> dict[str, tuple[str, int]]:
    """The operator's side: an xl2tpd LNS from the device's neutral settings (path -> (text, mode))."""
    assert s["role"] == "lns" and s["version"] == 2 and len(s["ppp"]["pool"]) == 1, s
    ppp = s["ppp"]
    conf = f"""[global]
port = {s["udp_port"]}
listen-addr = {s["local_address"]}
auth file = /etc/xl2tpd/l2tp-secrets
access control = no
[lns default]
ip range = {ppp["pool"][0]}-{ppp["pool"][0]}
local ip = {ppp["local_address"]}
require authentication = {yes(ppp["auth"] != "none")}
require pap = {yes(ppp["auth"] == "pap")}
require chap = {yes(ppp["auth"] == "chap")}
hostname = {s["host_name"]}
challenge = {yes(s["tunnel_authentication"])}
hidden bit = {yes(s["hide_avps"])}
length bit = yes
pppoptfile = /etc/ppp/options.xl2tpd
"""
    # No /dev/ppp on this kernel: the harness's user-space PPP endpoint is the device's pppd (as in xl2tpd's nodes)
    stand_in = {"interface": "ppp0", "local": ppp["local_address"], "remote": ppp["pool"][0], "auth": ppp["auth"],
                "username": ppp["username"], "password": ppp["password"], "name": s["host_name"], "mru": ppp["mru"],
                "log": ["/var/log/l2tp-ppp.log"]}
    [(path, program)] = harness_files("harness.protocols.l2tp.ppp", at="/usr/sbin/pppd").items()
    return {"/etc/xl2tpd/xl2tpd.conf": (conf, 0o644),
            "/etc/xl2tpd/l2tp-secrets": (f"* * {s['secret']}\n" if s["tunnel_authentication"] else "", 0o600),
            "/etc/l2tp-ppp.json": (json.dumps(stand_in), 0o600),
            "/etc/ppp/options.xl2tpd": ("# the user-space endpoint reads /etc/l2tp-ppp.json\n", 0o644),
            path: (program, 0o755)}


def put(container, files: dict[str, tuple[str, int]]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buffer.getvalue())


def in_device(container, *argv: str) -> str:
    result = container.exec_run(list(argv))
    assert result.exit_code == 0, f"{argv}: {result.output.decode()}"
    return result.output.decode()


class Operator:
    """Answers the harness's manual requests: every new settings file of the device in the run's pair folders is
    configured into the container, then confirmed with the .ready file beside it."""

    def __init__(self, container, reports: Path):
        self.container, self.reports = container, reports
        self.done: list[Path] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        seen: set[tuple[Path, float]] = set()
        while not self._stop.is_set():
            for path in sorted(self.reports.glob(f"pairs/l2tp/*/*/device-{NAME}.json")):
                key = (path, path.stat().st_mtime)
                if key in seen or path.with_suffix(".ready").exists():
                    continue
                seen.add(key)
                try:
                    self.configure(json.loads(path.read_text())["settings"])
                    path.with_suffix(".ready").touch()
                    self.done.append(path)
                except Exception as exc:  # the harness then times out naming the file: say why here
                    self.errors.append(f"{path}: {exc!r}")
            time.sleep(0.2)

    def configure(self, settings: dict) -> None:
        self.container.exec_run(["sh", "-c", f"[ -f {PIDFILE} ] && kill $(cat {PIDFILE}); sleep 0.5; rm -f {PIDFILE}"])
        put(self.container, xl2tpd_files(settings))
        in_device(self.container, "mkdir", "-p", "/var/run/xl2tpd")
        self.container.exec_run(["sh", "-c", f"exec xl2tpd -D -c /etc/xl2tpd/xl2tpd.conf -s /etc/xl2tpd/l2tp-secrets "
                                             f"-p {PIDFILE} >>/var/log/xl2tpd.log 2>&1"], detach=True)
        for _ in range(100):
            if self.container.exec_run(["test", "-p", CONTROL_PIPE]).exit_code == 0:
                return
            time.sleep(0.1)
        raise AssertionError("xl2tpd did not open its control pipe")


@pytest.fixture
def xl2tpd_device(tmp_path):
    """The device: an xl2tpd container with no network, holding the veth end "dut" at DEVICE; the host keeps the
    other end as the NIC, `oixl<pid>`, with no address."""
    client = docker.from_env()
    image = Images(client).ensure("xl2tpd", ROOT / "vendors" / "xl2tpd")
    nic = f"oixl{os.getpid() % 100000}"
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f"""
[[device]]
name = "{NAME}"
description = "an xl2tpd LNS the test started itself, configured by its operator (the test)"
version = "test xl2tpd"
interface = "{nic}"
address = "{DEVICE}"
peer_address = "{PEER}"
control = "manual"
timeout = 60

[device.protocols.l2tp]
roles = ["lns"]
features = ["tunnel_auth", "data_plane"]
""")
    container = client.containers.run(
        image, ["sleep", "infinity"], detach=True, name=f"oi-test-xl-dut-{os.getpid()}", network_mode="none",
        cap_add=["NET_ADMIN", "NET_RAW"], devices=["/dev/net/tun:/dev/net/tun:rwm"], labels={LABEL: nic},
        sysctls={"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"})
    try:
        container.reload()
        pid = str(container.attrs["State"]["Pid"])
        subprocess.run(["ip", "link", "add", nic, "type", "veth", "peer", "name", "dut", "netns", pid], check=True)
        subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{nic}.disable_ipv6=1"], check=True)
        subprocess.run(["ip", "link", "set", nic, "up"], check=True)
        in_device(container, "ip", "address", "add", DEVICE, "dev", "dut")
        in_device(container, "ip", "link", "set", "dut", "up")
        yield container, nic, inventory
    finally:
        for log in ("/var/log/xl2tpd.log", "/var/log/l2tp-ppp.log"):
            text = container.exec_run(["cat", log]).output.decode(errors="replace")
            (tmp_path / Path(log).name).write_text(text)
        if not on_host(nic):
            subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=ROOT, capture_output=True)
        subprocess.run(["ip", "link", "del", nic], capture_output=True)
        container.remove(force=True)


def test_docker_l2tp_cases_against_a_manually_configured_xl2tpd_device(xl2tpd_device, tmp_path):
    container, nic, inventory = xl2tpd_device
    vendors = os.environ.get("OI_DEVICE_VENDORS", "xl2tpd,scapy-l2tp")
    reports = tmp_path / "r"
    with Operator(container, reports) as operator:
        process = subprocess.run(
            [sys.executable, "-m", "pytest", "suites/l2tp/test_l2tp.py", "-p", "no:randomly", "-n", "0",
             "--devices", str(inventory), "--reports-dir", str(reports), "--expect", "none", "--compare", "none",
             "--vendors", f"{vendors},{NAME}", "-k", f"(test_tunnel_setup or test_session_setup) and {NAME}"],
            cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    out = process.stdout + process.stderr
    assert not operator.errors, operator.errors
    matrix = {(r["case"], r["a"], r["b"]): r for r in json.loads((reports / "matrix.json").read_text())}
    device, peer = DEVICE.split("/")[0], PEER.split("/")[0]
    from harness.protocols.l2tp.wire import Wire
    for vendor in vendors.split(","):
        for case in ("tunnel_setup", "session_setup"):
            cell = matrix[case, vendor, NAME]
            assert cell["verdict"] == "passed", f"{case} {vendor}->{NAME}: {cell['reason']}\n{out[-3000:]}"
            # the wire, on the harness's side of the link: the device answered from its declared address
            wire = Wire.from_pcap(reports / cell["pcap"], "interop-secret")
            assert wire.message_types(src=device, zlb=False)[:1] == ["SCCRP"], wire.describe()
            assert "ICRP" in wire.message_types(src=device), wire.describe()
            assert {d.src for d in wire.control()} <= {device, peer}, wire.describe()
    assert len(operator.done) == 2 * len(vendors.split(","))  # asked once per cell, and answered
    secret = json.loads(operator.done[0].read_text())["settings"]["secret"]
    assert secret not in out  # printed for the operator without it; the settings file holds it
    run_json = json.loads((reports / "run.json").read_text())
    assert run_json["versions"][NAME] == "test xl2tpd", run_json["versions"]
    # the device is a row of the matrix page and has its conformance page, under its own name
    assert f">{NAME}<" in (reports / "matrix.html").read_text()
    assert f"<h1>{NAME}: interoperability and conformance</h1>" in (reports / "conformance" / f"{NAME}.html").read_text()
    assert on_host(nic), f"{nic} was not given back to the host"
