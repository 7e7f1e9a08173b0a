"""The dashboard in a real browser: Debian's Chromium driven by Playwright, every page checked by axe-core.

One collector (SQLite), one fake Entra ID and one browser for the module, so the suite stays quick; each
test has its own browser contexts (cookie jars). Pages must pass axe with no serious or critical
violation, run no script but ours (no Content-Security-Policy refusal in the console, nothing hostile
executed), and the main flow works with the keyboard alone.

The fast suite runs the sign-in and failing-host flow and the keyboard-only flow; the other flows (axe on
every page, two-person waiver, Entra ID, the auditor's evidence pack) are marked slow: `make test` runs
them after the fast suite.

Screenshots for docs/dashboard.md are written to docs/images/ only when RAMPART_SCREENSHOTS=1, so a test
run never rewrites tracked files.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.collector.dashboard.conftest import entra_dashboard
from tests.collector.dashboard.helpers import PASSWORD, Fleet, seed
from tests.conftest import run_cli
from tests.fakes.entra_oidc import Account, OidcProvider
from tests.fakes.microsoft import TENANT_ID, FakeMicrosoft
from tests.support.live import LiveCollector, live_collector

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed ({CHROMIUM})"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
SCREENSHOTS = Path(__file__).parents[3] / "docs" / "images"
SERIOUS = ("serious", "critical")


@dataclass
class Site:
    live: LiveCollector
    fleet: Fleet
    oidc: OidcProvider
    fake: FakeMicrosoft
    browser: Any
    axe: Any
    checked: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import trustme

    directory = tmp_path_factory.mktemp("dashboard-browser")
    with FakeMicrosoft(trustme.CA()) as fake:
        fake.oidc = OidcProvider(TENANT_ID)
        with live_collector(
            directory, f"sqlite:///{directory / 'collector.db'}", dashboard=entra_dashboard(fake)
        ) as live:
            callback = live.url + "/auth/entra/callback"
            live.config.dashboard.entra.redirect_url = callback
            fake.oidc.redirect_uris.add(callback)
            fleet = seed(live)
            with playwright_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    yield Site(live, fleet, fake.oidc, fake, browser, axe_module.Axe())
                finally:
                    browser.close()


class Visitor:
    """One person's browser context: pages checked for CSP refusals, hostile script and axe violations."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.context = site.browser.new_context(ignore_https_errors=True, accept_downloads=True)
        self.page = self.context.new_page()
        self.refusals: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.refusals.append(message.text)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.site.live.url + path)
        self.page.wait_for_load_state("load")
        return response

    def check(self, name: str | None = None) -> None:
        """The page as it is now: no CSP refusal, nothing hostile ran, no serious axe violation."""
        assert self.refusals == [], self.refusals
        assert self.page.evaluate("window.__pwned") is None
        results = self.site.axe.run(self.page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in SERIOUS
        ]
        assert bad == [], f"{self.page.url}: {bad}"
        self.site.checked.add(self.page.url.split("?")[0].replace(self.site.live.url, "") or "/")
        if name and os.environ.get("RAMPART_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            whole = name in ("overview", "tenant")  # to show their charts
            self.page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=whole)

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        self.go("/sign-in")
        self.page.fill("#name", name)
        self.page.fill("#password", password)
        self.page.click("#sign-in")
        self.page.wait_for_load_state("load")
        assert "Signed in as" in self.page.content()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(site: Site) -> Iterator[Any]:
    opened: list[Visitor] = []

    def open_one() -> Visitor:
        opened.append(Visitor(site))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


def test_sign_in_locally_and_read_why_a_host_fails(site: Site, visitor: Any) -> None:
    person = visitor()
    person.go("/hosts")
    assert "/sign-in" in person.page.url  # signed out: the sign-in page and nothing else
    assert "web-01" not in person.page.content()
    person.check("sign-in")
    person.sign_in("alice")
    person.go("/")
    person.check("overview")
    assert person.page.locator("#areas-table").is_visible()
    assert person.page.locator("#chart-overview-trend svg[role=img]").count() == 1
    person.go("/hosts?status=failing")
    person.check("hosts")
    person.page.get_by_role("link", name='<img src=x onerror="window.__pwned=1">web-01').click()
    person.page.wait_for_load_state("load")
    assert person.page.locator("#host-name").inner_text().startswith("<img src=x")  # shown as text
    first = person.page.locator("#result-1")
    assert "Security updates installed" in first.inner_text() or "Disks are encrypted" in first.inner_text()
    first.get_by_text("Observed facts and expectation").click()
    assert "oldest_days" in person.page.content() or "volumes" in person.page.content()
    assert "What to do" in first.inner_text()
    person.check("host")


@pytest.mark.slow
def test_a_waiver_requested_and_approved_by_two_people_turns_the_result_waived(site: Site, visitor: Any) -> None:
    host = site.fleet.hosts["lap-02"].agent_id
    alice, bob = visitor(), visitor()
    alice.sign_in("alice")
    alice.go(f"/waivers/new?check=council/firewall-on&host={host}")
    alice.page.click("#request-waiver")  # nothing filled in but the prefilled parts: the errors say what
    alice.page.wait_for_load_state("load")
    assert alice.page.locator(".govuk-error-summary").is_visible()
    alice.check("waiver-errors")
    alice.page.fill("#justification", "Replaced next month; <b>isolated</b> meanwhile")
    alice.page.fill("#expires-day", "31")
    alice.page.fill("#expires-month", "12")
    alice.page.fill("#expires-year", "2099")
    alice.page.click("#request-waiver")
    alice.page.wait_for_load_state("load")
    assert "The waiver was requested" in alice.page.content()
    assert alice.page.locator("#approve").count() == 0  # the requester is not offered approval
    alice.check("waiver")
    waiver_url = alice.page.url.split("?")[0]
    bob.sign_in("bob")
    bob.page.goto(waiver_url)
    bob.page.click("#approve")
    bob.page.wait_for_load_state("load")
    assert "The waiver was approved" in bob.page.content()
    bob.go(f"/hosts/{host}")
    assert bob.page.locator(".govuk-tag--purple", has_text="Waived").count() >= 1
    bob.go("/waivers")
    bob.check("waivers")


