"""Devices under test outside the harness: a box (or anything the harness does not run) on a host interface.

An inventory (`--devices FILE`, TOML) declares each device:

    [[device]]
    name = "acme-gw"                      # appears in the matrix like a vendor
    description = "ACME Gateway 5000"
    version = "7.2.1"                     # free text, recorded in run.json
    interface = "enp3s0.101"              # a host interface to the device (a NIC or a VLAN sub-interface)
    address = "192.0.2.10/24"             # the device's underlay address on that link
    peer_address = "192.0.2.1/24"         # the address the harness's peer takes on that link
    control = "manual"                    # manual | command | static
    # command = "./push-config"           # control = "command": the case's settings as JSON on stdin
    # settings = "acme-gw.json"           # control = "static": what `overlay-interop devices settings` wrote
    # timeout = 300                       # seconds the control step may take (manual: the operator)
    # force = true                        # accept an interface carrying the host's default route
    # A routed device, off the harness's link: `via` replaces `interface` and a router at `gateway` (on
    # peer_address's link) forwards to `address`; the peer gets that one route, never NAT.
    # via = "enp3s0.102"
    # gateway = "192.0.2.254"

    [device.protocols.vxlan]
    roles = ["vtep2"]
    features = ["vxlan"]

A device is a Vendor-like registry entry (`DeviceVendor`) with no image and no adapter of its own. In its cells
the harness's vendor playing the other role runs in a container with no Docker network at all: the device's
interface is moved into that container's network namespace for the case, renamed eth0 (what every adapter
expects), holding `peer_address`, and moved back (with its name) when the lab closes. The container's label
names the interface, so the reaper gives it back after a run that was killed. With nothing else in that
namespace (no bridge, no route, no NAT), the harness can send to nothing but the device's link.

The device's own node (`DeviceNode`) runs nothing: configuring it goes to the control mode with the case's
settings, in neutral terms, from the protocol package's `device` module (`device_settings(scenario, side)`,
`Endpoint`): the core knows no protocol.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, HarnessError, LabTimeout
from harness.lab import DEVICE_INTERFACE as INTERFACE_LABEL  # on a peer container holding a device's interface: its host name
from harness.lab import ExecResult, Node
from harness.tomlfile import read_toml
from harness.vendor import Support, Vendor, _known_keys, _support

log = logging.getLogger(__name__)

CONTROLS = ("manual", "command", "static")
DEVICE_KEYS = ("name", "description", "version", "interface", "via", "gateway", "address", "peer_address", "control",
               "command", "settings", "timeout", "force", "protocols")
DEFAULT_TIMEOUT = {"manual": 600.0, "command": 60.0, "static": 0.0}
LINK_NAME = "eth0"  # the interface's name inside the peer container: what the adapters build on
ROUTE_TABLE = Path("/proc/net/route")


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    version: str
    interface: str
    address: ipaddress.IPv4Interface
    peer_address: ipaddress.IPv4Interface
    control: str
    inventory: Path
    command: str | None = None
    settings: Path | None = None  # control = "static": the settings file the device was configured from
    timeout: float = 60.0
    force: bool = False
    protocols: dict[str, Support] = field(default_factory=dict)
    # A routed device (`via`): the router on the peer's link that forwards to `address`; None: on the link itself.
    gateway: ipaddress.IPv4Address | None = None


class DeviceVendor(Vendor):
    """A device as a registry entry: named after it, its roles and features from `[device.protocols.<p>]`, no
    image and no adapter of its own (its adapter is the protocol package's `device.Endpoint`)."""

    def __init__(self, device: Device):
        super().__init__(device.name, device.inventory.parent, f"{device.description} (device under test)", "",
                         dict(device.protocols))
        object.__setattr__(self, "device", device)

    def images(self) -> dict[str, Path]:
        return {}  # nothing to build: the device is already there

    def adapter_class(self):
        """The protocol's device endpoint, chosen by the node (a DeviceNode knows its cell's protocol)."""
        def endpoint(node, host):
            return device_module(node.protocol).Endpoint(node, host)
        return endpoint

    def keylog(self, protocol: str):
        return None  # the device exports nothing: keys come from the harness's side


def device_module(protocol: str):
    """`harness.protocols.<p>.device`: the neutral settings and the endpoint a device is driven through."""
    import importlib
    import importlib.util
    name = f"harness.protocols.{protocol}.device"
    if importlib.util.find_spec(name) is None:
        raise HarnessError(f"{protocol} has no device support yet (no {name}): a device cannot play it")
    return importlib.import_module(name)


# --- the inventory ---------------------------------------------------------------------------------------------

def default_route_interfaces(table: Path = ROUTE_TABLE) -> set[str]:
    """The interfaces carrying the host's IPv4 default route (destination 0.0.0.0/0 in the kernel's table)."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return set()
    return {f[0] for f in (line.split() for line in lines) if len(f) > 7 and f[1] == "00000000" and f[7] == "00000000"}


def load_inventory(path: Path, routes: Path = ROUTE_TABLE) -> list[Device]:
    """Every device of the inventory, each key validated: a mistake is one ConfigError naming the file, the
    device and the field."""
    path = Path(path)
    data = read_toml(path, missing="not found (--devices names the inventory of devices under test)")
    where = str(path)
    _known_keys(data, ("device",), where)
    entries = data.get("device")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(where, "device", "declare at least one [[device]] table")
    devices: list[Device] = []
    defaults = default_route_interfaces(routes)
    for index, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry.get("name"), str) and entry.get("name") else f"#{index + 1}"
        devices.append(_device(entry, path, f"{where}: device {label}", defaults))
    for kind in ("name", "interface"):
        seen: dict[str, str] = {}
        for device in devices:
            value = getattr(device, kind)
            if value in seen:
                raise ConfigError(f"{where}: device {device.name}", kind, f"{value!r} is also device {seen[value]}'s")
            seen[value] = device.name
    return devices


def _text(entry: dict, key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
        raise ConfigError(where, key, "required, one non-empty line" if value is None else "must be one non-empty line")
    return value.strip()


def _address(entry: dict, key: str, where: str, host: bool = False) -> ipaddress.IPv4Interface:
    """An address with its link's prefix length (`host`: a routed device's own, /32 allowed)."""
    value = _text(entry, key, where)
    try:
        address = ipaddress.IPv4Interface(value)
    except ValueError:
        raise ConfigError(where, key, f"{value!r} is not an IPv4 address with its prefix length "
                                      f"(e.g. 198.18.250.10/24)") from None
    if "/" not in value or (address.network.prefixlen > 30 and not host):
        raise ConfigError(where, key, f"{value!r}: give the link's prefix length, /30 or shorter (e.g. /24)")
    return address


def _device(entry: dict, inventory: Path, where: str, default_route: set[str]) -> Device:
    _known_keys(entry, DEVICE_KEYS, where)
    name = _text(entry, "name", where)
    if not all(c.isalnum() or c in "._-" for c in name) or "@" in name:
        raise ConfigError(where, "name", "letters, digits, '.', '_' and '-' only (it names a matrix row and a folder)")
    routed = "via" in entry
    if routed and "interface" in entry:
        raise ConfigError(where, "via", "give interface (the device is on that link) or via (routed to it), not both")
    if "gateway" in entry and not routed:
        raise ConfigError(where, "gateway", "only with via (a routed device); a device on the link needs none")
    link = "via" if routed else "interface"
    interface = _text(entry, link, where)
    if len(interface) > 15 or "/" in interface or " " in interface:
        raise ConfigError(where, link, f"{interface!r} is not an interface name (at most 15 characters)")
    address, peer = _address(entry, "address", where, host=routed), _address(entry, "peer_address", where)
    gateway = None
    if routed:
        text = _text(entry, "gateway", where)
        try:
            gateway = ipaddress.IPv4Address(text)
        except ValueError:
            raise ConfigError(where, "gateway", f"{text!r} is not an IPv4 address (the router, e.g. 192.0.2.254)") \
                from None
        if gateway not in peer.network or gateway == peer.ip:
            raise ConfigError(where, "gateway", f"{gateway} must be another address on the peer's link {peer.network}")
        if address.ip in peer.network:
            raise ConfigError(where, "address", f"{address.ip} is on the via link {peer.network} itself: "
                                                f"give interface, not via")
    else:
        if address.network != peer.network:
            raise ConfigError(where, "peer_address", f"{peer} is not on the device's link {address.network}")
        if address.ip == peer.ip:
            raise ConfigError(where, "peer_address", "is the device's own address")
    control = _text(entry, "control", where)
    if control not in CONTROLS:
        raise ConfigError(where, "control", f"{control!r}; one of {', '.join(CONTROLS)}")
    command = _text(entry, "command", where, required=control == "command")
    if command is not None and control != "command":
        raise ConfigError(where, "command", f'only with control = "command" (this device is {control})')
    settings = _text(entry, "settings", where, required=control == "static")
    if settings is not None and control != "static":
        raise ConfigError(where, "settings", f'only with control = "static" (this device is {control})')
    timeout = entry.get("timeout", DEFAULT_TIMEOUT[control])
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ConfigError(where, "timeout", "must be a number of seconds, 0 or more")
    force = entry.get("force", False)
    if not isinstance(force, bool):
        raise ConfigError(where, "force", "must be true or false")
    if interface in default_route and not force:
        raise ConfigError(where, link, f"{interface} carries this host's default route: the harness would "
                                       f"take it away from the host for every case (force = true if meant)")
    declared = entry.get("protocols")
    if not isinstance(declared, dict) or not declared:
        raise ConfigError(where, "protocols", "declare at least one [device.protocols.<name>] table")
    support = {}
    for proto, table in declared.items():
        if isinstance(table, dict) and set(table) - {"roles", "features"}:
            _known_keys(table, ("roles", "features"), where, f"protocols.{proto}.")
        support[proto] = _support(proto, table, where, {}, inventory.parent)
    return Device(name=name, description=_text(entry, "description", where), version=_text(entry, "version", where),
                  interface=interface, address=address, peer_address=peer, control=control, inventory=inventory,
                  command=command, settings=(inventory.parent / settings) if settings else None,
                  timeout=float(timeout), force=force, protocols=support, gateway=gateway)


def registry_entries(path: Path, vendors: dict[str, Vendor]) -> dict[str, DeviceVendor]:
    """The inventory's devices as registry entries; a device named like a vendor is an error."""
    out = {}
    for device in load_inventory(path):
        if device.name in vendors:
            raise ConfigError(f"{path}: device {device.name}", "name", "is a vendor's name too; name it apart")
        out[device.name] = DeviceVendor(device)
    return out


