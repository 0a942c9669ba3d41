"""What several of the harness's tests share."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def load(name: str, path: Path):
    """vendors/ and tests/data/ are folders, not packages: load their modules by path."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class TaxFigures:
    """What harness.tax.measure returns, for a case's wire check run without a lab: the overhead it records lands
    in `pair_lab.recorded`."""
    underlay_carried_overlay = True

    def __init__(self):
        from types import SimpleNamespace
        self.overlay_rtt = SimpleNamespace(avg_ms=1.0)

    def record(self, pair_lab, overhead_bytes=None):
        pair_lab.recorded = overhead_bytes


def without_spis(text: str) -> str:
    """An IPsec transcript without the SPIs/cookies on its message lines, for assertions about the rest."""
    import re
    return re.sub(r" (ispi|rspi|icookie|rcookie)=0x[0-9a-f]+", "", text)


def tshark_main(disagreements, paths: list[str]) -> int:
    """The command line of the tests' tshark comparisons (tests/*_tshark.py): each capture agrees, or its
    disagreements; exit 1 if any capture disagrees."""
    found = False
    for path in paths:
        problems = disagreements(path)
        found |= bool(problems)
        print(f"{path}: " + ("agrees with tshark" if not problems else "\n  ".join(["disagrees:", *problems])))
    return 1 if found else 0


def vm_ready(*vendors: str):
    """The engine's Images with the microVM kit and the VM roots of `vendors` made, for a test that runs real cells
    with microVM nodes; the test skips, saying why, where there is no engine or the kit cannot be built here."""
    import pytest
    docker = pytest.importorskip("docker")
    from harness import vm
    from harness.images import ImageBuildError, Images
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {exc}")
    images = Images(client)
    try:  # what a run would build first; a kit that cannot be built here means no VM node can run
        vm.prepare(images, [images.ensure(name, ROOT / "vendors" / name) for name in vendors])
    except ImageBuildError as exc:
        pytest.skip(f"the microVM kit or a VM root of {', '.join(vendors)} cannot be built here: {exc}")
    return images
