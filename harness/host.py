"""What the host (the Docker engine's kernel) can do, probed once, so a case that needs a missing
capability is skipped with that reason instead of failing in a confusing way, or passing vacuously.

The probe runs in a throw-away container on the engine, because that kernel is the one the daemons get,
which is not always the kernel this Python process runs on (DOCKER_HOST).
"""
from __future__ import annotations

from dataclasses import dataclass

import docker
import pytest

from harness.errors import ConfigError, HarnessError

CAPABILITIES = {
    "kernel-esp": "ESP in the kernel's XFRM",
    "kernel-l2tp": "L2TP in the kernel",
    "ppp": "PPP in the kernel (/dev/ppp)",
    "openvswitch": "the openvswitch kernel datapath",
    "tun": "TUN devices",
    "vxlan": "VXLAN devices",
    "geneve": "Geneve devices",
}


@dataclass(frozen=True)
class HostCapabilities:
    present: dict[str, bool]
    details: dict[str, str]

    def has(self, name: str) -> bool:
        if name not in CAPABILITIES:
            raise ConfigError("requires()", name, f"unknown host capability; known: {', '.join(CAPABILITIES)}")
        return self.present.get(name, False)

    def missing(self, *names: str) -> list[str]:
        return [n for n in names if not self.has(n)]

    def reason(self, name: str) -> str:
        detail = self.details.get(name)
        return f"host lacks {CAPABILITIES[name]}" + (f" ({detail})" if detail else "")

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
        return "\n".join(f"{name:12} {'yes' if self.present.get(name) else 'no '}  {self.details.get(name, '')}"
                         for name in CAPABILITIES)


def parse_probe(output: str) -> HostCapabilities:
    present, details = {}, {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        answer, _, detail = rest.partition(" ")
        if name in CAPABILITIES and answer in ("yes", "no"):
            present[name] = answer == "yes"
            if detail:
                details[name] = detail.strip()
    absent = [n for n in CAPABILITIES if n not in present]
    if absent:
        raise HarnessError(f"host probe gave no answer for {', '.join(absent)}; it printed: {output[:300]!r}")
    return HostCapabilities(present, details)


def probe(client: docker.DockerClient, tools_image: str) -> HostCapabilities:
    try:
        out = client.containers.run(tools_image, ["probe-host"], remove=True, network_mode="none",
                                    cap_add=["NET_ADMIN"], devices=["/dev/net/tun:/dev/net/tun:rwm"],
                                    labels={"overlay-interop.probe": "1"})
    except docker.errors.DockerException as exc:
        raise HarnessError(f"host probe container failed: {exc}") from None
    return parse_probe(out.decode(errors="replace"))