# --- moving an interface in and out of a container ---------------------------------------------------------------

def _run(argv: list[str], what: str, timeout: float = 10) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise HarnessError(f"{what}: {argv[0]} not found (iproute2 and util-linux's nsenter are needed)") from None
    except subprocess.TimeoutExpired:
        raise LabTimeout(f"timed out after {timeout:g}s waiting for {what}") from None
    if done.returncode != 0:
        raise HarnessError(f"{what}: {shlex.join(argv)} exited with {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def _in_netns(pid: int, script: str, what: str) -> str:
    return _run(["nsenter", "-t", str(pid), "-n", "sh", "-ec", script], what)


LOCK_FOLDER = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
LINK_WAIT_S = 600.0  # how long a cell waits for another cell (another xdist worker, another run) to free the link


def hold(interface: str, timeout: float = LINK_WAIT_S, folder: Path | None = None):
    """An exclusive lock on the device's link, across processes (xdist workers, other runs): one cell at a time
    holds an interface. The kernel drops it with the process, so a killed run never leaves it held. Returns the
    open lock file; closing it releases the lock."""
    import fcntl
    path = (folder or LOCK_FOLDER) / f"overlay-interop-device-{interface}.lock"
    lock = open(path, "a")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise LabTimeout(f"timed out after {timeout:g}s waiting for another cell to free the device "
                                 f"interface {interface} ({path})") from None
            time.sleep(0.2)


def on_host(interface: str) -> bool:
    return Path("/sys/class/net", interface).exists()


def take(interface: str, pid: int, peer_address: str, route: tuple[str, str] | None = None) -> None:
    """Move the host's `interface` into the network namespace of process `pid` as eth0 holding `peer_address`
    (IPv6 off, so the link carries only what the case sends); `route` (device address, gateway): a routed
    device's one route, a host route through the router (no default route, no NAT)."""
    if not on_host(interface):
        raise HarnessError(f"the device interface {interface} is not on this host (held by a run that died? "
                           f"`overlay-interop clean` gives it back)")
    _run(["ip", "link", "set", "dev", interface, "netns", str(pid)], f"moving {interface} into the peer's namespace")
    _in_netns(pid, f"ip link set dev {shlex.quote(interface)} name {LINK_NAME}\n"
                   f"echo 1 > /proc/sys/net/ipv6/conf/{LINK_NAME}/disable_ipv6\n"
                   f"ip address add {shlex.quote(peer_address)} dev {LINK_NAME}\n"
                   f"ip link set dev {LINK_NAME} up"
                   + (f"\nip route add {shlex.quote(route[0])}/32 via {shlex.quote(route[1])} dev {LINK_NAME}"
                      if route else ""),
              f"configuring {interface} as {LINK_NAME} in the peer's namespace")


def give_back(interface: str, pid: int) -> None:
    """Move eth0 of `pid`'s namespace back to this process's namespace under its own name, without addresses,
    up as before (a veth or VLAN in a namespace that dies is destroyed with it, not returned)."""
    name = shlex.quote(interface)
    # Under its own name still where the run died between moving it in and renaming it (take()).
    _in_netns(pid, f"dev={LINK_NAME}; ip link show dev {LINK_NAME} >/dev/null 2>&1 || dev={name}\n"
                   f'ip address flush dev "$dev"\nip link set dev "$dev" down\n'
                   f'[ "$dev" = {name} ] || ip link set dev "$dev" name {name}\n'
                   f"ip link set dev {name} netns {os.getpid()}",
              f"giving {interface} back to the host")
    _run(["ip", "link", "set", "dev", interface, "up"], f"bringing {interface} up on the host")


def reclaim(container) -> bool:
    """The reaper's part: a dead run's container holding a device interface gives it back before it is removed.
    True if an interface came back."""
    interface = (container.attrs.get("Labels") or {}).get(INTERFACE_LABEL)
    if not interface or on_host(interface):
        return False
    container.reload()
    pid = container.attrs.get("State", {}).get("Pid") or 0
    if not pid:
        log.warning("%s held device interface %s but is not running: the interface went with its namespace",
                    container.name, interface)
        return False
    give_back(interface, pid)
    return True


# --- the nodes of a device cell ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """The device's link as a lab network: what a fixture reads of a Network (name, subnet)."""
    name: str
    subnet: ipaddress.IPv4Network


def route_to(device: Device) -> tuple[str, str] | None:
    """A routed device's route for its peer: (its address, the gateway); None for a device on the link."""
    return (str(device.address.ip), str(device.gateway)) if device.gateway else None


class PeerNode(Node):
    """The harness's vendor on the device's link: a container with no Docker network; on start the device's
    interface moves in (Lab.on_close gives it back)."""

    def __init__(self, container, name: str, device: Device):
        super().__init__(container, name, str(device.peer_address.ip),
                         Link(f"{device.interface} (device {device.name})", device.peer_address.network))
        self.device = device
        self.holding = False
        self._lock = None

    def start(self) -> None:
        self._lock = hold(self.device.interface)
        try:
            self.container.start()
            self.container.reload()
            take(self.device.interface, self.container.attrs["State"]["Pid"], str(self.device.peer_address),
                 route_to(self.device))
        except BaseException:
            self._lock.close()
            raise
        self.holding = True

    def restart(self, timeout: float) -> None:
        raise HarnessError(f"{self.name}: holds the device interface {self.device.interface}; a restart would "
                           f"lose it with its namespace")

    def release(self) -> None:
        if self.holding:
            self.holding = False
            try:
                self.container.reload()
                give_back(self.device.interface, self.container.attrs["State"]["Pid"])
            except HarnessError as exc:
                log.warning("%s: %s (the reaper tries again)", self.name, exc)
            finally:
                self._lock.close()  # the next cell may take the link


class DeviceNode:
    """The device's node: runs nothing. Configuring goes to the control mode; `exec` too, where the control is a
    command (it gets {"action": "exec", "argv": [...]}); elsewhere a case that must run something on the device
    skips, saying what."""

    def __init__(self, device: Device, name: str, protocol: str, case: str, folder: Path, peer=None):
        self.device = device
        self.name = name
        self.protocol = protocol
        self.case = case
        self.folder = folder
        self.address = str(device.address.ip)
        self.network = Link(f"{device.interface} (device {device.name})", device.address.network)
        self.peer = peer  # the PeerNode across the link: a capture of the device is taken there
        self.configured = False
        self._log: list[str] = []

    def __repr__(self) -> str:
        return f"DeviceNode({self.device.name}@{self.address})"

    @property
    def container(self):
        import pytest
        pytest.skip(f"{self.device.name} is a device under test: the harness runs nothing on it")

    def note(self, line: str) -> None:
        """A line in the device's log in the pair folder (what the harness asked and did on its behalf)."""
        self._log.append(f"{time.strftime('%H:%M:%S')} {line}")

    _note = note

    def put_files(self, files: dict, mode: int = 0o644) -> None:
        if files:
            self._note(f"files not put (a device takes settings, not files): {', '.join(files)}")

    def start(self) -> None:
        pass  # the device is up already; it is configured with the case's settings (configure)

    def restart(self, timeout: float) -> None:
        import pytest
        pytest.skip(f"{self.device.name} is a device under test: the harness cannot restart it")

    def status(self) -> tuple[str, int | None]:
        return "running", None

    def ensure_running(self) -> None:
        pass

    def logs(self) -> str:
        return "\n".join(self._log) + ("\n" if self._log else "")

    @property
    def settings_file(self) -> Path:
        return self.folder / f"device-{self.device.name}.json"

    def configure(self, settings: dict, timeout: float | None = None) -> None:
        """Bring the device to the case's settings by its control mode; the settings file in the pair folder is
        the record of what it was asked (it holds the case's secrets: the pair folder is the run's evidence)."""
        request = {"action": "configure", "device": self.device.name, "protocol": self.protocol, "case": self.case,
                   "role": self.name, "settings": settings}
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps(request, indent=2) + "\n")
        control = self.device.control
        if control == "command":
            self._command(request, f"configuring {self.device.name} for {self.case}")
        elif control == "manual":
            self._manual(request)
        else:
            self._static(settings)
        self.configured = True

    def reset(self) -> None:
        """After the case: a command-controlled device is told the case is over (best effort)."""
        if self.configured and self.device.control == "command":
            try:
                self._command({"action": "reset", "device": self.device.name, "protocol": self.protocol,
                               "case": self.case, "role": self.name}, f"resetting {self.device.name}")
            except HarnessError as exc:
                log.warning("%s", exc)

    def _command(self, request: dict, what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        timeout = timeout or self.device.timeout
        argv = shlex.split(self.device.command)
        self._note(f"{request['action']}: {self.device.command}")
        try:
            done = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True, timeout=timeout,
                                  cwd=self.device.inventory.parent)
        except FileNotFoundError:
            raise HarnessError(f"device {self.device.name}: command {argv[0]!r} not found "
                               f"(relative to {self.device.inventory.parent})") from None
        except subprocess.TimeoutExpired:
            raise LabTimeout(f"device {self.device.name}: timed out after {timeout:g}s waiting for its command "
                             f"({what})") from None
        output = (done.stdout + done.stderr).rstrip()
        if output:
            self._note(output)
        if request["action"] != "exec" and done.returncode != 0:
            raise HarnessError(f"device {self.device.name}: its command exited with {done.returncode} {what}: "
                               f"{output[-300:]}")
        return done

    def _manual(self, request: dict) -> None:
        ready = self.folder / f"device-{self.device.name}.ready"
        ready.unlink(missing_ok=True)
        shown = redacted(request["settings"], secret_settings(self.protocol))  # the console is no place for a PSK
        text = (f"\noverlay-interop: configure {self.device.name} for {self.protocol} {self.case} as {self.name} "
                f"with the settings in {self.settings_file}:\n{json.dumps(shown, indent=2)}\n"
                f"then create {ready} (timeout {self.device.timeout:g}s)\n")
        print(text, file=sys.__stderr__, flush=True)
        self._note(f"asked the operator; waiting for {ready}")
        deadline = time.monotonic() + self.device.timeout
        while not ready.exists():
            if time.monotonic() > deadline:
                raise LabTimeout(f"device {self.device.name}: timed out after {self.device.timeout:g}s waiting for "
                                 f"the operator to configure it ({self.settings_file}) and create {ready}")
            time.sleep(0.2)
        self._note("the operator confirmed")

    def _static(self, settings: dict) -> None:
        import pytest
        key = f"{self.protocol}.{self.name}"
        try:
            configured = json.loads(self.device.settings.read_text()).get(key)
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(str(self.device.settings), "(file)", f"unreadable ({exc}); write it with "
                                                                  f"`overlay-interop devices settings`") from None
        if configured is None:
            pytest.skip(f"{self.device.name} was configured once (static) without {key} settings")
        different = first_difference(configured, settings, secrets=secret_settings(self.protocol))
        if different:
            pytest.skip(f"{self.device.name} is configured once (static); this case needs another {different}")
        self._note(f"static settings match {key}")

    def exec(self, cmd, *, timeout: float, what: str | None = None, check: bool = False) -> ExecResult:
        import pytest
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        what = what or shlex.join(argv)
        if self.device.control != "command":
            pytest.skip(f"{self.device.name} ({self.device.control} control) cannot run {what} for the case")
        done = self._command({"action": "exec", "device": self.device.name, "argv": argv, "timeout": timeout},
                             what, timeout=timeout + 5)
        result = ExecResult(done.returncode, done.stdout + done.stderr)
        if check and not result.ok:
            raise HarnessError(f"device {self.device.name}: {what} exited with {result.exit_code}: "
                               f"{result.output.strip()[-300:]}")
        return result


