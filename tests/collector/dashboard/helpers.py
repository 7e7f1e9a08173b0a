"""A small council fleet for the dashboard's tests, and a browserless client that signs in and posts forms.

The fleet's host names, facts, check titles and remediation text carry HTML and script, so that every page
and download that shows them is also a test that they are shown as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import requests

from checks.policy.loader import load_policy_file, load_policy_text
from checks.results import Result, Severity, Status, Subject, SubjectKind
from collector.cloud.run import CloudRun
from collector.cloud.store import store_cloud_run
from collector.storage import policies as policy_store
from collector.storage import sessions, users
from collector.storage.engine import run_write, write_tx
from collector.storage.models import utcnow
from collector.storage.waivers import WaiverCache
from policies import shipped_path
from tests.support.agents import SimAgent, make_result
from tests.support.live import LiveCollector

PASSWORD = "correct horse battery staple"
HOSTILE_HOST = '<img src=x onerror="window.__pwned=1">web-01'
HOSTILE_FACT = "<script>window.__pwned=2</script>"
POLICY_YAML = """
id: council
version: "1.0.0"
title: Council test policy
checks:
  - id: disk-encrypted
    title: Disks are encrypted <b>bold</b>
    description: Every fixed disk is encrypted.
    rationale: A lost laptop must not give its data away.
    remediation: Turn on BitLocker or LUKS <img src=x onerror="window.__pwned=3">.
    severity: high
    probe: os
    expect: {fact: name, exists: true}
    frameworks: {cyber_essentials: [secure_configuration], ncsc_caf: [B3.c]}
  - id: firewall-on
    title: Firewall <script>window.__pwned=4</script>
    description: The host firewall is on.
    rationale: Stops attacks from the network.
    remediation: Turn the firewall on.
    severity: medium
    probe: os
    expect: {fact: name, exists: true}
  - id: patched
    title: Security updates installed
    description: No security update is older than 14 days.
    rationale: Unpatched software is the most common way in.
    remediation: Install the pending updates.
    severity: critical
    probe: os
    expect: {fact: name, exists: true}
