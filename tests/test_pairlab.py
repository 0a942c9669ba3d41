"""The harness's own misbehaving peer, one model in every protocol (harness.pairlab): a case marked `probes` has a
prober, which misbehaves on purpose, and a judged side; the built-in probe plays the prober where the protocol
declares PROBE_ROLE (IPsec, VXLAN), vendors declaring the feature `probes` where it does not (L2TP). The cells and
their skip reasons are the ones the matrix always had."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness import protocols
from harness.errors import ConfigError
from harness.pairlab import PairLab, VendorPair, cells
from harness.plugin import undeclared
from harness.vendor import HARNESS_PEER, load_registry, narrow, ordered_pairs
from support import ROOT


@pytest.fixture(scope="module")
def shipped():
    return narrow(load_registry(ROOT / "vendors"), None)  # as a run without --vendors sees them


def probing(features=()) -> SimpleNamespace:
    """A test item marked `probes` (and `features`, if given), as undeclared() sees it."""
    marks = {"probes": (), "features": tuple(features)} if features else {"probes": ()}
    return SimpleNamespace(get_closest_marker=lambda name: SimpleNamespace(args=marks[name]) if name in marks
                           else None)


def test_the_built_in_probe_plays_the_protocols_probe_role_against_each_vendor(shipped):
    ipsec = cells("ipsec", "truncated_request", shipped, probes=True)
    # a vendor's middle version meets its own vendor alone (--versions default): no probe cell
    assert [p.id for p in ipsec] == ["probe->libreswan", "probe->libreswan@5.2", "probe->strongswan",
                                     "probe->strongswan@6.1"]
    assert all(p.a is HARNESS_PEER and (p.prober, p.judged, p.probe_side) == ("initiator", "responder", "a")
               for p in ipsec)
    vxlan = cells("vxlan", "reserved_flags", shipped, probes=True)
    assert [p.id for p in vxlan] == ["probe->linux", "probe->ovs", "probe->ovs@3.5", "probe->scapy-vtep"]
    assert {(p.prober, p.judged, p.probe_side) for p in vxlan} == {("vtep1", "vtep2", "a")}
    assert not any(p.reference for p in ipsec) and [p.id for p in vxlan if p.reference] == ["probe->scapy-vtep"]


def test_vendors_declaring_probes_play_the_prober_wherever_they_are_paired(shipped):
    l2tp = cells("l2tp", "result_code_8", shipped, probes=True)
    assert [p.id for p in l2tp] == [f"{a.name}->{b.name}" for a, b in ordered_pairs(shipped, "l2tp")]
    probers = {p.id: (p.prober, p.judged) for p in l2tp}
    assert probers["scapy-l2tp->xl2tpd"] == ("lac", "lns")
    assert probers["xl2tpd->scapy-l2tp"] == ("lns", "lac")
    assert probers["scapy-l2tp->scapy-l2tp"] == ("lac", "lns")  # both can: the first role misbehaves
    assert probers["xl2tpd->l2tpns"] == (None, None)
    assert not any(p.probe_side for p in l2tp)


def test_a_case_without_the_mark_has_no_prober(shipped):
    for protocol in protocols.known():
        plain = cells(protocol, "x", shipped, versions="all")
        assert [p.id for p in plain] == [f"{a.name}->{b.name}" for a, b in ordered_pairs(shipped, protocol)]
        assert not any(p.prober or p.judged or p.probe_side for p in plain)


def test_a_pair_where_neither_side_can_misbehave_skips_saying_so(shipped):
    by_id = {p.id: p for p in cells("l2tp", "result_code_8", shipped, probes=True)}
    assert undeclared(probing(), by_id["xl2tpd->xl2tpd"]) == \
        "neither xl2tpd as lac nor xl2tpd as lns declares probes for l2tp; one side must"
    assert undeclared(probing(), by_id["scapy-l2tp->xl2tpd"]) is None
    assert undeclared(probing(), by_id["xl2tpd->scapy-l2tp"]) is None
    probe = {p.id: p for p in cells("ipsec", "truncated_request", shipped, probes=True)}
    assert undeclared(probing(["psk"]), probe["probe->strongswan"]) is None


def test_a_protocol_with_no_prober_refuses_the_mark(shipped, monkeypatch):
    monkeypatch.delattr(protocols.load("vxlan"), "PROBE_ROLE")
    with pytest.raises(ConfigError, match="vxlan has no prober") as caught:
        cells("vxlan", "reserved_flags", shipped, probes=True)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("change, problem", [
    ({"PROBE_ROLE": "lns"}, r"'lns' is not one of \['initiator', 'responder'\]"),
    ({"FEATURES": {"probes": "misbehaves"}}, "not both"),
])
def test_the_probe_role_is_a_role_and_never_beside_the_feature(monkeypatch, change, problem):
    package = protocols.load("ipsec")
    for name, value in change.items():
        monkeypatch.setattr(package, name, value)
    with pytest.raises(ConfigError, match=problem):
        protocols.probe_role("ipsec")


def test_only_the_built_in_probes_role_has_no_image(shipped, tmp_path):
    probe = cells("ipsec", "truncated_request", shipped, probes=True)[0]
    with pytest.raises(ConfigError, match="built-in probe, which has no image"):
        PairLab(None, probe, tmp_path, None).node("initiator")
    ordinary = VendorPair("ipsec", "psk_tunnel", shipped["strongswan"], shipped["strongswan"],
                          protocols.roles("ipsec"))
    with pytest.raises(ConfigError, match="this cell has no built-in probe"):
        PairLab(None, ordinary, tmp_path, None).probe_node(None)
    vendor_prober = cells("l2tp", "result_code_8", shipped, probes=True)
    with pytest.raises(ConfigError, match="this cell has no built-in probe"):
        PairLab(None, next(p for p in vendor_prober if p.prober), tmp_path, None).probe_node(None)


SUITE = '''
import pytest

pytestmark = [pytest.mark.protocol("ipsec"), pytest.mark.probes]


def test_probed(ipsec_probe):
    """RFC 7296 2.21.1: a probe."""
'''


def test_the_record_says_which_side_the_built_in_probe_played(tmp_path):
    """matrix.json carries it (`probe`), so the pages need no vendor registry to know the probe is no vendor."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_probed.py").write_text(SUITE)
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")  # the cell breaks: no engine
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                    str(tmp_path / "suite"), "--vendors-dir", str(ROOT / "vendors"), "--vendors", "strongswan@5.9",
                    "--expect", "none", "--reports-dir", str(tmp_path / "out")],
                   cwd=ROOT, env=env, capture_output=True, timeout=120)
    records = json.loads((tmp_path / "out" / "matrix.json").read_text())
    assert [(r["a"], r["b"], r["probe"]) for r in records] == [("probe", "strongswan", "a")]


def test_a_cell_with_a_microvm_waits_longer_but_within_a_bound(tmp_path):
    from harness.vm import TIME_SCALE
    lab = PairLab(None, None, tmp_path, None)
    lab.vm = set()
    assert lab.patience(30) == 30 and lab.patience(30, most=120) == 30  # on the host: as asked
    lab.vm = {"vtep1"}
    assert lab.patience(30) == 30 * TIME_SCALE  # the daemons' own timers stretch with the emulation
    assert lab.patience(30, most=120) == 120  # a setup of many small commands: longer, not ten times as long
    assert lab.patience(300, most=120) == 300  # never shorter than on the host

