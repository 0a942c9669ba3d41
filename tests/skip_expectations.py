"""A pytest plugin for a collect-only run (`-p skip_expectations`, tests/ on the path): prints each cell the vendors'
declarations skip that the shipped expectations would not expect, as "NOT EXPECTED <cell> <outcome> | <reason>",
then "declared skips: N". The skip reason is the one the run gives (harness.plugin.undeclared), decided before any
lab, so the expectations can be held to every version row without running a cell."""
from __future__ import annotations

from pathlib import Path

from harness import expectations
from harness.host import declared
from harness.pairlab import VendorPair
from harness.plugin import undeclared
from harness.vendor import load_registry

ROOT = Path(__file__).resolve().parent.parent
# This host: no kernel ESP, L2TP, PPP, openvswitch or Geneve; microVMs allowed (--kernel auto).
HOST = {"kernel-esp": False, "kernel-l2tp": False, "ppp": False, "openvswitch": False, "geneve": False,
        "tun": True, "vxlan": True, "vm": True}


def pytest_collection_finish(session):
    registry = load_registry(ROOT / "vendors")
    rules = expectations.load(ROOT / "expectations" / "default.toml", set(declared(registry.values())))
    skips = 0
    for item in session.items:
        pair = getattr(item, "callspec", None) and item.callspec.params.get("vendor_pair")
        reason = isinstance(pair, VendorPair) and undeclared(item, pair)
        if reason:
            skips += 1
            key = expectations.cell_key(pair.protocol, pair.case, pair.a.name, pair.b.name)
            outcome, _ = rules.judge(key, "skipped", reason, HOST)
            if outcome != "expected":
                print(f"NOT EXPECTED {key} {outcome} | {reason}")
    print(f"declared skips: {skips}")
