"""Verdicts across runs, on hand-made reports folders: what --compare marks on the matrix page (new failure,
fixed, newly skipped, newly run), which earlier run it picks by default, and the history page of many runs (the
change highlighted at the run where it happened, every link resolving to that run's evidence)."""
import json
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from harness import history
from harness.cli import main
from harness.errors import ConfigError
from harness.report import write_pages
from harness.results import CaseResult, read_matrix
from harness.run import Run

sys.path.insert(0, str(Path(__file__).parent))
from test_report_pages import Elements  # noqa: E402


def record(case, a, b, verdict, reason="", protocol="vxlan"):
    return {"protocol": protocol, "case": case, "a": a, "b": b, "verdict": verdict, "reason": reason,
            "duration_s": 1.0, "pcap": None, "clause": "RFC 7348 5", "title": f"RFC 7348 5: {case}"}


def make_run(root: Path, name: str, run_id: str | None, records: list[dict], **facts) -> Path:
    """A run's reports folder as a run leaves it: matrix.json, run.json, and evidence in the folder of every
    pair that ran (a transcript; a skipped pair's folder is empty)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "matrix.json").write_text(json.dumps(records))
    if run_id:
        (folder / "run.json").write_text(json.dumps({"run": run_id, "versions": {}, "host": {}, **facts}))
    for r in records:
        pair = folder / "pairs" / r["protocol"] / r["case"] / f"{r['a']}__{r['b']}"
        pair.mkdir(parents=True)
        if r["verdict"] != "skipped":
            (pair / "transcript.txt").write_text(f"{name} {r['verdict']}")
    return folder


@pytest.mark.parametrize("previous, current, meaning", [
    ("passed", "failed", "new failure"), ("skipped", "broken", "new failure"), ("passed", "broken", "new failure"),
    ("failed", "passed", "fixed"), ("broken", "passed", "fixed"),
    ("passed", "skipped", "newly skipped"), ("failed", "skipped", "newly skipped"),
    ("skipped", "passed", "newly run"),
    ("failed", "broken", "changed"),
    ("passed", "passed", None), ("failed", "failed", None), (None, "failed", None),
])
def test_what_a_change_of_verdict_means(previous, current, meaning):
    assert history.change(previous, current) == meaning


def test_compare_sets_each_cells_previous_verdict(tmp_path):
    earlier = history.load(make_run(tmp_path, "a", "20261201-100000-1", [
        record("unicast", "linux", "ovs", "passed"), record("mtu", "linux", "ovs", "failed", "too big")]))
    now = [CaseResult("vxlan", "unicast", "linux", "ovs", "failed", "no echo", 1.0, None),
           CaseResult("vxlan", "mtu", "linux", "ovs", "failed", "too big", 1.0, None),
           CaseResult("vxlan", "unicast", "ovs", "linux", "passed", "", 1.0, None)]
    history.compare(now, earlier)
    assert [r.previous for r in now] == ["passed", "failed", None]
    assert [(history.cell_key(r), what) for r, what in history.changes(now)] == [
        ("vxlan/unicast/linux->ovs", "new failure")]


def test_the_default_comparison_is_the_newest_other_run_beside_this_one(tmp_path):
    reports = tmp_path / "reports"
    older = make_run(reports, "zzz-older", "20261201-100000-1", [record("unicast", "linux", "ovs", "passed")])
    newer = make_run(reports, "aaa-newer", "20261202-100000-1", [record("unicast", "linux", "ovs", "passed")])
    os.utime(newer / "matrix.json", (1, 1))  # the run id's time decides, not the file's
    # this run's folder, with the matrix.json of an earlier run into the same --reports-dir
    make_run(reports, "20261203-100000-1", "20261203-100000-1", [])
    (reports / "latest").symlink_to("zzz-older")
    (reports / "unfinished").mkdir()  # a run killed before it wrote matrix.json
    this = reports / "20261203-100000-1"
    assert history.previous_run(this) == newer
    assert history.previous_run(reports / "20261203-120000-9") == this  # a new run: its folder is still empty
    assert history.run_folders(reports) == [older, newer, this]
    assert history.previous_run(tmp_path / "elsewhere" / "run") is None  # not under reports/: nothing implied


def test_without_a_run_id_the_order_is_when_matrix_json_was_written(tmp_path):
    first = make_run(tmp_path, "b", None, [record("unicast", "linux", "ovs", "passed")])
    second = make_run(tmp_path, "a", "merged+shards", [record("unicast", "linux", "ovs", "passed")])
    os.utime(first / "matrix.json", (1000, 1000))
    os.utime(second / "matrix.json", (2000, 2000))
    assert [r.folder for r in history.ordered([history.load(second), history.load(first)])] == [first, second]
    assert history.load(first).id == "b" and history.load(second).id == "merged+shards"


def test_a_folder_without_matrix_json_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"matrix.json: \(file\): not found"):
        history.load(tmp_path)


# --- the end of a run: MatrixRecorder with --compare, run.json's images ------------------------------------------

def fake_report(nodeid, props, outcome="passed", when="call"):
    return SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, duration=0.5,
                           user_properties=[("overlay_interop", props)])


def test_a_run_records_previous_verdicts_compared_with_and_images(tmp_path):
    from harness.plugin import MatrixRecorder
    reports = tmp_path / "reports"
    before = make_run(reports, "20261201-100000-1", "20261201-100000-1", [
        record("unicast", "linux", "ovs", "passed"), record("unicast", "ovs", "linux", "failed", "no echo"),
        record("mtu", "linux", "ovs", "passed")])
    run = Run("20261202-100000-2", "o", "main", reports / "20261202-100000-2")
    recorder = MatrixRecorder(run, None, False, compared=history.load(history.previous_run(run.reports_dir)))
    linux = {"id": "sha256:" + "1" * 64, "packages": {"iproute2": "6.1.0-3", "libc6": "2.36-9"}}
    ovs = {"id": "sha256:" + "2" * 64, "packages": {"openvswitch-switch": "3.1.0-2"}}
    base = {"protocol": "vxlan", "pcap": None, "verdict": "passed", "reason": ""}
    recorder.pytest_runtest_logreport(fake_report("u1", dict(base, case="unicast", a="linux", b="ovs",
                                                              verdict="failed", reason="no echo",
                                                              images={"linux": linux, "ovs": ovs})))
    recorder.pytest_runtest_logreport(fake_report("u2", dict(base, case="unicast", a="ovs", b="linux",
                                                              images={"linux": {"id": linux["id"]},
                                                                      "ovs": {"id": ovs["id"]}})))
    recorder.pytest_runtest_logreport(fake_report("new", dict(base, case="port_default", a="linux", b="ovs")))
    allure = run.reports_dir / "allure-results"
    recorder.pytest_sessionfinish(SimpleNamespace(exitstatus=0, config=SimpleNamespace(option=SimpleNamespace(
        allure_report_dir=str(allure)))))

    previous = {(r.case, r.a, r.b): r.previous for r in read_matrix(run.reports_dir)}
    assert previous == {("unicast", "linux", "ovs"): "passed", ("unicast", "ovs", "linux"): "failed",
                        ("port_default", "linux", "ovs"): None}
    facts = json.loads((run.reports_dir / "run.json").read_text())
    assert facts["compared_with"] == {"run": "20261201-100000-1", "folder": str(before)}
    assert facts["images"] == {"linux": linux, "ovs": ovs}  # the packages, though the second cell sent none
    properties = (allure / "environment.properties").read_text().splitlines()
    assert f"image.linux={linux['id']}" in properties and f"image.ovs={ovs['id']}" in properties
    page = (run.reports_dir / "matrix.html").read_text()
    assert changes_listed(page) == [("unicast", "linux", "ovs", "new failure"), ("unicast", "ovs", "linux", "fixed")]


def changes_listed(page: str) -> list[tuple]:
    section = page[page.index('id="changes"'):]
    section = section[:section.index("compared with ")]
    return [(a["data-case"], a["data-a"], a["data-b"], a["data-change"]) for a, _ in Elements(section).all("li")]


def test_a_bad_compare_dir_is_a_usage_error_but_a_damaged_default_is_not(tmp_path):
    import subprocess
    root = Path(__file__).resolve().parent.parent
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "matrix.json").write_text('[{"protocol": "vxlan"')

    def collect(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "suites/vxlan", "--collect-only", "-q",
                               "--reports-dir", str(tmp_path / "reports" / "new"), *args],
                              cwd=root, capture_output=True, text=True, timeout=120)

    for bad, problem in ((tmp_path / "nope", "no matrix.json there"), (broken, "matrix.json")):
        result = collect("--compare", str(bad))
        assert result.returncode == 4, result.stderr  # pytest's usage error, before anything starts
        [line] = result.stderr.strip().splitlines()
        assert problem in line and str(bad) in line and "Traceback" not in result.stdout
    (tmp_path / "reports").mkdir()
    broken.rename(tmp_path / "reports" / "old")  # the default: a damaged earlier run does not stop this one
    assert collect().returncode == 0


# --- the matrix page ---------------------------------------------------------------------------------------------

def test_the_matrix_page_marks_changed_cells_and_lists_them(tmp_path):
    records = [dict(record("unicast", "linux", "ovs", "failed", "no echo"), previous="passed"),
               dict(record("unicast", "ovs", "linux", "passed"), previous="failed"),
               dict(record("mtu", "linux", "ovs", "skipped", "no vxlan"), previous="passed"),
               dict(record("mtu", "ovs", "linux", "passed"), previous="skipped"),
               dict(record("mtu", "linux", "linux", "passed"), previous="passed"),
               dict(record("mtu", "ovs", "ovs", "passed"), previous=None)]
    folder = make_run(tmp_path, "r", "20261202-100000-2", records,
                      compared_with={"run": "20261201-100000-1", "folder": "/x/reports/20261201-100000-1"})
    write_pages(folder)
    page = (folder / "matrix.html").read_text()
    assert changes_listed(page) == [("unicast", "linux", "ovs", "new failure"), ("unicast", "ovs", "linux", "fixed"),
                                    ("mtu", "linux", "ovs", "newly skipped"), ("mtu", "ovs", "linux", "newly run")]
    assert "4 changed since run 20261201-100000-1" in page
    marked = {(c["data-case"], c["data-a"], c["data-b"]): (c.get("data-change"), "changed" in c["class"].split())
              for c, _ in Elements(page).all("td") if "data-verdict" in c}
    assert marked == {("unicast", "linux", "ovs"): ("new failure", True), ("unicast", "ovs", "linux"): ("fixed", True),
                      ("mtu", "linux", "ovs"): ("newly skipped", True), ("mtu", "ovs", "linux"): ("newly run", True),
                      ("mtu", "linux", "linux"): (None, False), ("mtu", "ovs", "ovs"): (None, False)}


def test_a_run_compared_with_nothing_has_no_changes_section(tmp_path):
    folder = make_run(tmp_path, "r", "20261202-100000-2", [record("unicast", "linux", "ovs", "passed")])
    write_pages(folder)
    assert 'id="changes"' not in (folder / "matrix.html").read_text()


def test_the_matrix_page_shows_what_each_vendor_ran_as(tmp_path):
    image = "sha256:0123456789abcdef" + "0" * 48
    folder = make_run(tmp_path, "r", "20261202-100000-2", [record("unicast", "linux", "ovs", "passed")],
                      versions={"linux": "Linux 6.1.0", "ovs": "ovs-vswitchd 3.1.0"},
                      images={"linux": {"id": image, "packages": {"iproute2": "6.1.0-3", "libc6": "2.36-9"}}})
    write_pages(folder)
    page = (folder / "matrix.html").read_text()
    tested = page[page.index('id="tested"'):]
    tested = tested[:tested.index("</div>")]
    rows = {a["data-vendor"]: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
            for a, text in Elements(tested).all("tr") if "data-vendor" in a}
    linux = tested[tested.index('data-vendor="linux"'):tested.index('data-vendor="ovs"')]
    assert "Linux 6.1.0" in linux and "<code>0123456789ab</code>" in linux and image not in page
    assert "<details><summary>2 packages</summary>" in linux
    assert "iproute2 <span class=\"dim\">6.1.0-3</span>" in linux and "libc6" in linux
    assert set(rows) == {"linux", "ovs"} and "ovs-vswitchd 3.1.0" in tested
    assert "<details>" not in tested[tested.index('data-vendor="ovs"'):]  # no packages recorded: no list


# --- the history page --------------------------------------------------------------------------------------------

@pytest.fixture
def three_runs(tmp_path) -> list[Path]:
    """Three runs under reports/: unicast linux->ovs passes, then fails (run 2) and still fails (run 3);
    mtu linux->ovs skips throughout; unicast ovs->linux is in runs 1 and 3 only, failing in 1 and passing in 3."""
    reports = tmp_path / "reports"
    return [
        make_run(reports, "20261201-100000-1", "20261201-100000-1", [
            record("unicast", "linux", "ovs", "passed"), record("mtu", "linux", "ovs", "skipped", "no vxlan"),
            record("unicast", "ovs", "linux", "failed", "no echo")]),
        make_run(reports, "20261202-100000-2", "20261202-100000-2", [
            record("unicast", "linux", "ovs", "failed", "no echo <b>"),
            record("mtu", "linux", "ovs", "skipped", "no vxlan")]),
        make_run(reports, "20261203-100000-3", "20261203-100000-3", [
            record("unicast", "linux", "ovs", "failed", "no echo"), record("mtu", "linux", "ovs", "skipped", "no vxlan"),
            record("unicast", "ovs", "linux", "passed")]),
    ]


def history_rows(page: Path) -> dict[str, list[tuple]]:
    """cell -> [(run, verdict, change, href)] per run column, in page order."""
    parser = Elements(page.read_text())
    rows, current = {}, None
    for index, (tag, attrs, _) in enumerate(parser.found):
        if tag == "tr" and "data-cell" in attrs:
            current = rows.setdefault(attrs["data-cell"], [])
        elif tag == "td" and current is not None:
            following = parser.found[index + 1] if index + 1 < len(parser.found) else ("", {}, "")
            href = following[1].get("href") if following[0] == "a" else None
            current.append((attrs["data-run"], attrs.get("data-verdict"), attrs.get("data-change"), href,
                            "changed" in attrs.get("class", "").split()))
    return rows


def test_the_history_page_highlights_the_run_where_a_verdict_changed(three_runs, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "history.html"
    # given newest first: the page orders by run id, oldest first
    assert main(["history", *map(str, reversed(three_runs)), "--out", str(out)]) == 0
    assert "3 runs, 3 cells, 2 changed verdict" in capsys.readouterr().out
    rows = history_rows(out)
    ids = ["20261201-100000-1", "20261202-100000-2", "20261203-100000-3"]
    unicast = rows["vxlan/unicast/linux->ovs"]
    assert [(run, verdict, change, marked) for run, verdict, change, _, marked in unicast] == [
        (ids[0], "passed", None, False), (ids[1], "failed", "new failure", True), (ids[2], "failed", None, False)]
    back = rows["vxlan/unicast/ovs->linux"]  # absent in run 2: run 3 is compared with run 1
    assert [(run, verdict, change) for run, verdict, change, _, _ in back] == [
        (ids[0], "failed", None), (ids[1], None, None), (ids[2], "passed", "fixed")]
    assert [change for _, _, change, _, _ in rows["vxlan/mtu/linux->ovs"]] == [None, None, None]
    html = out.read_text()
    # changed cells first, the unchanged one folded below them
    assert html.index("vxlan/unicast/linux-&gt;ovs") < html.index('<details class="unchanged"') < \
        html.index("vxlan/mtu/linux-&gt;ovs")
    assert "no echo &lt;b&gt;" in html and "<script" not in html


def test_every_history_link_resolves_to_that_runs_evidence(three_runs, tmp_path):
    out = tmp_path / "pages" / "deep" / "history.html"
    assert main(["history", *map(str, three_runs), "--out", str(out)]) == 0
    rows = history_rows(out)
    for run_folder, (run, verdict, _, href, _) in zip(three_runs, rows["vxlan/unicast/linux->ovs"]):
        target = (out.parent / unquote(href)).resolve()
        assert target == run_folder / "pairs/vxlan/unicast/linux__ovs/transcript.txt"
        assert target.read_text() == f"{run_folder.name} {verdict}"  # that run's own evidence
    assert all(href is None for *_, href, _ in rows["vxlan/mtu/linux->ovs"])  # skipped: no evidence, no link
    for attrs, _ in Elements(out.read_text()).all("a"):
        assert (out.parent / unquote(attrs["href"])).is_file(), attrs["href"]


def test_history_defaults_to_every_run_under_reports(three_runs, monkeypatch, capsys):
    import harness.cli
    root = three_runs[0].parent.parent
    monkeypatch.setattr(harness.cli, "PROJECT_ROOT", root)
    (root / "reports" / "latest").symlink_to(three_runs[-1].name)
    assert main(["history"]) == 0
    page = root / "reports" / "history.html"
    assert [run for run, *_ in history_rows(page)["vxlan/unicast/linux->ovs"]] == [
        "20261201-100000-1", "20261202-100000-2", "20261203-100000-3"]  # latest is not a fourth run


def test_history_bad_input_is_one_line_and_exit_2(three_runs, tmp_path, capsys):
    (three_runs[1] / "matrix.json").write_text('[{"protocol": ')  # cut short
    cases = [([str(three_runs[0]), str(three_runs[1])], str(three_runs[1] / "matrix.json")),
             ([str(tmp_path)], str(tmp_path / "matrix.json")),
             ([str(three_runs[0]), "--out", str(tmp_path)], "--out"),
             ([str(three_runs[0]), "--out", str(three_runs[0] / "matrix.json" / "history.html")], "--out")]
    for argv, named in cases:
        capsys.readouterr()
        assert main(["history", *argv]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("overlay-interop: error: ") and named in line


def test_a_pair_lists_its_images_packages_once_even_when_both_roles_are_one_vendor():
    from harness.lab import ExecResult
    from harness.plugin import PairLab
    asked = []

    class Node:
        name = "vtep"
        container = SimpleNamespace(image=SimpleNamespace(id="sha256:" + "7" * 64))

        def exec(self, argv, **kwargs):
            asked.append(argv)
            return ExecResult(0, "iproute2\t6.1.0-3\nlibc6\t2.36-9\ndpkg-query: a warning without a tab\n")

    linux = SimpleNamespace(name="linux", supplied_image=None)
    plab = PairLab(None, SimpleNamespace(vendor=lambda role: linux), Path("."), None,
                   nodes={"vtep1": Node(), "vtep2": Node()})
    plab.record_version("vtep1", lambda: "Linux 6.1.0\n")
    plab.record_version("vtep2", lambda: "Linux 6.1.0\n")
    assert plab.image_facts == {"linux": {"id": Node.container.image.id,
                                          "packages": {"iproute2": "6.1.0-3", "libc6": "2.36-9"}}}
    assert plab.versions == {"linux": "Linux 6.1.0"}
    assert asked == [["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"]]  # once per image
