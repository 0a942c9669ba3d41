"""The board as a real server process, asked over real HTTP: who sees what, evidence that cannot be reached by a
guessed URL, traversal or a changed id, tokens that fail alike and never reach a log or a page, sign-off, a
restart, and the runner and the board writing the store at the same time."""
import http.client
import json
import os
import subprocess
import sys
import textwrap

import pytest

from event_support import ROOT, BoardProcess, add_try, make_event
from harness.event.store import Store

SECRET = b"switch-team's private key material"  # in a cell kernel-team is not part of
OUTSIDE = b"a file outside the event folder"
NAMES = ["linux", "ovs", "scapy", "kernel-team", "switch-team", "scapy-team", "Kernel Team", "Switch Team",
         "Scapy Team", "example.org"]
RUN = "20261206-070000-1"


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    folder = root / "event"
    tokens = make_event(folder)
    add_try(folder, RUN, "unicast", "linux", "ovs", "failed", "linux never answered ovs",
            {"capture.pcap": b"\xd4\xc3\xb2\xa1kernel-switch", "vtep1-linux.log": b"linux log\n",
             "keys/ike.keys": b"kernel-switch keys"})
    add_try(folder, RUN, "unicast", "linux", "scapy-vtep", "passed")
    add_try(folder, RUN, "unicast", "ovs", "scapy-vtep", "failed", "ovs dropped scapy-vtep's frames",
            {"capture.pcap": b"\xd4\xc3\xb2\xa1switch-scapy", "keys/ike.keys": SECRET})
    (root / "outside.txt").write_bytes(OUTSIDE)
    store = Store(folder)
    keys = {"mine_failed": "vxlan/unicast/linux->ovs", "mine_passed": "vxlan/unicast/linux->scapy-vtep",
            "theirs": "vxlan/unicast/ovs->scapy-vtep"}
    ids = {name: next(t["id"] for t in store.tries() if store.cell(t["cell"]).key == key) for name, key in keys.items()}
    mine = folder / "runs" / RUN / "pairs/vxlan/unicast/linux__ovs"
    theirs = folder / "runs" / RUN / "pairs/vxlan/unicast/ovs__scapy-vtep"
    # links a participant could not make, but a careless copy could: the board follows none of them
    os.symlink(theirs / "keys/ike.keys", mine / "theirs.keys")
    os.symlink(root / "outside.txt", mine / "outside.txt")
    os.symlink(theirs, mine / "theirs-folder")
    # a link that stays inside the folder: refused too (no symlink on the way, whatever it points to), so the
    # symlink rule holds on its own and not only through the containment check behind it
    os.symlink(mine / "keys/ike.keys", mine / "alias.keys")
    shared = {"folder": folder, "tokens": tokens, "tries": ids, "board": BoardProcess(folder), "root": root}
    yield shared
    shared["board"].stop()  # the restart test replaced the first one


def request(event, method, path, token=None, body=None, cookie=None, headers=None):
    host = event["board"].url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=10)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        sent["Cookie"] = cookie
    if body is not None:
        body = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers=sent)  # the path goes out as given: no normalising
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def state(event, token=None):
    status, _, data = request(event, "GET", "/api/state", token)
    assert status == 200, data
    return json.loads(data)


def test_the_public_view_names_no_one_and_shows_no_reason_or_evidence(event):
    status, _, page = request(event, "GET", "/")
    assert status == 200
    public = state(event)
    text = json.dumps(public)
    assert public["view"] == "public"
    for name in NAMES:
        assert name not in text and name.encode() not in page, name
    assert "never answered" not in text and "dropped" not in text and "/api/evidence" not in text
    assert sorted(c["verdict"] for c in public["cells"]) == ["failed", "failed", "passed"]
    assert {c["a"] for c in public["cells"]} | {c["b"] for c in public["cells"]} <= {
        "Participant A", "Participant B", "Participant C"}
    assert all(set(c) == {"id", "protocol", "case", "a", "b", "verdict", "state", "tries", "mine"}
               for c in public["cells"])


