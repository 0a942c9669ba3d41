"""The event's two files a person writes: event.toml (protocols, cases) and participants.toml (who brings what).

Every key is checked like vendor.toml's: a mistake is one ConfigError naming the file, the participant and the
field. A participant's devices are written in the inventory format of `--devices` (docs/devices.md) and checked
by the same code (harness.devices.load_inventory), through DIR/inventory.toml, which this module generates.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.results import name_problem
from harness.tomlfile import read_toml

EVENT_FILE, PARTICIPANTS_FILE, INVENTORY_FILE = "event.toml", "participants.toml", "inventory.toml"
EVENT_KEYS = ("name", "protocols", "cases", "default_case_seconds")
PARTICIPANT_KEYS = ("id", "organisation", "contact", "vendors", "device")
DEFAULT_CASE_SECONDS = 60.0  # a case no earlier try measured: roughly a VXLAN cell on a loaded 2-core host

EVENT_TEMPLATE = """\
# The event: what is tested. `overlay-interop event init DIR` reads it again after you edit it.
name = "Overlay interop event"

# The protocols of the event (folders of suites/).
protocols = ["vxlan"]

# The cases per protocol: the suites' test functions without "test_" (suites/vxlan/test_vxlan.py::test_unicast
# is "unicast"). A protocol left out here runs all of its cases.
[cases]
vxlan = ["unicast", "vni_isolation"]

# default_case_seconds = 60   # the plan's estimate for a case no earlier try of this event measured
"""

PARTICIPANTS_TEMPLATE = """\
# Who takes part. One [[participant]] per organisation's team; each brings built-in vendors (vendors/<name>)
# and/or devices under test, written exactly like an inventory's [[device]] (docs/devices.md).
# After editing, run `overlay-interop event init DIR` again: new participants get their token then (printed
# once), existing ones keep theirs.

[[participant]]
id = "acme"                           # short, a letter or digit then letters, digits, . _ - (the board's key)
organisation = "ACME Networks"        # partner coverage counts partners of other organisations
contact = "interop@acme.example"
vendors = ["linux"]                   # built-in vendors this participant answers for

[[participant]]
id = "example-org"
organisation = "Example Org"
contact = "lab@example.org"
vendors = ["scapy-vtep"]

# A participant with its own box, reached through a host interface (one VLAN sub-interface per device):
# [[participant]]
# id = "gw-corp"
# organisation = "Gateway Corp"
# contact = "noc@gw-corp.example"
#
# [[participant.device]]
# name = "gw5000"
# description = "Gateway Corp GW5000"
# version = "7.2.1"
# interface = "enp3s0.101"
# address = "198.18.250.10/24"
# peer_address = "198.18.250.1/24"
# control = "command"                 # manual | command | static; a command runs from this folder
# command = "./push-config gw5000"
#
# [participant.device.protocols.vxlan]
# roles = ["vtep1", "vtep2"]
# features = ["vxlan"]
"""


@dataclass(frozen=True)
class EventConfig:
    name: str
    protocols: tuple[str, ...]
    cases: dict[str, tuple[str, ...]]  # protocol -> its cases (every case of its suites when not narrowed)
    default_case_seconds: float


@dataclass(frozen=True)
class Participant:
    id: str
    organisation: str
    contact: str
    vendors: tuple[str, ...] = ()
    devices: tuple[dict, ...] = ()  # inventory [[device]] tables, as written

    @property
    def entries(self) -> tuple[str, ...]:
        """The matrix names this participant answers for."""
        return self.vendors + tuple(d["name"] for d in self.devices)


@dataclass
class Event:
    folder: Path
    config: EventConfig
    participants: dict[str, Participant] = field(default_factory=dict)

    @property
    def inventory(self) -> Path | None:
        return self.folder / INVENTORY_FILE if any(p.devices for p in self.participants.values()) else None

    def owner(self, entry: str) -> Participant | None:
        return next((p for p in self.participants.values() if entry in p.entries), None)


def _line(table: dict, key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
        raise ConfigError(where, key, "required, one non-empty line" if value is None else "must be one non-empty line")
    return value.strip()


def _names(value, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, key, "a list of names expected, e.g. [\"vxlan\"]")
    for name in value:
        if problem := name_problem(name):
            raise ConfigError(where, key, problem)
    if len(set(value)) != len(value):
        raise ConfigError(where, key, "names a value twice")
    return tuple(value)


def suite_cases(root: Path, protocol: str) -> list[str]:
    """The cases of a protocol's suites: its `def test_<case>(` functions (what the matrix calls the case)."""
    found = []
    for path in sorted((root / "suites" / protocol).glob("test_*.py")):
        found += re.findall(r"^def test_(\w+)\(", path.read_text(), flags=re.M)
    return found


