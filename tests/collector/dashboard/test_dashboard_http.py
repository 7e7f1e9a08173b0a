"""The dashboard over HTTPS without a browser, on SQLite and PostgreSQL: sign-in, sessions, CSRF, roles,
throttling, hostile text, downloads, headers. (What needs a browser is in test_dashboard_browser.py.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.dashboard.config import DashboardConfig
from collector.storage.models import audit_log, dashboard_sessions, waivers
from tests.collector.dashboard.helpers import HOSTILE_FACT, HOSTILE_HOST, PASSWORD, Web, seed
from tests.conftest import run_cli
from tests.support.live import LiveCollector

PAGES = ["/", "/hosts", "/checks", "/tenant", "/cloud", "/waivers", "/waivers/new", "/audit", "/downloads"]
ADMIN_PAGES = ["/agents", "/users"]


def signed_in(live: LiveCollector, name: str) -> Web:
    web = Web(live)
    response = web.sign_in(name)
    assert response.status_code == 303, response.text
    return web


def test_a_signed_out_visitor_sees_nothing_but_the_sign_in_page(live: LiveCollector) -> None:
    fleet = seed(live)
    web = Web(live)
    for path in [*PAGES, *ADMIN_PAGES, f"/hosts/{fleet.failing.agent_id}", "/checks/council/patched", "/no-such"]:
        response = web.get(path, allow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in"), path
    page = web.get("/sign-in")
    assert page.status_code == 200 and "Sign in to Rampart" in page.text
    assert "web-01" not in page.text
    headers = page.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text  # no inline script: only <script src=...>
    assert web.get("/api/v1/summary").status_code == 401  # no session, no token
    posted = web.http.post(live.url + "/waivers/new", data={"check": "council/patched"})
    assert posted.url.split("?")[0].endswith("/sign-in")


def test_sign_in_sets_a_secure_session_that_sign_out_ends(live: LiveCollector) -> None:
    seed(live)
    web = Web(live)
    wrong = web.sign_in("alice", "not the password at all")
    assert wrong.status_code == 401 and "The user name or password is not right" in wrong.text
    response = web.sign_in("alice")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers["set-cookie"].split(", __Host") if "rampart_session=" in c)
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag in cookie
    assert cookie.lstrip("_").startswith("Host-rampart_session=") or cookie.startswith("__Host-rampart_session=")
    secret = web.http.cookies.get("__Host-rampart_session")
    assert secret and live.count(dashboard_sessions) == 1
    assert live.scalar(sa.select(dashboard_sessions.c.id)) != secret  # only its hash is stored
    home = web.get("/")
    assert home.status_code == 200 and "Signed in as" in home.text and "alice" in home.text
    assert web.post("/sign-out", {}, from_page="/").status_code == 303
    assert web.get("/", allow_redirects=False).status_code == 303
    # The old cookie, replayed, is dead too.
    replay = live.session()
    replay.cookies.set("__Host-rampart_session", secret)
    assert replay.get(live.url + "/", allow_redirects=False).status_code == 303
    actions = [row.action for row in live.rows(sa.select(audit_log.c.action).where(audit_log.c.actor == "user:alice"))]
    assert "session.sign_in" in actions and "session.sign_out" in actions


def test_repeated_failures_are_throttled_even_with_the_right_password(live: LiveCollector) -> None:
    seed(live)
    web = Web(live)
    for _ in range(live.config.dashboard.sign_in_max_failures):
        assert web.sign_in("bob", "guess guess guess").status_code == 401
    refused = web.sign_in("bob")
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert web.get("/", allow_redirects=False).status_code == 303
    # Another user is not held up by bob's failures.
    assert Web(live).sign_in("alice").status_code == 303
    throttled = live.rows(sa.select(audit_log).where(audit_log.c.action == "session.throttled"))
    assert throttled and throttled[0].target == "bob"


def test_posts_without_this_sessions_csrf_token_are_refused(live: LiveCollector) -> None:
    seed(live)
    alice = signed_in(live, "alice")
    form = {"check": "council/patched", "scope": "all", "justification": "no token", "expires-day": "1",
            "expires-month": "1", "expires-year": "2099"}  # fmt: skip
    bare = alice.http.post(live.url + "/waivers/new", data=form, allow_redirects=False)
    assert bare.status_code == 403 and "Form refused" in bare.text and "Nothing was changed" in bare.text
    bob = signed_in(live, "bob")
    foreign = alice.http.post(
        live.url + "/waivers/new", data={**form, "csrf_token": bob.token("/waivers/new")}, allow_redirects=False
    )
    assert foreign.status_code == 403
    assert live.count(waivers) == 0
    # Nor can a sign-in form be posted from elsewhere (login CSRF).
    stranger = Web(live)
    forged = stranger.http.post(live.url + "/sign-in", data={"name": "alice", "password": PASSWORD})
    assert forged.status_code == 403 and stranger.get("/", allow_redirects=False).status_code == 303
    assert alice.post("/waivers/new", form).status_code == 303 and live.count(waivers) == 1


def test_an_auditor_reads_and_exports_but_cannot_change_anything(live: LiveCollector) -> None:
    fleet = seed(live)
    carol = signed_in(live, "carol")
    for path in [*PAGES[:-3], "/audit", "/downloads", f"/hosts/{fleet.failing.agent_id}"]:
        assert carol.get(path).status_code == 200, path
    for path in ADMIN_PAGES:
        assert carol.get(path).status_code == 403, path
    assert carol.get("/waivers/new").status_code == 403
    before = live.count(audit_log)
    for path, fields in [
        ("/waivers/new", {"check": "council/patched", "scope": "all", "justification": "x"}),
        ("/users", {"name": "mallory", "role": "admin"}),
        ("/agents/tokens", {"uses": "5"}),
        (f"/agents/{fleet.failing.agent_id}/revoke", {}),
        ("/users/bob/disable", {}),
    ]:
        refused = carol.post(path, fields, from_page="/audit")
        assert refused.status_code == 403, path
    assert live.count(audit_log) == before
    # Her session stands for a token on the export downloads the dashboard links to (GET only).
    export = carol.get("/api/v1/export/results?format=csv")
    assert export.status_code == 200 and "council" in export.text
    assert carol.get("/api/v1/users").status_code == 403
    assert carol.http.post(live.url + "/api/v1/waivers", json={}).status_code == 401  # a cookie never changes things
    assert live.rows(sa.select(audit_log).where(audit_log.c.action == "export.results"))[0].actor == "user:carol"


def test_a_waiver_requested_by_one_person_and_approved_by_another_waives_the_result(live: LiveCollector) -> None:
    fleet = seed(live)
    host = fleet.failing.agent_id
    alice, bob = signed_in(live, "alice"), signed_in(live, "bob")
    justification = "Rebuilt next week <script>window.__pwned=5</script> =cmd|' /C calc'!A0"
    requested = alice.post(
        "/waivers/new",
        {"check": "council/patched", "scope": "hosts", "targets": host, "justification": justification,
         "ticket": "CHG-1", "expires-day": "31", "expires-month": "12", "expires-year": "2099"},
    )  # fmt: skip
    assert requested.status_code == 303
    waiver_page = requested.headers["location"].split("?")[0]
    waiver_id = waiver_page.rsplit("/", 1)[1]
    own = alice.post(f"{waiver_page}/approve", {}, from_page=waiver_page)
    assert own.status_code == 403 and "other than its requester" in own.text
    assert bob.post(f"{waiver_page}/approve", {}, from_page=waiver_page).status_code == 303
    page = bob.get(f"/hosts/{host}").text
    assert re.search(r"govuk-tag--purple\">Waived</strong>\s*Security updates installed", page)
    assert f"by waiver {waiver_id}" in page
    shown = bob.get(waiver_page).text
    assert "&lt;script&gt;window.__pwned=5&lt;/script&gt;" in shown and "<script>window.__pwned" not in shown
    rows = list(csv.reader(io.StringIO(bob.get("/waivers?format=csv").text)))
    assert rows[1][rows[0].index("justification")].startswith("Rebuilt")
    assert rows[1][rows[0].index("state")] == "approved"
    actors = {row.action: row.actor for row in live.rows(sa.select(audit_log).where(audit_log.c.target == waiver_id))}
    assert actors == {"waiver.request": "user:alice", "waiver.approve": "user:bob"}


def test_hostile_text_is_shown_as_text_in_pages_and_csv(live: LiveCollector) -> None:
    fleet = seed(live)
    formula = live.enrolled_agent(hostname='=HYPERLINK("http://evil")')
    admin = signed_in(live, "admin")
    pages = {
        "/": admin.get("/").text,
        "/hosts": admin.get("/hosts").text,
        "host": admin.get(f"/hosts/{fleet.failing.agent_id}").text,
        "/checks": admin.get("/checks").text,
        "check": admin.get("/checks/council/firewall-on?status=pass").text,
        "disk": admin.get("/checks/council/disk-encrypted").text,
    }
    for name, text in pages.items():
        assert "onerror=" not in text.replace("onerror=&#34;", "").replace("onerror=&quot;", ""), name
        assert "<script>window.__pwned" not in text, name
        assert "<b>bold</b>" not in text, name
    assert "&lt;img src=x onerror=" in pages["host"]  # the host name, as text
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in pages["host"] or "\\u003cscript" in pages["host"]
    assert "Firewall &lt;script&gt;window.__pwned=4&lt;/script&gt;" in pages["/checks"]
    assert "Turn on BitLocker or LUKS &lt;img" in pages["host"]  # remediation text from the stored policy
    hosts_csv = list(csv.reader(io.StringIO(admin.get("/hosts?format=csv").text)))
    names = [row[0] for row in hosts_csv[1:]]
    assert HOSTILE_HOST in names
    assert '\'=HYPERLINK("http://evil")' in names and formula.hostname not in names
    host_csv = admin.get(f"/hosts/{fleet.failing.agent_id}?format=csv").text
    assert HOSTILE_FACT in host_csv  # in a CSV cell it is inert text, kept as observed


def test_disabling_a_user_ends_their_sessions(live: LiveCollector) -> None:
    seed(live)
    bob = signed_in(live, "bob")
    admin = signed_in(live, "admin")
    assert admin.post("/users/bob/disable", {}, from_page="/users").status_code == 303
    assert bob.get("/", allow_redirects=False).status_code == 303
    assert Web(live).sign_in("bob").status_code == 401
    assert "disabled" in admin.get("/users").text


def test_hosts_filter_sort_and_page_with_stable_urls(live: LiveCollector) -> None:
    seed(live)
    admin = signed_in(live, "admin")
    failing = admin.get("/hosts?status=failing").text
    assert "web-01" in failing and "lap-02" in failing and "srv-03" not in failing
    errors = admin.get("/hosts?status=errors").text
    assert "srv-03" in errors and "lap-02" not in errors
    searched = admin.get("/hosts?q=LAP").text
    assert "lap-02" in searched and "srv-03" not in searched and "1 host match" in searched
    newest_first = admin.get("/hosts?sort=-name").text
    assert newest_first.index("srv-03") < newest_first.index("lap-02")
    assert 'href="/hosts?sort=-name&amp;format=csv"' in newest_first
    assert admin.get("/hosts?status=nonsense&sort=nonsense").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the CLI's storage is shared code
def test_users_set_password_from_the_command_line(live: LiveCollector, tmp_path: Path) -> None:
    seed(live)
    config = tmp_path / "cli.yaml"
    config.write_text(
        f"collector:\n  data_dir: {live.config.data_dir}\n  database_url: '{live.config.database_url}'\n",
        encoding="utf-8",
    )
    short = tmp_path / "short"
    short.write_text("too short\n", encoding="utf-8")
    refused = run_cli("rampart-collector", "--config", str(config), "users", "set-password", "alice",
                      "--password-file", str(short))  # fmt: skip
    assert refused.returncode == 2 and "at least 12 characters" in refused.stderr
    good = tmp_path / "good"
    good.write_text("a much longer new password\n", encoding="utf-8")
    done = run_cli("rampart-collector", "--config", str(config), "users", "set-password", "alice",
                   "--password-file", str(good))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "a much longer" not in done.stdout + done.stderr
    assert Web(live).sign_in("alice", "a much longer new password").status_code == 303
    assert Web(live).sign_in("alice").status_code == 401
    missing = run_cli("rampart-collector", "--config", str(config), "users", "set-password", "nobody",
                      "--password-file", str(good))  # fmt: skip
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr


@pytest.mark.parametrize("live_config", [{"dashboard": DashboardConfig(assets_dir="/nonexistent/rampart-assets")}])
def test_without_built_assets_the_collector_still_serves_and_says_so(live: LiveCollector) -> None:
    web = Web(live)
    page = web.get("/sign-in")
    assert page.status_code == 200 and "assets were not built" in page.text
    css = web.get("/assets/govuk-frontend.min.css")
    assert css.status_code == 404 and "make assets" in css.text
    docs = web.get("/api/v1/docs")
    assert docs.status_code == 200 and "make assets" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text


def test_the_api_docs_load_nothing_from_elsewhere(live: LiveCollector) -> None:
    web = Web(live)
    docs = web.get("/api/v1/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/") for s in sources)
    for source in sources:
        assert web.get(source).status_code == 200, source
    assert "<script>" not in docs.text


def test_the_tenant_and_azure_pages(live: LiveCollector) -> None:
    seed(live)
    admin = signed_in(live, "admin")
    tenant = admin.get("/tenant").text
    assert "Contoso Borough Council" in tenant and "95.0% (38 of 40)" in tenant
    assert tenant.index("root-admin@contoso.example") < tenant.index("pat@contoso.example")  # admins first
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in tenant
    assert 'id="chart-tenant-mfa"' in tenant and "style=" not in tenant.split('id="chart-tenant-mfa"')[1][:20000]
    listed = list(csv.reader(io.StringIO(admin.get("/tenant?format=csv").text)))
    assert [row[0] for row in listed[1:]] == ["root-admin@contoso.example", "pat@contoso.example"]
    azure = admin.get("/cloud?status=fail").text
    assert "councildata" in azure and "storage-https-only" in azure.replace("%2F", "/")
    assert "storage-tls-1-2" not in azure.split('id="findings-table"')[1]


def test_ended_sessions_and_old_failures_are_pruned(live: LiveCollector) -> None:
    from collector.dashboard.jobs import prune
    from collector.storage.models import sign_in_failures, utcnow

    seed(live)
    alice = signed_in(live, "alice")
    assert alice.post("/sign-out", {}, from_page="/").status_code == 303
    signed_in(live, "bob")  # still live
    assert Web(live).sign_in("carol", "wrong wrong wrong").status_code == 401
    assert prune(live.engine, live.config, utcnow()) == {"deleted_sessions": 0, "deleted_sign_in_failures": 0}
    later = utcnow() + live.config.dashboard.duration("session_lifetime") + dt.timedelta(days=2)
    assert prune(live.engine, live.config, later) == {"deleted_sessions": 2, "deleted_sign_in_failures": 1}
    assert live.count(dashboard_sessions) == 0 and live.count(sign_in_failures) == 0