def test_the_main_flow_with_the_keyboard_alone(site: Site, visitor: Any) -> None:
    person = visitor()
    person.go("/sign-in")
    page = person.page

    def tab_to(test: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(test):
                return
        raise AssertionError(f"Tab never reached {test}")

    tab_to("document.activeElement.id === 'name'")
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Signed in as" in page.content()
    tab_to("document.activeElement.textContent.trim() === 'Hosts'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/hosts")
    tab_to("document.activeElement.id === 'q'")
    page.keyboard.type("srv")
    tab_to("document.activeElement.id === 'apply-filters'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "q=srv" in page.url
    tab_to("document.activeElement.textContent.trim() === 'srv-03'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#host-name").inner_text() == "srv-03"
    # Focus is always visible: GOV.UK's yellow focus colour on the focused link.
    tab_to("document.activeElement.tagName === 'A'")
    colour = page.evaluate("getComputedStyle(document.activeElement).backgroundColor")
    assert colour in ("rgb(255, 221, 0)", "rgba(255, 221, 0, 1)"), colour


@pytest.mark.slow
def test_an_auditor_reads_and_downloads_the_evidence_pack_but_cannot_change_anything(
    site: Site, visitor: Any, tmp_path: Path
) -> None:
    carol = visitor()
    carol.sign_in("carol")
    menu = carol.page.locator(".govuk-service-navigation").inner_text()
    assert "Audit log" in menu and "Downloads" in menu and "Users" not in menu and "Agents" not in menu
    carol.go("/waivers")
    assert carol.page.locator("#new-waiver").count() == 0
    carol.go(f"/hosts/{site.fleet.failing.agent_id}")
    assert "Request a waiver" not in carol.page.content() and "Revoke this agent" not in carol.page.content()
    carol.go("/users")
    assert "You cannot do this" in carol.page.content()
    carol.check()
    # Even a form with her own session's CSRF token (from the sign-out form) changes nothing she may not.
    forged = carol.page.evaluate(
        """() => fetch('/users', {method: 'POST', body: new URLSearchParams({
               csrf_token: document.querySelector('input[name=csrf_token]').value, name: 'mallory', role: 'admin'})})
           .then(r => r.status)"""
    )
    assert forged == 403
    carol.go("/audit")
    carol.check("audit")
    carol.go("/downloads")
    carol.check("downloads")
    with carol.page.expect_download() as pending:
        carol.page.click("#download-evidence")
    saved = tmp_path / pending.value.suggested_filename
    pending.value.save_as(saved)
    with zipfile.ZipFile(saved) as pack:
        names = pack.namelist()
    assert any(n.endswith("manifest.json") for n in names), names
    verified = run_cli("rampart-collector", "evidence", "verify", str(saved))  # offline, as an auditor would
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_sign_in_with_microsoft(site: Site, visitor: Any) -> None:
    site.oidc.signed_in = Account("Ines.Auditor@contoso.example", "Ines", roles=["Rampart.Analyst"])
    person = visitor()
    person.go("/sign-in?next=/checks")
    person.page.click("#sign-in-microsoft")  # to the fake's page, whose form posts the answer back
    person.page.wait_for_url(site.live.url + "/checks")
    assert "ines.auditor@contoso.example" in person.page.content() and "(analyst)" in person.page.content()
    person.check("checks")


@pytest.mark.slow
def test_every_page_passes_axe(site: Site, visitor: Any) -> None:
    admin = visitor()
    admin.sign_in("admin")
    host = site.fleet.failing.agent_id
    pages = {
        "/": None,
        "/hosts": None,
        f"/hosts/{host}": None,
        "/checks": None,
        "/checks/council/patched": "check",
        "/tenant": "tenant",
        "/cloud": "cloud",
        "/waivers": None,
        "/waivers/new": "waiver-new",
        "/agents": "agents",
        "/users": "users",
        "/audit": None,
        "/downloads": None,
        "/no-such-page": None,
        "/api/v1/docs": None,
    }
    for path, name in pages.items():
        admin.go(path)
        if path == "/api/v1/docs":
            admin.page.wait_for_selector(".swagger-ui .info")  # rendered from our own files, offline
            assert admin.refusals == [], admin.refusals
            continue
        admin.check(name)
    admin.go("/agents")
    admin.page.click("#create-token")
    admin.page.wait_for_load_state("load")
    assert admin.page.locator("#new-token").inner_text().startswith("rpe_")
    admin.check()
    # A post without this session's CSRF token, from the browser itself, is refused.
    refused = admin.page.evaluate(
        """() => fetch('/users', {method: 'POST', body: new URLSearchParams({name: 'mallory', role: 'admin'})})
           .then(r => r.status)"""
    )
    assert refused == 403
    admin.go("/users")
    assert "mallory" not in admin.page.content()
    admin.go("/sign-in")  # signed in: sent on to the overview
    assert admin.page.url.rstrip("/") == site.live.url
