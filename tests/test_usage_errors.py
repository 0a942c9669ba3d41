"""Bad input gets one line naming the option or file and field, never a traceback."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_unknown_vendor_option():
    result = run(sys.executable, "-m", "pytest", "suites", "--vendors", "nosuch", "--collect-only", "-q")
    assert result.returncode == 4  # pytest's usage error
    assert re.search(r"--vendors: nosuch: no such vendor; known: [a-z0-9@., -]*strongswan", result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_protocol_option():
    result = run(sys.executable, "-m", "pytest", "suites", "--protocols", "ipsek", "--collect-only", "-q")
    assert result.returncode == 4
    # the known protocols listed, whatever sorts first (evpn now does)
    assert re.search(r"protocol: ipsek: unknown protocol; known: [a-z, ]*\bipsec\b", result.stderr), result.stderr


def test_cli_unknown_vendor_is_a_usage_error():
    result = run(sys.executable, "-m", "harness.cli", "images", "build", "nosuch")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(r"overlay-interop: error: no such vendor: nosuch; known: [a-z0-9@., -]*strongswan[a-z0-9@., -]*", line)


def test_matrix_parametrisation_ids():
    result = run(sys.executable, "-m", "pytest", "suites", "--collect-only", "-q")
    assert "suites/ipsec/test_psk.py::test_psk_tunnel[strongswan->strongswan]" in result.stdout
    assert "suites/ipsec/test_psk.py::test_wrong_psk[strongswan->strongswan]" in result.stdout


def cli(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_run_help_lists_what_users_need_and_the_exit_codes():
    result = cli("run", "--help")
    assert result.returncode == 0
    for option in ("--vendors", "--protocols", "--shard", "-k EXPR", "-n N", "--keep-lab", "--expect FILE|none",
                   "--strict", "--reruns N", "--compare DIR|none", "--reports-dir"):
        assert f"  {option}" in result.stdout, option
    assert "Every other argument goes to pytest" in result.stdout
    codes = result.stdout.split("exit status:")[1]
    assert [line.split()[0] for line in codes.splitlines() if line[:6].strip().isdigit()] == ["0", "1", "2", "3", "130"]


@pytest.mark.parametrize("argv", [["--vendors", ""], ["--vendors", " , "], ["--protocols", ","],
                                  ["--reruns", "two"], ["--reruns", "-1"]])
def test_run_with_an_option_that_names_nothing_is_a_usage_error(argv, tmp_path):
    result = cli("run", *argv, "--reports-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"overlay-interop run: error: argument {argv[0]}: {argv[1]!r} ")
    assert not (tmp_path / "r").exists()  # stopped before pytest started


@pytest.mark.parametrize("option", ["--vendors", "--protocols"])
def test_the_plugin_refuses_an_option_that_names_nothing(option):
    result = run(sys.executable, "-m", "pytest", "suites", option, "", "--collect-only", "-q")
    assert result.returncode == 4
    assert f"{option}: '': names none; give a comma-separated list, or leave {option} out for all" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_run_that_selects_no_cell_is_a_usage_error(tmp_path):
    result = cli("run", "--vendors", "linux", "-k", "no_such_case", "-n", "0", "--reports-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "overlay-interop: error: no cell matched the selection (--vendors, --protocols, --shard, -k, paths)"]


def test_run_with_a_bad_pytest_option_value_is_a_usage_error(tmp_path):
    result = cli("run", "--vendors", "nosuch", "-n", "0", "--reports-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ERROR: --vendors: nosuch: no such vendor")  # pytest's own line, passed on


def test_other_subcommands_take_no_stray_arguments():
    result = cli("clean", "--vendors", "x")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "overlay-interop: error: unrecognized arguments: --vendors x (see overlay-interop --help)"]


def test_an_option_is_never_taken_for_a_longer_one_it_begins(tmp_path):
    """`images build --vendors frr` once read as --vendors-dir frr ("not a folder")."""
    result = subprocess.run([sys.executable, "-m", "harness.cli", "images", "build", "--vendors", "frr"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unrecognized arguments: --vendors" in result.stderr and "not a folder" not in result.stderr


@pytest.mark.parametrize("workers", ["0", "2"])
def test_run_with_a_k_expression_pytest_cannot_read_is_one_usage_line_with_or_without_workers(tmp_path, workers):
    """Under xdist each worker would fail on it alone and the controller end in an INTERNALERROR traceback."""
    result = cli("run", "--vendors", "xl2tpd", "-k", "overlay_tax and xl2tpd->xl2tpd@libreswan", "-n", workers,
                 "--reports-dir", str(tmp_path / "r"))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ERROR: -k 'overlay_tax and xl2tpd->xl2tpd@libreswan': ") and "INTERNALERROR" not in \
        result.stdout + result.stderr
