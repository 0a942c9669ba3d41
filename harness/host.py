"""What the host (the Docker engine's kernel) can do, probed once, so a case that needs a missing
capability is skipped with that reason instead of failing in a confusing way, or passing vacuously.

A capability is declared where it is needed, never in a list here: a protocol package declares those of its
kernel (`HOST_CAPABILITIES` in `harness/protocols/<p>/__init__.py`, e.g. kernel-esp), a vendor those only it
uses (`[capabilities.<name>]` in its vendor.toml, e.g. openvswitch), the core only `tun`, which the lab itself
gives every node (lab.NODE_DEVICES). Each declaration is a name, a one-line meaning ("host lacks <meaning>")
and a probe: a shell snippet that prints `yes`, or `no <why>`; `succeeds COMMAND...` prints `yes` when the
command succeeds, else `no` and the first line it printed:

    [capabilities.openvswitch]
    meaning = "the openvswitch kernel datapath"
    probe = "succeeds genl ctrl get name ovs_datapath"

`declared()` collects them all; vendor.toml host needs, expectations' host conditions and `requires()` accept
only those names. The probes run together in ONE throw-away container of the tools image on the engine, because
that kernel is the one the daemons get, which is not always the kernel this Python process runs on
(DOCKER_HOST). The snippets go in as its command, so the image stays the same whatever is declared.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import docker
import pytest

from harness import protocols
from harness.errors import ConfigError, HarnessError

NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")  # a word in a probe's output line and in `host = ["!name"]`
KEYS = ("meaning", "probe")
PROBE_TIMEOUT_S = 20  # per snippet: a probe that hangs is a broken declaration, not a host without the capability

# The one capability the core itself relies on: every lab node is created with /dev/net/tun.
CORE = {"tun": {"meaning": "TUN devices",
                "probe": 'if [ -c /dev/net/tun ]; then echo yes; else echo "no /dev/net/tun missing"; fi'}}

# What every snippet may call: `succeeds COMMAND...`.
HELPERS = 'succeeds() { if out=$("$@" 2>&1); then echo yes; else echo "no $(echo "$out" | head -n1)"; fi; }'


@dataclass(frozen=True)
class Capability:
    name: str
    meaning: str  # one line, read as "host lacks <meaning>"
    probe: str  # a shell snippet printing "yes" or "no <why>"
    source: str  # who declared it: the file or the protocol package, for messages


def declarations(table, where: str, prefix: str) -> dict[str, Capability]:
    """{name: Capability} from a declaring table ({name: {"meaning": ..., "probe": ...}}), each field checked:
    bad input is one ConfigError naming `where` and the field (`prefix` + name + key)."""
    if not isinstance(table, dict):
        raise ConfigError(where, prefix.rstrip("."), 'must be a table of name = {meaning = "...", probe = "..."}')
    out = {}
    for name, spec in table.items():
        at = f"{prefix}{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(where, at, "a capability name is lower case letters, digits and '-' (at most 40), "
                                         "starting with a letter")
        if not isinstance(spec, dict):
            raise ConfigError(where, at, 'must be a table: meaning = "one line", probe = "shell snippet"')
        for key in spec:
            if key not in KEYS:
                raise ConfigError(where, f"{at}.{key}", f"unknown key; known: {', '.join(KEYS)}")
        meaning, probe = spec.get("meaning"), spec.get("probe")
        if not isinstance(meaning, str) or not meaning.strip() or any(c in meaning for c in "\r\n"):
            raise ConfigError(where, f"{at}.meaning", "required: one line saying what the host has "
                                                      "(read as 'host lacks <meaning>')")
        if not isinstance(probe, str) or not probe.strip():
            raise ConfigError(where, f"{at}.probe", "required: a shell snippet that prints 'yes' or 'no <why>'")
        out[name] = Capability(name, meaning.strip(), probe, where)
    return out


def declared(vendors=()) -> dict[str, Capability]:
    """Every capability the harness can probe: each protocol package's, then each vendor's (harness.vendor.Vendor,
    its `capabilities`), then the core's. A name declared twice is an error naming both places."""
    found: dict[str, Capability] = {}

    def add(capabilities: dict[str, Capability], field_prefix: str) -> None:
        for name, capability in capabilities.items():
            if name in found and found[name] != capability:
                raise ConfigError(capability.source, f"{field_prefix}{name}",
                                  f"host capability already declared by {found[name].source}")
            found[name] = capability
    for protocol in protocols.known():
        where = f"harness.protocols.{protocol}"
        add(declarations(protocols.host_capabilities(protocol), where, "HOST_CAPABILITIES."), "HOST_CAPABILITIES.")
    for vendor in vendors:
        add(vendor.capabilities, "capabilities.")
    add(declarations(CORE, "harness.host", "CORE."), "CORE.")
    return found


