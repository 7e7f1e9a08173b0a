"""azure_storage_accounts on recorded Resource Manager listings (tests/data/probes/azure_storage_accounts/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe

SUB2 = "99999999-8888-7777-6666-555555555555"


def test_accounts_across_pages_and_an_unreadable_subscription() -> None:
    resources, context = run_probe("azure_storage_accounts", "two-subscriptions")
    assert len(context.requested) == 3  # two pages of subscription 1, then subscription 2
    by_name = {r.name: r for r in resources}
    assert by_name["proddata"].facts == {
        "https_only": True,
        "allow_blob_public_access": False,
        "allow_shared_key_access": False,
        "minimum_tls_version": "TLS1_2",
        "tls_1_2_or_newer": True,
        "public_network_access": "Disabled",
        "location": "westeurope",
    }
    # Absent properties: TLS 1.0 as the API documents, unknown (null) for the others.
    legacy = by_name["legacylogs"].facts
    assert legacy["minimum_tls_version"] == "TLS1_0" and legacy["tls_1_2_or_newer"] is False
    assert legacy["allow_shared_key_access"] is None and legacy["public_network_access"] is None
    denied = by_name[f"subscription {SUB2}"]
    assert denied.resource_id == f"/subscriptions/{SUB2}" and denied.listing_failed is True
    assert denied.error is not None and "HTTP 403 AuthorizationFailed" in denied.error
    assert "grant the app registration the Reader role on each subscription" in denied.error


def test_the_example_check_judges_each_account() -> None:
    statuses = {r.subject.name: r.status for r in run_example("azure_storage_accounts", "two-subscriptions")}
    assert statuses == {"proddata": Status.PASS, "legacylogs": Status.FAIL, f"subscription {SUB2}": Status.ERROR}
