"""`overlay-interop doctor`: the engine, the registry, the host's kernel capabilities, and what they mean for
the matrix (which vendor features skip here)."""
from __future__ import annotations

import subprocess
import sys

from support import ROOT

from harness.cli import matrix_consequences
from harness.host import HostCapabilities, declared
from harness.vendor import load_registry

CAPABILITIES = declared(load_registry(ROOT / "vendors").values())


def test_doctor_reports_engine_registry_capabilities_and_consequences():
    result = subprocess.run([sys.executable, "-m", "harness.cli", "doctor"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("docker engine ") and "API" in lines[0]
    assert lines[1].startswith("registry: reachable") or lines[1].startswith("registry: not reachable (")
    for name in CAPABILITIES:
        assert any(line.split()[:2] in ([name, "yes"], [name, "no"]) for line in lines), f"{name} missing"
    consequences = lines[lines.index("what it means for the matrix:") + 1:]
    assert consequences and all(line.startswith("  ") for line in consequences)


def test_consequences_name_the_vendor_feature_and_the_missing_capability():
    registry = load_registry(ROOT / "vendors")
    nothing = HostCapabilities({name: False for name in CAPABILITIES}, {"kernel-esp": "Requested type not found"},
                               CAPABILITIES)
    lines = matrix_consequences(registry, nothing)
    assert ("libreswan ipsec: cases needing child_sa skip (host lacks ESP in the kernel's XFRM "
            "(Requested type not found))") in lines
    assert any(line.startswith("linux vxlan: cases needing geneve skip") for line in lines)
    everything = HostCapabilities({name: True for name in CAPABILITIES}, {}, CAPABILITIES)
    assert matrix_consequences(registry, everything) == ["every declared vendor feature can run here"]
