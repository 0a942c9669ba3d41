"""The report pages from a hand-written matrix.json: one cell per pair-case with its verdict, links only to files
that exist, every reason escaped, the conformance pages grouped by RFC with both roles."""
import json
import re
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.report import write_pages
from harness.report.conformance import split_clause

EVIL = '<script>alert("x")</script> & "quoted"'


def record(protocol, case, a, b, verdict, reason="", clause="", title="", probe=None):
    return {"protocol": protocol, "case": case, "a": a, "b": b, "verdict": verdict, "reason": reason,
            "duration_s": 1.5, "pcap": None, "clause": clause, "title": title, "probe": probe}


PSK = ("RFC 7296 1.1.1", "RFC 7296 1.1.1/1.2: IKE_SA_INIT and IKE_AUTH set up the first CHILD SA")
RECORDS = [
    record("ipsec", "psk_tunnel", "strongswan", "strongswan", "passed", "", *PSK),
    record("ipsec", "psk_tunnel", "strongswan", "libreswan", "failed", f"no ESP from libreswan {EVIL}", *PSK),
    record("ipsec", "psk_tunnel", "libreswan", "strongswan", "broken", "TimeoutError: pluto did not start", *PSK),
    record("ipsec", "psk_tunnel", "libreswan", "libreswan", "skipped", "host lacks ESP in the kernel's XFRM", *PSK),
    record("ipsec", "cookie", "strongswan", "strongswan", "passed", "", "RFC 7296 2.6", "RFC 7296 2.6: a COOKIE"),
    record("ipsec", "truncated_request", "probe", "strongswan", "failed", "answered: N(INVALID_SYNTAX)",
           "RFC 7296 2.21.1", "RFC 7296 2.21.1/3.10.1: a truncated request is not answered", probe="a"),
    record("ipsec", "truncated_request", "probe", "libreswan", "passed", "",
           "RFC 7296 2.21.1", "RFC 7296 2.21.1/3.10.1: a truncated request is not answered", probe="a"),
    record("ipsec", "ike_only", "strongswan", "strongswan", "passed", "", "RFC 6023", "RFC 6023: childless"),
    record("l2tp", "tunnel", "xl2tpd", "xl2tpd", "passed", "", "RFC 2661 5.1", "RFC 2661 5.1: a tunnel"),
    record("l2tp", "hello", "xl2tpd", "xl2tpd", "skipped", "host lacks l2tp_ppp", "", "Hello keeps it up"),
]
KEYS = {(r["case"], r["a"], r["b"]) for r in RECORDS}


@pytest.fixture
def reports(tmp_path) -> Path:
    """A run's folder: matrix.json, run.json, and pair folders holding some of the files a run leaves."""
    (tmp_path / "matrix.json").write_text(json.dumps(RECORDS))
    (tmp_path / "run.json").write_text(json.dumps({
        "run": "20261124-101112-42", "versions": {"strongswan": "6.0.1"},
        "host": {"kernel-esp": "no (Error: Requested type not found.)", "tun": "yes"}}))
    for r in RECORDS:  # a run makes every pair's folder, a skipped pair's stays empty
        (tmp_path / "pairs" / r["protocol"] / r["case"] / f"{r['a']}__{r['b']}").mkdir(parents=True)
    full = tmp_path / "pairs/ipsec/psk_tunnel/strongswan__strongswan"
    for name in ("transcript.txt", "capture.pcap", "ladder.svg", "initiator-strongswan.log"):
        (full / name).write_text("x")
    (tmp_path / "pairs/ipsec/psk_tunnel/strongswan__libreswan/responder-libreswan.log").write_text("x")
    (tmp_path / "pairs/ipsec/psk_tunnel/strongswan__libreswan/capture.pcap").write_text("x")
    write_pages(tmp_path)
    return tmp_path


