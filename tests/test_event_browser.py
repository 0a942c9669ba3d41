"""The board in a real browser (Debian's chromium through Playwright, as tests/test_report_browser.py): the
anonymous public view, a participant's view after logging in with its token, the live update as a try lands
(no reload), and a sign-off by both participants of a cell. `./dev test` installs the browser."""
from pathlib import Path

import pytest

from event_support import BoardProcess, add_try, make_event, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
NAMES = ["linux", "ovs", "scapy", "kernel-team", "switch-team", "scapy-team", "Kernel Team", "Switch Team"]


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


@pytest.fixture
def event(tmp_path):
    folder = tmp_path / "event"
    tokens = make_event(folder)
    add_try(folder, "20261206-070000-1", "unicast", "linux", "ovs", "failed", "linux never answered ovs")
    board = BoardProcess(folder)
    yield folder, tokens, board
    board.stop()


class Page:
    """A page of the board in its own browser context (its own cookies), with every console error it saw."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.wait_for_selector("#view[data-view='public']")
        self.page.evaluate("window.notReloaded = true")  # gone if the page ever reloads

    def login(self, token: str, view: str = "participant") -> None:
        self.page.fill("#token", token)
        self.page.click("#login button")
        self.page.wait_for_selector(f"#view[data-view='{view}']")

    def cells(self) -> list[dict]:
        return self.page.eval_on_selector_all("#cells tbody tr", """rows => rows.map(r => ({
            id: r.dataset.cell, verdict: r.dataset.verdict, state: r.dataset.state,
            a: r.children[2].innerText, b: r.children[3].innerText}))""")

    def still_the_same_page(self) -> bool:
        return self.page.evaluate("window.notReloaded === true")

    def close(self) -> None:
        assert self.errors == [], self.errors
        self.context.close()


def test_public_view_is_anonymous_and_updates_live(browser, event):
    folder, _, board = event
    page = Page(browser, board.url)
    [cell] = page.cells()
    assert cell["verdict"] == "failed" and cell["a"].startswith("Participant ")
    text = page.page.inner_text("body")
    for name in NAMES:
        assert name not in text, name
    assert "never answered" not in text
    add_try(folder, "20261206-070000-1", "unicast", "scapy-vtep", "ovs", "passed")  # the runner, elsewhere
    wait_for(lambda: len(page.cells()) == 2, what="the new try on the board")
    assert sorted(c["verdict"] for c in page.cells()) == ["failed", "passed"]
    assert page.still_the_same_page()
    page.close()


def test_a_participant_logs_in_sees_its_cells_and_evidence_and_both_sign_off(browser, event):
    folder, tokens, board = event
    kernel = Page(browser, board.url)
    kernel.login(tokens["kernel-team"])
    assert "kernel-team" in kernel.page.inner_text("#view")
    mine = kernel.page.locator("#my-cells .cell")
    assert mine.count() == 1
    assert "vxlan/unicast/linux->ovs" in mine.first.inner_text() and "linux never answered ovs" in mine.first.inner_text()
    links = kernel.page.eval_on_selector_all("#my-cells a.evidence", "links => links.map(a => a.innerText)")
    assert links == ["capture.pcap", "vtep1-linux.log"]
    response = kernel.page.request.get(board.url + kernel.page.locator("#my-cells a.evidence", has_text="vtep1-linux.log")
                                       .get_attribute("href"))
    assert response.status == 200 and response.text() == "log\n"  # the cookie opened it, no token in the URL

    public = Page(browser, board.url)
    switch = Page(browser, board.url)
    switch.login(tokens["switch-team"])
    kernel.page.click("#my-cells .cell button[data-word='verified']")
    wait_for(lambda: "kernel-team: verified" in switch.page.inner_text("#my-cells"), what="kernel-team's word")
    assert public.cells()[0]["state"] == "to be verified"  # one of two
    switch.page.fill("#my-cells textarea", "our capture shows no VXLAN from linux")
    switch.page.click("#my-cells .cell button[data-word='disputed']")
    wait_for(lambda: public.cells()[0]["state"] == "disputed", what="the dispute on the public board")
    wait_for(lambda: "our capture shows no VXLAN" in kernel.page.inner_text("#my-cells"), what="the note")
    switch.page.click("#my-cells .cell button[data-word='verified']")
    wait_for(lambda: public.cells()[0]["state"] == "verified", what="both participants' confirmation")
    assert "our capture" not in public.page.inner_text("body")  # notes stay with the participants
    assert all(p.still_the_same_page() for p in (kernel, switch, public))
    for page in (kernel, switch, public):
        page.close()


def test_a_wrong_token_says_only_that(browser, event):
    _, tokens, board = event
    page = Page(browser, board.url)
    page.page.fill("#token", tokens["kernel-team"][:-2] + "xx")
    page.page.click("#login button")
    wait_for(lambda: page.page.inner_text("#login-error") == "unknown token", what="the refusal")
    assert page.page.get_attribute("#view", "data-view") == "public"
    page.errors = [e for e in page.errors if "401" not in e]  # the browser logs the refused request itself
    page.close()
