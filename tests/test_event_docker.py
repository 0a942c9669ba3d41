"""An event end to end on this machine: three participants (two built-in VXLAN vendors and an external device,
the Linux vxlan device in a namespace that tests/test_devices_docker.py makes), planned, run through the real
harness (Docker labs, verdicts from the wire) while the board shows it live in a browser, signed off in the
browser by two participants with their tokens, bundled and reported. Needs root and a Docker engine (the device
moves a host interface into the peer's namespace)."""
import json
import os
import signal
import subprocess
import sys
import zipfile

from event_support import ROOT, BoardProcess, cli, make_event, wait_for
from harness.event.store import Store
from test_devices_docker import DEVICE, PEER, SCRIPT, netns_vtep  # noqa: F401 (the fixture)
from test_event_browser import Page, browser  # noqa: F401 (the fixture)

EVENT = """name = "Docker event"
protocols = ["vxlan"]
[cases]
vxlan = ["unicast"]
"""
RUN_TIMEOUT_S = 900


def participants(nic: str, ns: str) -> str:
    return f"""
[[participant]]
id = "kernel-team"
organisation = "Kernel Team"
contact = "kernel@example.org"
vendors = ["linux"]

[[participant]]
id = "scapy-team"
organisation = "Scapy Team"
contact = "scapy@example.org"
vendors = ["scapy-vtep"]

[[participant]]
id = "box-corp"
organisation = "Box Corp"
contact = "noc@box.example"

[[participant.device]]
name = "netns-vtep"
description = "a Linux vxlan device in a namespace the test made"
version = "test"
interface = "{nic}"
address = "{DEVICE}"
peer_address = "{PEER}"
control = "command"
command = "{sys.executable} {SCRIPT} {ns}"
timeout = 30

[participant.device.protocols.vxlan]
roles = ["vtep1", "vtep2"]
features = ["vxlan"]
"""


def test_docker_an_event_planned_run_signed_off_bundled_and_reported(netns_vtep, browser, tmp_path):  # noqa: F811
    ns, nic, _ = netns_vtep
    folder = tmp_path / "event"
    tokens = make_event(folder, participants(nic, ns), EVENT)
    store = Store(folder)
    slots = store.slots()
    assert len(slots) == 3 and {s["cells"] for s in slots} == {2}  # 3 pairs, unicast both ways

    board = BoardProcess(folder)
    try:
        check_event(folder, tokens, store, board, browser)
    finally:
        board.stop()
    bundle_and_report(folder)


def check_event(folder, tokens, store, board, browser):  # noqa: F811
    public = Page(browser, board.url)
    run = subprocess.Popen([sys.executable, "-m", "harness.cli", "event", "run", str(folder), "-n", "0"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # live: the board shows a slot running, then a cell, while its run (pytest) has not finished yet
        wait_for(lambda: public.page.locator("#schedule tr[data-status='now']").count() == 1, RUN_TIMEOUT_S,
                 "a running slot on the board")

        def a_cell_before_its_run_ended():
            for row in store.tries():
                if not (folder / "runs" / row["run"] / "matrix.json").exists():
                    return row
            assert run.poll() is None, run.stdout.read()[-3000:]
            return None
        early = wait_for(a_cell_before_its_run_ended, RUN_TIMEOUT_S, "a try recorded while its run still ran")
        wait_for(lambda: any(c["id"] == str(early["cell"]) for c in public.cells()), 10, "that cell on the board")
        out, _ = run.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if run.poll() is None:  # ^C to the whole group: pytest takes its labs down
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
    assert run.returncode == 0, out[-3000:]
    assert public.still_the_same_page()
    cells = {c.key: c for c in store.cells()}
    assert sorted(cells) == sorted(f"vxlan/unicast/{a}->{b}" for a, b in (
        ("linux", "scapy-vtep"), ("scapy-vtep", "linux"), ("linux", "netns-vtep"), ("netns-vtep", "linux"),
        ("scapy-vtep", "netns-vtep"), ("netns-vtep", "scapy-vtep")))
    for key, cell in cells.items():
        [latest] = store.tries(cell.id)
        assert latest["verdict"] == "passed", f"{key}: {latest['reason']}\n{out[-3000:]}"
        assert (folder / latest["evidence"] / "capture.pcap").is_file(), key
    wait_for(lambda: len(public.cells()) == 6 and all(c["verdict"] == "passed" for c in public.cells()), 10,
             "every cell on the public board")
    text = public.page.inner_text("body")
    assert "linux" not in text and "netns-vtep" not in text and "box-corp" not in text

    # sign-off in the browser, by both participants of the kernel/device cell
    signers = {}
    for who in ("kernel-team", "box-corp"):
        signers[who] = Page(browser, board.url)
        signers[who].login(tokens[who])
    cell = cells["vxlan/unicast/linux->netns-vtep"]
    for who, page in signers.items():
        mine = page.page.locator(f"#my-cells .cell[data-cell='{cell.id}']")
        assert "linux->netns-vtep" in mine.inner_text()
        assert mine.locator("a.evidence", has_text="capture.pcap").count() == 1
        mine.locator("button[data-word='verified']").click()
        wait_for(lambda: f"{who}: verified" in page.page.inner_text(f"#my-cells .cell[data-cell='{cell.id}']"), 10,
                 f"{who}'s confirmation")
    wait_for(lambda: next(c for c in public.cells() if c["id"] == str(cell.id))["state"] == "verified", 10,
             "the verified cell on the public board")
    for page in (public, *signers.values()):
        page.close()


def bundle_and_report(folder):
    code, out, err = cli("event", "bundle", folder, "box-corp")
    assert code == 0, err
    with zipfile.ZipFile(out.strip()) as bundle:
        names = bundle.namelist()
    assert "conformance.html" in names
    pairs = {n.split("/")[6] for n in names if n.startswith("evidence/")}
    assert pairs == {"linux__netns-vtep", "netns-vtep__linux", "scapy-vtep__netns-vtep", "netns-vtep__scapy-vtep"}
    assert any(n.endswith("/capture.pcap") for n in names)

    code, _, err = cli("event", "report", folder)
    assert code == 0, err
    report = json.loads((folder / "report.json").read_text())
    assert [(f["case"], f["result"], f["passed"], f["verified"]) for f in report["features"]] == [
        ("unicast", "interoperates", 6, 1)]
    page = (folder / "report.html").read_text()
    for name in ("linux", "scapy", "netns", "kernel-team", "box-corp", "Box Corp", "Participant "):
        assert name not in page, name
