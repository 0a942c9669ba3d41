"""A small lab per pair on the Docker SDK: internal networks from 198.18.0.0/16 and nodes with only the
capabilities a daemon needs. Everything is labelled with the run that made it (see harness.run) and is
removed when the lab closes, or by the reaper if the run died first.

198.18.0.0/15 is reserved for testing network devices (RFC 2544). The lower /16 holds the lab networks
(Docker creates a host bridge for each, so they must never overlap); the upper /16, 198.19.0.0/16, is left
for addresses inside the overlays, which live only in the nodes' own network namespaces.
"""
from __future__ import annotations

import io
import ipaddress
import logging
import shlex
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import count
from typing import Iterator

import docker
import docker.errors
import requests

from harness.errors import DaemonExited, HarnessError, LabTimeout
from harness.run import LABEL, Run, owner_alive

log = logging.getLogger(__name__)

LAB_SUPERNET = ipaddress.ip_network("198.18.0.0/16")
SLOTS_PER_WORKER = 32
DEVICE_INTERFACE = f"{LABEL}.device-interface"  # a container holding a device's host interface (harness.devices)
_SUBNETS = list(LAB_SUPERNET.subnets(new_prefix=24))
EXEC_EXIT_TIMEOUT = 124  # coreutils `timeout` exit status

# Only what the daemons need: interfaces, routes, XFRM (NET_ADMIN), raw sockets for ping/tcpdump (NET_RAW),
# and TUN for user-space data planes. Never --privileged.
NODE_CAPABILITIES = ["NET_ADMIN", "NET_RAW"]
NODE_DEVICES = ["/dev/net/tun:/dev/net/tun:rwm"]


def subnet_candidates(worker_index: int, sequence: int) -> Iterator[ipaddress.IPv4Network]:
    """Subnets to try for the `sequence`-th network of a worker, best first.

    Each worker owns SLOTS_PER_WORKER /24s, so workers of one run never collide. A subnet still held by
    another run (or a leftover) is refused by Docker; the caller then moves on to the next candidate.
    """
    start = (worker_index * SLOTS_PER_WORKER + sequence % SLOTS_PER_WORKER) % len(_SUBNETS)
    for k in range(len(_SUBNETS)):
        yield _SUBNETS[(start + k) % len(_SUBNETS)]


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Network:
    def __init__(self, docker_network, subnet: ipaddress.IPv4Network):
        self.docker = docker_network
        self.name = docker_network.name
        self.subnet = subnet
        self._hosts = subnet.hosts()
        next(self._hosts)  # .1 is the bridge's own address

    def next_address(self) -> str:
        return str(next(self._hosts))


class Node:
    """One container. Created stopped, so configs can be put in place before its daemon starts."""

    def __init__(self, container, name: str, address: str, network: Network):
        self.container = container
        self.name = name
        self.address = address
        self.network = network

    def __repr__(self) -> str:
        return f"Node({self.name}@{self.address})"

    def put_files(self, files: dict[str, str | bytes], mode: int = 0o644) -> None:
        """Write files (absolute container paths) in one tar; works on a created, not yet started, node."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        if not self.container.put_archive("/", buf.getvalue()):
            raise HarnessError(f"{self.name}: could not copy {', '.join(files)} into the container")

    def start(self) -> None:
        self.container.start()

    def restart(self, timeout: float) -> None:
        """Kill the node's process (SIGKILL: no word to its peers, as in a crash) and start it again: the same
        container, files and address, but a fresh process and network namespace (what was added to either
        by hand, e.g. addresses or a loaded config, is gone)."""
        try:
            self.container.kill()
            try:
                self.container.wait(timeout=timeout)
            except requests.exceptions.RequestException:
                raise LabTimeout(f"{self.name}: timed out after {timeout:g}s waiting for the killed container "
                                 f"to stop") from None
            self.container.start()
        except docker.errors.APIError as exc:
            raise HarnessError(f"{self.name}: could not restart: {exc.explanation or exc}") from None

    def status(self) -> tuple[str, int | None]:
        self.container.reload()
        state = self.container.attrs["State"]
        return state["Status"], (None if state["Running"] else state.get("ExitCode"))

    def logs(self) -> str:
        try:
            return self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        except docker.errors.NotFound:
            return ""

    def exec(self, cmd: list[str] | str, *, timeout: float, what: str | None = None,
             check: bool = False) -> ExecResult:
        """Run a command in the node; it is killed after `timeout` seconds and that is reported as a timeout."""
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        what = what or shlex.join(argv)
        try:
            code, out = self.container.exec_run(["timeout", "-k", "2", f"{timeout:g}", *argv], demux=False)
        except docker.errors.APIError as exc:
            status, exit_code = self.status()
            if exit_code is not None:
                raise self._exited(exit_code) from None
            raise HarnessError(f"{self.name}: could not run {what}: {exc.explanation or exc}") from None
        output = (out or b"").decode(errors="replace")
        if code == EXEC_EXIT_TIMEOUT:
            raise LabTimeout(f"{self.name}: timed out after {timeout:g}s waiting for {what}")
        if check and code != 0:
            raise HarnessError(f"{self.name}: {what} exited with {code}: {tail(output, 5)}")
        return ExecResult(code, output)

    def ensure_running(self) -> None:
        """Raise DaemonExited, with its exit status and last log lines, if the node's daemon has died."""
        _, exit_code = self.status()
        if exit_code is not None:
            raise self._exited(exit_code)

    def _exited(self, exit_code: int) -> DaemonExited:
        return DaemonExited(f"{self.name}: daemon exited with status {exit_code}; last log lines:\n"
                            f"{tail(self.logs())}")


