"""The floor under one cell: how long a plain-docker pair of the same image takes to do the same work as the
harness's strongswan->strongswan psk_tunnel cell (up, CHILD SA, one ping, down), measured interleaved with that
cell on the same machine in the same run, and the ratio of the two medians (target: <= 1.3).

The floor is what a short script on the Docker SDK does with no harness around it: an internal network, the two
containers (created, given the configs the harness rendered for the cell, started), wait for the daemons, load,
initiate, one ping through the tunnel, remove everything. No capture, no verdict, no transcript: the ratio is
what the harness's evidence and bookkeeping cost. The harness side is the cell's own duration (the sum of its
phases in matrix.json, setup to teardown), not the pytest process around it.

    python benchmarks/floor.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import io
import ipaddress
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.images import Images  # noqa: E402
from harness.protocols.ipsec.scenario import Scenario, inner_address  # noqa: E402
from harness.vendor import load_registry  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

RATIO_TARGET = 1.3
CELL = ("ipsec", "psk_tunnel", "strongswan", "strongswan")
SWANCTL = "etc/swanctl/swanctl.conf"
CELL_TIMEOUT_S = 300


def harness_cell(folder: Path) -> tuple[float, Path]:
    """Run the one cell through `overlay-interop run`; its own duration and its pair folder."""
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "-n", "0", "--expect", "none", "--compare", "none",
                    "--vendors", "strongswan", "--protocols", "ipsec", "-k", "test_psk_tunnel and strongswan-",
                    "--reports-dir", str(folder)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=CELL_TIMEOUT_S, check=False)
    records = [r for r in json.loads((folder / "matrix.json").read_text())
               if (r["protocol"], r["case"], r["a"], r["b"]) == CELL]
    if not records or records[0]["verdict"] != "passed":
        raise SystemExit(f"floor: the harness's {CELL} cell did not pass in {folder}; the ratio needs one that did")
    pair = folder / records[0]["pcap"].rsplit("/", 1)[0] if records[0].get("pcap") else None
    return sum(records[0]["phases"].values()), Path(pair)


def configs(pair: Path, role: str) -> bytes:
    """The files the harness installed in `role`'s node for the cell (configs/<role>-strongswan/), as a tar."""
    base = pair / "configs" / f"{role}-strongswan"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            tar.add(path, arcname=str(path.relative_to(base)))
    return buf.getvalue()


def plain_pair(client: docker.DockerClient, image: str, pair: Path) -> float:
    """Up, CHILD SA, one ping, down, with the SDK and nothing else; seconds."""
    started = time.monotonic()
    # The same addresses as the cell, which its rendered configs name (local_addrs in swanctl.conf).
    addresses = {role: re.search(r"local_addrs\s*=\s*(\S+)", (pair / "configs" / f"{role}-strongswan" / SWANCTL)
                                 .read_text()).group(1) for role in ("initiator", "responder")}
    subnet = ipaddress.ip_network(f"{addresses['initiator']}/24", strict=False)
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet),
                                                                       gateway=str(next(subnet.hosts())))])
    network = client.networks.create(f"floor-{subnet.network_address}", driver="bridge", internal=True, ipam=ipam)
    containers = {}
    try:
        for role in ("initiator", "responder"):
            endpoint = client.api.create_endpoint_config(ipv4_address=addresses[role])
            created = client.api.create_container(
                image, host_config=client.api.create_host_config(  # libipsec's ESP needs a TUN device
                    cap_add=["NET_ADMIN", "NET_RAW"], devices=["/dev/net/tun:/dev/net/tun:rwm"],
                    network_mode=network.name),
                networking_config=client.api.create_networking_config({network.name: endpoint}))
            containers[role] = client.containers.get(created["Id"])
            containers[role].put_archive("/", configs(pair, role))
            containers[role].start()
        scenario = Scenario()
        for role, container in containers.items():
            wait_for(lambda c=container: c.exec_run(["swanctl", "--stats"]).exit_code == 0, timeout=20,
                     interval=0.05, what=f"charon in the plain {role} to answer")
            container.exec_run(["ip", "address", "add", f"{inner_address(scenario.subnets[role])}/32", "dev", "lo"])
        for role in ("responder", "initiator"):
            containers[role].exec_run(["swanctl", "--load-all", "--noprompt"])
        code, out = containers["initiator"].exec_run(["swanctl", "--initiate", "--child", "net", "--timeout", "20"])
        if code != 0:
            raise SystemExit(f"floor: the plain pair did not come up: {out.decode(errors='replace')[-400:]}")
        code, out = containers["initiator"].exec_run(
            ["ping", "-n", "-c", "1", "-W", "1", "-I", inner_address(scenario.subnets["initiator"]),
             inner_address(scenario.subnets["responder"])])
        if code != 0:
            raise SystemExit(f"floor: no echo through the plain pair's tunnel: {out.decode(errors='replace')}")
    finally:
        for container in containers.values():
            container.remove(force=True)
        network.remove()
    return time.monotonic() - started


def rounds(count: int) -> tuple[list[float], list[float]]:
    """`count` interleaved rounds (the machine's mood hits both alike): the cell's seconds, the floor's seconds."""
    client = docker.from_env(timeout=300)
    registry = load_registry(ROOT / "vendors", ["strongswan"])
    image = Images(client).ensure("strongswan", registry["strongswan"].folder)
    cells, floors = [], []
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        for n in range(count):
            cell, pair = harness_cell(Path(tmp) / f"r{n}")
            cells.append(cell)
            floors.append(plain_pair(client, image, pair))
            print(f"floor round {n + 1}: harness cell {cell:.2f} s, plain-docker pair {floors[-1]:.2f} s", flush=True)
    return cells, floors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cells, floors = rounds(args.rounds)
    ratio = statistics.median(cells) / statistics.median(floors)
    print(f"\nmedian harness cell {statistics.median(cells):.2f} s, median floor {statistics.median(floors):.2f} s: "
          f"ratio {ratio:.2f} (target <= {RATIO_TARGET}: {'meets' if ratio <= RATIO_TARGET else 'MISSES'} it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