def secret_settings(protocol: str) -> tuple[str, ...]:
    """The settings keys of `protocol` that hold secrets (its device module's SECRET_SETTINGS): written into the
    pair folder's settings file only, never printed, logged or put in a skip reason."""
    return tuple(getattr(device_module(protocol), "SECRET_SETTINGS", ()))


def redacted(settings, secrets: tuple[str, ...]):
    """`settings` with the value of every key named in `secrets` replaced by a pointer to the settings file."""
    if isinstance(settings, dict):
        return {k: "(secret: in the settings file)" if k in secrets and v is not None else redacted(v, secrets)
                for k, v in settings.items()}
    if isinstance(settings, list):
        return [redacted(v, secrets) for v in settings]
    return settings


def first_difference(configured, wanted, path: str = "", secrets: tuple[str, ...] = ()) -> str | None:
    """The first setting (dotted path) where `wanted` differs from `configured`, or None. A secret is named, its
    values are not shown."""
    if isinstance(configured, dict) and isinstance(wanted, dict):
        for key in sorted(set(configured) | set(wanted)):
            found = first_difference(configured.get(key), wanted.get(key), f"{path}.{key}" if path else key, secrets)
            if found:
                return found
        return None
    if isinstance(configured, list) and isinstance(wanted, list) and len(configured) == len(wanted):
        for i, (a, b) in enumerate(zip(configured, wanted)):
            found = first_difference(a, b, f"{path}[{i}]", secrets)
            if found:
                return found
        return None
    if configured == wanted:
        return None
    if path.rsplit(".", 1)[-1] in secrets:
        return f"{path} (another value than the one configured)"
    return f"{path} ({wanted!r}, not {configured!r})"