@dataclass(frozen=True)
class HostCapabilities:
    present: dict[str, bool]
    details: dict[str, str]
    # What was probed; one made by hand without it knows the names in `present`.
    declared: dict[str, Capability] = field(default_factory=dict)

    @property
    def known(self) -> list[str]:
        return list(self.declared or self.present)

    def has(self, name: str) -> bool:
        if name not in self.known:
            raise ConfigError("requires()", name, f"unknown host capability; known: {', '.join(self.known)}")
        return self.present.get(name, False)

    def missing(self, *names: str) -> list[str]:
        return [n for n in names if not self.has(n)]

    def reason(self, name: str) -> str:
        detail = self.details.get(name)
        meaning = self.declared[name].meaning if name in self.declared else name
        return f"host lacks {meaning}" + (f" ({detail})" if detail else "")

    def requires(self, *names: str) -> None:
        """Skip the running case, with the reason, unless the host has every capability named."""
        missing = self.missing(*names)
        if missing:
            pytest.skip("; ".join(self.reason(n) for n in missing))

    def describe_one(self, name: str) -> str:
        """'yes', or 'no (<what the kernel said>)'."""
        if self.present.get(name):
            return "yes"
        detail = self.details.get(name)
        return f"no ({detail})" if detail else "no"

    def describe(self) -> str:
        width = max([12, *(len(n) + 1 for n in self.known)])
        return "\n".join(f"{name:{width}} {'yes' if self.present.get(name) else 'no '}  {self.details.get(name, '')}"
                         for name in self.known)


def probe_script(capabilities: dict[str, Capability]) -> str:
    """One shell script that runs every probe, each in a shell of its own (so one cannot break another) with a
    timeout, and prints one line per capability: "<name> <the first line its probe printed>"."""
    lines = []
    for c in capabilities.values():
        body = shlex.quote(f"{HELPERS}\n{c.probe}")
        lines.append(f'echo "{c.name} $(timeout {PROBE_TIMEOUT_S} sh -c {body} 2>&1 | head -n1)"')
    return "\n".join(lines) + "\n"


def parse_probe(output: str, capabilities: dict[str, Capability]) -> HostCapabilities:
    present, details, said = {}, {}, {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        if name in capabilities:
            said[name] = rest
            answer, _, detail = rest.partition(" ")
            if answer in ("yes", "no"):
                present[name] = answer == "yes"
                if detail.strip():
                    details[name] = detail.strip()
    absent = [n for n in capabilities if n not in said]
    if absent:
        raise HarnessError(f"host probe gave no answer for {', '.join(absent)}; it printed: {output[:300]!r}")
    garbled = [n for n in capabilities if n not in present]
    if garbled:
        raise HarnessError("; ".join(f"the host probe of {n} (declared by {capabilities[n].source}) printed "
                                     f"{said[n]!r}, not 'yes' or 'no <why>' (within {PROBE_TIMEOUT_S} s)"
                                     for n in garbled))
    return HostCapabilities(present, details, dict(capabilities))


def probe(client: docker.DockerClient, tools_image: str, capabilities: dict[str, Capability]) -> HostCapabilities:
    """Run every declared probe in one container of the tools image, with what a lab node gets (NET_ADMIN,
    /dev/net/tun) in a network namespace of its own, so nothing it adds touches the host."""
    try:
        out = client.containers.run(tools_image, ["sh", "-c", probe_script(capabilities)], remove=True,
                                    network_mode="none", cap_add=["NET_ADMIN"],
                                    devices=["/dev/net/tun:/dev/net/tun:rwm"], labels={"overlay-interop.probe": "1"})
    except docker.errors.DockerException as exc:
        raise HarnessError(f"host probe container failed: {exc}") from None
    return parse_probe(out.decode(errors="replace"), capabilities)