class Lab:
    """The containers and networks of one pair. Closing it removes all of them, whatever happened before."""

    _sequence = count()  # networks made by this process: picks the worker's next subnet slot

    def __init__(self, client: docker.DockerClient, run: Run, pair: str):
        self.client = client
        self.run = run
        self.pair = pair
        self.labels = run.labels(pair)
        self._prefix = f"oi-{run.short}-{run.worker}-{next(Lab._sequence)}"
        self._containers: list = []
        self._networks: list = []
        self._on_close: list = []  # steps before removal, e.g. giving a device's interface back (harness.devices)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def network(self, name: str = "underlay") -> Network:
        sequence = next(Lab._sequence)
        for subnet in subnet_candidates(self.run.worker_index, sequence):
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=str(subnet), gateway=str(next(subnet.hosts())))])
            try:
                net = self.client.networks.create(f"{self._prefix}-{name}", driver="bridge", internal=True,
                                                  ipam=ipam, labels=self.labels, check_duplicate=True)
            except docker.errors.APIError as exc:
                if "overlap" in str(exc).lower():
                    continue  # held by another run: try the next slot
                raise HarnessError(f"could not create lab network {name} on {subnet}: {exc.explanation}") from None
            self._networks.append(net)
            return Network(net, subnet)
        raise HarnessError(f"no free /24 left in {LAB_SUPERNET} for lab network {name}")

    def node(self, name: str, image: str, network: Network, *, command: list[str] | None = None,
             environment: dict[str, str] | None = None, sysctls: dict[str, str] | None = None) -> Node:
        """Create (not start) a node attached to `network` with the next free address. `sysctls`: namespaced
        kernel settings for the node (a router's net.ipv4.ip_forward), which a running container cannot change:
        Docker mounts /proc/sys read-only."""
        address = network.next_address()
        endpoint = self.client.api.create_endpoint_config(ipv4_address=address)
        networking = self.client.api.create_networking_config({network.name: endpoint})
        host_config = self.client.api.create_host_config(
            cap_add=NODE_CAPABILITIES, devices=NODE_DEVICES, network_mode=network.name,
            # IPv6 stays off so the wire shows only the lab's IPv4 traffic.
            sysctls={"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
                     **(sysctls or {})})
        created = self.client.api.create_container(
            image, command=command, name=f"{self._prefix}-{name}", hostname=name, labels=self.labels,
            environment=environment, host_config=host_config, networking_config=networking)
        container = self.client.containers.get(created["Id"])
        self._containers.append(container)
        return Node(container, name, address, network)

    def container(self, image: str, name: str, *, host_config, command: list[str] | None = None,
                  labels: dict[str, str] | None = None, entrypoint: list[str] | None = None):
        """Create (not start) a container of this lab with the host config given (a node on no Docker network,
        harness.devices); removed with the lab, found by the reaper by its labels."""
        created = self.client.api.create_container(
            image, command=command, name=f"{self._prefix}-{name}", hostname=name, entrypoint=entrypoint,
            labels={**self.labels, **(labels or {})}, host_config=host_config)
        container = self.client.containers.get(created["Id"])
        self._containers.append(container)
        return container

    def on_close(self, fn) -> None:
        """Run `fn` when the lab closes, before anything is removed (last registered first)."""
        self._on_close.append(fn)

    def vm_node(self, name: str, image: str, network: Network, *, images, **kwargs):
        """Create a node that is a qemu microVM booting `image` (harness.vm.VmNode, driven like a Node): for kernel
        features the host lacks. It starts booting at once; its daemon waits for start()."""
        from harness import vm  # only a lab that asks for a VM needs qemu's images
        return vm.create(self, name, image, network, images=images, **kwargs)

    def sidecar(self, name: str, image: str, of: Node, command: list[str], cap_add: list[str]):
        """A helper container sharing `of`'s network namespace (capture, probes); removed with the lab."""
        container = self.client.containers.create(
            image, command=command, name=f"{self._prefix}-{name}", labels=self.labels,
            network_mode=f"container:{of.container.id}", cap_add=cap_add)
        self._containers.append(container)
        return container

    def close(self, wait: bool = True) -> None:
        """Remove every container, then every network. Never raises: teardown must not mask the verdict.
        `wait=False`: the removal goes on in the background (`drain()` waits for every one still going), so the
        next case need not wait ~0.3 s for a lab whose evidence is already collected; its networks hold subnets
        the next lab of this worker does not use (subnet_candidates), so the two never collide."""
        if self.run.keep_lab:
            log.warning("--keep-lab: leaving %s (containers: %s)", self.pair,
                        " ".join(c.name for c in self._containers))
            return
        steps, self._on_close = list(reversed(self._on_close)), []
        for step in steps:
            try:
                step()
            except Exception as exc:  # never mask the verdict; the reaper tries again
                log.warning("%s: a closing step failed: %s", self.pair, exc)
        containers, networks = list(self._containers), list(reversed(self._networks))
        self._containers.clear()
        self._networks.clear()
        if wait:
            _remove_all(containers, networks)
            return
        with _CLOSING_LOCK:
            _CLOSING.append(_closer().submit(_remove_all, containers, networks))

    @staticmethod
    def drain(timeout: float = 120) -> None:
        """Wait until every lab closed in the background is gone (at the end of a session, before the engine's
        client closes and before anything checks that nothing was left)."""
        with _CLOSING_LOCK:
            pending = list(_CLOSING)
            _CLOSING.clear()
        done, not_done = wait(pending, timeout=timeout)
        if not_done:
            log.warning("timed out after %gs waiting for %d lab(s) to be removed; the reaper removes them later",
                        timeout, len(not_done))