def test_a_participant_sees_its_own_cells_by_name_and_nothing_of_the_others(event):
    view = state(event, event["tokens"]["kernel-team"])
    assert view["view"] == "participant" and view["me"]["id"] == "kernel-team"
    cells = {c.get("key"): c for c in view["cells"]}
    assert set(cells) == {"vxlan/unicast/linux->ovs", "vxlan/unicast/linux->scapy-vtep", None}
    failed = cells["vxlan/unicast/linux->ovs"]
    assert failed["reason"] == "linux never answered ovs" and failed["a"] == "linux (kernel-team)"
    files = [f["name"] for f in failed["history"][0]["files"]]
    assert files == ["capture.pcap", "keys/ike.keys", "vtep1-linux.log"]  # the symlinks are not listed
    other = cells[None]
    assert set(other) == {"id", "protocol", "case", "a", "b", "verdict", "state", "tries", "mine"}
    assert "switch-team" not in json.dumps(other) and "ovs" not in json.dumps(other)
    url = failed["history"][0]["files"][1]["url"]
    status, headers, data = request(event, "GET", url, event["tokens"]["kernel-team"])
    assert (status, data) == (200, b"kernel-switch keys")
    assert headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in headers["Content-Security-Policy"]


def test_the_organiser_sees_every_cell_and_its_evidence(event):
    view = state(event, event["tokens"]["organiser"])
    assert view["view"] == "organiser"
    assert sorted(c["key"] for c in view["cells"]) == ["vxlan/unicast/linux->ovs", "vxlan/unicast/linux->scapy-vtep",
                                                        "vxlan/unicast/ovs->scapy-vtep"]
    status, _, data = request(event, "GET", f"/api/evidence/{event['tries']['theirs']}/keys/ike.keys",
                              event["tokens"]["organiser"])
    assert (status, data) == (200, SECRET)


def traversals(event):
    mine, theirs = event["tries"]["mine_failed"], event["tries"]["theirs"]
    folder = event["folder"]
    return [
        f"/api/evidence/{theirs}/keys/ike.keys",                       # a changed try id
        f"/api/evidence/{theirs}/capture.pcap",
        f"/api/evidence/{mine}/../../ovs__scapy-vtep/keys/ike.keys",     # ../ as written
        f"/api/evidence/{mine}/%2e%2e/ovs__scapy-vtep/keys/ike.keys",    # encoded dots
        f"/api/evidence/{mine}/%2e%2e%2fovs__scapy-vtep%2fkeys%2fike.keys",
        f"/api/evidence/{mine}/..%2f..%2f..%2f..%2f..%2f..%2foutside.txt",
        f"/api/evidence/{mine}/%252e%252e/ovs__scapy-vtep/keys/ike.keys",  # double-encoded
        f"/api/evidence/{mine}/..\\ovs__scapy-vtep\\keys\\ike.keys",
        f"/api/evidence/{mine}/%2f{str(folder).lstrip('/')}/runs/{RUN}/pairs/vxlan/unicast/ovs__scapy-vtep/keys/ike.keys",
        f"/api/evidence/{mine}/{folder}/runs/{RUN}/pairs/vxlan/unicast/ovs__scapy-vtep/keys/ike.keys",
        f"/api/evidence/{mine}//etc/passwd",
        f"/api/evidence/{mine}/theirs.keys",                            # symlinks inside one's own folder
        f"/api/evidence/{mine}/outside.txt",
        f"/api/evidence/{mine}/theirs-folder/keys/ike.keys",
        f"/api/evidence/{mine}/alias.keys",
        f"/api/evidence/{mine}/keys/ike.keys%00.txt",
        f"/api/evidence/{mine}/./keys/../../ovs__scapy-vtep/keys/ike.keys",
        f"/api/evidence/{int(theirs) + 1000}/keys/ike.keys",           # no such try
        "/api/evidence/-1/keys/ike.keys",
        f"/api/evidence/{mine}x/keys/ike.keys",
        "/api/evidence/../../event.sqlite",
        "/../event.sqlite",
        f"/api/evidence/{mine}/../../../../../../event.sqlite",
    ]


