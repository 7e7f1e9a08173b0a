"""Signing in with Microsoft Entra ID against a fake that speaks OpenID Connect (authorize, token with an
id_token signed by its own key, JWKS, discovery), on SQLite and PostgreSQL. Every way an id_token can be
wrong is refused, with a message that says which."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from collector.storage.models import audit_log, dashboard_sessions, users
from tests.collector.dashboard.conftest import AUDITORS_GROUP, Entra
from tests.collector.dashboard.helpers import Web
from tests.fakes.entra_oidc import Account
from tests.support.live import LiveCollector


def ready(live: LiveCollector, entra: Entra) -> None:
    """Point the collector's redirect URL at its own port, and register it with the fake."""
    callback = live.url + "/auth/entra/callback"
    live.config.dashboard.entra.redirect_url = callback
    entra.oidc.redirect_uris.add(callback)


def through_microsoft(web: Web, entra: Entra, *, next_path: str = "") -> requests.Response:
    """Start at the collector, follow Microsoft's redirect back, and return the collector's answer."""
    start = web.get("/auth/entra/start" + (f"?next={next_path}" if next_path else ""), allow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(entra.fake.base_url)
    sent = parse_qs(urlsplit(authorize).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["response_type"] == ["code"]
    assert sent["response_mode"] == ["form_post"]
    action, fields = microsoft_answer(authorize, entra)
    return web.http.post(action, data=fields, allow_redirects=False)


def microsoft_answer(authorize: str, entra: Entra) -> tuple[str, dict[str, str]]:
    """What Microsoft's page would post back: its form's action and hidden fields."""
    with requests.Session() as browser:
        browser.trust_env = False
        page = browser.get(authorize, verify=entra.fake.ca_path, allow_redirects=False)
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'action="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    fields = {html.unescape(k): html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
    return action, fields


def test_staff_sign_in_with_microsoft_and_get_the_role_their_app_role_or_group_maps_to(
    live: LiveCollector, entra: Entra
) -> None:
    ready(live, entra)
    web = Web(live)
    assert "Sign in with Microsoft" in web.get("/sign-in").text
    dana = Account("Dana.Analyst@contoso.example", "Dana", roles=["Rampart.Analyst"])
    entra.sign_in_as(dana)
    answer = through_microsoft(web, entra, next_path="/checks")
    assert answer.status_code == 303 and answer.headers["location"] == "/checks"
    home = web.get("/")
    assert "dana.analyst@contoso.example" in home.text and "(analyst)" in home.text
    row = live.rows(sa.select(users).where(users.c.name == "dana.analyst@contoso.example"))[0]
    assert row.role == "analyst" and row.external_id == f"entra:{entra.oidc.tenant_id}:{dana.object_id}"
    session = live.rows(sa.select(dashboard_sessions))[0]
    assert session.method == "entra"
    # Her directory roles change: the next sign-in follows them (and says so in the audit log).
    dana.roles = ["Rampart.Analyst", "Rampart.Admin"]
    assert through_microsoft(Web(live), entra).status_code == 303
    assert live.scalar(sa.select(users.c.role).where(users.c.name == "dana.analyst@contoso.example")) == "admin"
    changed = live.rows(sa.select(audit_log).where(audit_log.c.action == "user.role"))
    assert changed and changed[0].details == {"from": "analyst", "to": "admin"}
    # A group can carry the role too.
    erin = Account("erin@contoso.example", groups=[AUDITORS_GROUP])
    entra.sign_in_as(erin)
    auditor = Web(live)
    assert through_microsoft(auditor, entra).status_code == 303
    assert "(auditor)" in auditor.get("/").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the token's checks touch no database
@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("bad_signature", "signature is not valid"),
        ("wrong_audience", "another application"),
        ("wrong_issuer", "another tenant or service"),
        ("expired", "has expired"),
        ("wrong_nonce", "nonce"),
        ("wrong_tenant", "another tenant (tid)"),
    ],
)
def test_an_id_token_that_is_wrong_in_any_way_is_refused(
    live: LiveCollector, entra: Entra, tamper: str, message: str
) -> None:
    ready(live, entra)
    entra.sign_in_as(Account("frank@contoso.example", roles=["Rampart.Admin"]))
    entra.oidc.tamper = tamper
    web = Web(live)
    answer = through_microsoft(web, entra)
    assert answer.status_code == 401 and message in answer.text, answer.text[-2000:]
    assert live.count(dashboard_sessions) == 0
    assert web.get("/", allow_redirects=False).status_code == 303


def test_no_role_a_disabled_user_a_refusal_and_a_stolen_answer_are_refused(live: LiveCollector, entra: Entra) -> None:
    ready(live, entra)
    entra.sign_in_as(Account("gina@contoso.example"))
    answer = through_microsoft(Web(live), entra)
    assert answer.status_code == 401 and "has no Rampart role" in answer.text

    entra.oidc.refusal = ("access_denied", "AADSTS65004: User declined to consent.")
    answer = through_microsoft(Web(live), entra)
    assert answer.status_code == 401 and "access_denied" in answer.text
    entra.oidc.refusal = None

    # An answer meant for one browser, replayed in another (no flow cookie there), or replayed twice.
    harry = Account("harry@contoso.example", roles=["Rampart.Analyst"])
    entra.sign_in_as(harry)
    web = Web(live)
    start = web.get("/auth/entra/start", allow_redirects=False)
    callback, fields = microsoft_answer(start.headers["location"], entra)
    stranger = Web(live)
    stolen = stranger.http.post(callback, data=fields, allow_redirects=False)
    assert stolen.status_code == 401 and "did not start here" in stolen.text
    assert web.http.post(callback, data=fields, allow_redirects=False).status_code == 303
    again = web.http.post(callback, data=fields, allow_redirects=False)
    assert again.status_code == 401  # the flow cookie was spent (and the code is single-use)
    # An answer to another sign-in of the same browser: the state differs.
    web2 = Web(live)
    first = web2.get("/auth/entra/start", allow_redirects=False)
    web2.get("/auth/entra/start", allow_redirects=False)  # a second start replaces the flow cookie
    _, old_fields = microsoft_answer(first.headers["location"], entra)
    mixed = web2.http.post(callback, data=old_fields, allow_redirects=False)
    assert mixed.status_code == 401 and "does not belong" in mixed.text

    admin = Web(live)
    assert admin.sign_in("admin", "x" * 12).status_code == 401  # (admin has no password here)
    from collector.storage import users as user_store
    from collector.storage.engine import write_tx
    from collector.storage.models import utcnow

    with write_tx(live.engine) as connection:
        user_store.disable_user(connection, "harry@contoso.example", by="test", now=utcnow())
    assert web.get("/", allow_redirects=False).status_code == 303  # the session ended with the user
    refused = through_microsoft(Web(live), entra)
    assert refused.status_code == 403 and "is disabled here" in refused.text
