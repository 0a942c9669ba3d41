"""A skip is decided from the vendors' declarations before any fixture runs (no Docker engine, host probe or lab
for a cell the declarations rule out) and names the true cause: the vendor's own words where its vendor.toml
says why a feature is missing (`gaps`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.plugin import VendorPair, undeclared
from harness.protocols.ipsec import ROLES as IPSEC
from harness.protocols.l2tp import ROLES as L2TP
from harness.vendor import load_registry

ROOT = Path(__file__).resolve().parent.parent
ADAPTER_GAP = "adapter gap: this adapter renders no rekey timers"

SUITE = '''
import pytest

pytestmark = pytest.mark.protocol("ipsec")


@pytest.mark.features("psk", "rekey")
def test_rekey(ipsec_pair):
    """RFC 7296 2.8: rekeying."""
    raise AssertionError("a cell the declarations rule out must not run")
'''


def vendor(root: Path, name: str, features: str, extra: str = "") -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "adapter.py").write_text("class Adapter:\n    pass\n")
    (folder / "vendor.toml").write_bytes(
        (f'name = "{name}"\ndescription = "{name}"\nadapter = "adapter:Adapter"\n[protocols.ipsec]\n'
         f'roles = ["initiator", "responder"]\nfeatures = {features}\n').encode() + extra.encode())


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest on a suite of our own, from the checkout (so this harness is the plugin), with no Docker engine
    reachable: any fixture that asked for one would make the cell broken."""
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_declared_gap_skips_before_any_container_with_its_cause(tmp_path):
    vendors = tmp_path / "vendors"
    vendor(vendors, "gappy", '["psk"]', f'[protocols.ipsec.gaps]\nrekey = "{ADAPTER_GAP}"\n')
    vendor(vendors, "able", '["psk", "rekey"]')
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_rekey.py").write_text(SUITE)
    result = run_pytest(tmp_path, str(tmp_path / "suite"), "--vendors-dir", str(vendors), "--vendors", "gappy,able",
                        "--reports-dir", str(tmp_path / "out"), "-rs")
    records = {(r["a"], r["b"]): r for r in json.loads((tmp_path / "out" / "matrix.json").read_text())}
    assert {k: r["verdict"] for k, r in records.items()} == {
        ("gappy", "gappy"): "skipped", ("gappy", "able"): "skipped", ("able", "gappy"): "skipped",
        ("able", "able"): "broken"}, result.stdout[-3000:]  # the one cell that runs finds no engine
    assert records["gappy", "gappy"]["reason"] == \
        f"gappy lacks rekey as initiator and responder for ipsec: {ADAPTER_GAP}"
    assert records["able", "gappy"]["reason"] == f"gappy lacks rekey as responder for ipsec: {ADAPTER_GAP}"
    assert "no Docker engine answers" in records["able", "able"]["reason"]


def test_a_non_utf8_vendor_toml_is_named_not_blamed_on_shard(tmp_path):
    vendor(tmp_path / "vendors", "latin", '["psk"]', "# caf")
    toml = tmp_path / "vendors" / "latin" / "vendor.toml"
    toml.write_bytes(toml.read_bytes() + b"\xe9 in Latin-1\n")
    result = run_pytest(tmp_path, "suites", "--vendors-dir", str(tmp_path / "vendors"), "--collect-only", "-q")
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip() == (f"ERROR: {toml}: (file): not UTF-8 (byte {toml.read_bytes().index(0xe9)}: "
                                     f"invalid continuation byte)")


def test_a_vendor_toml_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "vendors" / "odd" / "vendor.toml").mkdir(parents=True)
    result = run_pytest(tmp_path, "suites", "--vendors-dir", str(tmp_path / "vendors"), "--collect-only", "-q")
    assert result.returncode == 4 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip() == (f"ERROR: {tmp_path / 'vendors' / 'odd' / 'vendor.toml'}: (file): is a folder, "
                                     f"not the vendor's declaration")