def cell_device(pair) -> DeviceVendor | None:
    """The device of a cell, if one side is a device."""
    return next((v for v in (pair.a, pair.b) if isinstance(v, DeviceVendor)), None)


def node(pair_lab, role: str, image_of, **kwargs):
    """PairLab.node in a cell with a device: the device's own node, or the harness vendor's node on its link.
    `image_of(vendor)` is the image the vendor runs."""
    import pytest
    pair = pair_lab.pair
    devices = [v for v in (pair.a, pair.b) if isinstance(v, DeviceVendor)]
    if len(devices) == 2:
        pytest.skip(f"two devices ({pair.a.name}, {pair.b.name}): the harness has no vendor between them")
    device = devices[0].device
    vendor = pair.vendor(role)
    peers = [n for n in pair_lab.nodes.values() if isinstance(n, PeerNode)]
    mine = [n for n in pair_lab.nodes.values() if isinstance(n, DeviceNode)]
    if isinstance(vendor, DeviceVendor):
        if mine:
            pytest.skip(f"the case needs a second {device.name}; a device plays one node")
        made = DeviceNode(device, role, pair.protocol, pair.case, pair_lab.dir, peer=peers[0] if peers else None)
        pair_lab.lab.on_close(made.reset)
    else:
        if peers:
            pytest.skip(f"the case needs a second node on {device.name}'s link; it has room for one peer")
        made = peer_node(pair_lab.lab, role, image_of(vendor), device)
        for other in mine:
            other.peer = made
    pair_lab.nodes[role] = made
    return made