_CLOSING: list[Future] = []  # labs being removed in the background (Lab.close(wait=False))
_CLOSING_LOCK = threading.Lock()
_CLOSER: list[ThreadPoolExecutor] = []


def _closer() -> ThreadPoolExecutor:
    """One background remover per process, made on first use (a worker that never closes a lab has none)."""
    if not _CLOSER:
        _CLOSER.append(ThreadPoolExecutor(2, thread_name_prefix="lab-close"))
    return _CLOSER[0]


def _remove_all(containers: list, networks: list) -> None:
    # In parallel: each removal is a round trip of ~0.2 s in which the engine mostly waits on the kernel.
    with ThreadPoolExecutor(max(len(containers), 1)) as pool:
        list(pool.map(lambda c: _remove(c, force=True), containers))
    for net in networks:
        _remove(net)


def together(step, items) -> None:
    """`step(item)` for every item at once, in threads: for steps that are round trips to the engine or to
    different nodes (a node's start is ~0.3-0.4 s, a docker exec ~0.05 s, mostly waiting), so n of them take
    about as long as one. The first failure is raised once every step has finished."""
    items = list(items)
    if len(items) <= 1:
        for item in items:
            step(item)
        return
    with ThreadPoolExecutor(len(items)) as pool:
        for future in [pool.submit(step, item) for item in items]:
            future.result()


def start_all(nodes) -> None:
    """Start the nodes together (see together())."""
    together(lambda node: node.start(), nodes)


def _remove(obj, **kwargs) -> None:
    try:
        obj.remove(**kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        log.warning("could not remove %s: %s", getattr(obj, "name", obj), exc)


def reap(client: docker.DockerClient) -> dict[str, int]:
    """Remove containers and networks left by runs whose owning process is gone. Live runs are untouched."""
    removed = {"containers": 0, "networks": 0}

    def dead(labels: dict[str, str]) -> bool:
        return owner_alive(labels.get(f"{LABEL}.owner", "")) is False

    # sparse: labels from the list call itself; a full list inspects each container, which races with
    # another run removing its own (NotFound in the middle of the listing).
    for container in client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL}.run"}):
        if dead(container.attrs.get("Labels") or {}):
            if DEVICE_INTERFACE in (container.attrs.get("Labels") or {}):  # give the host its interface first
                from harness import devices
                try:
                    devices.reclaim(container)
                except HarnessError as exc:
                    log.warning("%s: %s", container.name, exc)
            _remove(container, force=True)
            removed["containers"] += 1
    for net in client.networks.list(filters={"label": f"{LABEL}.run"}):
        if dead(net.attrs.get("Labels") or {}):
            _remove(net)
            removed["networks"] += 1
    return removed