def item(features=(), any_features=()) -> SimpleNamespace:
    marks = {"features": features, "any_features": any_features}
    return SimpleNamespace(get_closest_marker=lambda name: SimpleNamespace(args=marks[name]) if marks.get(name)
                           else None)


@pytest.fixture(scope="module")
def shipped():
    return load_registry(ROOT / "vendors")


def test_a_stated_gap_is_quoted_not_called_a_missing_declaration(shipped):
    pair = VendorPair("ipsec", "pfs_group_mismatch_on_rekey", shipped["libreswan"], shipped["strongswan"], IPSEC)
    reason = undeclared(item(("psk", "child_sa", "rekey", "pfs", "pfs_groups")), pair)
    assert reason.startswith("libreswan lacks pfs_groups as initiator for ipsec: Libreswan 4.10 takes one ESP DH group")
    assert "does not declare" not in reason


def test_undeclared_features_without_a_stated_reason_still_say_so(shipped):
    libreswan = shipped["libreswan"]
    pair = VendorPair("ipsec", "liveness", libreswan, shipped["strongswan"], IPSEC)
    assert undeclared(item(("psk", "child_sa", "key_export")), pair) == \
        "libreswan does not declare key_export as initiator for ipsec"
    assert undeclared(item(("psk", "childless", "dpd")), pair) == (
        f"libreswan lacks childless as initiator for ipsec: {libreswan.gap('ipsec', 'childless', 'initiator')}; "
        f"libreswan lacks dpd as initiator for ipsec: {libreswan.gap('ipsec', 'dpd', 'initiator')}")
    assert undeclared(item(("psk", "childless", "dpd")), VendorPair("ipsec", "liveness", shipped["strongswan"],
                                                                     shipped["libreswan"], IPSEC)) is None


def test_any_features_names_each_sides_reason(shipped):
    pair = VendorPair("l2tp", "hello", shipped["xl2tpd"], shipped["l2tpns"], L2TP)
    assert undeclared(item(any_features=("hello",)), pair) == (
        "neither xl2tpd as lac nor l2tpns as lns declares hello for l2tp; one side must "
        f"(xl2tpd as lac: {shipped['xl2tpd'].gap('l2tp', 'hello', 'lac')}; "
        f"l2tpns as lns: {shipped['l2tpns'].gap('l2tp', 'hello', 'lns')})")
    assert undeclared(item(any_features=("hello",)), VendorPair("l2tp", "hello", shipped["xl2tpd"],
                                                               shipped["scapy-l2tp"], L2TP)) is None


def test_an_l2tp_ipsec_stack_meets_only_another_in_every_case(shipped):
    """RFC 3193 stacks (l2tp BOTH_OR_NEITHER: ipsec) carry L2TP only inside IPsec: against a peer that does not,
    every L2TP case is ruled out before any container, in words naming both sides; between two of them none is."""
    stack, plain = shipped["xl2tpd@libreswan"], shipped["xl2tpd"]
    for a, b, role in ((stack, plain, "lac"), (plain, stack, "lns")):
        assert undeclared(item(), VendorPair("l2tp", "tunnel_setup", a, b, L2TP)) == (
            f"xl2tpd@libreswan as {role} speaks l2tp only with ipsec, and xl2tpd as "
            f"{'lns' if role == 'lac' else 'lac'} does not declare ipsec")
    assert undeclared(item(), VendorPair("l2tp", "tunnel_setup", stack, shipped["xl2tpd@strongswan"], L2TP)) is None
    assert undeclared(item(), VendorPair("l2tp", "tunnel_setup", plain, shipped["l2tpns"], L2TP)) is None
    assert undeclared(item(("ipsec",)), VendorPair("l2tp", "l2tp_over_ipsec", plain, plain, L2TP)) == \
        "xl2tpd does not declare ipsec as lac and lns for l2tp"
