"""The Graph / ARM client against the fake: paging to the end, throttling, budgets, timeouts, errors."""

from __future__ import annotations

import email.utils
import time

import pytest

from checks.probes.cloud.conditional_access import POLICIES_PATH, SECURITY_DEFAULTS_PATH
from checks.probes.cloud.context import LicenceMissing, PermissionMissing, RequestFailed, Throttled
from checks.results import Status
from collector.cloud.client import MicrosoftCloud
from collector.cloud.run import run_cloud_checks
from tests.collector.cloud.conftest import SUB_A, cloud_config, result_of, run_checks
from tests.fakes.microsoft import FakeMicrosoft, Fault, user

REPORT = "/v1.0/reports/authenticationMethods/userRegistrationDetails"


def client(fake: FakeMicrosoft, **overrides: object) -> MicrosoftCloud:
    return MicrosoftCloud(cloud_config(fake, **overrides), backoff_base_s=0.01)


def test_graph_pages_follow_next_links_verbatim_to_the_end(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [user(f"u{i:03d}@contoso.example") for i in range(250)]
    pages = list(client(fake).graph_pages(REPORT, {"$select": "id,userPrincipalName"}))
    assert [len(page) for page in pages] == [100, 100, 50]
    assert [u["userPrincipalName"] for page in pages for u in page] == [f"u{i:03d}@contoso.example" for i in range(250)]
    queries = [r.query for r in fake.requests if r.path == f"/graph{REPORT}"]
    assert "$skiptoken" not in queries[0] and all("$skiptoken=" in q for q in queries[1:])
    assert all("$select=id,userPrincipalName" in q for q in queries)  # kept in the next link by the service


def test_arm_pages_follow_next_link(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions[0].storage = [
        {**fake.scenario.subscriptions[0].storage[0], "name": f"st{i}", "id": f"/x/st{i}"} for i in range(5)
    ]
    path = f"/subscriptions/{SUB_A}/providers/Microsoft.Storage/storageAccounts"
    pages = list(client(fake).arm_pages(path, "2024-01-01"))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert all("api-version=2024-01-01" in r.query for r in fake.requests if r.path.startswith("/arm/"))


def test_an_empty_collection_is_one_empty_page(fake: FakeMicrosoft) -> None:
    fake.scenario.users = []
    assert list(client(fake).graph_pages(REPORT)) == [[]]


def test_429_retry_after_is_honoured(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(REPORT, 429, "TooManyRequests", "Too many requests.", retry_after="1", times=1)]
    cloud = client(fake)
    pages = list(cloud.graph_pages(REPORT))
    assert sum(len(p) for p in pages) == 20
    attempts = [r for r in fake.requests if r.path == f"/graph{REPORT}"]
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95  # waited what Retry-After said
    assert cloud.stats.retries == 1 and cloud.stats.waited_s == 1.0


def test_503_and_504_are_retried(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [
        Fault(REPORT, 503, "ServiceUnavailable", retry_after="0", times=1),
        Fault(REPORT, 504, "GatewayTimeout", times=1),  # no Retry-After: exponential back-off
    ]
    cloud = client(fake)
    assert sum(len(p) for p in cloud.graph_pages(REPORT)) == 20
    assert [r.status for r in fake.requests if r.path == f"/graph{REPORT}"] == [503, 504, 200]


def test_retries_are_bounded(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(REPORT, 429, "TooManyRequests", retry_after="0")]
    with pytest.raises(Throttled, match=r"gave up after 2 retries \(cloud.max_retries\)"):
        list(client(fake, max_retries=2).graph_pages(REPORT))
    assert len(fake.paths(f"/graph{REPORT}")) == 3


def test_a_retry_after_beyond_the_budget_fails_at_once_instead_of_sleeping(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(REPORT, 429, "TooManyRequests", retry_after="315")]
    started = time.monotonic()
    with pytest.raises(Throttled, match=r"asked to wait 315s but only 5s of the retry budget"):
        list(client(fake, retry_budget_s=5).graph_pages(REPORT))
    assert time.monotonic() - started < 3
    assert len(fake.paths(f"/graph{REPORT}")) == 1


def test_the_budget_is_shared_by_the_whole_run(fake: FakeMicrosoft) -> None:
    # Each probe's first request is throttled for 1 s; a 2 s budget lets two through, then the rest error.
    fake.scenario.faults = [Fault("/v1.0/", 429, "TooManyRequests", retry_after="1", times=3)]
    run = run_checks(fake, retry_budget_s=2.0)
    throttled = [r for r in run.results if r.status is Status.ERROR]
    assert throttled and all("retry budget" in r.reason for r in throttled)
    assert run.stats.waited_s == 2.0


def test_timeouts_are_retried_then_reported(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(REPORT, 200, "", delay_s=1.0)]
    with pytest.raises(RequestFailed, match="ReadTimeout"):
        list(client(fake, timeout_s=0.2, max_retries=1).graph_pages(REPORT))
    deadline = time.monotonic() + 5  # the fake records a request once its slow answer is written
    while len(fake.paths(f"/graph{REPORT}")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.paths(f"/graph{REPORT}")) == 2


def test_403_permission_and_licence_are_told_apart(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [
        Fault(
            REPORT,
            403,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        ),
        Fault(
            "/v1.0/policies/", 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        ),
    ]
    cloud = client(fake)
    with pytest.raises(LicenceMissing) as licence:
        list(cloud.graph_pages(REPORT))
    assert "HTTP 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant" in licence.value.reason
    assert "request-id" in licence.value.reason  # from innerError, for Microsoft support
    with pytest.raises(PermissionMissing, match="Insufficient privileges"):
        cloud.graph_get("/v1.0/policies/authenticationMethodsPolicy")


def test_arm_authorization_failed_is_a_missing_permission(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [
        Fault(f"/subscriptions/{SUB_A}/", 403, "AuthorizationFailed", "The client does not have authorization")
    ]
    with pytest.raises(PermissionMissing, match="AuthorizationFailed"):
        list(client(fake).arm_pages(f"/subscriptions/{SUB_A}/providers/Microsoft.KeyVault/vaults", "2023-07-01"))


def test_a_next_link_to_another_host_is_refused(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [user(f"u{i}@contoso.example") for i in range(150)]
    fake.scenario.next_link_base = "https://collector.attacker.example/graph"
    with pytest.raises(RequestFailed, match="refused so the token is not sent elsewhere"):
        list(client(fake).graph_pages(REPORT))


def test_a_probe_that_stops_early_stops_reading(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [user(f"u{i}@contoso.example") for i in range(500)]
    first = next(iter(client(fake).graph_pages(REPORT)))
    assert len(first) == 100 and len(fake.paths(f"/graph{REPORT}")) == 1


def test_configured_subscriptions_are_not_discovered(fake: FakeMicrosoft) -> None:
    run = run_checks(fake, subscriptions=[SUB_A])
    assert result_of(run, "defender-plans-on").status is Status.PASS
    assert "/arm/subscriptions" not in fake.paths()


def test_an_empty_page_with_a_next_link_is_not_the_end(fake: FakeMicrosoft) -> None:
    fake.scenario.empty_first_page = True
    fake.scenario.users = [user(f"u{i}@contoso.example") for i in range(30)]
    pages = list(client(fake).graph_pages(REPORT))
    assert [len(page) for page in pages] == [0, 30]
    assert result_of(run_checks(fake), "mfa-coverage").observed["members"] == 30


def test_conditional_access_is_fetched_once_per_run_and_counted_once(fake: FakeMicrosoft) -> None:
    """Three checks (mfa-enforced, legacy-auth-blocked, admin-roles-require-mfa) read the policies."""
    pages: list[str] = []
    run = run_cloud_checks(cloud_config(fake), on_page=lambda api, path, n, items: pages.append(path))
    assert {r.status for r in run.results} == {Status.PASS}
    assert fake.paths(f"/graph{POLICIES_PATH}") == [f"/graph{POLICIES_PATH}"]
    assert len(fake.paths(f"/graph{SECURITY_DEFAULTS_PATH}")) == 1
    assert pages.count(f"/graph{POLICIES_PATH}") == 1  # the progress line counts them once


def test_a_failed_shared_read_fails_every_check_that_reads_it_without_asking_again(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(POLICIES_PATH, 403, "Authorization_RequestDenied", "Insufficient privileges.")]
    run = run_checks(fake)
    for check in ("mfa-enforced", "legacy-auth-blocked", "admin-roles-require-mfa"):
        assert "Policy.Read.All" in result_of(run, check).reason
    assert len(fake.paths(f"/graph{POLICIES_PATH}")) == 1


def test_a_retry_after_as_an_http_date_is_honoured(fake: FakeMicrosoft) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s from now
    fake.scenario.faults = [Fault(REPORT, 503, "ServiceUnavailable", retry_after=when, times=1)]
    cloud = client(fake)
    assert sum(len(p) for p in cloud.graph_pages(REPORT)) == 20
    assert cloud.stats.retries == 1 and 0.5 < cloud.stats.waited_s <= 2.0
