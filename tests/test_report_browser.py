"""The report pages in a real browser (Debian's chromium, driven by Playwright), over file:// as a reader opens
them: no console errors, nothing fetched from anywhere, one cell per pair-case with its verdict read from the
DOM, every link resolving to a file, every ladder.svg rendering.

The reports folder is built from real artifacts (tests/data: strongSwan's capture and logs, and the transcript
and ladder the harness makes from them) with a hand-written matrix.json. `./dev test` installs the browser
(scripts/setup-host.sh --test-tools); without it these tests fail, saying so.
"""
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.report import write_pages

DATA = Path(__file__).parent / "data"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# (protocol, case, a, b, verdict, reason, the tests/data capture whose artifacts the pair folder gets)
PAIRS = [
    ("ipsec", "psk_tunnel", "strongswan", "strongswan", "passed", "", "strongswan_psk_tunnel"),
    ("ipsec", "psk_tunnel", "libreswan", "libreswan", "skipped", "host lacks ESP in the kernel's XFRM", None),
    ("ipsec", "wrong_psk", "strongswan", "strongswan", "failed", "no N(AUTHENTICATION_FAILED) <in> IKE_AUTH",
     "strongswan_wrong_psk"),
    ("ipsec", "rekey", "strongswan", "libreswan", "broken", "TimeoutError: pluto did not start", None),
    ("ipsec", "fragmentation", "strongswan", "strongswan", "passed", "", "strongswan_fragmentation"),
    ("ipsec", "truncated_request", "probe", "strongswan", "failed", "answered: N(INVALID_SYNTAX)", None),
    ("l2tp", "tunnel", "xl2tpd", "xl2tpd", "skipped", "host lacks l2tp_ppp", None),
]
VERDICT_COLORS = 4  # passed, failed, broken, skipped: each its own background


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    from harness.protocols.ipsec.ladder import ladder
    from harness.protocols.ipsec.transcript import transcript

    root = tmp_path_factory.mktemp("reports")
    records = []
    for protocol, case, a, b, verdict, reason, data in PAIRS:
        folder = root / "pairs" / protocol / case / f"{a}__{b}"
        folder.mkdir(parents=True)
        pcap = None
        if data:
            shutil.copy(DATA / f"{data}.pcap", folder / "capture.pcap")
            shutil.copy(DATA / f"{data}.initiator.log", folder / f"initiator-{a}.log")
            shutil.copy(DATA / f"{data}.responder.log", folder / f"responder-{b}.log")
            (folder / "transcript.txt").write_text(transcript(folder / "capture.pcap") + "\n")
            (folder / "ladder.svg").write_text(ladder(folder / "capture.pcap", title=f"{protocol} / {case}"))
            pcap = str((folder / "capture.pcap").relative_to(root))
        records.append({"protocol": protocol, "case": case, "a": a, "b": b, "verdict": verdict, "reason": reason,
                        "duration_s": 2.0, "pcap": pcap, "clause": "RFC 7296 2.15", "title": f"RFC 7296 2.15: {case}"})
    (root / "matrix.json").write_text(json.dumps(records))
    write_pages(root)
    return root


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: run ./dev test (it installs the project's "
                    "dependencies and the browser)", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: run ./dev test (scripts/setup-host.sh --test-tools installs "
                    "Debian's chromium)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Visit:
    """A page opened over file://, with every console error, page error and request off the disk it saw."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.fetched: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"{r.url}: {r.failure}"))
        self.page.on("request", lambda r: r.url.startswith(("file:", "data:")) or self.fetched.append(r.url))
        response = self.page.goto(path.as_uri())
        assert response is None or response.ok, path
        assert (self.errors, self.fetched) == ([], []), path

    def links(self) -> list[str]:
        return self.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")


def pages(reports: Path) -> list[Path]:
    return [reports / "matrix.html", *sorted((reports / "conformance").glob("*.html"))]


def test_every_page_opens_offline_without_errors(browser, reports):
    for path in pages(reports):
        visit = Visit(browser, path)
        assert visit.page.title() and visit.page.locator("h1").is_visible()
        visit.page.close()


def test_one_cell_per_pair_case_with_its_verdict(browser, reports):
    visit = Visit(browser, reports / "matrix.html")
    cells = visit.page.eval_on_selector_all("td[data-verdict]", """cells => cells.map(td => ({
        key: [td.dataset.case, td.dataset.a, td.dataset.b], verdict: td.dataset.verdict, classes: [...td.classList],
        text: td.innerText.trim().split(/\\s+/)[0], title: td.title, color: getComputedStyle(td).backgroundColor,
        width: td.getBoundingClientRect().width}))""")
    assert sorted(tuple(c["key"]) for c in cells) == sorted((case, a, b) for _, case, a, b, *_ in PAIRS)
    expected = {(case, a, b): (verdict, reason) for _, case, a, b, verdict, reason, _ in PAIRS}
    colors = {}
    for c in cells:
        verdict, reason = expected[tuple(c["key"])]
        assert (c["verdict"], c["text"]) == (verdict, verdict) and verdict in c["classes"] and c["width"] > 0
        assert c["title"] == (reason or "passed in 2.0 s")  # the hover text, unescaped by the browser
        colors.setdefault(verdict, set()).add(c["color"])
    assert all(len(shades) == 1 for shades in colors.values()) and len(set.union(*colors.values())) == VERDICT_COLORS
    problems = visit.page.eval_on_selector_all("#problems li", "items => items.map(li => li.dataset.case)")
    assert problems == ["rekey", "truncated_request", "wrong_psk"]


def test_every_link_resolves_to_a_file(browser, reports):
    for path in pages(reports):
        visit = Visit(browser, path)
        for href in visit.links():
            url = urlparse(href)
            assert url.scheme == "file", href
            if url.fragment and Path(unquote(url.path)) == path:
                assert visit.page.locator(f"#{url.fragment}").count() == 1, href
            else:
                assert Path(unquote(url.path)).is_file(), f"{path.name} links to a missing {href}"
        visit.page.close()


def test_every_ladder_renders(browser, reports):
    ladders = set()
    for path in pages(reports):
        visit = Visit(browser, path)
        ladders.update(href for href in visit.links() if href.endswith("/ladder.svg"))
        visit.page.close()
    assert len(ladders) == 3  # psk_tunnel, wrong_psk, fragmentation
    for href in sorted(ladders):
        visit = Visit(browser, Path(unquote(urlparse(href).path)))
        assert visit.page.locator("parsererror").count() == 0, href
        box = visit.page.locator("svg").first.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0, href
        assert "IKE_SA_INIT" in visit.page.locator("svg").first.text_content()
        visit.page.close()