class Elements(HTMLParser):
    """Every start tag as (tag, attributes, the text up to the next tag)."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict, str]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs), ""))

    def handle_data(self, data):
        if self.found:
            tag, attrs, text = self.found[-1]
            self.found[-1] = (tag, attrs, text + data)

    def all(self, tag: str, **having) -> list[tuple[dict, str]]:
        return [(attrs, text.strip()) for t, attrs, text in self.found
                if t == tag and all(attrs.get(k.replace("_", "-")) == v for k, v in having.items())]


def cells(page: Path) -> list[dict]:
    return [attrs for attrs, _ in Elements(page.read_text()).all("td") if "data-verdict" in attrs]


def test_one_cell_per_case_and_pair_with_its_verdict_class(reports):
    found = cells(reports / "matrix.html")
    assert sorted((c["data-case"], c["data-a"], c["data-b"]) for c in found) == sorted(KEYS)
    expected = {(r["case"], r["a"], r["b"]): r["verdict"] for r in RECORDS}
    for c in found:
        verdict = expected[c["data-case"], c["data-a"], c["data-b"]]
        assert c["data-verdict"] == verdict and verdict in c["class"].split()


def test_a_grid_has_initiators_down_and_responders_across_in_a_stable_order(reports):
    psk = [(c["data-a"], c["data-b"]) for c in cells(reports / "matrix.html") if c["data-case"] == "psk_tunnel"]
    assert psk == [("libreswan", "libreswan"), ("libreswan", "strongswan"),
                   ("strongswan", "libreswan"), ("strongswan", "strongswan")]


def test_summary_per_protocol_and_problems_first(reports):
    html = (reports / "matrix.html").read_text()
    assert "ipsec: 4/7 pair-cases interoperate, 2 failed, 1 broken, 1 skipped" in html
    assert "l2tp: 1/1 pair-cases interoperate, 1 skipped" in html
    problems = html[html.index('id="problems"'):html.index("</section>")]
    listed = [(a["data-case"], a["data-a"], a["data-b"]) for a, _ in Elements(problems).all("li")]
    assert listed == [("psk_tunnel", "libreswan", "strongswan"), ("psk_tunnel", "strongswan", "libreswan"),
                      ("truncated_request", "probe", "strongswan")]
    assert "TimeoutError: pluto did not start" in problems and "answered: N(INVALID_SYNTAX)" in problems


def pages(reports: Path) -> list[Path]:
    return [reports / "matrix.html", *sorted((reports / "conformance").glob("*.html"))]


def test_links_go_only_to_files_that_exist(reports):
    for page in pages(reports):
        for attrs, _ in Elements(page.read_text()).all("a"):
            href = attrs["href"]
            if not href.startswith("#"):
                assert (page.parent / unquote(href)).is_file(), f"{page.name}: {href}"
    links = {(a.get("href"), text) for a, text in Elements((reports / "matrix.html").read_text()).all("a")}
    pair = "pairs/ipsec/psk_tunnel/strongswan__strongswan"
    assert {(f"{pair}/transcript.txt", "passed"), (f"{pair}/capture.pcap", "pcap"),
            (f"{pair}/ladder.svg", "ladder")} <= links
    # no transcript: the verdict links to the log; nothing in the folder: no link at all
    assert ("pairs/ipsec/psk_tunnel/strongswan__libreswan/responder-libreswan.log", "failed") in links
    assert not any("libreswan__strongswan" in href or "libreswan__libreswan" in href for href, _ in links)
    assert ("conformance/strongswan.html", "strongswan") in links


def test_reasons_are_escaped_everywhere(reports):
    for page in pages(reports):
        html = page.read_text()
        assert "<script" not in html, page.name
    html = (reports / "matrix.html").read_text()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quoted&#34;" in html
    failed = [c for c in cells(reports / "matrix.html") if c["data-verdict"] == "failed" and c["data-a"] != "probe"]
    assert failed[0]["title"] == f"no ESP from libreswan {EVIL}"  # the hover text, intact once unescaped


def test_clause_splits_into_rfc_and_section():
    assert split_clause("RFC 7296 2.6") == ("RFC 7296", "2.6")
    assert split_clause("RFC 7296 2.21.1") == ("RFC 7296", "2.21.1")
    assert split_clause("RFC 6023") == ("RFC 6023", "")
    assert split_clause("") == ("Other cases", "")


def groups(page: Path) -> dict[str, list[str]]:
    """RFC heading -> the cases under it, in page order."""
    html = page.read_text()
    out = {}
    for chunk in html.split("<h2")[1:]:
        heading = re.match(r'[^>]*>([^<]*)<', chunk).group(1)
        out[heading] = re.findall(r'<tr id="[a-z0-9]+-([a-z_0-9]+)">', chunk)
    return out


def test_conformance_groups_cases_by_rfc_in_section_order(reports):
    assert groups(reports / "conformance/strongswan.html") == {
        "RFC 6023": ["ike_only"], "RFC 7296": ["psk_tunnel", "cookie", "truncated_request"]}  # 1.1.1 < 2.6 < 2.21.1
    assert groups(reports / "conformance/xl2tpd.html") == {"RFC 2661": ["tunnel"], "Other cases": ["hello"]}
    assert sorted(p.name for p in (reports / "conformance").iterdir()) == [
        "libreswan.html", "strongswan.html", "xl2tpd.html"]  # no page for the harness's probe


def test_conformance_shows_both_roles_against_every_peer_with_reasons(reports):
    html = (reports / "conformance/strongswan.html").read_text()
    entries = {(a["data-role"], a["data-case"], a["data-a"], a["data-b"], a["data-verdict"])
               for a, _ in Elements(html).all("li") if "data-role" in a}
    assert {e for e in entries if e[1] == "psk_tunnel"} == {
        ("initiator", "psk_tunnel", "strongswan", "strongswan", "passed"),
        ("initiator", "psk_tunnel", "strongswan", "libreswan", "failed"),
        ("responder", "psk_tunnel", "strongswan", "strongswan", "passed"),
        ("responder", "psk_tunnel", "libreswan", "strongswan", "broken")}
    assert ("responder", "truncated_request", "probe", "strongswan", "failed") in entries
    assert "answered: N(INVALID_SYNTAX)" in html and "TimeoutError: pluto did not start" in html
    assert "6.0.1" in html and "2026-11-24 10:11:12" in html and "20261124-101112-42" in html
    assert "kernel-esp" in html and "Error: Requested type not found." in html
    assert "tun" not in re.sub(r"<[^>]*>", "", html).split("this host")[1].split("skipped")[0]


def test_the_report_command_rewrites_the_pages(reports, capsys):
    (reports / "matrix.html").unlink()
    (reports / "conformance/gone.html").write_text("a vendor no longer in the matrix")
    assert main(["report", str(reports)]) == 0
    assert (reports / "matrix.html").is_file() and not (reports / "conformance/gone.html").exists()
    assert str(reports / "conformance/strongswan.html") in capsys.readouterr().out
    assert main(["report", str(reports / "nope")]) == 2  # bad input


TAX = {"overlay_mbps": 2020.743, "underlay_mbps": 16442.375, "overlay_rtt_ms": 0.106, "underlay_rtt_ms": 0.084,
       "overhead_bytes": 50.0, "tax_seconds": 1.0}


def tax_rows(page: Path) -> list[tuple[str, str, list[str]]]:
    """(a, b, the row's cells as text) of every overlay tax table row."""
    html = page.read_text()
    rows = re.findall(r'<tr data-case="overlay_tax" data-a="([^"]+)" data-b="([^"]+)">(.*?)</tr>', html, re.S)
    return [(a, b, [" ".join(unescape(re.sub(r"<[^>]*>", " ", c)).split())
                    for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]) for a, b, body in rows]


def test_measured_overlay_tax_gets_a_table_per_protocol(tmp_path):
    records = [dict(record("vxlan", "overlay_tax", "linux", "ovs", "passed"), measurements=TAX),
               dict(record("vxlan", "overlay_tax", "ovs", "linux", "failed", "TCP through the overlay: ..."),
                    measurements={"underlay_mbps": 15000.0, "tax_seconds": 1.0}),
               record("vxlan", "overlay_tax", "ovs", "ovs", "skipped", "no"),
               record("ipsec", "psk_tunnel", "strongswan", "strongswan", "passed")]
    (tmp_path / "matrix.json").write_text(json.dumps(records))
    write_pages(tmp_path)
    html = (tmp_path / "matrix.html").read_text()
    assert html.count("Overlay tax (relative to this host, 1-second TCP runs)") == 1
    assert 'id="vxlan-overlay-tax"' in html and 'id="ipsec-overlay-tax"' not in html
    assert tax_rows(tmp_path / "matrix.html") == [
        ("linux", "ovs", ["linux → ovs", "2,021", "16,442", "12.3%", "0.106", "0.084", "50"]),
        ("ovs", "linux", ["ovs → linux failed", "–", "15,000", "–", "–", "–", "–"])]  # what it measured


def test_the_tax_table_says_how_long_each_run_of_this_report_was(tmp_path):
    """Runs before issue 14 ran iperf3 for 2 s, later ones for 1 s: the page labels a report's figures with what its
    own cases recorded."""
    earlier = dict(record("vxlan", "overlay_tax", "linux", "ovs", "passed"), measurements=dict(TAX, tax_seconds=2.0))
    (tmp_path / "matrix.json").write_text(json.dumps([earlier]))
    write_pages(tmp_path)
    assert "Overlay tax (relative to this host, 2-second TCP runs)" in (tmp_path / "matrix.html").read_text()


def test_no_measurements_no_tax_table(reports):
    assert "Overlay tax" not in (reports / "matrix.html").read_text()


def test_the_pages_know_the_harness_probe_from_the_records_not_from_a_name(tmp_path):
    """A record says which side the harness's built-in probe played (`probe`): that side gets no conformance page
    and comes after the vendors, whatever it is called; a vendor that happens to be called "probe" is a vendor."""
    title = "RFC 7348 5: reserved bits are ignored"
    (tmp_path / "matrix.json").write_text(json.dumps([
        record("vxlan", "reserved_flags", "a-injector", "linux", "passed", "", "RFC 7348 5", title, probe="a"),
        record("vxlan", "reserved_flags", "a-injector", "ovs", "failed", "dropped", "RFC 7348 5", title, probe="a"),
        record("vxlan", "reserved_flags", "linux", "ovs", "failed", "dropped", "RFC 7348 5", title),
        record("vxlan", "unicast", "zebra", "probe", "passed", "", "RFC 7348 4", "RFC 7348 4: unicast"),
        record("vxlan", "unicast", "probe", "zebra", "passed", "", "RFC 7348 4", "RFC 7348 4: unicast"),
    ]))
    write_pages(tmp_path)
    assert sorted(p.name for p in (tmp_path / "conformance").iterdir()) == [
        "linux.html", "ovs.html", "probe.html", "zebra.html"]
    html = (tmp_path / "matrix.html").read_text()
    assert "<i>a-injector</i> is the harness" in html and "<i>probe</i> is the harness" not in html
    order = [(c["data-case"], c["data-a"], c["data-b"]) for c in cells(tmp_path / "matrix.html")]
    assert order == [("reserved_flags", "linux", "ovs"), ("reserved_flags", "a-injector", "linux"),
                     ("reserved_flags", "a-injector", "ovs"), ("unicast", "probe", "zebra"), ("unicast", "zebra", "probe")]
    listed = [(a["data-a"], a["data-b"]) for a, _ in Elements(html[html.index('id="problems"'):]).all("li")]
    assert listed[:2] == [("linux", "ovs"), ("a-injector", "ovs")]


def test_the_pages_never_ask_the_vendor_registry():
    """The report reads records only: importing it loads no vendor registry (a run's folder renders anywhere)."""
    code = ("import sys, harness.report.matrix, harness.report.conformance, harness.report.history; "
            "print(sorted(m for m in sys.modules if m in ('harness.vendor', 'harness.protocols')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_cell_that_ran_in_a_vm_is_marked_and_its_timings_are_not_shown_as_figures(tmp_path):
    """A vendor run as a qemu microVM (software emulation): the cell says VM with the kernel, run.json's vm shows
    under What was tested, and the overlay tax table prints no throughput or RTT for it (the overhead, read from the
    wire, stays)."""
    vm = {"xl2tpd": "6.1.0-50-amd64"}
    records = [dict(record("vxlan", "overlay_tax", "linux", "ovs", "passed"), measurements=TAX, vm=vm),
               dict(record("vxlan", "overlay_tax", "ovs", "linux", "passed"), measurements=TAX)]
    (tmp_path / "matrix.json").write_text(json.dumps(records))
    (tmp_path / "run.json").write_text(json.dumps({"run": "r1", "versions": {"linux": "6.1"}, "host": {},
                                                   "images": {"linux": {"id": "sha256:1", "packages": {}}},
                                                   "vm": vm}))
    write_pages(tmp_path)
    html = (tmp_path / "matrix.html").read_text()
    assert tax_rows(tmp_path / "matrix.html") == [
        ("linux", "ovs", ["linux → ovs"] + ["VM (emulated)"] * 5 + ["50"]),
        ("ovs", "linux", ["ovs → linux", "2,021", "16,442", "12.3%", "0.106", "0.084", "50"])]
    assert 'title="ran as a qemu microVM (software emulation): xl2tpd on kernel 6.1.0-50-amd64">VM</span>' in html
    assert "xl2tpd on kernel\n<code>6.1.0-50-amd64</code>" in html


def test_a_run_json_whose_vm_is_not_an_object_of_strings_is_one_line(tmp_path):
    (tmp_path / "matrix.json").write_text(json.dumps([record("vxlan", "unicast", "linux", "ovs", "passed")]))
    (tmp_path / "run.json").write_text(json.dumps({"run": "r1", "vm": {"xl2tpd": 6}}))
    with pytest.raises(ConfigError, match=r"run.json: vm: every value must be a string"):
        write_pages(tmp_path)