LINK_WAIT_IN_NODE_S = 60  # how long a peer's own command waits for the device's link before it gives up
# The peer's own command starts only once the link is in its namespace, up (take() brings it up last): a daemon
# binding the peer's address at start (xl2tpd's listen-addr) would otherwise exit, and with it the namespace
# and the veth or VLAN interface it had just been given.
# A routed device's route comes after the link is up (the kernel takes no route through a link that is down):
# then the wait is for the route too, read from /proc/net/route (every image has it, not every image iproute2).


def await_link(device: Device | None = None) -> str:
    """The shell loop a peer's own command waits in until the link (and a routed device's route) is there."""
    ready = f'[ $(( $(cat /sys/class/net/{LINK_NAME}/flags 2>/dev/null || echo 0) & 1 )) = 1 ]'
    if device is not None and device.gateway is not None:
        destination = device.address.ip.packed[::-1].hex().upper()  # /proc/net/route: little-endian hex
        ready += f' && grep -q "^{LINK_NAME}[[:space:]]*{destination}[[:space:]]" /proc/net/route'
    return (f'i=0; until {ready}; do i=$((i+1)); [ $i -le {LINK_WAIT_IN_NODE_S * 20} ] || '
            f'{{ echo "no {LINK_NAME} after {LINK_WAIT_IN_NODE_S}s: the device link never came" >&2; exit 1; }}; '
            f'sleep 0.05; done; exec "$@"')


