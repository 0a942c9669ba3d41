"""A lab closed in the background is gone once drained; steps run together finish together and the first failure
is raised only once every step has finished (no step is left running behind the error)."""
import os
import threading
import time

import docker
import pytest

from harness.images import Images
from harness.lab import Lab, together
from harness.run import LABEL, Run, new_run_id, owner_of


def test_steps_run_at_once_and_the_first_failure_comes_after_all_finished():
    finished, started = [], time.monotonic()

    def step(n):
        time.sleep(0.3)
        finished.append(n)
        if n == 1:
            raise ValueError("one failed")
    with pytest.raises(ValueError, match="one failed"):
        together(step, [0, 1, 2])
    assert sorted(finished) == [0, 1, 2]  # the others finished too
    assert time.monotonic() - started < 0.8  # at once, not one after another (0.9 s)


def test_a_single_step_runs_in_the_callers_thread():
    seen = []
    together(lambda n: seen.append(threading.current_thread()), [0])
    assert seen == [threading.current_thread()]


@pytest.mark.docker
def test_a_lab_closed_in_the_background_is_gone_after_drain(tmp_path):
    client = docker.from_env()
    run = Run(new_run_id(), owner_of(os.getpid()), "gw9", tmp_path)
    lab = Lab(client, run, "test/close/a->b")
    network = lab.network()
    lab.node("a", Images(client).tools(), network, command=["sleep", "infinity"]).start()
    mine = {"label": f"{LABEL}.run={run.id}"}
    assert client.containers.list(all=True, filters=mine)
    lab.close(wait=False)
    Lab.drain(timeout=60)
    assert client.containers.list(all=True, filters=mine) == []
    assert client.networks.list(filters=mine) == []