def test_another_participants_evidence_cannot_be_reached(event):
    token = event["tokens"]["kernel-team"]
    answers = {}
    for path in traversals(event):
        for how in ({"token": token}, {"cookie": f"oi_event_token={token}"}):
            status, _, data = request(event, "GET", path, **how)
            answers[path] = (status, data)
            assert SECRET not in data and OUTSIDE not in data and b"SQLite" not in data, path
            assert b"kernel-switch keys" not in data, path
            assert b"root:" not in data, path
            assert status == 404, (path, status, data)
    # what is not yours and what is not there look the same
    assert len({data for _, data in answers.values()}) == 1, answers


def test_a_wrong_token_is_refused_alike_however_close_it_was(event):
    real = event["tokens"]["kernel-team"]
    near = real[:-1] + ("A" if real[-1] != "A" else "B")
    answers = set()
    for token in (near, real[:20], "x" * len(real), real + "x", real.upper()):
        for path in ("/api/state", f"/api/evidence/{event['tries']['mine_failed']}/capture.pcap"):
            status, _, data = request(event, "GET", path, token)
            answers.add((status, data))
        status, _, data = request(event, "POST", "/api/login", body={"token": token})
        answers.add((status, data))
    assert answers == {(401, b'{"error": "unknown token"}')}
    status, _, _ = request(event, "GET", f"/api/evidence/{event['tries']['mine_failed']}/capture.pcap")
    assert status == 401  # no token at all: no evidence


def test_login_sets_an_http_only_cookie_and_no_page_or_log_holds_a_token(event):
    token = event["tokens"]["scapy-team"]
    status, headers, data = request(event, "POST", "/api/login", body={"token": token})
    assert status == 200 and token.encode() not in data
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    pages = [request(event, "GET", path, cookie=cookie.split(";")[0])[2]
             for path in ("/", "/board.js", "/api/state")]
    for who, other in event["tokens"].items():
        request(event, "GET", f"/api/state?token={other}", other)  # even a token put in a query string
        for page in pages:
            assert other.encode() not in page
    log = event["board"].access_log()
    assert '"GET /api/state" 200' in log and '"POST /api/login" 200' in log
    for other in event["tokens"].values():
        assert other not in log


def test_sign_off_by_the_cells_participants_only(event):
    cell = next(c for c in state(event, event["tokens"]["kernel-team"])["cells"]
                if c.get("key") == "vxlan/unicast/linux->scapy-vtep")
    status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["switch-team"],
                              {"cell": cell["id"], "state": "verified"})
    assert status == 404, data  # not its cell: as if there were none
    status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["organiser"],
                              {"cell": cell["id"], "state": "verified"})
    assert status == 403, data
    status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["kernel-team"],
                              {"cell": cell["id"], "state": "disputed", "note": " "})
    assert status == 400 and b"needs a note" in data
    status, _, _ = request(event, "POST", "/api/signoff", event["tokens"]["kernel-team"],
                           {"cell": cell["id"], "state": "verified"}, headers={"Content-Type": "text/plain"})
    assert status == 400  # a cross-site form cannot post JSON
    status, _, _ = request(event, "POST", "/api/signoff", None, {"cell": cell["id"], "state": "verified"})
    assert status == 401
    seen = cell["history"][-1]["try"]
    status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["kernel-team"],
                              {"cell": cell["id"], "state": "verified", "try": seen + 1000})
    assert status == 409 and b"a newer try" in data  # not the try it looked at: nothing signed unseen
    for who in ("kernel-team", "scapy-team"):
        status, _, data = request(event, "POST", "/api/signoff", event["tokens"][who],
                                  {"cell": cell["id"], "state": "verified", "note": "", "try": seen})
        assert status == 200, data
    assert next(c for c in state(event)["cells"] if c["id"] == cell["id"])["state"] == "verified"


