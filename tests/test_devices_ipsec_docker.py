"""An IPsec device under test the harness knows nothing of: the test starts a strongSwan daemon itself (the project's
strongswan image, `docker run` with no network, a label of the test's own so no reaper of the harness touches it),
gives it the far end of a veth pair whose host end is the device's "NIC", and configures it ONCE, as an operator
would, from what `overlay-interop devices settings` wrote (control = "static"): the test translates the neutral
settings into swanctl.conf itself. psk_tunnel and wrong_psk then run against the harness's IPsec vendors, verdicts
from the wire, and the interface comes back to the host afterwards. Needs root and a Docker engine on this host."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import docker
import jinja2
import pytest

from harness.devices import on_host
from harness.images import Images

ROOT = Path(__file__).resolve().parent.parent
DEVICE, PEER = "198.18.251.10/24", "198.18.251.1/24"
LABEL = "overlay-interop-test.device"  # not the harness's: its reaper must leave the device alone
NAME = "ss-dut"
RUN_TIMEOUT_S = 900

# The neutral transform names (RFC 7296, IANA) the reference settings use, in swanctl's words: the operator's
# translation table.
SWANCTL = {"ENCR_AES_CBC_128": "aes128", "AUTH_HMAC_SHA2_256_128": "sha256", "PRF_HMAC_SHA2_256": "prfsha256",
           "MODP_2048": "modp2048"}


def swanctl_conf(s: dict) -> str:
    """The operator's side: one responder connection from the device's neutral settings."""
    ike = ",".join("-".join(SWANCTL[p[k]] for k in ("encryption", "integrity", "prf", "key_exchange") if p[k])
                   for p in s["ike_proposals"])
    esp = ",".join("-".join(SWANCTL[p[k]] for k in ("encryption", "integrity") if p[k]) for p in s["esp_proposals"])
    assert s["auth"] == "psk" and s["mode"] == "tunnel" and s["child_sa"] and not s["initiates"], s
    return f"""connections {{
    lab {{
        version = {s["ike_version"]}
        local_addrs = {s["local_address"]}
        remote_addrs = {s["remote_address"]}
        proposals = {ike}
        encap = yes
        local {{
            auth = psk
            id = {s["local_identity"]}
        }}
        remote {{
            auth = psk
            id = {s["remote_identity"]}
        }}
        children {{
            net {{
                local_ts = {s["local_subnet"]}
                remote_ts = {s["remote_subnet"]}
                esp_proposals = {esp}
            }}
        }}
    }}
}}
secrets {{
    ike-lab {{
        id-local = {s["local_identity"]}
        id-remote = {s["remote_identity"]}
        secret = 0x{s["psk"].encode().hex()}
    }}
}}
"""


def strongswan_conf() -> str:
    """The daemon's own settings: the project's strongswan.conf, user-space ESP (this host's kernel has none)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "vendors" / "strongswan" / "templates"))
    return env.get_template("strongswan.conf.j2").render(libipsec=True)


def put(container, files: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buffer.getvalue())


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def in_device(container, *argv: str) -> str:
    result = container.exec_run(list(argv))
    assert result.exit_code == 0, f"{argv}: {result.output.decode()}"
    return result.output.decode()


@pytest.fixture
def strongswan_device(tmp_path):
    """The device: a strongSwan container with no network, holding the veth end "dut" at DEVICE; the host keeps the
    other end as the NIC, `oiss<pid>`, with no address."""
    client = docker.from_env()
    image = Images(client).ensure("strongswan", ROOT / "vendors" / "strongswan")
    nic = f"oiss{os.getpid() % 100000}"
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f"""
[[device]]
name = "{NAME}"
description = "a strongSwan the test started itself, configured once"
version = "test strongSwan"
interface = "{nic}"
address = "{DEVICE}"
peer_address = "{PEER}"
control = "static"
settings = "ss-dut.json"

[device.protocols.ipsec]
roles = ["responder"]
features = ["psk", "child_sa"]
""")
    container = client.containers.run(
        image, ["sleep", "infinity"], detach=True, name=f"oi-test-ss-dut-{os.getpid()}", network_mode="none",
        cap_add=["NET_ADMIN", "NET_RAW"], devices=["/dev/net/tun:/dev/net/tun:rwm"], labels={LABEL: nic},
        sysctls={"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"})
    try:
        container.reload()
        pid = str(container.attrs["State"]["Pid"])
        sh("ip", "link", "add", nic, "type", "veth", "peer", "name", "dut", "netns", pid)
        sh("sysctl", "-qw", f"net.ipv6.conf.{nic}.disable_ipv6=1")
        sh("ip", "link", "set", nic, "up")
        # The operator: the settings file, once, into the device's config.
        done = subprocess.run([sys.executable, "-m", "harness.cli", "devices", "settings", str(inventory)], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        settings = json.loads((tmp_path / "ss-dut.json").read_text())["ipsec.responder"]
        in_device(container, "ip", "address", "add", DEVICE, "dev", "dut")
        in_device(container, "ip", "link", "set", "dut", "up")
        in_device(container, "ip", "link", "set", "lo", "up")
        in_device(container, "ip", "address", "add", f"{settings['inner_address']}/32", "dev", "lo")
        put(container, {"/etc/strongswan.conf": strongswan_conf(), "/etc/swanctl/swanctl.conf": swanctl_conf(settings)})
        container.exec_run(["sh", "-c", "exec /usr/sbin/charon-systemd >/var/log/charon.log 2>&1"], detach=True)
        for _ in range(100):
            if container.exec_run(["swanctl", "--stats"]).exit_code == 0:
                break
            subprocess.run(["sleep", "0.1"])
        in_device(container, "swanctl", "--load-all", "--noprompt")
        yield container, nic, inventory
    finally:
        log = container.exec_run(["cat", "/var/log/charon.log"]).output.decode(errors="replace")
        (tmp_path / "device-charon.log").write_text(log)
        if not on_host(nic):
            subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=ROOT, capture_output=True)
        subprocess.run(["ip", "link", "del", nic], capture_output=True)
        container.remove(force=True)