def load_event(folder: Path, root: Path) -> EventConfig:
    path = folder / EVENT_FILE
    where = str(path)
    data = read_toml(path, missing="not found; `overlay-interop event init DIR` writes a template")
    for key in data:
        if key not in EVENT_KEYS:
            raise ConfigError(where, key, f"unknown key; known: {', '.join(EVENT_KEYS)}")
    name = _line(data, "name", where)
    protocols = _names(data.get("protocols"), where, "protocols")
    if not protocols:
        raise ConfigError(where, "protocols", "name at least one protocol")
    for protocol in protocols:
        if not (root / "suites" / protocol).is_dir():
            known = sorted(p.name for p in (root / "suites").iterdir() if p.is_dir() and not p.name.startswith("_"))
            raise ConfigError(where, "protocols", f"no suites for {protocol!r}; known: {', '.join(known)}")
    chosen = data.get("cases", {})
    if not isinstance(chosen, dict):
        raise ConfigError(where, "cases", "a table of protocol = [cases] expected")
    cases = {}
    for protocol in chosen:
        if protocol not in protocols:
            raise ConfigError(where, f"cases.{protocol}", f"{protocol!r} is not in protocols")
    for protocol in protocols:
        known = suite_cases(root, protocol)
        if protocol not in chosen:
            cases[protocol] = tuple(known)
            continue
        named = _names(chosen[protocol], where, f"cases.{protocol}")
        for case in named:
            if case not in known:
                raise ConfigError(where, f"cases.{protocol}", f"no case {case!r} in suites/{protocol}; known: "
                                                              f"{', '.join(known)}")
        if not named:
            raise ConfigError(where, f"cases.{protocol}", "name at least one case, or leave the protocol out")
        cases[protocol] = named
    seconds = data.get("default_case_seconds", DEFAULT_CASE_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigError(where, "default_case_seconds", "a number of seconds above 0 expected")
    return EventConfig(name, protocols, cases, float(seconds))


def load_participants(path: Path, vendor_names: set[str]) -> dict[str, Participant]:
    """participants.toml, checked: ids, text fields, vendors known to the harness, an implementation claimed by
    one participant only. Devices are checked by validate_devices (they need the inventory reader)."""
    where = str(path)
    data = read_toml(path, missing="not found; `overlay-interop event init DIR` writes a template")
    for key in data:
        if key != "participant":
            raise ConfigError(where, key, "unknown key; known: participant")
    tables = data.get("participant")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(where, "participant", "declare at least one [[participant]] table")
    participants: dict[str, Participant] = {}
    claimed: dict[str, str] = {}
    for index, table in enumerate(tables):
        label = table.get("id") if isinstance(table.get("id"), str) and table.get("id") else f"#{index + 1}"
        here = f"{where}: participant {label}"
        for key in table:
            if key not in PARTICIPANT_KEYS:
                raise ConfigError(here, key, f"unknown key; known: {', '.join(PARTICIPANT_KEYS)}")
        ident = _line(table, "id", here)
        if problem := name_problem(ident):
            raise ConfigError(here, "id", problem)
        if ident in participants:
            raise ConfigError(here, "id", "is another participant's id too")
        if ident == "organiser":  # the board's name for the organiser's token
            raise ConfigError(here, "id", "'organiser' is reserved for the organiser")
        vendors = _names(table.get("vendors", []), here, "vendors")
        for vendor in vendors:
            if vendor not in vendor_names:
                raise ConfigError(here, "vendors", f"no built-in vendor {vendor!r}; known: "
                                                   f"{', '.join(sorted(vendor_names))}")
        devices = table.get("device", [])
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            raise ConfigError(here, "device", "[[participant.device]] tables expected")
        if not vendors and not devices:
            raise ConfigError(here, "vendors", "a participant brings at least one built-in vendor or device")
        participant = Participant(ident, _line(table, "organisation", here), _line(table, "contact", here),
                                  vendors, tuple(devices))
        for name in vendors + tuple(d.get("name") for d in devices if isinstance(d.get("name"), str)):
            spot, key = (here, "vendors") if name in vendors else (f"{here}: device {name}", "name")
            if name not in vendors and name in vendor_names:
                raise ConfigError(spot, key, "is a built-in vendor's name too; name it apart")
            if name in claimed:
                raise ConfigError(spot, key, f"{name} is participant {claimed[name]}'s already: one matrix row "
                                             f"answers to one participant")
            claimed[name] = ident
        participants[ident] = participant
    return participants


def _toml_value(value) -> str:
    """A TOML value of the inventory's shapes (text, numbers, booleans, lists of them). JSON's string escapes
    are TOML's, with non-ASCII left as it is (TOML has no surrogate pairs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value).__name__)


def inventory_text(participants: dict[str, Participant]) -> str:
    lines = ["# Generated by overlay-interop event from participants.toml: edit that file, not this one.", ""]
    for participant in participants.values():
        for device in participant.devices:
            lines += [f"# participant {participant.id}", "[[device]]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in device.items() if key != "protocols"]
            for protocol, support in (device.get("protocols") or {}).items():
                lines.append(f"[device.protocols.{json.dumps(protocol)}]")
                for key, value in support.items():
                    if isinstance(value, dict):  # [device.protocols.<p>.host]
                        lines.append(f"[device.protocols.{json.dumps(protocol)}.{json.dumps(key)}]")
                        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()]
                    else:
                        lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
            lines.append("")
    return "\n".join(lines)


def write_inventory(folder: Path, participants: dict[str, Participant]) -> Path | None:
    """DIR/inventory.toml from the participants' devices (atomically: a run may be reading it), checked by the
    inventory's own reader; a mistake names participants.toml, the participant, the device and the field."""
    if not any(p.devices for p in participants.values()):
        return None
    from harness.devices import load_inventory
    try:
        text = inventory_text(participants)
    except TypeError as exc:
        raise ConfigError(str(folder / PARTICIPANTS_FILE), "device", f"a value of type {exc} is not an inventory "
                                                                     f"value") from None
    path = folder / INVENTORY_FILE
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".inventory-", suffix=".toml")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    try:
        load_inventory(Path(temporary))
    except ConfigError as exc:
        # "<tmp>: device NAME", field, problem -> the participant's own file and table
        device = exc.where.split(": device ", 1)[-1] if ": device " in exc.where else ""
        owner = next((p.id for p in participants.values() if any(d.get("name") == device for d in p.devices)),
                     None)
        where = f"{folder / PARTICIPANTS_FILE}: participant {owner}: device {device}" if owner else \
            f"{folder / PARTICIPANTS_FILE}: device"
        Path(temporary).unlink()
        raise ConfigError(where, exc.field, exc.problem) from None
    os.replace(temporary, path)
    return path


def load(folder: Path, root: Path, vendor_names: set[str]) -> Event:
    folder = Path(folder)
    config = load_event(folder, root)
    participants = load_participants(folder / PARTICIPANTS_FILE, vendor_names)
    event = Event(folder, config, participants)
    write_inventory(folder, participants)
    return event