def awaiting_link(client, image: str, command: list[str] | None, device: Device | None = None) \
        -> tuple[list[str], list[str]]:
    """The entrypoint and command that run the image's own (its entrypoint, then `command` or its CMD) once the
    device's link is up in the node (and, for a routed device, its route in place)."""
    config = client.images.get(image).attrs.get("Config") or {}
    own = list(config.get("Entrypoint") or []) + list(command or config.get("Cmd") or [])
    if not own:
        raise HarnessError(f"{image} has neither an entrypoint nor a command to run on the device's link")
    return ["/bin/sh", "-c", await_link(device), "await-link"], own


def probe_peer(pair_lab, name: str, image: str) -> PeerNode:
    """The harness's built-in probe in a cell with a device: a plain node of `image` on the device's link (it
    holds the interface, and the device's captures are taken there)."""
    device = cell_device(pair_lab.pair).device
    mine = [n for n in pair_lab.nodes.values() if isinstance(n, DeviceNode)]
    if any(isinstance(n, PeerNode) for n in pair_lab.nodes.values()):
        import pytest
        pytest.skip(f"the case needs a second node on {device.name}'s link; it has room for one peer")
    made = peer_node(pair_lab.lab, name, image, device, command=["sleep", "infinity"])
    for other in mine:
        other.peer = made
    pair_lab.nodes[name] = made  # so a device node made after it finds its peer (and no second peer is made)
    return made


