"""Protocol packages. Each `harness.protocols.<name>` declares ROLES, the two roles of a pair in the order
the matrix lists them (initiator first), FEATURES, the vocabulary its cases and vendors speak ({name: meaning}),
and may offer pytest fixtures in its `fixtures` module. It may declare PROBE_ROLE, the role the harness's
built-in probe plays in its cases marked `probes` (harness.pairlab), and HOST_CAPABILITIES, the host
capabilities its vendors may need ({name: {"meaning": ..., "probe": ...}}, harness.host).
The core reaches them only by name, so it stays free of protocol knowledge."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from harness.errors import ConfigError


def known() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def load(name: str) -> ModuleType:
    if name not in known():
        raise ConfigError("protocol", name, f"unknown protocol; known: {', '.join(known())}")
    return importlib.import_module(f"{__name__}.{name}")


def roles(name: str) -> tuple[str, str]:
    return tuple(load(name).ROLES)


def features(name: str) -> dict[str, str]:
    """The features a vendor may declare for the protocol and a case may ask for: {name: one-line meaning}."""
    return dict(load(name).FEATURES)


def probe_role(name: str) -> str | None:
    """The role the harness's built-in probe plays in the protocol's cases marked `probes`; None where vendors
    declaring the feature `probes` misbehave instead (harness.pairlab). One or the other, never both."""
    package = load(name)
    role = getattr(package, "PROBE_ROLE", None)
    if role is not None and role not in package.ROLES:
        raise ConfigError(f"harness.protocols.{name}", "PROBE_ROLE", f"{role!r} is not one of {list(package.ROLES)}")
    if role is not None and "probes" in package.FEATURES:
        raise ConfigError(f"harness.protocols.{name}", "PROBE_ROLE",
                          "declared beside the feature 'probes': the prober is either the built-in probe or a "
                          "vendor declaring probes, not both")
    return role


def both_or_neither(name: str) -> tuple[str, ...]:
    """The protocol's features a pair must agree on (BOTH_OR_NEITHER): a vendor declaring one speaks the protocol
    only with another that does (L2TP inside IPsec, RFC 3193), so a pair where one side alone declares it is
    ruled out in every case."""
    package = load(name)
    agreed = tuple(getattr(package, "BOTH_OR_NEITHER", ()))
    unknown = [f for f in agreed if f not in package.FEATURES]
    if unknown:
        raise ConfigError(f"harness.protocols.{name}", "BOTH_OR_NEITHER", f"{unknown} are not in FEATURES")
    return agreed


def host_capabilities(name: str) -> dict[str, dict[str, str]]:
    """The host capabilities the protocol declares: {name: {"meaning": one line, "probe": a shell snippet}}."""
    return dict(getattr(load(name), "HOST_CAPABILITIES", {}))
