"""The harness on real containers: a run's output contract, and a SIGKILLed run's leftovers reaped by the
next run without touching a live run. These start real strongSwan daemons; they need a Docker engine
(./dev test sets one up) and are never skipped for lack of one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from harness.images import Images
from harness.lab import reap
from harness.protocols.ipsec.wire import Wire
from harness.run import LABEL, owner_of

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 600  # a first run on a clean machine also builds the images


@pytest.fixture(scope="module")
def client():
    client = docker.from_env(timeout=300)
    yield client
    client.close()


def labelled(client, kind: str, **labels: str) -> list:
    filters = {"label": [f"{LABEL}.{k}={v}" for k, v in labels.items()] or [f"{LABEL}.run"]}
    if kind == "containers":  # sparse: no per-container inspect, which races with other runs' removals
        return client.containers.list(all=True, sparse=True, filters=filters)
    return client.networks.list(filters=filters)


def pytest_run(reports: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "suites" / "ipsec"), "--rootdir", str(ROOT),
                             "--vendors", "strongswan@5.9", "--reports-dir", str(reports), "-q", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


@pytest.fixture(scope="module")
def killed_run_id(client, tmp_path_factory) -> str:
    """Start a run, SIGKILL it while its lab is up, and return its run id (its lab is left behind)."""
    proc = pytest_run(tmp_path_factory.mktemp("killed"), "-k", "psk_tunnel", start_new_session=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    mine = []
    while not mine and time.monotonic() < deadline and proc.poll() is None:
        mine = owned_by(labelled(client, "containers"), proc.pid)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert mine, f"the run never started a lab container before it ended:\n{proc.stdout.read()[-2000:]}"
    return labels_of(mine[0])[f"{LABEL}.run"]


@pytest.fixture(scope="module")
def full_run(killed_run_id, client, tmp_path_factory):
    """The suite run that follows the killed one (as a user would run it next)."""
    left = labelled(client, "containers", run=killed_run_id) + labelled(client, "networks", run=killed_run_id)
    assert left, "SIGKILL left nothing behind, so this test would prove nothing about the reaper"
    reports = tmp_path_factory.mktemp("run")
    proc = pytest_run(reports, "-k", "psk_tunnel or wrong_psk")
    output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    return proc.returncode, output, reports, proc.pid


def owned_by(objects: list, pid: int) -> list:
    return [o for o in objects if labels_of(o).get(f"{LABEL}.owner", "").split("/")[2:3] == [str(pid)]]


def labels_of(obj) -> dict[str, str]:
    return obj.attrs.get("Labels") or {}


def test_the_next_run_reaps_what_a_killed_run_left(full_run, killed_run_id, client):
    assert labelled(client, "containers", run=killed_run_id) == []
    assert labelled(client, "networks", run=killed_run_id) == []


def test_a_run_passes_and_leaves_nothing_behind(full_run, client):
    code, output, _, pid = full_run
    assert code == 0, output[-4000:]
    assert "ipsec: 2/2 pair-cases interoperate" in output
    assert owned_by(labelled(client, "containers"), pid) == []
    assert owned_by(labelled(client, "networks"), pid) == []


def test_the_output_contract(full_run):
    reports = full_run[2]
    records = json.loads((reports / "matrix.json").read_text())
    assert {(r["case"], r["a"], r["b"], r["verdict"]) for r in records} == {
        ("psk_tunnel", "strongswan", "strongswan", "passed"), ("wrong_psk", "strongswan", "strongswan", "passed")}
    for record in records:
        folder = reports / "pairs" / "ipsec" / record["case"] / "strongswan__strongswan"
        assert record["pcap"] == str((folder / "capture.pcap").relative_to(reports))
        assert record["duration_s"] > 0 and record["reason"] == ""
        assert (folder / "capture.pcap").stat().st_size > 0
        assert "charon" in (folder / "initiator-strongswan.log").read_text()
        assert "charon" in (folder / "responder-strongswan.log").read_text()
        assert (folder / "configs" / "responder-strongswan" / "etc" / "swanctl" / "swanctl.conf").is_file()


def test_the_psk_tunnel_pcap_shows_ike_and_esp_both_ways(full_run):
    reports = full_run[2]
    wire = Wire.from_pcap(reports / "pairs/ipsec/psk_tunnel/strongswan__strongswan/capture.pcap")
    assert [m.exchange for m in wire.ike()][:4] == ["IKE_SA_INIT"] * 2 + ["IKE_AUTH"] * 2, wire.describe()
    directions = {(f.src, f.dst) for f in wire.esp() if f.encapsulated and f.packets >= 3}
    assert len(directions) == 2, wire.describe()


def test_allure_results_carry_labels_and_the_pairs_files(full_run):
    reports = full_run[2]
    results = [json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")]
    labels = {(r["name"], l["name"], l["value"]) for r in results for l in r["labels"]}
    for case in ("psk_tunnel", "wrong_psk"):
        name = f"test_{case}[strongswan->strongswan]"
        assert {(name, "parentSuite", "ipsec"), (name, "suite", case),
                (name, "subSuite", "strongswan -> strongswan")} <= labels
    containers = [json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-container.json")]
    attached = {a["name"]: a["type"] for c in containers for after in c.get("afters", [])
                for a in after.get("attachments", [])}
    assert attached["capture.pcap"] == "application/vnd.tcpdump.pcap"
    assert {"initiator-strongswan.log", "responder-strongswan.log"} <= set(attached)


def test_the_reaper_spares_a_live_run(client, tmp_path):
    """Containers owned by a live process stay; those of a dead process go."""
    image = Images(client).tools()
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {"live": owner_of(os.getpid()), "dead": f"{owner_of(os.getpid()).rsplit('/', 2)[0]}/{dead.pid}/0"}
    made = {}
    try:
        for which, owner in owners.items():
            made[which] = client.containers.create(image, ["sleep", "60"], labels={
                f"{LABEL}.run": f"reaper-test-{which}", f"{LABEL}.owner": owner})
        reap(client)
        remaining = {labels_of(c)[f"{LABEL}.run"] for c in labelled(client, "containers")}
        assert "reaper-test-live" in remaining and "reaper-test-dead" not in remaining
    finally:
        for container in made.values():
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_sigint_tears_the_lab_down_and_marks_the_case_broken(client, tmp_path):
    """^C mid-case: pytest's teardown still closes the lab, and the unfinished case is not called passed."""
    # A shell's background job starts with SIGINT ignored, and children inherit that: restore the default so
    # the run under test gets its KeyboardInterrupt however this test itself was started.
    proc = pytest_run(tmp_path, "-k", "psk_tunnel", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    in_the_case_body = tmp_path / "pairs/ipsec/psk_tunnel/strongswan__strongswan/configs"  # written by establish()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not in_the_case_body.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        time.sleep(0.05)
    assert owned_by(labelled(client, "containers"), proc.pid), "the lab should be up when ^C arrives"
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, output[-2000:]  # pytest: interrupted
    assert owned_by(labelled(client, "containers"), proc.pid) == []
    assert owned_by(labelled(client, "networks"), proc.pid) == []
    [record] = json.loads((tmp_path / "matrix.json").read_text())
    assert (record["verdict"], record["reason"]) == ("broken", "interrupted before the case reached a verdict")
