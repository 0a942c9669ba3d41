"""A pytest plugin `event run` loads into its run (`-p harness.event.live`): each cell goes into the event's store
as soon as its teardown is reported, so the board shows it while the slot's other cells still run. The verdict
is the matrix recorder's (harness.plugin), merged over the cell's phases; the runner records the final matrix
again at the end, which updates these tries (the same run and cell are one try)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_DIR, ENV_RUN, ENV_SLOT = "OVERLAY_INTEROP_EVENT_DIR", "OVERLAY_INTEROP_EVENT_RUN", "OVERLAY_INTEROP_EVENT_SLOT"

_config = None


def pytest_configure(config):
    global _config
    _config = config


@pytest.hookimpl(trylast=True)  # after the matrix recorder folded this report in
def pytest_runtest_logreport(report):
    if report.when != "teardown" or _config is None or hasattr(_config, "workerinput"):
        return  # xdist: the controller sees every worker's reports; it alone records
    folder, run = os.environ.get(ENV_DIR), os.environ.get(ENV_RUN)
    recorder = _config.pluginmanager.get_plugin("overlay-interop-matrix")
    result = recorder and recorder.results.get(report.nodeid)
    if not folder or not run or result is None:
        return
    from harness.event.runner import record
    from harness.event.store import Store
    slot = os.environ.get(ENV_SLOT)
    store = Store(Path(folder))
    try:
        record(store, Path(folder), run, int(slot) if slot else None, [result])
    finally:
        store.close()
