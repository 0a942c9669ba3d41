"""Bad input gets one line naming the option or file and field, never a traceback."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_unknown_vendor_option():
    result = run(sys.executable, "-m", "pytest", "suites", "--vendors", "nosuch", "--collect-only", "-q")
    assert result.returncode == 4  # pytest's usage error
    assert re.search(r"--vendors: nosuch: no such vendor; known: [a-z0-9, -]*strongswan", result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_protocol_option():
    result = run(sys.executable, "-m", "pytest", "suites", "--protocols", "ipsek", "--collect-only", "-q")
    assert result.returncode == 4
    assert "protocol: ipsek: unknown protocol; known: ipsec" in result.stderr


def test_cli_unknown_vendor_is_a_usage_error():
    result = run(sys.executable, "-m", "harness.cli", "images", "build", "nosuch")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(r"overlay-interop: error: no such vendor: nosuch; known: [a-z0-9, -]*strongswan[a-z0-9, -]*", line)


def test_matrix_parametrisation_ids():
    result = run(sys.executable, "-m", "pytest", "suites", "--collect-only", "-q")
    assert "suites/ipsec/test_psk.py::test_psk_tunnel[strongswan->strongswan]" in result.stdout
    assert "suites/ipsec/test_psk.py::test_wrong_psk[strongswan->strongswan]" in result.stdout