def test_docker_ipsec_cases_against_a_static_strongswan_device(strongswan_device, tmp_path):
    container, nic, inventory = strongswan_device
    vendors = os.environ.get("OI_DEVICE_VENDORS", "strongswan,libreswan")
    reports = tmp_path / "r"
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/ipsec/test_psk.py", "suites/ipsec/test_conformance.py",
         "-p", "no:randomly", "-n", "0",
         "--devices", str(inventory), "--reports-dir", str(reports), "--expect", "none", "--compare", "none",
         "--vendors", f"{vendors},{NAME}", "-k", f"(test_psk_tunnel or test_wrong_psk or test_acceptable_proposal) and {NAME}"],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    out = process.stdout + process.stderr
    matrix = {(r["case"], r["a"], r["b"]): r for r in json.loads((reports / "matrix.json").read_text())}
    assert ("psk_tunnel", NAME, "strongswan") not in matrix  # the device declares the responder only
    cell = matrix["psk_tunnel", "strongswan", NAME]
    assert cell["verdict"] == "passed", f"psk_tunnel strongswan->{NAME}: {cell['reason']}\n{out[-3000:]}"
    cell = matrix["wrong_psk", "strongswan", NAME]
    assert cell["verdict"] == "passed", f"wrong_psk strongswan->{NAME}: {cell['reason']}\n{out[-3000:]}"
    # the harness's built-in probe, on the device's link like any peer, against the device's responder
    cell = matrix["acceptable_proposal", "probe", NAME]
    assert cell["verdict"] == "passed", f"acceptable_proposal probe->{NAME}: {cell['reason']}\n{out[-3000:]}"
    if "libreswan" in vendors:  # kernel ESP only: on a host without it, skipped with that reason
        for case in ("psk_tunnel", "wrong_psk"):
            cell = matrix[case, "libreswan", NAME]
            assert cell["verdict"] in ("passed", "skipped"), cell
            assert cell["verdict"] == "passed" or "kernel-esp" in cell["reason"] or "ESP" in cell["reason"], cell

    # The wire, on the harness's side of the link: the device answered from its declared address, ESP both ways,
    # and the echoes inside decrypt with the harness side's keys alone.
    from harness.protocols.ipsec.wire import Wire
    device, peer = DEVICE.split("/")[0], PEER.split("/")[0]
    folder = reports / matrix["psk_tunnel", "strongswan", NAME]["pcap"]
    wire = Wire.from_pcap(folder)
    assert [m.src for m in wire.ike("IKE_AUTH")] == [peer, device], wire.describe()
    assert wire.esp_between(device, peer) and wire.esp_between(peer, device), wire.describe()
    transcript = (folder.parent / "transcript.txt").read_text()
    # the device's replies, opened with the harness side's ESP keys (the device exports none)
    assert "ICMP echo-reply 198.19.2.1 > 198.19.1.1" in transcript, transcript[-2000:]
    # wrong_psk: the device refused the harness's AUTH; the settings file is the record, the PSK is nowhere else
    wrong = reports / matrix["wrong_psk", "strongswan", NAME]["pcap"]
    auth = Wire.from_pcap(wrong).ike("IKE_AUTH")
    assert [m.src for m in auth][:2] == [peer, device] and not Wire.from_pcap(wrong).esp(), auth.describe()
    psk = json.loads((tmp_path / "ss-dut.json").read_text())["ipsec.responder"]["psk"]
    assert psk not in out
    run_json = json.loads((reports / "run.json").read_text())
    assert run_json["versions"][NAME] == "test strongSwan", run_json["versions"]
    # the device is a row of the matrix page and has its conformance page, under its own name
    assert f">{NAME}<" in (reports / "matrix.html").read_text()
    assert f"<h1>{NAME}: interoperability and conformance</h1>" in (reports / "conformance" / f"{NAME}.html").read_text()
    assert on_host(nic), f"{nic} was not given back to the host"
    assert "dut" in in_device(container, "ip", "-br", "link"), "the device's end of the link is gone"
