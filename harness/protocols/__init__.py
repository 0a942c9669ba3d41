"""Protocol packages. Each `harness.protocols.<name>` declares ROLES, the two roles of a pair in the order
the matrix lists them (initiator first), FEATURES, the vocabulary its cases and vendors speak ({name: meaning}),
and may offer pytest fixtures in its `fixtures` module.
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