def test_the_board_keeps_its_state_over_a_restart(event):
    cell = next(c for c in state(event, event["tokens"]["switch-team"])["cells"]
                if c.get("key") == "vxlan/unicast/ovs->scapy-vtep")
    status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["switch-team"],
                              {"cell": cell["id"], "state": "disputed", "note": "our capture shows VNI 100"})
    assert status == 200, data
    before = state(event, event["tokens"]["organiser"])
    event["board"].stop()
    event["board"] = BoardProcess(event["folder"])
    after = state(event, event["tokens"]["organiser"])
    assert after["cells"] == before["cells"]
    disputed = next(c for c in after["cells"] if c["id"] == cell["id"])
    assert disputed["state"] == "disputed"
    assert disputed["signoffs"]["switch-team"]["note"] == "our capture shows VNI 100"


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from event_support import add_try
    folder, name = Path(sys.argv[1]), sys.argv[2]
    for i in range(int(sys.argv[4])):
        add_try(folder, f"20261206-{i:06d}-{name}", "vni_isolation", "linux", "ovs", "passed" if i % 2 else "failed")
""")


def test_the_runner_and_the_board_write_at_once_without_loss(event):
    tries = 40
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(event["folder"]), "7", str(ROOT / "tests"),
                               str(tries)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    cell = next(c for c in state(event, event["tokens"]["kernel-team"])["cells"]
                if c.get("key") == "vxlan/unicast/linux->ovs")
    signed = 0
    while writer.poll() is None or signed < tries:
        status, _, data = request(event, "POST", "/api/signoff", event["tokens"]["kernel-team"],
                                  {"cell": cell["id"], "state": "re-test requested", "note": f"#{signed}"})
        assert status == 200, data
        signed += 1
    assert writer.wait() == 0, writer.stderr.read()
    store = Store(event["folder"])
    [isolation] = [c for c in store.cells() if c.key == "vxlan/vni_isolation/linux->ovs"]
    assert [t["number"] for t in store.tries(isolation.id)] == list(range(1, tries + 1))
    notes = [r["note"] for r in store.db.execute("SELECT note FROM signoffs WHERE cell = ? AND state = ?",
                                                  (cell["id"], "re-test requested"))]
    assert notes == [f"#{i}" for i in range(signed)]


STORE_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from harness.event.store import Store
    folder, name, count, start = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    store = Store(folder)
    owners = store.entries()
    time.sleep(max(0.0, start - time.time()))  # both processes begin together
    first = time.time()
    for i in range(count):
        store.record_try(f"{name}-{i}", None, "vxlan/unicast/ovs->linux", ("vxlan", "unicast", "ovs", "linux"),
                         (owners["ovs"], owners["linux"]), "passed", "", None, 1.0)
    print(first, time.time())
""")


def test_two_processes_recording_tries_of_one_cell_lose_none(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    import time
    start, count = time.time() + 1.5, 150
    writers = [subprocess.Popen([sys.executable, "-c", STORE_WRITER, str(folder), name, str(count), str(start)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name in ("one", "two")]
    spans = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        spans.append([float(x) for x in out.split()])
    store = Store(folder)
    [cell] = store.cells()
    tries = store.tries(cell.id)
    assert [t["number"] for t in tries] == list(range(1, 2 * count + 1))
    runs = [t["run"] for t in tries]
    assert {r.split("-")[0] for r in runs} == {"one", "two"}
    # the two really wrote at the same time (else this test proves nothing about concurrency)
    (first_one, last_one), (first_two, last_two) = spans
    assert first_one < last_two and first_two < last_one, spans
