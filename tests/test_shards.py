"""--shard i/n splits the pair-cases the same way on every run and machine; report merge joins the shards."""
import json
import os
import subprocess
import sys

import pytest

from harness.errors import ConfigError, HarnessError
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
    assert facts == {"run": "r1+r2", "versions": {"a": "A 1.0", "b": "B 2.0"}, "host": {"tun": "yes"}, "images": {}}


def test_overlapping_shards_are_an_error(tmp_path):
    same = [CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.0, None)]
    make_run(tmp_path / "s1", "r1", same, {})
    make_run(tmp_path / "s2", "r2", same, {})
    with pytest.raises(ConfigError, match="psk_tunnel a->b: also in .* shards must not overlap"):
        merge_runs(tmp_path / "out", [tmp_path / "s1", tmp_path / "s2"])


def two_shards(tmp_path, second=None):
    make_run(tmp_path / "s1", "r1", [CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.0, None)], {})
    make_run(tmp_path / "s2", "r2", second or [CaseResult("ipsec", "wrong_psk", "b", "a", "failed", "x", 2.0, None)],
             {})
    return [tmp_path / "s1", tmp_path / "s2"]


def tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overlapping_shards_leave_nothing_behind(tmp_path):
    shards = two_shards(tmp_path, second=[CaseResult("ipsec", "psk_tunnel", "a", "b", "failed", "x", 1.0, None),
                                          CaseResult("ipsec", "aaa_first", "b", "a", "passed", "", 1.0, None)])
    before = {s.name: tree(s) for s in shards}
    with pytest.raises(ConfigError, match=r"s2/matrix.json: ipsec/psk_tunnel a->b: also in .*s1: shards must not"):
        merge_runs(tmp_path / "out", shards)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]  # no OUT, no temporary folder
    assert {s.name: tree(s) for s in shards} == before


def test_shards_with_a_file_in_the_same_pair_folder_overlap(tmp_path):
    shards = two_shards(tmp_path)
    stray = tmp_path / "s2/pairs/ipsec/psk_tunnel/a__b"
    stray.mkdir(parents=True)
    (stray / "transcript.txt").write_text("from another run")
    with pytest.raises(ConfigError, match="s2/pairs/ipsec/psk_tunnel/a__b/transcript.txt: file: another shard"):
        merge_runs(tmp_path / "out", shards)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]


@pytest.mark.parametrize("into", ["s1", "s2/merged", "s2/pairs/ipsec"])
def test_merging_into_a_shard_is_refused_and_changes_nothing(tmp_path, into):
    shards = two_shards(tmp_path)
    before = {s.name: tree(s) for s in shards}
    with pytest.raises(ConfigError, match=f"--into: {tmp_path / into}: is the shard .* or inside it"):
        merge_runs(tmp_path / into, shards)
    assert {s.name: tree(s) for s in shards} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]


def test_an_existing_out_is_refused_unless_it_is_an_empty_folder(tmp_path):
    shards = two_shards(tmp_path)
    old = tmp_path / "out"
    (old / "pairs/ipsec/stale_case/x__y").mkdir(parents=True)
    (old / "pairs/ipsec/stale_case/x__y/transcript.txt").write_text("stale")
    with pytest.raises(ConfigError, match="--into: .*out: exists and is not an empty folder"):
        merge_runs(old, shards)
    assert tree(old) == {"pairs/ipsec/stale_case/x__y/transcript.txt": b"stale"}
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        merge_runs(tmp_path / "file", shards)
    (tmp_path / "empty").mkdir()
    assert len(merge_runs(tmp_path / "empty", shards)) == 2
    assert (tmp_path / "empty/matrix.json").is_file()


def test_a_merge_that_fails_late_leaves_nothing_behind(tmp_path):
    shards = two_shards(tmp_path)

    def pages(folder):
        assert (folder / "matrix.json").is_file() and not (tmp_path / "out").exists()  # built aside, not yet OUT
        raise HarnessError("the pages failed")
    with pytest.raises(HarnessError, match="the pages failed"):
        merge_runs(tmp_path / "out", shards, finish=pages)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]


def test_a_shard_with_a_bad_run_json_is_one_line(tmp_path):
    shards = two_shards(tmp_path)
    (tmp_path / "s2/run.json").write_text('["r2"]')
    with pytest.raises(ConfigError, match="s2/run.json: top level: an object expected, found a list"):
        merge_runs(tmp_path / "out", shards)
    (tmp_path / "s2/run.json").write_text('{"versions": "6.0"}')
    with pytest.raises(ConfigError, match="s2/run.json: versions: an object expected, found text"):
        merge_runs(tmp_path / "out", shards)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]


def cli(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_report_merge_as_a_user_runs_it(tmp_path):
    shards = two_shards(tmp_path)
    result = cli("report", "merge", *shards, "--into", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2 pair-cases from 2 runs: out/matrix.html\n"
    assert {"matrix.json", "matrix.html", "run.json", "conformance/a.html", "conformance/b.html"} <= set(
        tree(tmp_path / "out"))
    [leftover] = [p.name for p in tmp_path.iterdir() if p.name not in ("s1", "s2", "out")] or [None]
    assert leftover is None


@pytest.mark.parametrize("into, message", [
    ("s1", "--into: s1: is the shard s1 or inside it; merge into a folder of its own"),
    ("s2/sub", "--into: s2/sub: is the shard s2 or inside it; merge into a folder of its own"),
    ("./s1/pairs/", "--into: s1/pairs: is the shard s1 or inside it; merge into a folder of its own"),
])
def test_report_merge_into_one_of_its_inputs_is_a_usage_error(tmp_path, into, message):
    shards = two_shards(tmp_path)
    before = {s.name: tree(s) for s in shards}
    result = cli("report", "merge", "s1", "s2", "--into", into, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line == f"overlay-interop: error: {message}"
    assert {s.name: tree(s) for s in shards} == before


def test_report_merge_of_overlapping_shards_is_a_usage_error_and_writes_nothing(tmp_path):
    two_shards(tmp_path, second=[CaseResult("ipsec", "psk_tunnel", "a", "b", "failed", "x", 1.0, None)])
    result = cli("report", "merge", "s1", "s2", "--into", "out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("overlay-interop: error: s2/matrix.json: ipsec/psk_tunnel a->b: also in s1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1", "s2"]
