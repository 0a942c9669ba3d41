"""`event report` (per feature, a problem table naming no participant) and `event bundle` (one participant's
conformance page and evidence, nothing of pairs it is not in)."""
import json
import os
import zipfile

from event_support import add_try, cli, make_event
from harness.event.store import Store

NAMES = ["linux", "ovs", "scapy", "kernel-team", "switch-team", "scapy-team", "Kernel Team", "Switch Team",
         "Scapy Team", "example.org", "Participant "]
RUN = "20261206-070000-1"


def event_with_results(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    add_try(folder, RUN, "unicast", "linux", "ovs", "failed", "linux never answered ovs")
    add_try(folder, RUN, "unicast", "linux", "scapy-vtep", "passed")
    add_try(folder, RUN, "unicast", "ovs", "scapy-vtep", "passed", files={"capture.pcap": b"switch-scapy pcap"})
    add_try(folder, RUN, "vni_isolation", "ovs", "linux", "broken", "ovs-vswitchd did not start")
    return folder


def test_the_public_report_judges_features_and_names_no_participant(tmp_path):
    folder = event_with_results(tmp_path)
    code, out, err = cli("event", "report", folder)
    assert code == 0, err
    report = json.loads((folder / "report.json").read_text())
    results = {f["case"]: (f["result"], f["passed"], f["failed"]) for f in report["features"]}
    assert results == {"unicast": ("interoperates with issues", 2, 1), "vni_isolation": ("no pair interoperates", 0, 1)}
    assert [(p["case"], p["verdict"], p["pairs"]) for p in report["problems"]] == [
        ("unicast", "failed", 1), ("vni_isolation", "broken", 1)]
    for path in (folder / "report.html", folder / "report.json"):
        text = path.read_text()
        for name in NAMES:
            assert name not in text, (path.name, name)
        assert "never answered" not in text and "did not start" not in text
    add_try(folder, "20261206-080000-1", "unicast", "linux", "ovs", "passed")  # the re-test passed
    cli("event", "report", folder)
    report = json.loads((folder / "report.json").read_text())
    assert report["features"][0]["result"] == "interoperates" and report["tries"] == 5


def test_a_bundle_holds_its_participants_cells_only(tmp_path):
    folder = event_with_results(tmp_path)
    mine = folder / "runs" / RUN / "pairs/vxlan/unicast/linux__ovs"
    os.symlink(folder / "runs" / RUN / "pairs/vxlan/unicast/ovs__scapy-vtep/capture.pcap", mine / "theirs.pcap")
    code, out, err = cli("event", "bundle", folder, "kernel-team")
    assert code == 0, err
    path = folder / "bundles" / "kernel-team.zip"
    assert out.strip() == str(path)
    with zipfile.ZipFile(path) as bundle:
        names = sorted(bundle.namelist())
        page = bundle.read("conformance.html").decode()
        data = b"".join(bundle.read(n) for n in names)
    evidence = f"evidence/runs/{RUN}/pairs/vxlan"
    assert names == sorted([
        "conformance.html",
        f"{evidence}/unicast/linux__ovs/capture.pcap", f"{evidence}/unicast/linux__ovs/vtep1-linux.log",
        f"{evidence}/unicast/linux__scapy-vtep/capture.pcap", f"{evidence}/unicast/linux__scapy-vtep/vtep1-linux.log",
        f"{evidence}/vni_isolation/ovs__linux/capture.pcap", f"{evidence}/vni_isolation/ovs__linux/vtep1-ovs.log"])
    assert b"switch-scapy pcap" not in data
    assert "linux never answered ovs" in page and "vxlan/unicast/ovs-&gt;scapy-vtep" not in page
    assert "Switch Team" in page  # its partners, by name: the page is its own
    code, _, err = cli("event", "bundle", folder, "nosuch")
    assert code == 2 and "nosuch: no such participant" in err
    assert Store(folder).participants()  # the store is untouched
