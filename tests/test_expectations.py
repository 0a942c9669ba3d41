"""Expectations (harness.expectations): reading and validating the file, and judging a cell against it."""
from __future__ import annotations

import pytest

from harness import expectations
from harness.errors import ConfigError
from harness.host import declared
from harness.vendor import load_registry
from support import ROOT

CAPS = set(declared(load_registry(ROOT / "vendors").values()))  # what the shipped harness and vendors declare


def rules(tmp_path, text: str):
    path = tmp_path / "expect.toml"
    path.write_text(text)
    return expectations.load(path, CAPS)


def test_an_unlisted_cell_is_expected_to_pass(tmp_path):
    r = rules(tmp_path, "")
    assert r.judge("vxlan/unicast/linux->ovs", "passed", "", {})[0] == "expected"
    assert r.judge("vxlan/unicast/linux->ovs", "failed", "no ping", {})[0] == "unexpected"
    assert r.judge("vxlan/unicast/linux->ovs", "skipped", "host lacks x", {})[0] == "unexpected"


def test_the_first_matching_entry_wins_and_its_reason_must_match(tmp_path):
    r = rules(tmp_path, """
[[cell]]
match = "vxlan/port_default/linux->ovs"
verdict = "failed"
reason = "8472"
note = "Linux's default port"

[[cell]]
match = "vxlan/port_default/*"
verdict = "skipped"
""")
    outcome, entry = r.judge("vxlan/port_default/linux->ovs", "failed", "linux sent to 8472", {})
    assert outcome == "expected" and entry.note == "Linux's default port"
    # the same verdict for another reason (the vendor answered nothing at all) is not what was expected
    assert r.judge("vxlan/port_default/linux->ovs", "failed", "no VXLAN frame on the wire", {})[0] == "unexpected"
    assert r.judge("vxlan/port_default/ovs->linux", "skipped", "anything", {})[0] == "expected"


def test_a_cell_expected_to_fail_that_passes_is_fixed_and_broken_is_never_expected(tmp_path):
    r = rules(tmp_path, '[[cell]]\nmatch = "l2tp/*/xl2tpd->*"\nverdict = "failed"\n')
    assert r.judge("l2tp/hidden_avps/xl2tpd->l2tpns", "passed", "", {})[0] == "fixed"
    assert r.judge("l2tp/hidden_avps/xl2tpd->l2tpns", "broken", "timed out", {})[0] == "unexpected"
    assert r.judge("l2tp/hidden_avps/l2tpns->xl2tpd", "passed", "", {})[0] == "expected"


def test_host_conditions_choose_the_entry_for_this_host(tmp_path):
    r = rules(tmp_path, """
[[cell]]
match = "ipsec/*/libreswan->*"
verdict = "skipped"
reason = "kernel ESP"
host = ["!kernel-esp"]
""")
    lacking, having = {"kernel-esp": False}, {"kernel-esp": True}
    assert r.judge("ipsec/psk_tunnel/libreswan->strongswan", "skipped", "host lacks ESP in the kernel's XFRM "
                   "(kernel ESP)", lacking)[0] == "expected"
    # on a host with kernel ESP the entry does not apply: the cell must pass
    assert r.judge("ipsec/psk_tunnel/libreswan->strongswan", "skipped", "kernel ESP", having)[0] == "unexpected"
    assert r.judge("ipsec/psk_tunnel/libreswan->strongswan", "passed", "", having)[0] == "expected"


def test_host_answers_read_run_json_style_answers():
    assert expectations.host_answers({"kernel-esp": "no (Requested type not found)", "tun": "yes"}) == \
        {"kernel-esp": False, "tun": True}


@pytest.mark.parametrize("text, field, problem", [
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'broken'\n", "cell 1 (a/b/c->d): verdict", "never expected"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'failed'\nreasons = 'x'\n", "cell 1 (a/b/c->d): reasons",
     "unknown key"),
    ("[[cell]]\nverdict = 'failed'\n", "cell 1: match", "required"),
    ("[[cell]]\nmatch = 'port_default'\nverdict = 'failed'\n", "cell 1 (port_default): match", "protocol/case/a->b"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'failed'\nreason = '(8472'\n", "cell 1 (a/b/c->d): reason",
     "not a regular expression"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'passed'\nreason = 'x'\n", "cell 1 (a/b/c->d): reason", "no reason"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'skipped'\nhost = ['!kernel-espp']\n", "cell 1 (a/b/c->d): host",
     "unknown host capability 'kernel-espp'"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'skipped'\nhost = '!kernel-esp'\n", "cell 1 (a/b/c->d): host",
     "must be a list"),
    ("[[cell]]\nmatch = 'a/b/c->d'\nverdict = 'failed'\nnote = 3\n", "cell 1 (a/b/c->d): note", "string"),
    ("[cell]\nmatch = 'a/b/c->d'\n", "cell", "array of tables"),
    ("[[cells]]\nmatch = 'a/b/c->d'\n", "cells", "unknown key"),
    ("[[cell]\nmatch = 'a/b/c->d'\n", "(syntax)", ""),
])
def test_a_bad_file_is_one_line_naming_the_file_and_the_field(tmp_path, text, field, problem):
    with pytest.raises(ConfigError) as err:
        rules(tmp_path, text)
    assert err.value.where == str(tmp_path / "expect.toml") and err.value.field == field
    assert problem in err.value.problem and "\n" not in str(err.value)


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(b"[[cell]]\nmatch = '\xff'\n"), "not UTF-8"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: None, "not found"),
])
def test_an_unreadable_file_is_one_line(tmp_path, make, problem):
    path = tmp_path / "expect.toml"
    make(path)
    with pytest.raises(ConfigError, match=problem):
        expectations.load(path, CAPS)


def test_a_draft_pins_the_run_it_came_from(tmp_path):
    from harness.results import CaseResult
    results = [CaseResult("vxlan", "port_default", "linux", "ovs", "failed", "sent to 8472 (not 4789) [x]'s", 1.0, None),
               CaseResult("ipsec", "psk_tunnel", "libreswan", "strongswan", "skipped", "host lacks ESP\nmore", 0.0, None),
               CaseResult("vxlan", "unicast", "linux", "ovs", "passed", "", 1.0, None)]
    path = tmp_path / "draft.toml"
    path.write_text(expectations.draft(results))
    drafted = expectations.load(path, CAPS)
    assert [e.match for e in drafted.entries] == ["ipsec/psk_tunnel/libreswan->strongswan",
                                                  "vxlan/port_default/linux->ovs"]
    for r in results:
        key = expectations.cell_key(r.protocol, r.case, r.a, r.b)
        assert drafted.judge(key, r.verdict, r.reason, {})[0] == "expected"


def test_vm_is_a_condition_beside_the_host_capabilities(tmp_path):
    """`vm` (nodes may run as microVMs: --kernel auto or vm) is known to every reader of an expectations file, the
    default-matrix test's included, not only to the plugin."""
    path = tmp_path / "e.toml"
    path.write_text('[[cell]]\nmatch = "ipsec/psk_tunnel/libreswan->*"\nverdict = "skipped"\nreason = "kernel-esp"\n'
                    'host = ["!kernel-esp", "!vm"]\n')
    entry = expectations.load(path, {"kernel-esp"}).entries[0]
    assert entry.holds_on({"kernel-esp": False, "vm": False}) and not entry.holds_on({"kernel-esp": False, "vm": True})
