"""Event mode without a lab: init (templates, validation, tokens shown once and stored as hashes), the plan
(slots, rounds, estimate, partner coverage) and the store's tries and sign-off states."""
import hashlib
import json
import re
import sqlite3

import pytest

from harness.event.store import Store, cell_state
from event_support import EVENT, PARTICIPANTS, add_try, cli, make_event, tokens_of

DEVICE_PARTICIPANT = """
[[participant]]
id = "box-corp"
organisation = "Box Corp"
contact = "noc@box.example"

[[participant.device]]
name = "box1"
description = "Box Corp box"
version = "1.0"
interface = "oitestnic0"
address = "198.18.250.10/24"
peer_address = "198.18.250.1/24"
control = "manual"

[participant.device.protocols.vxlan]
roles = ["vtep1", "vtep2"]
features = ["vxlan"]
"""


def test_init_writes_templates_first_then_registers_with_tokens_shown_once(tmp_path):
    folder = tmp_path / "event"
    code, out, _ = cli("event", "init", folder)
    assert code == 0 and "edit, then run" in out
    assert (folder / "event.toml").is_file() and (folder / "participants.toml").is_file()
    assert not (folder / "event.sqlite").exists() and not tokens_of(out)
    code, out, err = cli("event", "init", folder)  # the templates as written are a valid event
    assert code == 0, err
    tokens = tokens_of(out)
    assert set(tokens) == {"acme", "example-org", "organiser"}
    assert len(set(tokens.values())) == 3 and all(len(t) >= 43 for t in tokens.values())  # 256 bits, urlsafe
    stored = b"".join(p.read_bytes() for p in folder.glob("event.sqlite*"))
    assert not any(t.encode() in stored for t in tokens.values()), "a token is stored in the clear"
    store = Store(folder)
    hashes = {r["id"]: bytes(r["token_hash"]) for r in store.participants().values()}
    assert hashes["acme"] == hashlib.sha256(tokens["acme"].encode()).digest()
    assert {store.authenticate(t) for t in tokens.values()} == {"acme", "example-org", "organiser"}
    assert store.authenticate(tokens["acme"][:-1] + ("A" if tokens["acme"][-1] != "A" else "B")) is None
    # again: nobody's token is shown again, and the old ones still open the board
    code, out, _ = cli("event", "init", folder)
    assert code == 0 and not tokens_of(out) and "tokens unchanged" in out
    assert store.authenticate(tokens["example-org"]) == "example-org"


def test_a_participant_added_later_gets_a_token_the_others_keep_theirs(tmp_path):
    folder = tmp_path / "event"
    tokens = make_event(folder)
    labels = {r["id"]: r["label"] for r in Store(folder).participants().values()}
    (folder / "participants.toml").write_text(PARTICIPANTS + DEVICE_PARTICIPANT)
    code, out, err = cli("event", "init", folder)
    assert code == 0, err
    assert set(tokens_of(out)) == {"box-corp"}
    store = Store(folder)
    assert {r["id"]: r["label"] for r in store.participants().values() if r["id"] != "box-corp"} == labels
    assert store.authenticate(tokens["kernel-team"]) == "kernel-team"
    assert store.entries()["box1"] == "box-corp"
    assert 'name = "box1"' in (folder / "inventory.toml").read_text()  # what `event run` hands to --devices
    add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "passed")
    (folder / "participants.toml").write_text(PARTICIPANTS.split("[[participant]]\nid = \"switch-team\"")[0]
                                              + DEVICE_PARTICIPANT)
    code, _, err = cli("event", "init", folder)  # switch-team has a result: it cannot leave the event
    assert code == 2 and "participants.toml: participant switch-team: has results" in err, err
    code, out, _ = cli("event", "init", folder, "--new-token", "kernel-team")
    assert code == 0 and store.authenticate(tokens["kernel-team"]) is None
    assert store.authenticate(tokens_of(out)["kernel-team"]) == "kernel-team"


