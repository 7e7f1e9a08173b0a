"""azure_sql_tde on recorded servers, databases and encryption settings (tests/data/probes/azure_sql_tde/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe


def test_each_database_but_master_and_one_unreadable() -> None:
    resources, context = run_probe("azure_sql_tde", "one-unencrypted")
    assert not any("/databases/master/" in url for url in context.requested)
    by_name = {r.name: r for r in resources}
    assert list(by_name) == ["orders", "reporting", "audit"]
    assert by_name["orders"].facts == {"state": "Enabled", "encrypted": True, "server": "sql-prod"}
    assert by_name["reporting"].facts == {"state": "Disabled", "encrypted": False, "server": "sql-prod"}
    audit = by_name["audit"]
    assert audit.facts == {} and audit.listing_failed is False
    assert audit.error is not None and "HTTP 403 AuthorizationFailed" in audit.error
    assert "grant the app registration the Reader role" in audit.error


def test_the_example_check() -> None:
    statuses = {r.subject.name: r.status for r in run_example("azure_sql_tde", "one-unencrypted")}
    assert statuses == {"orders": Status.PASS, "reporting": Status.FAIL, "audit": Status.ERROR}
