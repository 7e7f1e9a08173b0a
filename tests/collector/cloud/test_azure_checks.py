"""Each Azure check's pass, fail and error, through msal and requests against the fake Resource Manager."""

from __future__ import annotations

from typing import Any

from checks.results import Status, SubjectKind
from tests.collector.cloud.conftest import (
    DEFENDER_PLANS,
    SUB_A,
    SUB_B,
    result_of,
    results_of,
    run_checks,
)
from tests.fakes.microsoft import (
    FakeMicrosoft,
    Fault,
    Subscription,
    nsg,
    nsg_rule,
    pricing,
    storage_account,
    vault,
)


def by_name(fake: FakeMicrosoft, check: str) -> dict[str, tuple[Status, str, dict[str, Any]]]:
    return {r.subject.name: (r.status, r.reason, r.observed) for r in results_of(run_checks(fake), check) if r.subject}


def test_storage_accounts_one_result_each(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions[0].storage = [
        storage_account(SUB_A, "stgood"),
        storage_account(SUB_A, "sthttp", supportsHttpsTrafficOnly=False),
        storage_account(SUB_A, "sttls10", minimumTlsVersion="TLS1_0"),
        storage_account(SUB_A, "stnotls", minimumTlsVersion=None),  # absent means TLS 1.0
        storage_account(SUB_A, "stpublic", allowBlobPublicAccess=True),
        storage_account(SUB_A, "stunsaid", allowBlobPublicAccess=None),
    ]
    run = run_checks(fake)
    https = {r.subject.name: r.status for r in results_of(run, "storage-https-only") if r.subject}
    tls = {r.subject.name: r.status for r in results_of(run, "storage-tls-1-2") if r.subject}
    public = {r.subject.name: r for r in results_of(run, "storage-no-public-blob-access") if r.subject}
    assert https == {n: Status.FAIL if n == "sthttp" else Status.PASS for n in https} and len(https) == 6
    assert tls["sttls10"] is Status.FAIL and tls["stnotls"] is Status.FAIL and tls["stgood"] is Status.PASS
    assert public["stpublic"].status is Status.FAIL
    assert public["stunsaid"].status is Status.ERROR and "allow_blob_public_access" in public["stunsaid"].reason
    subject = public["stgood"].subject
    assert subject is not None and subject.kind is SubjectKind.CLOUD_RESOURCE
    assert (
        subject.id
        == f"/subscriptions/{SUB_A}/resourceGroups/rg-main/providers/Microsoft.Storage/storageAccounts/stgood"
    )


def test_nsg_rules_singular_plural_ranges_and_priority(fake: FakeMicrosoft) -> None:
    internet_rdp = nsg_rule("rdp", 100, sourceAddressPrefix="*", destinationPortRange="3389")
    plural = nsg_rule(
        "mgmt",
        110,
        sourceAddressPrefixes=["10.0.0.0/8", "Internet"],
        destinationPortRanges=["443", "3380-3390"],
    )
    any_port = nsg_rule("wide-open", 120, sourceAddressPrefix="0.0.0.0/0", destinationPortRange="*", protocol="*")
    private_ssh = nsg_rule(
        "ssh-office", 100, sourceAddressPrefixes=["10.1.0.0/16", "192.0.2.10/32"], destinationPortRange="22"
    )
    shadowed = [
        nsg_rule("deny-ssh", 100, access="Deny", sourceAddressPrefix="Internet", destinationPortRange="20-23"),
        nsg_rule("allow-ssh", 200, sourceAddressPrefix="Internet", destinationPortRange="22"),
    ]
    udp_only = nsg_rule("rdp-udp", 100, sourceAddressPrefix="*", destinationPortRange="3389", protocol="Udp")
    fake.scenario.subscriptions[0].nsgs = [
        nsg(SUB_A, "nsg-rdp", [internet_rdp]),
        nsg(SUB_A, "nsg-plural", [plural]),
        nsg(SUB_A, "nsg-any", [any_port]),
        nsg(SUB_A, "nsg-private", [private_ssh]),
        nsg(SUB_A, "nsg-shadowed", shadowed),
        nsg(SUB_A, "nsg-udp", [udp_only]),
        nsg(SUB_A, "nsg-default", []),
    ]
    results = by_name(fake, "nsg-no-internet-management-ports")
    assert {name: status for name, (status, _, _) in results.items()} == {
        "nsg-rdp": Status.FAIL,
        "nsg-plural": Status.FAIL,
        "nsg-any": Status.FAIL,
        "nsg-private": Status.PASS,
        "nsg-shadowed": Status.PASS,
        "nsg-udp": Status.PASS,
        "nsg-default": Status.PASS,
    }
    assert results["nsg-plural"][2]["open_ports"] == [3389]
    assert results["nsg-plural"][2]["open_rules"][0]["ports"] == ["443", "3380-3390"]
    assert results["nsg-plural"][2]["open_rules"][0]["sources"] == ["10.0.0.0/8", "Internet"]
    assert results["nsg-any"][2]["open_ports"] == [22, 3389]


def test_key_vault_recovery(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions[0].vaults = [
        vault(SUB_A, "kv-good", enableSoftDelete=True, enablePurgeProtection=True),
        vault(SUB_A, "kv-no-purge", enableSoftDelete=True),  # Resource Manager leaves the flag out until it is on
        vault(SUB_A, "kv-old"),  # says nothing about soft delete
    ]
    results = by_name(fake, "key-vault-recoverable")
    assert results["kv-good"][0] is Status.PASS
    assert results["kv-no-purge"][0] is Status.FAIL and "purge_protection" in results["kv-no-purge"][1]
    assert results["kv-old"][0] is Status.FAIL  # purge protection is off whatever soft delete is


def test_defender_plans_per_subscription(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions[0].pricings = [
        pricing(SUB_A, name, "Free" if name == "Containers" else "Standard") for name in DEFENDER_PLANS if name != "Arm"
    ]
    (status, reason, facts) = by_name(fake, "defender-plans-on")[f"subscription {SUB_A}"]
    assert status is Status.FAIL and facts["missing_plans"] == ["Arm", "Containers"]


def test_sql_tde_per_database_master_skipped(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions[0].sql = {"sql-a": {"payroll": "Enabled", "planning": "Disabled"}, "sql-b": {}}
    results = by_name(fake, "sql-tde-on")
    assert {name: status for name, (status, _, _) in results.items()} == {
        "payroll": Status.PASS,
        "planning": Status.FAIL,
    }


def test_an_unreadable_subscription_is_its_own_error_and_hides_nothing(fake: FakeMicrosoft) -> None:
    fake.scenario.subscriptions.append(Subscription(SUB_B, storage=[storage_account(SUB_B, "stother")]))
    fake.scenario.faults = [
        Fault(
            f"/subscriptions/{SUB_A}/",
            403,
            "AuthorizationFailed",
            "The client does not have authorization to perform action",
        )
    ]
    run = run_checks(fake)
    results = {r.subject.id: r for r in results_of(run, "storage-https-only") if r.subject}
    denied = results[f"/subscriptions/{SUB_A}"]
    assert denied.status is Status.ERROR
    assert "AuthorizationFailed" in denied.reason and "Reader role" in denied.reason
    assert [r.status for key, r in results.items() if key.endswith("/stother")] == [Status.PASS]


def test_listing_subscriptions_without_permission_is_an_error(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault("/subscriptions", 403, "AuthorizationFailed", "no access")]
    result = result_of(run_checks(fake), "defender-plans-on")
    assert result.status is Status.ERROR and "Reader role" in result.reason
    assert result.subject is not None and result.subject.kind is SubjectKind.TENANT


def test_an_unregistered_resource_provider_means_no_resources(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [
        Fault(f"/subscriptions/{SUB_A}/providers/Microsoft.Sql", 409, "MissingSubscriptionRegistration",
              "The subscription is not registered to use namespace 'Microsoft.Sql'.")
    ]  # fmt: skip
    run = run_checks(fake)
    assert not [r for r in run.results if r.check_id == "sql-tde-on"]
    assert result_of(run, "key-vault-recoverable").status is Status.PASS


def test_arm_throttling_is_waited_out(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(f"/subscriptions/{SUB_A}/providers/Microsoft.Storage", 429, "TooManyRequests",
                                  retry_after="0", times=2)]  # fmt: skip
    run = run_checks(fake)
    assert {r.status for r in results_of(run, "storage-https-only")} == {Status.PASS}
    assert run.stats.retries == 2