def test_labels_are_anonymous(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    labels = {r["label"] for r in Store(folder).participants().values()}
    assert labels == {"Participant A", "Participant B", "Participant C"}


@pytest.mark.parametrize("text, where, field, problem", [
    (PARTICIPANTS.replace('vendors = ["ovs"]', 'vendors = ["ovs"]\ncolour = "red"'),
     "participant switch-team", "colour", "unknown key"),
    (PARTICIPANTS.replace('["ovs"]', '["nosuch"]'), "participant switch-team", "vendors", "no built-in vendor 'nosuch'"),
    (PARTICIPANTS.replace('"scapy-team"', '"kernel-team"'), "participant kernel-team", "id", "another participant"),
    (PARTICIPANTS.replace('["scapy-vtep"]', '["linux"]'), "participant scapy-team", "vendors",
     "linux is participant kernel-team's already"),
    (PARTICIPANTS.replace('organisation = "Switch Team"\n', ""), "participant switch-team", "organisation",
     "required"),
    (PARTICIPANTS.replace('id = "switch-team"', 'id = "../x"'), "participant ../x", "id", "not a safe name"),
    (PARTICIPANTS + DEVICE_PARTICIPANT.replace("198.18.250.1/24", "10.9.9.9/24"),
     "participant box-corp: device box1", "peer_address", "not on the device's link"),
    (PARTICIPANTS + DEVICE_PARTICIPANT.replace('name = "box1"', 'name = "linux"'),
     "participant box-corp: device linux", "name", "built-in vendor's name"),
])
def test_a_mistake_in_participants_toml_is_one_line_naming_file_participant_and_field(tmp_path, text, where,
                                                                                       field, problem):
    folder = tmp_path / "event"
    folder.mkdir()
    (folder / "event.toml").write_text(EVENT)
    (folder / "participants.toml").write_text(text)
    code, out, err = cli("event", "init", folder)
    assert code == 2 and not tokens_of(out)
    [line] = err.strip().splitlines()
    assert line.startswith(f"overlay-interop: error: {folder / 'participants.toml'}: {where}: {field}: "), line
    assert problem in line, line
    assert not (folder / "event.sqlite").exists()


@pytest.mark.parametrize("text, field, problem", [
    (EVENT.replace('"vni_isolation"', '"nosuch"'), "cases.vxlan", "no case 'nosuch' in suites/vxlan"),
    (EVENT.replace('["vxlan"]', '["vxlan", "mpls"]'), "protocols", "no suites for 'mpls'"),
    ("rounds = 3\n" + EVENT, "rounds", "unknown key"),
    (EVENT + "l2tp = [\"tunnel\"]\n", "cases.l2tp", "not in protocols"),
])
def test_a_mistake_in_event_toml_names_the_field(tmp_path, text, field, problem):
    folder = tmp_path / "event"
    folder.mkdir()
    (folder / "event.toml").write_text(text)
    (folder / "participants.toml").write_text(PARTICIPANTS)
    code, _, err = cli("event", "init", folder)
    assert code == 2
    assert re.fullmatch(rf"overlay-interop: error: {re.escape(str(folder / 'event.toml'))}: {re.escape(field)}: "
                        rf".*{re.escape(problem)}.*", err.strip()), err


def slots(folder):
    return [dict(r) for r in Store(folder).slots()]


def test_plan_pairs_everyone_both_roles_one_slot_per_participant_at_a_time(tmp_path):
    folder = tmp_path / "event"
    make_event(folder, PARTICIPANTS + DEVICE_PARTICIPANT)
    code, out, _ = cli("event", "plan", folder, "--runs", tmp_path / "no-runs")
    assert code == 0
    planned = slots(folder)
    pairs = sorted(tuple(sorted((s["a"], s["b"]))) for s in planned)
    assert pairs == sorted([("kernel-team", "switch-team"), ("kernel-team", "scapy-team"), ("box-corp", "kernel-team"),
                            ("scapy-team", "switch-team"), ("box-corp", "switch-team"), ("box-corp", "scapy-team")])
    # 2 cases x both directions (every vendor here plays both roles)
    assert {s["cells"] for s in planned} == {4}
    rounds = {}
    for s in planned:
        rounds.setdefault(s["round"], []).extend([s["a"], s["b"]])
    assert all(len(people) == len(set(people)) for people in rounds.values()), rounds  # nobody twice in a round
    assert len(rounds) == 3  # four participants: two slots side by side each round
    assert "6 slots in 3 rounds, about 12 min (60 s per case)" in out
    assert "fewer than 4 partners of other organisations" in out and "  box-corp: 3" in out


def test_plan_estimates_from_the_durations_earlier_tries_measured(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    for number, b in enumerate(["ovs", "scapy-vtep"]):
        add_try(folder, f"20261206-0700{number}0-1", "unicast", "linux", b, "passed", duration_s=30.0)
    code, out, _ = cli("event", "plan", folder, "--runs", tmp_path / "no-runs")
    assert code == 0
    # per slot: 2 unicast cells at 30 s measured + 2 vni_isolation cells at the default 60 s
    assert {s["estimate_s"] for s in slots(folder)} == {180.0}
    assert "measured case times where earlier tries or runs had the case" in out


def test_plan_takes_case_durations_from_earlier_runs_before_the_events_own(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    run = tmp_path / "reports" / "20261205-120000-1"
    run.mkdir(parents=True)
    records = [{"protocol": "vxlan", "case": case, "a": "linux", "b": b, "verdict": verdict, "reason": "",
                "duration_s": seconds, "pcap": None}
               for case, b, verdict, seconds in (("unicast", "ovs", "passed", 10.0), ("unicast", "linux", "failed", 20.0),
                                                 ("vni_isolation", "ovs", "broken", 500.0))]  # broken: no measure
    (run / "matrix.json").write_text(json.dumps(records))
    (tmp_path / "reports" / "20261205-130000-1").mkdir()  # no matrix: not a run
    code, out, err = cli("event", "plan", folder, "--runs", tmp_path / "reports")
    assert code == 0, err
    assert {s["estimate_s"] for s in slots(folder)} == {2 * 15.0 + 2 * 60.0}
    add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "passed", duration_s=40.0)
    cli("event", "plan", folder, "--runs", tmp_path / "reports")
    assert {s["estimate_s"] for s in slots(folder)} == {2 * 40.0 + 2 * 60.0}  # the event's own measure wins


def test_coverage_counts_partners_of_other_organisations_only(tmp_path):
    folder = tmp_path / "event"
    make_event(folder, PARTICIPANTS.replace('"Switch Team"', '"Kernel Team"'))
    code, out, _ = cli("event", "plan", folder, "--runs", tmp_path / "no-runs")
    assert code == 0
    assert "  kernel-team: 1" in out and "  switch-team: 1" in out and "  scapy-team: 1" in out


def test_a_retest_is_a_new_try_and_the_earlier_ones_stay(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    assert add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "failed", "no echo") == 1
    # the live plugin and then the final matrix record the same run's try: one try, updated
    assert add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "broken", "capture empty") == 1
    assert add_try(folder, "20261206-080000-1", "unicast", "linux", "ovs", "passed") == 2
    store = Store(folder)
    [cell] = store.cells()
    assert [(t["number"], t["verdict"], t["reason"]) for t in store.tries(cell.id)] == [
        (1, "broken", "capture empty"), (2, "passed", "")]


def test_sign_off_states(tmp_path):
    folder = tmp_path / "event"
    make_event(folder)
    add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "passed")
    store = Store(folder)
    [cell] = store.cells()
    latest = store.tries(cell.id)[-1]["id"]

    def current():
        return cell_state(cell, store.tries(cell.id)[-1]["id"], store.signoffs())
    assert current() == "to be verified"
    store.sign(cell.id, "kernel-team", "verified", "")
    assert current() == "to be verified"  # one of two
    store.sign(cell.id, "switch-team", "verified", "")
    assert current() == "verified"
    store.sign(cell.id, "switch-team", "disputed", "our side never saw VNI 100")
    assert current() == "disputed"
    store.sign(cell.id, "switch-team", "re-test requested", "")
    assert current() == "re-test requested"
    add_try(folder, "20261206-080000-1", "unicast", "linux", "ovs", "passed")
    assert store.tries(cell.id)[-1]["id"] != latest and current() == "to be verified"  # a new try: both again
    with pytest.raises(sqlite3.IntegrityError):  # the schema holds: one try number per cell
        with store.write() as db:
            db.execute("INSERT INTO tries (cell, number, run, verdict, reason, finished) VALUES (?, 1, 'x', "
                       "'passed', '', 0)", (cell.id,))


