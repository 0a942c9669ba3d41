"""The output contract: verdict mapping, folding phases into one record, matrix.json and its summary."""
import json

import pytest

from harness.errors import ConfigError
from harness.results import RECORD_SCHEMA, CaseResult, pair_dir, phase_verdict, read_matrix, summary_table, write_matrix


def test_only_an_assertion_in_the_test_body_is_a_failed_interop():
    assert phase_verdict("failed", is_assertion=True, when="call") == "failed"
    assert phase_verdict("failed", is_assertion=False, when="call") == "broken"
    assert phase_verdict("failed", is_assertion=True, when="setup") == "broken"
    assert phase_verdict("failed", is_assertion=False, when="teardown") == "broken"
    assert phase_verdict("skipped", is_assertion=False, when="setup") == "skipped"
    assert phase_verdict("passed", is_assertion=False, when="call") == "passed"


def test_phases_fold_into_the_worst_verdict_and_the_total_duration():
    result = CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.0, None)
    result.merge("passed", "", 2.0)
    result.merge("broken", "tcpdump did not exit", 0.5)
    result.merge("passed", "", 0.25)
    assert (result.verdict, result.reason, result.duration_s) == ("broken", "tcpdump did not exit", 3.75)


def test_pair_dir_layout(tmp_path):
    assert pair_dir(tmp_path, "ipsec", "psk_tunnel", "strongswan", "libreswan") == \
        tmp_path / "pairs" / "ipsec" / "psk_tunnel" / "strongswan__libreswan"
    assert pair_dir(tmp_path, "ipsec", "psk_tunnel", "strongswan@6.0", "libre+swan_5.2-1").name == \
        "strongswan@6.0__libre+swan_5.2-1"


@pytest.mark.parametrize("field, name", [("a", "../../x"), ("b", "x/y"), ("protocol", ".."), ("case", ""),
                                         ("a", "/etc"), ("b", "a..b"), ("a", ".hidden"), ("b", "x\ny"),
                                         ("a", "x" * 101)])
def test_a_name_that_is_not_one_safe_path_component_never_becomes_a_path(tmp_path, field, name):
    names = {"protocol": "ipsec", "case": "psk_tunnel", "a": "strongswan", "b": "libreswan", field: name}
    with pytest.raises(ConfigError) as raised:
        pair_dir(tmp_path, **names)
    assert (raised.value.where, raised.value.field) == (str(tmp_path / "pairs"), field)
    assert len(str(raised.value).splitlines()) == 1


def test_every_record_field_is_validated():
    """One table drives validation: a CaseResult field without a line in it would be refused as unknown."""
    from dataclasses import fields
    assert list(RECORD_SCHEMA) == [f.name for f in fields(CaseResult)]


def full_result(**changes) -> CaseResult:
    result = CaseResult("vxlan", "port_default", "linux", "ovs@3.1", "failed", "sent to 8472", 2.5,
                        "pairs/vxlan/port_default/linux__ovs@3.1/capture.pcap", "RFC 7348 5", "the port",
                        {"lab up": 1.0, "verdict": 0.5}, {"overlay_mbps": 12.5, "delta": -1},
                        "expected", {"match": "vxlan/port_default/linux->*", "verdict": "failed", "reason": "8472",
                                     "note": "Linux's default"},
                        [{"verdict": "broken", "reason": "tcpdump died", "duration_s": 1.0,
                          "evidence": "pairs/vxlan/port_default/linux__ovs@3.1/try-1"}],
                        True, False, "passed")
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def test_matrix_json_holds_exactly_the_contract_fields(tmp_path):
    results = [CaseResult("ipsec", "wrong_psk", "b", "a", "failed", "IKE_AUTH not answered", 2.5, None),
               CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.25, "pairs/ipsec/psk_tunnel/a__b/capture.pcap"),
               full_result()]
    write_matrix(tmp_path, results)
    records = json.loads((tmp_path / "matrix.json").read_text())
    assert [set(r) for r in records] == [set(RECORD_SCHEMA)] * 3
    assert [r["case"] for r in records] == ["psk_tunnel", "wrong_psk", "port_default"]  # sorted, stable for diffs
    assert read_matrix(tmp_path) == sorted(results, key=lambda r: (r.protocol, r.case))


def test_the_optional_fields_take_their_defaults(tmp_path):
    (tmp_path / "matrix.json").write_text(json.dumps([{
        "protocol": "ipsec", "case": "psk_tunnel", "a": "a", "b": "b", "verdict": "passed", "reason": "",
        "duration_s": 1, "pcap": None}]))
    assert read_matrix(tmp_path) == [CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1, None)]


GOOD = {"protocol": "vxlan", "case": "port_default", "a": "linux", "b": "ovs", "verdict": "failed",
        "reason": "sent to 8472", "duration_s": 2.5, "pcap": None}
