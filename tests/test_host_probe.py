"""The host capability probe: declared where the capability is needed (protocol packages, vendors, the core's
`tun`), run as one script in one container, its answers parsed into skip reasons."""
import shutil
import subprocess
import sys

import pytest

from support import ROOT

from harness import protocols
from harness.errors import ConfigError, HarnessError
from harness.host import Capability, HostCapabilities, declared, declarations, parse_probe, probe_script
from harness.vendor import load_registry

THIS_HOST = """kernel-esp no Error: Requested type not found.
kernel-l2tp no RTNETLINK answers: No such file or directory
ppp no /proc/devices has no ppp (ppp_generic not loaded)
openvswitch no RTNETLINK answers: No such file or directory
tun yes
vxlan yes
geneve no Error: Unknown device type.
"""


@pytest.fixture(scope="module")
def shipped():
    return declared(load_registry(ROOT / "vendors").values())


def test_each_capability_is_declared_by_what_needs_it(shipped):
    assert {name: c.source for name, c in shipped.items()} == {
        "kernel-esp": "harness.protocols.ipsec", "kernel-l2tp": "harness.protocols.l2tp",
        "ppp": "harness.protocols.l2tp", "vxlan": "harness.protocols.vxlan", "geneve": "harness.protocols.vxlan",
        "openvswitch": str(ROOT / "vendors" / "ovs" / "vendor.toml"), "tun": "harness.host"}
    assert shipped["kernel-esp"].meaning == "ESP in the kernel's XFRM"


def test_probe_output_becomes_capabilities_with_details(shipped):
    caps = parse_probe(THIS_HOST, shipped)
    assert caps.has("tun") and caps.has("vxlan")
    assert not caps.has("kernel-esp")
    assert caps.missing("tun", "kernel-esp", "ppp") == ["kernel-esp", "ppp"]
    assert caps.reason("kernel-esp") == "host lacks ESP in the kernel's XFRM (Error: Requested type not found.)"
    assert caps.reason("openvswitch") == "host lacks the openvswitch kernel datapath (RTNETLINK answers: No such " \
                                         "file or directory)"


def test_requires_skips_with_every_missing_reason(shipped):
    caps = parse_probe(THIS_HOST, shipped)
    caps.requires("tun", "vxlan")  # present: no skip
    with pytest.raises(pytest.skip.Exception, match=r"host lacks ESP .*; host lacks PPP"):
        caps.requires("kernel-esp", "ppp")


def test_an_incomplete_probe_is_an_error_not_a_guess(shipped):
    with pytest.raises(HarnessError, match="no answer for"):
        parse_probe("tun yes\n", shipped)
    with pytest.raises(HarnessError, match=r"the host probe of tun \(declared by harness.host\) printed 'maybe'"):
        parse_probe(THIS_HOST.replace("tun yes", "tun maybe"), shipped)


def test_unknown_capability_names_are_rejected(shipped):
    with pytest.raises(ConfigError, match="unknown host capability"):
        parse_probe(THIS_HOST, shipped).has("kernel-esb")
    assert len(shipped) == 7


def fake(**probes: str) -> dict[str, Capability]:
    return {name.replace("_", "-"): Capability(name.replace("_", "-"), f"the {name}", probe, "test")
            for name, probe in probes.items()}


@pytest.mark.skipif(not shutil.which("timeout"), reason="needs coreutils' timeout, as the tools image has")
def test_the_script_runs_every_snippet_on_its_own(monkeypatch):
    """The script the probe container runs, run here by sh: each snippet's first line, `succeeds` as the helper,
    quotes intact, a snippet that exits or hangs spoiling only its own answer."""
    monkeypatch.setattr("harness.host.PROBE_TIMEOUT_S", 1)
    capabilities = fake(plain="echo yes", lacking="echo 'no it isn'\"'\"'t here'; echo second line",
                        works="succeeds true", fails="succeeds sh -c 'echo \"what it said\"; exit 3'",
                        exits="exit 7", hangs="sleep 5; echo yes", after="echo yes")
    out = subprocess.run(["sh", "-c", probe_script(capabilities)], capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines() == ["plain yes", "lacking no it isn't here", "works yes", "fails no what it said",
                                       "exits ", "hangs ", "after yes"]
    with pytest.raises(HarnessError, match=r"the host probe of exits \(declared by test\) printed ''.*hangs"):
        parse_probe(out.stdout, capabilities)
    ok = {n: c for n, c in capabilities.items() if n not in ("exits", "hangs")}
    caps = parse_probe(subprocess.run(["sh", "-c", probe_script(ok)], capture_output=True, text=True).stdout, ok)
    assert [n for n in ok if caps.has(n)] == ["plain", "works", "after"]
    assert caps.reason("fails") == "host lacks the fails (what it said)"


@pytest.mark.parametrize("table, field, problem", [
    ({"Kernel_ESP": {"meaning": "x", "probe": "echo yes"}}, "capabilities.Kernel_ESP", "lower case"),
    ({"x": "echo yes"}, "capabilities.x", "must be a table"),
    ({"x": {"meaning": "x", "probe": "echo yes", "prob": "y"}}, "capabilities.x.prob", "unknown key"),
    ({"x": {"probe": "echo yes"}}, "capabilities.x.meaning", "one line"),
    ({"x": {"meaning": "two\nlines", "probe": "echo yes"}}, "capabilities.x.meaning", "one line"),
    ({"x": {"meaning": "x", "probe": " "}}, "capabilities.x.probe", "shell snippet"),
])
def test_a_bad_declaration_names_the_field(table, field, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        declarations(table, "v/vendor.toml", "capabilities.")
    assert (caught.value.where, caught.value.field) == ("v/vendor.toml", field)


def test_every_protocol_declaration_is_sound():
    for name in protocols.known():
        declarations(protocols.host_capabilities(name), f"harness.protocols.{name}", "HOST_CAPABILITIES.")


def test_a_capability_is_declared_once(monkeypatch):
    monkeypatch.setattr(protocols.load("l2tp"), "HOST_CAPABILITIES",
                        {"kernel-esp": {"meaning": "ESP again", "probe": "echo yes"}})
    with pytest.raises(ConfigError, match="already declared by harness.protocols.ipsec"):
        declared()


def test_a_hand_made_host_knows_the_names_it_was_given():
    host = HostCapabilities({"kernel-esp": False}, {})
    assert not host.has("kernel-esp") and host.reason("kernel-esp") == "host lacks kernel-esp"
    with pytest.raises(ConfigError):
        host.has("tun")


def test_expectations_may_name_any_declared_capability_whatever_vendors_run(tmp_path):
    """openvswitch is declared by the ovs vendor folder: an expectations file may name it on a run of other vendors,
    and a name nobody declares is still refused, as one line."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")

    def configure(host: str) -> subprocess.CompletedProcess:
        (tmp_path / "expect.toml").write_text(f"[[cell]]\nmatch = 'vxlan/*'\nverdict = 'skipped'\nhost = ['{host}']\n")
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                               "--collect-only", "-q", str(tmp_path / "suite"), "--vendors-dir", str(ROOT / "vendors"),
                               "--vendors", "strongswan", "--expect", str(tmp_path / "expect.toml"),
                               "--reports-dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert configure("!openvswitch").returncode == 0
    refused = configure("!openvswitchh")
    assert refused.returncode == 4 and "unknown host capability 'openvswitchh'" in refused.stderr
