"""The output contract: verdict mapping, folding phases into one record, matrix.json and its summary."""
import json

from harness.results import CaseResult, pair_dir, phase_verdict, read_matrix, summary_table, write_matrix


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


def test_matrix_json_holds_exactly_the_contract_fields(tmp_path):
    results = [CaseResult("ipsec", "wrong_psk", "b", "a", "failed", "IKE_AUTH not answered", 2.5, None),
               CaseResult("ipsec", "psk_tunnel", "a", "b", "passed", "", 1.25, "pairs/ipsec/psk_tunnel/a__b/capture.pcap")]
    write_matrix(tmp_path, results)
    records = json.loads((tmp_path / "matrix.json").read_text())
    assert [set(r) for r in records] == [{"protocol", "case", "a", "b", "verdict", "reason", "duration_s", "pcap",
                                          "clause", "title", "phases", "measurements", "outcome", "expectation", "tries",
                                              "flaky", "reference", "previous"}] * 2
    assert [r["case"] for r in records] == ["psk_tunnel", "wrong_psk"]  # sorted, stable for diffs
    assert read_matrix(tmp_path) == sorted(results, key=lambda r: r.case)


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
