"""entra_mfa_enforcement on recorded conditional access (tests/data/probes/entra_mfa_enforcement/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe

ALEX = "f3d6e7a9-1b2c-4d5e-8f90-a1b2c3d4e5f6"
BREAK_GLASS = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
DELETED = "7e6d5c4b-3a29-4f18-8e07-d6c5b4a39281"
GROUP = "4c2e9f1a-8b7d-4e6c-9a5b-3d2c1b0a9f8e"


def test_a_group_exclusion_leaves_a_user_without_mfa() -> None:
    facts, context = run_probe("entra_mfa_enforcement", "group-exclusion")
    assert facts["enforced"] is False
    assert facts["enforced_by"] == ["Require MFA for all users"]
    assert facts["uncovered_users"] == [
        {
            "id": ALEX,
            "user_principal_name": "AlexW@contoso.com",
            "display_name": "Alex Wilber",
            "excluded_by": ["group MFA exempt (vendors)"],
        }
    ]
    assert facts["uncovered_count"] == 1 and facts["uncovered_truncated"] is False
    assert facts["exclusion_gaps"] == [{"kind": "group", "id": GROUP, "name": "MFA exempt (vendors)", "uncovered": 1}]
    # The break-glass account is excluded as configured; the deleted user (404) leaves no one out.
    assert facts["emergency_accounts_excluded"] == ["breakglass@contoso.onmicrosoft.com"]
    assert any(url.endswith(f"/users/{DELETED}?$select=id,userPrincipalName,displayName") for url in context.requested)
    assert facts["excluded_users"] == sorted([BREAK_GLASS, DELETED]) and facts["excluded_groups"] == [GROUP]
    assert facts["security_defaults_enabled"] is False and facts["conditional_access_policies"] == 4


def test_report_only_and_either_or_policies_do_not_count() -> None:
    facts, _ = run_probe("entra_mfa_enforcement", "group-exclusion")
    reasons = {entry["name"]: entry["reasons"] for entry in facts["not_counted"]}
    assert reasons["MFA or compliant device (pilot)"] == [
        "report-only: it logs but does not enforce",
        "MFA is one choice among others: compliantdevice passes without MFA",
    ]
    assert reasons["Require MFA for administrators"] == ["applies to selected users, groups or roles, not all users"]


def test_security_defaults_enforce_mfa_even_when_conditional_access_is_unreadable() -> None:
    facts, _ = run_probe("entra_mfa_enforcement", "security-defaults")
    assert facts["enforced"] is True and facts["enforced_by"] == ["security defaults"]
    assert facts["conditional_access_policies"] is None
    assert facts["uncovered_users"] == [] and facts["policies"] == []


def test_the_example_check() -> None:
    assert [r.status for r in run_example("entra_mfa_enforcement", "group-exclusion")] == [Status.FAIL]
    assert [r.status for r in run_example("entra_mfa_enforcement", "security-defaults")] == [Status.PASS]
