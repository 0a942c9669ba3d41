"""`overlay-interop run` as a front for pytest: the options it passes on, one run id for the folder and the
files in it, and the exit status a CI gates on."""
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from harness import cli
from harness.run import RUN_ID
from support import ROOT


class FakePytest:
    """Stands in for the pytest process: records its command line, exits with `code`."""
    calls: list[list[str]] = []

    def __init__(self, code: int):
        self.code = code

    def __call__(self, command, cwd):
        self.calls.append(command)
        return self

    def wait(self):
        return self.code


def run_cli(monkeypatch, *argv, code=0) -> tuple[int, list[str]]:
    fake = FakePytest(code)
    fake.calls = []
    monkeypatch.setattr(cli.subprocess, "Popen", fake)
    status = cli.main(["run", *argv])
    [command] = fake.calls
    return status, command


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_folder_and_the_run_inside_it_have_one_id(monkeypatch):
    _, command = run_cli(monkeypatch)
    run_id = option(command, "--run-id")
    assert RUN_ID.fullmatch(run_id)
    reports = option(command, "--reports-dir")
    assert reports == str(ROOT / "reports" / run_id)
    assert f"--junitxml={ROOT / 'reports' / run_id / 'junit.xml'}" in command


def test_the_documented_options_reach_pytest_as_given(monkeypatch, tmp_path):
    _, command = run_cli(monkeypatch, "--vendors", "linux,ovs", "--protocols", "vxlan", "--shard", "1/2",
                         "-k", "port_default and not ovs", "-n", "0", "--keep-lab", "--expect", "none", "--strict",
                         "--reruns", "2", "--compare", "none", "--reports-dir", str(tmp_path), "-x", "--tb=short",
                         "suites/vxlan")
    after = command[command.index("-q"):]
    assert after == ["-q", f"--junitxml={tmp_path / 'junit.xml'}", "--vendors", "linux,ovs", "--protocols", "vxlan",
                     "--shard", "1/2", "-k", "port_default and not ovs", "-n", "0", "--expect", "none",
                     "--reruns", "2", "--compare", "none", "--keep-lab", "--expect-strict", "-x", "--tb=short",
                     "suites/vxlan"]  # pytest has a --strict of its own: the plugin's is --expect-strict
    assert option(command, "--reports-dir") == str(tmp_path)
    assert RUN_ID.fullmatch(option(command, "--run-id"))


def test_labs_run_in_parallel_unless_the_user_says_otherwise(monkeypatch):
    assert option(run_cli(monkeypatch)[1], "-n") == "auto"
    assert "auto" not in run_cli(monkeypatch, "--numprocesses=2")[1]


@pytest.mark.parametrize("pytest_status, status", [
    (0, 0),  # every cell as expected
    (1, 1),  # a cell not as expected
    (3, 3),  # a broken cell (the plugin), or pytest's internal error: harness trouble either way
    (4, 2),  # pytest's usage error: it printed the line
    (5, 2),  # nothing collected: no cell matched the selection
    (2, 130),  # pytest interrupted (Ctrl-C)
    (-signal.SIGINT, 130),
    (-signal.SIGKILL, 137),
])
def test_the_exit_status_a_ci_gates_on(monkeypatch, capsys, pytest_status, status):
    assert run_cli(monkeypatch, code=pytest_status)[0] == status
    err = capsys.readouterr().err
    assert err == ("overlay-interop: error: no cell matched the selection (--vendors, --protocols, --shard, -k, "
                   "paths)\n" if pytest_status == 5 else "")


def test_ctrl_c_waits_for_pytest_to_take_its_labs_down(monkeypatch):
    class Interrupted(FakePytest):
        waits = 0

        def wait(self):
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt  # the terminal's ^C reaches both processes; pytest is still cleaning up
            return 2
    fake = Interrupted(2)
    fake.calls = []
    monkeypatch.setattr(cli.subprocess, "Popen", fake)
    assert cli.main(["run"]) == 130 and fake.waits == 2


def test_harness_trouble_is_3_and_bad_input_is_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "PROJECT_ROOT", tmp_path)  # a copy without suites/: the harness cannot run
    assert cli.main(["run"]) == 3
    assert capsys.readouterr().err == f"overlay-interop: error: {tmp_path / 'suites'}: not found; run " \
                                      f"overlay-interop from a checkout of the project\n"
    assert cli.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"overlay-interop: error: {tmp_path / 'matrix.json'}: file: not found; " \
                                      f"DIR must be a run's reports folder\n"


CELL = textwrap.dedent('''
    def test_cell(request):
        request.node.user_properties.append(("overlay_interop", {
            "protocol": "vxlan", "case": "fake", "a": "x", "b": "y", "pcap": None, "clause": "", "title": ""}))
''')


def plugin_run(tmp_path, *argv) -> subprocess.CompletedProcess:
    (tmp_path / "test_cell.py").write_text(CELL)
    return subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_cell.py"), "--rootdir", str(tmp_path),
                           "-p", "no:randomly", "-p", "no:cacheprovider", "-q", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_plugin_files_the_run_under_the_id_it_is_given(tmp_path):
    reports = tmp_path / "reports" / "20260102-030405-678"
    result = plugin_run(tmp_path, "--run-id", "20260102-030405-678", "--reports-dir", str(reports))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((reports / "run.json").read_text())["run"] == "20260102-030405-678"
    assert "20260102-030405-678" in (reports / "matrix.html").read_text()


@pytest.mark.parametrize("bad", ["../x", "20260102-030405", "2026-01-02", "20260102-030405-678/.."])
def test_a_run_id_from_outside_must_be_a_run_id(tmp_path, bad):
    result = plugin_run(tmp_path, "--run-id", bad)
    assert result.returncode == 4
    assert f"--run-id: {bad}: not a run id (YYYYmmdd-HHMMSS-pid" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "reports").exists()