def test_usage_mistakes_are_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "event"
    folder.mkdir()
    (folder / "event.toml").write_text(EVENT)
    (folder / "participants.toml").write_text(PARTICIPANTS)
    for argv, expected in [
        (("event", "plan", folder), "event.sqlite: (file): not found; run `overlay-interop event init DIR` first"),
        (("event", "board", folder, "--port", "0"), "event.sqlite: (file): not found"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (argv, err)
    make_event(folder)
    for argv, expected in [
        (("event", "run", folder, "--slot", "99"), "--slot: 99: no such slot; the plan has 1 to 3"),
        (("event", "run", folder, "--pair", "kernel-team"), "--pair: kernel-team: two participant ids expected"),
        (("event", "run", folder, "--pair", "kernel-team,nosuch"), "no slot of the plan pairs these participants"),
        (("event", "init", folder, "--new-token", "nosuch"), "--new-token: nosuch: no such participant"),
        (("event", "init", tmp_path / "nowhere", "--participants", tmp_path / "nosuch.toml"), "nosuch.toml: (file): not found"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (argv, err)
    (folder / "event.sqlite").write_bytes(b"not a database at all" * 100)
    code, _, err = cli("event", "plan", folder)
    assert code == 2 and "event.sqlite: schema_version: not an event database" in err, err


def test_a_slot_is_running_only_while_its_run_lives_and_done_only_when_it_ran(tmp_path):
    import socket

    from harness.event.runner import chosen_slots
    folder = tmp_path / "event"
    make_event(folder)
    store = Store(folder)
    assert [s["number"] for s in chosen_slots(store, None, None)] == [1, 2, 3]
    store.start_run("20261206-070000-1", 1)  # this process: alive
    with store.write() as db:  # a run whose process died (SIGKILL): the same host, a pid that is gone
        db.execute("INSERT INTO runs VALUES ('20261206-070000-2', 2, 0, NULL, NULL, ?)",
                   (f"{socket.gethostname()}/nobootid/999999999/1",))
    assert store.slot_progress() == ({1}, set())
    assert [s["number"] for s in chosen_slots(store, None, None)] == [2, 3]  # a dead run's slot is still to run
    store.start_run("20261206-070000-3", 3)
    store.finish_run("20261206-070000-3", 130)  # interrupted: not done
    store.finish_run("20261206-070000-1", 1)  # a failed cell: done
    assert store.slot_progress() == (set(), {1})
    assert [s["number"] for s in chosen_slots(store, None, None)] == [2, 3]


def test_a_slot_runs_its_own_cells_and_nothing_else(tmp_path):
    from event_support import ROOT
    from harness.event.runner import cell_of, deselected, record
    from harness.results import CaseResult
    cells = [("unicast", "linux", "ovs"), ("unicast", "ovs", "linux")]
    unwanted = deselected(ROOT, ["--vendors", "linux,ovs", "--protocols", "vxlan"], cells)
    assert {cell_of(node) for node in unwanted} >= {("unicast", "linux", "linux"), ("unicast", "ovs", "ovs"),
                                                   ("vni_isolation", "linux", "ovs")}
    assert not {cell_of(node) for node in unwanted} & set(cells)
    assert cell_of("suites/vxlan/test_vxlan.py::test_unicast[scapy-vtep->linux]") == ("unicast", "scapy-vtep", "linux")
    # and what the run recorded of anything else is no try of the event
    folder = tmp_path / "event"
    make_event(folder)
    store = Store(folder)
    results = [CaseResult("vxlan", "unicast", a, b, "passed", "", 1.0, None)
               for a, b in (("linux", "ovs"), ("linux", "linux"), ("probe", "ovs"))]
    assert record(store, folder, "20261206-070000-1", 1, results) == 1
    assert [c.key for c in store.cells()] == ["vxlan/unicast/linux->ovs"]