CELL = "record 1 (vxlan/port_default linux->ovs)"
# (what the second record of matrix.json holds instead of GOOD's values, the field and the problem named)
BAD_RECORDS = [
    ({"b": "../../x"}, "record 1 (vxlan/port_default linux->../../x)", "b", "'../../x' is not a safe name"),
    ({"protocol": "a/b"}, "record 1 (a/b/port_default linux->ovs)", "protocol", "is not a safe name"),
    ({"case": 7}, "record 1", "case", "a name (text) expected, found a number"),
    ({"verdict": "exploded"}, CELL, "verdict", "'exploded' is not one of passed, failed, broken, skipped"),
    ({"verdict": None}, CELL, "verdict", "None is not one of"),
    ({"duration_s": "2.5"}, CELL, "duration_s", "a finite number expected, found '2.5'"),
    ({"duration_s": True}, CELL, "duration_s", "a finite number expected, found True"),
    ({"duration_s": float("nan")}, CELL, "duration_s", "a finite number expected, found nan"),
    ({"duration_s": -1}, CELL, "duration_s", "seconds expected, found -1 (negative)"),
    ({"reason": ["x"]}, CELL, "reason", "text expected, found a list"),
    ({"pcap": "/etc/passwd"}, CELL, "pcap", "is not a path inside the reports folder"),
    ({"pcap": "../../x.pcap"}, CELL, "pcap", "is not a path inside the reports folder"),
    ({"colour": "red"}, CELL, "colour", "unknown field; known: protocol, case, a, b, verdict"),
    ({"verdict": "passed", "reason": None}, CELL, "reason", "text expected, found null"),
    ({"phases": {"lab up": "slow"}}, CELL, "phases.lab up", "a finite number expected, found 'slow'"),
    ({"phases": [1.0]}, CELL, "phases", "an object expected, found a list"),
    ({"measurements": {"overlay_mbps": None}}, CELL, "measurements.overlay_mbps", "a finite number expected"),
    ({"outcome": "surprising"}, CELL, "outcome", "'surprising' is not one of null, expected, unexpected, fixed"),
    ({"expectation": "vxlan/*"}, CELL, "expectation", "an object expected, found text"),
    ({"expectation": {"match": "vxlan/*", "verdict": "failed", "host": "!esp"}}, CELL, "expectation.host",
     "unknown field; known: match, verdict, reason, note"),
    ({"expectation": {"match": "vxlan/*", "verdict": "failed", "note": 3}}, CELL, "expectation.note",
     "text expected, found a number"),
    ({"expectation": {"verdict": "failed"}}, CELL, "expectation.match", "missing"),
    ({"tries": {"verdict": "failed"}}, CELL, "tries", "a list expected, found an object"),
    ({"tries": [{"verdict": "failed", "reason": "", "duration_s": 1, "evidence": None}, "again"]}, CELL, "tries[1]",
     "an object expected, found text"),
    ({"tries": [{"verdict": "failed", "reason": "", "duration_s": 1}]}, CELL, "tries[0].evidence", "missing"),
    ({"tries": [{"verdict": "meh", "reason": "", "duration_s": 1, "evidence": None}]}, CELL, "tries[0].verdict",
     "'meh' is not one of"),
    ({"tries": [{"verdict": "failed", "reason": "", "duration_s": 1, "evidence": "/tmp"}]}, CELL,
     "tries[0].evidence", "is not a path inside the reports folder"),
    ({"flaky": "yes"}, CELL, "flaky", "true or false expected, found 'yes'"),
    ({"reference": 1}, CELL, "reference", "true or false expected, found 1"),
    ({"previous": "unknown"}, CELL, "previous", "'unknown' is not one of"),
    ({"a": "linux", "b": "linux", "case": "psk", "protocol": "ipsec", "reason": "dup"}, "record 1 (ipsec/psk linux->linux)",
     "protocol/case/a/b", "the same cell as record 0"),
]


@pytest.mark.parametrize("changes, record, field, problem", BAD_RECORDS)
def test_a_bad_record_is_one_line_naming_the_file_the_record_and_the_field(tmp_path, changes, record, field, problem):
    first = dict(GOOD, protocol="ipsec", case="psk", a="linux", b="linux")
    (tmp_path / "matrix.json").write_text(json.dumps([first, {**GOOD, **changes}]))
    with pytest.raises(ConfigError) as raised:
        read_matrix(tmp_path)
    assert raised.value.where == f"{tmp_path / 'matrix.json'} {record}"
    assert raised.value.field == field
    assert problem in raised.value.problem
    assert len(str(raised.value).splitlines()) == 1