def peer_node(lab, name: str, image: str, device: Device, command: list[str] | None = None) -> PeerNode:
    """Create (not start) the container that takes the device's interface: no Docker network, labelled with the
    interface so the reaper can give it back, its own command held until the interface is in."""
    host_config = lab.client.api.create_host_config(
        cap_add=["NET_ADMIN", "NET_RAW"], devices=["/dev/net/tun:/dev/net/tun:rwm"], network_mode="none",
        sysctls={"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"})
    entrypoint, own = awaiting_link(lab.client, image, command, device)
    container = lab.container(image, name, command=own, entrypoint=entrypoint, host_config=host_config,
                              labels={INTERFACE_LABEL: device.interface})
    made = PeerNode(container, name, device)
    lab.on_close(made.release)
    return made


def captured_node(node):
    """Where a capture of `node` is taken: a device's traffic on the harness's side of its link."""
    if isinstance(node, DeviceNode):
        if node.peer is None:
            raise HarnessError(f"{node.name}: no harness node on {node.device.name}'s link to capture on")
        return node.peer
    return node


def static_settings(device: Device) -> dict:
    """The settings a device under `control = "static"` is configured with once, per "<protocol>.<role>" it
    declares: the protocol's reference scenario (its device module's `reference_settings`)."""
    out = {}
    for protocol, support in sorted(device.protocols.items()):
        module = device_module(protocol)
        for role in sorted(support.roles):
            out[f"{protocol}.{role}"] = module.reference_settings(
                role, str(device.address.ip), str(device.peer_address.ip), device.address.network.prefixlen)
    return out


def write_static_settings(path: Path) -> list[str]:
    """`overlay-interop devices settings FILE`: each static device's settings file (named by its `settings`),
    written; what was done, one line per device."""
    lines = []
    for device in load_inventory(path):
        if device.control != "static":
            lines.append(f"{device.name}: control is {device.control}, settings come with each case")
            continue
        device.settings.write_text(json.dumps(static_settings(device), indent=2) + "\n")
        lines.append(f"{device.name}: {device.settings} (configure the device from it once; it holds the "
                     f"cases' secrets)")
    return lines
