"""A sample of the matrix's microVM cells, as `./dev run` runs them (--kernel auto), judged against the shipped
expectations: Libreswan, whose CHILD SAs need the kernel's ESP, against strongSwan both ways and against itself
(IKEv2, and IKEv1 Aggressive Mode), and the two L2TP/IPsec stacks (RFC 3193: transport-mode ESP is the kernel's).
The default-matrix test runs --kernel host (tests/test_default_matrix.py says why); this keeps the VM path of a
whole cell (placement, the VM's time scale, ESP on the VM's kernel, the capture beside it) in CI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

pytestmark = pytest.mark.docker

LIBRESWAN_PAIRS = {"strongswan->libreswan", "libreswan->strongswan", "libreswan->libreswan"}


def run_cells(tmp_path: Path, vendors: str, keyword: str, cells: set[str]) -> dict[str, dict]:
    """Run the cells `keyword` selects between `vendors` as a user would (--kernel auto, -n 2); every one of `cells`
    must pass, every cell be as expected (another may be a declared skip), and the run exit 0. Returns the records
    of `cells`."""
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--kernel", "auto", "--versions", "none",
                             "--vendors", vendors, "--reruns", "1", "--reports-dir", str(tmp_path), "-k", keyword,
                             "-n", "2"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    output = result.stdout[-3000:] + result.stderr[-2000:]
    records = {f"{r['a']}->{r['b']}": r for r in json.loads((tmp_path / "matrix.json").read_text())}
    assert set(records) >= cells, output
    for cell, r in records.items():
        assert r["outcome"] == "expected", f"{cell}: {r['verdict']} {r['reason']}"
        assert r["verdict"] == "passed" or cell not in cells, f"{cell}: {r['verdict']} {r['reason']}"
    assert result.returncode == 0, output
    return {cell: r for cell, r in records.items() if cell in cells}


def test_docker_libreswan_runs_its_child_sas_in_microvms_and_every_cell_is_as_expected(tmp_path):
    records = run_cells(tmp_path, "libreswan,strongswan", "test_psk_tunnel and libreswan", LIBRESWAN_PAIRS)
    for cell, r in records.items():
        assert "libreswan" in r["vm"], f"{cell}: libreswan did not run in a microVM: {r['vm']}"


def test_docker_l2tp_over_ipsec_between_strongswan_and_libreswan_stacks_is_judged_inside_the_esp(tmp_path):
    """RFC 3193 in microVMs: every ordered pair of the two L2TP/IPsec stacks passes l2tp_over_ipsec, and each pair
    folder holds the capture with its ESP opened and the kernels' keys."""
    stacks = ("xl2tpd@strongswan", "xl2tpd@libreswan")
    run_cells(tmp_path, ",".join(stacks), "test_l2tp_over_ipsec", {f"{a}->{b}" for a in stacks for b in stacks})
    for folder in (tmp_path / "pairs" / "l2tp" / "l2tp_over_ipsec").iterdir():
        assert (folder / "capture-decrypted.pcap").stat().st_size > 0
        assert "AES-CBC" in (folder / "keys" / "esp_sa").read_text()
        assert "RFC 3193" in (folder / "transcript.txt").read_text()


def test_docker_ikev1_with_libreswan_in_microvms_decrypts_quick_mode_and_pings_through(tmp_path):
    """IKEv1 Aggressive Mode and Quick Mode with Libreswan on the kernel's ESP: pluto's 4-byte-aligned messages read
    as undamaged (their KE gives the phase 1 IVs, so Quick Mode opens with strongSwan's keys), and the pings pass
    once the responder reports its IPsec SA (IKEv1's initiator is done before the responder is)."""
    run_cells(tmp_path, "libreswan,strongswan", "test_aggressive_mode_psk and libreswan", LIBRESWAN_PAIRS)


def test_docker_libreswan_rekeys_on_its_timers_in_microvms(tmp_path):
    """The rekey timers stretched for a microVM, and the case's wait with them: the CHILD and IKE SA rekeys of
    Libreswan and strongSwan both ways (libreswan->libreswan is a declared skip: nobody's keys open its exchanges)."""
    run_cells(tmp_path, "libreswan,strongswan", "test_rekey and libreswan and not collision",
              {"strongswan->libreswan", "libreswan->strongswan"})