@pytest.mark.parametrize("missing", ["protocol", "case", "a", "b", "verdict", "reason", "duration_s", "pcap"])
def test_every_contract_field_is_required(tmp_path, missing):
    (tmp_path / "matrix.json").write_text(json.dumps([{k: v for k, v in GOOD.items() if k != missing}]))
    with pytest.raises(ConfigError, match=f"record 0.*: {missing}: missing$"):
        read_matrix(tmp_path)


@pytest.mark.parametrize("content, field, problem", [
    (b'[{"protocol": "vxlan", "case": "port_de', "line 1 column 32", "not JSON: Unterminated string"),
    (b"", "line 1 column 1", "not JSON: Expecting value"),
    (b'{"protocol": "vxlan"}', "top level", "a list of records expected, found an object"),
    (b'"records"', "top level", "a list of records expected, found text"),
    (b'[["vxlan", "port_default"]]', "record", "an object expected, found a list"),
    (b'[{"reason": "caf\xe9"}]', "encoding", "not UTF-8 (byte 0xe9 at offset 16)"),
    (b"[" * 100000 + b"]" * 100000, "JSON", "nested too deeply"),
])
def test_a_damaged_matrix_json_is_one_line_naming_the_file(tmp_path, content, field, problem):
    (tmp_path / "matrix.json").write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        read_matrix(tmp_path)
    assert raised.value.where.startswith(str(tmp_path / "matrix.json"))
    assert raised.value.field == field and raised.value.problem.startswith(problem)


def test_a_missing_matrix_json_is_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="matrix.json: file: not found"):
        read_matrix(tmp_path)


def test_summary_counts_interoperating_pairs_and_shows_reasons():
    text = summary_table([CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1, None),
                          CaseResult("ipsec", "psk_tunnel", "b", "a", "failed", "no ESP from b\nmore", 1, None),
                          CaseResult("ipsec", "ike_only", "a", "a", "skipped", "host lacks ESP", 0, None)])
    lines = text.splitlines()
    assert lines[0] == "ipsec: 1/2 pair-cases interoperate (1 failed, 0 broken, 1 skipped)"
    assert lines[1].split() == ["1", "2", "3"]
    assert lines[2].split() == ["ike_only", "skip", "-", "-"]
    assert lines[3].split() == ["psk_tunnel", "-", "pass", "FAIL"]
    assert lines[4] == "  pairs: 1 a->a, 2 a->b, 3 b->a"
    assert lines[5] == "  FAILED psk_tunnel b->a: no ESP from b" and "more" not in text


def test_clause_and_title_come_from_the_case_docstring():
    from harness.results import describe_case
    assert describe_case("""RFC 7296 2.6: a responder under load answers with a COOKIE. The initiator
        repeats its request.""") == ("RFC 7296 2.6", "RFC 7296 2.6: a responder under load answers with a COOKIE")
    assert describe_case("RFC 6023: childless.") == ("RFC 6023", "RFC 6023: childless")
    assert describe_case(None) == ("", "")


def test_run_facts_for_allure(tmp_path):
    from harness.results import write_run_facts
    from harness.run import Run
    run = Run("20261124-101500-42", "o", "main", tmp_path)
    write_run_facts(run, {"strongswan": "strongSwan 5.9.8"}, {"kernel-esp": "no (Requested type not found)"},
                    tmp_path / "allure-results")
    assert json.loads((tmp_path / "run.json").read_text()) == {
        "run": run.id, "versions": {"strongswan": "strongSwan 5.9.8"},
        "host": {"kernel-esp": "no (Requested type not found)"}}
    assert (tmp_path / "allure-results" / "environment.properties").read_text().splitlines() == [
        "run=20261124-101500-42", "vendor.strongswan=strongSwan 5.9.8", "host.kernel-esp=no (Requested type not found)"]
    categories = json.loads((tmp_path / "allure-results" / "categories.json").read_text())
    assert [c["matchedStatuses"] for c in categories] == [["failed"], ["broken"], ["skipped"]]


def test_phase_durations_split_a_case_at_its_marks():
    from harness.results import phase_durations
    marks = {"lab up": 11.0, "daemons ready": 12.5, "negotiation": 13.0}
    assert phase_durations(10.0, marks, call_end=14.0, end=14.75) == {
        "lab up": 1.0, "daemons ready": 1.5, "negotiation": 0.5, "verdict": 1.0, "teardown": 0.75}


def test_a_phase_never_reached_is_left_out_and_its_time_goes_to_the_next():
    from harness.results import phase_durations
    durations = phase_durations(10.0, {"lab up": 11.0, "daemons ready": 12.0}, call_end=13.0, end=13.5)
    assert "negotiation" not in durations and durations["verdict"] == 1.0
    assert phase_durations(10.0, {}, call_end=10.2, end=11.0) == {"verdict": 0.2, "teardown": 0.8}
