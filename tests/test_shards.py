"""--shard i/n splits the pair-cases the same way on every run and machine; report merge joins the shards."""
import json
import subprocess
import sys

import pytest

from harness.errors import HarnessError
from harness.results import CaseResult, in_shard, merge_runs, parse_shard, write_matrix
from support import ROOT


def test_every_pair_case_is_in_exactly_one_shard():
    keys = [f"ipsec/case{c}/{a}->{b}" for c in range(40) for a in "xyz" for b in "xyz"]
    for count in (1, 2, 3, 7):
        owners = [[i for i in range(1, count + 1) if in_shard(key, (i, count))] for key in keys]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(o == [i] for o in owners) for i in range(1, count + 1)]
        assert min(sizes) > 0.5 * len(keys) / count  # a hash spreads them, no shard is left near empty


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_a_bad_shard_is_rejected(text):
    with pytest.raises(ValueError, match="is not i/n"):
        parse_shard(text)
    assert parse_shard("2/3") == (2, 3)


def collected(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120).stdout
    return {line for line in out.splitlines() if "::" in line}


def test_the_shards_of_the_real_suites_are_disjoint_and_cover_them():
    shards = [collected("--shard", f"{i}/3") for i in (1, 2, 3)]
    assert set.union(*shards) == collected() and sum(map(len, shards)) == len(collected())


def make_run(folder, run_id, results, versions):
    folder.mkdir()
    write_matrix(folder, results)
    (folder / "run.json").write_text(json.dumps({"run": run_id, "versions": versions, "host": {"tun": "yes"}}))
    for r in results:
        pair = folder / "pairs" / r.protocol / r.case / f"{r.a}__{r.b}"
        pair.mkdir(parents=True)
        (pair / "transcript.txt").write_text(r.case)
    (folder / "allure-results").mkdir()
    (folder / "allure-results" / f"{run_id}-result.json").write_text("{}")


def test_merge_joins_matrices_files_and_facts(tmp_path):
    one = [CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.0, None)]
    two = [CaseResult("ipsec", "wrong_psk", "b", "a", "failed", "no AUTH_FAILED", 2.0, None)]
    make_run(tmp_path / "s1", "r1", one, {"a": "A 1.0"})
    make_run(tmp_path / "s2", "r2", two, {"b": "B 2.0"})
    merged = merge_runs(tmp_path / "out", [tmp_path / "s1", tmp_path / "s2"])
    assert sorted(r.case for r in merged) == ["psk_tunnel", "wrong_psk"]
    assert [r["case"] for r in json.loads((tmp_path / "out" / "matrix.json").read_text())] == ["psk_tunnel", "wrong_psk"]
    assert (tmp_path / "out/pairs/ipsec/wrong_psk/b__a/transcript.txt").read_text() == "wrong_psk"
    assert {p.name for p in (tmp_path / "out/allure-results").iterdir()} >= {"r1-result.json", "r2-result.json",
                                                                               "environment.properties"}
    facts = json.loads((tmp_path / "out" / "run.json").read_text())
    assert facts == {"run": "r1+r2", "versions": {"a": "A 1.0", "b": "B 2.0"}, "host": {"tun": "yes"}}


def test_overlapping_shards_are_an_error(tmp_path):
    same = [CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.0, None)]
    make_run(tmp_path / "s1", "r1", same, {})
    make_run(tmp_path / "s2", "r2", same, {})
    with pytest.raises(HarnessError, match="psk_tunnel a->b is in both .* shards must not overlap"):
        merge_runs(tmp_path / "out", [tmp_path / "s1", tmp_path / "s2"])