"""
TENANT = "11111111-2222-3333-4444-555555555555"
STORAGE = (
    "/subscriptions/00000000-aaaa-0000-0000-000000000001/resourceGroups/rg/providers/"
    "Microsoft.Storage/storageAccounts/councildata"
)
PEOPLE = {"admin": "admin", "alice": "analyst", "bob": "analyst", "carol": "auditor"}


@dataclass
class Fleet:
    policy_hash: str
    hosts: dict[str, SimAgent] = field(default_factory=dict)

    @property
    def failing(self) -> SimAgent:
        return self.hosts[HOSTILE_HOST]


def seed(live: LiveCollector) -> Fleet:
    policy = load_policy_text(POLICY_YAML, source="test policy")
    now = utcnow()
    with write_tx(live.engine) as connection:
        policy_store.add(connection, policy, by="test", now=now)
        policy_store.assign(connection, live.config.default_group, policy.id, by="test", now=now)
        for name, role in PEOPLE.items():
            if name != "admin":
                users.add_user(connection, name, role, by="test", now=now)
            sessions.set_password(connection, name, PASSWORD, by="test", now=now)
    fleet = Fleet(policy.sha256)

    def result(check: str, status: str, observed: dict[str, Any], severity: str = "medium") -> dict[str, Any]:
        return make_result(
            check, status, policy_id="council", policy_hash=policy.sha256, observed=observed, severity=severity
        )

    layout = {
        HOSTILE_HOST: [
            result("disk-encrypted", "pass", {"volumes": ["C:"], "note": "ok"}, "high"),
            result("disk-encrypted", "fail", {"volumes": ["C:"], "note": HOSTILE_FACT}, "high"),
            result("firewall-on", "pass", {"enabled": True}),
            result("patched", "fail", {"oldest_days": 40}, "critical"),
        ],
        "lap-02": [
            result("disk-encrypted", "pass", {"volumes": ["/"]}, "high"),
            result("firewall-on", "fail", {"enabled": False}),
            result("patched", "pass", {"oldest_days": 2}, "critical"),
        ],
        "srv-03": [
            result("disk-encrypted", "pass", {"volumes": ["/"]}, "high"),
            result("firewall-on", "pass", {"enabled": True}),
            result("patched", "error", {}, "critical"),
        ],
    }
    for hostname, results in layout.items():
        agent = live.enrolled_agent(hostname=hostname)
        fleet.hosts[hostname] = agent
        by_check: dict[str, list[dict[str, Any]]] = {}
        for entry in results:
            by_check.setdefault(entry["check_id"], []).append(entry)
        # The first result of each check, then the later ones: a change of status the history shows.
        first = [entries[0] for entries in by_check.values()]
        assert agent.report(first).status_code == 200
        later = [entries[-1] for entries in by_check.values() if len(entries) > 1]
        if later:
            assert agent.report(later).status_code == 200
    store_cloud(live)
    return fleet


def store_cloud(live: LiveCollector) -> None:
    """A cloud run: the tenant (MFA coverage failing, an administrator without MFA) and one storage account."""
    now = utcnow()
    shipped = {name: load_policy_file(shipped_path(f"{name}.yaml")) for name in ("microsoft365", "azure")}
    with write_tx(live.engine) as connection:
        for policy in shipped.values():
            policy_store.add(connection, policy, by="test", now=now)

    def result(policy_id: str, check_id: str, status: str, subject: Subject, observed: dict[str, Any]) -> Result:
        policy = shipped[policy_id]
        check = policy.check(check_id)
        assert check is not None
        return Result(
            check_id=check_id, status=Status(status), severity=Severity(check.severity), title=check.title,
            policy_id=policy.id, policy_version=policy.version, policy_hash=policy.sha256, observed=observed,
            expectation={"fact": "coverage_percent", "gte": 90}, reason="" if status == "pass" else "below the least",
            frameworks={k: list(v) for k, v in check.frameworks.items()}, subject=subject,
            evaluated_at=now.isoformat() + "Z",
        )  # fmt: skip

    tenant = Subject(SubjectKind.TENANT, TENANT, "Contoso Borough Council")
    without = [
        {"id": "1", "user_principal_name": "pat@contoso.example", "display_name": "Pat", "is_admin": False,
         "methods_registered": ["email"]},
        {"id": "2", "user_principal_name": "root-admin@contoso.example", "display_name": HOSTILE_FACT,
         "is_admin": True, "methods_registered": []},
    ]  # fmt: skip
    coverage = {
        "members": 40, "mfa_capable": 38, "not_mfa_capable": 2, "coverage_percent": 95.0, "admins": 3,
        "admins_without_mfa": 1, "guests_not_counted": 4, "users_without_mfa": without,
        "admins_without_mfa_list": without[1:], "evidence_truncated": False, "evidence_limit": 1000,
    }  # fmt: skip
    storage = Subject(SubjectKind.CLOUD_RESOURCE, STORAGE, "councildata")
    results = [
        result("microsoft365", "mfa-coverage", "pass", tenant, coverage),
        result("microsoft365", "admins-mfa-capable", "fail", tenant, coverage),
        result("azure", "storage-https-only", "fail", storage, {"supports_https_traffic_only": False}),
        result("azure", "storage-tls-1-2", "pass", storage, {"minimum_tls_version": "TLS1_2"}),
    ]
    run = CloudRun(tenant=tenant, results=results)
    cache = WaiverCache()
    run_write(live.engine, lambda c: store_cloud_run(c, run, now=now, waivers=cache.current))


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Web:
    """A browserless dashboard client: cookies kept, forms posted with the page's CSRF token."""

    def __init__(self, live: LiveCollector) -> None:
        self.live = live
        self.http: requests.Session = live.session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.live.url + path, **kwargs)

    def token(self, path: str) -> str:
        page = self.get(path)
        found = _TOKEN.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
        return found.group(1)

    def post(
        self, path: str, fields: dict[str, str], *, from_page: str | None = None, **kwargs: Any
    ) -> requests.Response:
        data = {"csrf_token": self.token(from_page or path), **fields}
        kwargs.setdefault("allow_redirects", False)
        return self.http.post(self.live.url + path, data=data, **kwargs)

    def sign_in(self, name: str, password: str = PASSWORD) -> requests.Response:
        response = self.post("/sign-in", {"name": name, "password": password, "next": "/"})
        return response
