"""Harness code a lab node runs: an adapter whose daemon is the harness's own code (a reference peer built on the
harness's codec) asks here for the modules it needs, by name, and puts the files into its node with its configs.
The harness finds them through Python's import system, so an adapter never walks the file system from its own
path, and a vendor folder works wherever it lives (`--vendors-dir`).
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError

ROOT_PACKAGE = "harness"


def _source(module: str) -> tuple[Path, bool]:
    """The module's source file, and whether it is a package (its __init__.py)."""
    if module != ROOT_PACKAGE and not module.startswith(ROOT_PACKAGE + "."):
        raise HarnessError(f"{module!r} is not a harness module: only harness code is shipped from here")
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise HarnessError(f"no harness module {module!r} to ship")
    return Path(spec.origin), spec.submodule_search_locations is not None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _imports(source: str) -> set[str]:
    """The harness modules a source imports (`from harness.x import y`: harness.x.y if that is a module, else
    harness.x), wherever in the file the import stands."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == ROOT_PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == ROOT_PACKAGE:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if _is_module(full) else node.module)
    return found


def harness_files(*modules: str, under: str | None = None, at: str | None = None) -> dict[str, str]:
    """{container path: source} for the named harness modules, placed one of two ways:

    - `under=DIR`: laid out below DIR as they are in the harness (DIR/harness/protocols/l2tp/codec.py), with an
      empty __init__.py for each package above them that is not named itself: with DIR on sys.path,
      `import harness.protocols.l2tp.codec` works there with nothing else of the harness;
    - `at=PATH`: one module, on its own, as the program PATH (e.g. the user-space PPP endpoint at
      /usr/sbin/pppd); it may import no harness module.

    A named module that imports a harness module not shipped with it is an error saying which: what is shipped
    runs."""
    if (under is None) == (at is None):
        raise HarnessError("harness_files: give the modules a place, either under=DIR or at=PATH")
    if at is not None and len(modules) != 1:
        raise HarnessError(f"harness_files: at={at!r} places one module, not {len(modules)}")
    named = dict.fromkeys(modules)
    files: dict[str, str] = {}
    sources: dict[str, str] = {}
    for module in named:
        path, package = _source(module)
        parts = module.split(".")
        if at is not None:
            target = PurePosixPath(at)
        elif package:
            target = PurePosixPath(under, *parts, "__init__.py")
        else:
            target = PurePosixPath(under, *parts[:-1], f"{parts[-1]}.py")
        sources[module] = files[str(target)] = path.read_text(encoding="utf-8")
        for depth in range(1, len(parts) if at is None else 1):
            parent = ".".join(parts[:depth])
            if parent not in named:
                files.setdefault(str(PurePosixPath(under, *parts[:depth], "__init__.py")), "")
    for module, source in sources.items():
        missing = sorted(_imports(source) - set(named if at is None else ()))
        if missing:
            raise HarnessError(f"{module} imports {', '.join(missing)}, which is not shipped with it"
                               + (": name it too" if at is None else f" (a program at {at} runs alone)"))
    return dict(sorted(files.items()))
