"""Each Microsoft 365 check's pass, fail and error, through msal and requests against the fake tenant."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from checks.policy.loader import load_policy_text
from checks.results import Severity, Status
from collector.cloud.run import run_cloud_checks
from tests.collector.cloud.conftest import cloud_config, result_of, run_checks
from tests.fakes.microsoft import (
    FakeMicrosoft,
    Fault,
    GeneratedUsers,
    ca_policy,
    directory_group,
    directory_user,
    methods_policy,
    role_assignment,
    secure_scores,
    user,
)

REPORT = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
LICENCE = Fault(
    REPORT, 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Tenant does not have premium license"
)
DENIED = "Authorization_RequestDenied"

# --- MFA coverage ----------------------------------------------------------------------------------------


def test_mfa_coverage_counts_members_and_lists_those_without(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [
        *[user(f"ok{i}@contoso.example") for i in range(8)],
        user("zoe@contoso.example", capable=False, methods=["email"]),
        user("adam@contoso.example", capable=False),
        # Guests do MFA in their home tenant: never counted as users without MFA.
        *[user(f"guest{i}@partner.example", guest=True, capable=False) for i in range(5)],
    ]
    run = run_checks(fake)
    result = result_of(run, "mfa-coverage")
    assert result.status is Status.FAIL
    facts = result.observed
    assert (facts["members"], facts["mfa_capable"], facts["not_mfa_capable"]) == (10, 8, 2)
    assert facts["coverage_percent"] == 80.0 and facts["guests_not_counted"] == 5
    assert [u["user_principal_name"] for u in facts["users_without_mfa"]] == [
        "adam@contoso.example",
        "zoe@contoso.example",
    ]
    assert facts["users_without_mfa"][1]["methods_registered"] == ["email"]
    assert "coverage_percent" in result.reason and "80" in result.reason
    # One report read page by page; never a per-user method lookup.
    assert not [p for p in fake.paths() if "/authentication/methods" in p]
    assert all("$select=" in r.query for r in fake.requests if r.path.endswith(REPORT))


def test_mfa_coverage_passes_at_the_threshold(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [user(f"u{i:02d}@contoso.example", capable=i != 0) for i in range(20)]  # 95%
    assert result_of(run_checks(fake), "mfa-coverage").status is Status.PASS


def test_mfa_coverage_uses_mfa_capable_not_registered(fake: FakeMicrosoft) -> None:
    registered_not_allowed = user("blocked@contoso.example")
    registered_not_allowed["isMfaCapable"] = False  # registered, but policy does not let them use it
    fake.scenario.users = [registered_not_allowed, user("fine@contoso.example")]
    facts = result_of(run_checks(fake), "mfa-coverage").observed
    assert (
        facts["mfa_capable"] == 1 and facts["users_without_mfa"][0]["user_principal_name"] == "blocked@contoso.example"
    )


def test_an_admin_without_mfa_is_critical(fake: FakeMicrosoft) -> None:
    fake.scenario.users = [user(f"u{i}@contoso.example") for i in range(40)] + [
        user("root.admin@contoso.example", admin=True, capable=False)
    ]
    run = run_checks(fake)
    admins = result_of(run, "admins-mfa-capable")
    assert admins.status is Status.FAIL and admins.severity is Severity.CRITICAL
    assert admins.observed["admins_without_mfa"] == 1
    assert admins.observed["admins_without_mfa_list"][0]["user_principal_name"] == "root.admin@contoso.example"
    assert result_of(run, "mfa-coverage").status is Status.PASS  # 40/41 is above 95%


def test_a_missing_licence_is_an_error_naming_the_licence_not_a_fail(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [LICENCE]
    run = run_checks(fake)
    for check in ("mfa-coverage", "admins-mfa-capable"):
        result = result_of(run, check)
        assert result.status is Status.ERROR
        assert "Entra ID P1 or P2" in result.reason and "NonPremiumTenant" in result.reason
    assert len([p for p in fake.paths() if p.endswith(REPORT)]) == 1  # one probe run serves both checks


def test_a_missing_permission_is_an_error_naming_the_permission(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault(REPORT, 403, DENIED, "Insufficient privileges to complete the operation.")]
    result = result_of(run_checks(fake), "mfa-coverage")
    assert result.status is Status.ERROR
    assert "AuditLog.Read.All" in result.reason and DENIED in result.reason


def test_a_tenant_without_members_is_an_error(fake: FakeMicrosoft) -> None:
    fake.scenario.users = []
    result = result_of(run_checks(fake), "mfa-coverage")
    assert result.status is Status.ERROR and "coverage_percent" in result.reason


def test_evidence_is_capped_but_counts_stay_exact(fake: FakeMicrosoft, tmp_path: Path) -> None:
    users = GeneratedUsers(3000, guest_every=10, admin_every=50, without_mfa_every=2)  # about half lack MFA
    fake.scenario.users = users
    fake.scenario.graph_page_size = 500
    policy = tmp_path / "mfa.yaml"
    policy.write_text(
        'id: mfa\nversion: "1"\ntitle: MFA\ninputs:\n'
        "  cap: {type: integer, default: 100, description: cap}\n"
        "checks:\n"
        "  - id: coverage\n    title: t\n    description: d\n    rationale: r\n    remediation: m\n"
        "    severity: high\n    probe: {name: entra_mfa_coverage, params: {evidence_limit: {input: cap}}}\n"
        "    expect: {fact: coverage_percent, gte: 95}\n"
    )
    run = run_cloud_checks(cloud_config(fake, policies=[str(policy)]), backoff_base_s=0.01)
    facts = result_of(run, "coverage").observed
    expected = users.expected()
    assert facts["members"] == expected["members"] and facts["mfa_capable"] == expected["mfa_capable"]
    assert facts["admins_without_mfa"] == expected["admins_without_mfa"]
    listed = [u["user_principal_name"] for u in facts["users_without_mfa"]]
    assert len(listed) == 100 and facts["evidence_truncated"] is True and facts["evidence_limit"] == 100
    assert listed == sorted(listed) and listed[0] == "user0000001@contoso.example"  # the first by name
    assert facts["pages"] == 6


# --- MFA enforcement and legacy authentication -----------------------------------------------------------


def test_security_defaults_enforce_mfa_and_block_legacy_auth(fake: FakeMicrosoft) -> None:
    fake.scenario.security_defaults = True
    fake.scenario.ca_policies = []
    run = run_checks(fake)
    for check in ("mfa-enforced", "legacy-auth-blocked", "admin-roles-require-mfa"):
        assert result_of(run, check).status is Status.PASS, check
    assert result_of(run, "mfa-enforced").observed["enforced_by"] == ["security defaults"]


def test_no_conditional_access_policies_and_no_security_defaults_fails(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = []
    run = run_checks(fake)
    enforced = result_of(run, "mfa-enforced")
    assert enforced.status is Status.FAIL and enforced.observed["conditional_access_policies"] == 0
    assert result_of(run, "legacy-auth-blocked").status is Status.FAIL
    assert result_of(run, "admin-roles-require-mfa").status is Status.FAIL


def test_an_all_users_policy_counts_and_its_exclusions_are_listed(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [ca_policy("MFA all", exclude_users=["breakglass-1"], exclude_groups=["g-gone"])]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.PASS  # the emergency account only; a group that no longer exists
    assert result.observed["excluded_users"] == ["breakglass-1"]
    assert result.observed["policies"][0]["exclusions"]["groups"] == ["g-gone"]
    assert result.observed["emergency_accounts_excluded"] == ["breakglass-1"]


# --- MFA enforcement: exclusions beyond the emergency accounts are gaps -----------------------------------

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def directory(fake: FakeMicrosoft, *objects: Mapping[str, object]) -> None:
    fake.scenario.directory.update({str(o["id"]): dict(o) for o in objects})


def test_a_policy_excluding_a_group_of_ordinary_accounts_does_not_enforce_mfa_for_all(fake: FakeMicrosoft) -> None:
    sync, kiosk, nested = (
        directory_user("svc-sync@contoso.example"),
        directory_user("kiosk1@contoso.example"),
        directory_user("temp.staff@contoso.example"),
    )
    contractors = directory_group("Contractors", [nested["id"]])
    excluded = directory_group("MFA exemptions", [kiosk["id"], contractors["id"]])
    directory(fake, sync, kiosk, nested, contractors, excluded)
    fake.scenario.ca_policies = [
        ca_policy("MFA all", exclude_users=["breakglass-1", sync["id"]], exclude_groups=[excluded["id"]])
    ]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.FAIL and "uncovered_count" in result.reason
    facts = result.observed
    assert facts["enforced"] is False and facts["uncovered_count"] == 3 and facts["uncovered_truncated"] is False
    assert [(u["user_principal_name"], u["excluded_by"]) for u in facts["uncovered_users"]] == [
        ("kiosk1@contoso.example", ["group MFA exemptions"]),
        ("svc-sync@contoso.example", ["user"]),
        ("temp.staff@contoso.example", ["group MFA exemptions"]),  # through the nested group
    ]
    assert {(g["kind"], g["name"], g["uncovered"]) for g in facts["exclusion_gaps"]} == {
        ("group", "MFA exemptions", 2),
        ("user", "svc-sync@contoso.example", 1),
    }
    assert facts["enforced_by"] == ["MFA all"]  # the policy counts; its exclusions are the gap


def test_emergency_accounts_by_id_or_sign_in_name_and_a_group_of_them_may_be_excluded(fake: FakeMicrosoft) -> None:
    glass1, glass2 = directory_user("glass1@contoso.example"), directory_user("Glass2@Contoso.example")
    break_glass = directory_group("Break glass", [glass1["id"], glass2["id"]])
    directory(fake, glass1, glass2, break_glass)
    fake.scenario.ca_policies = [ca_policy("MFA all", exclude_users=[glass1["id"]], exclude_groups=[break_glass["id"]])]
    emergency = [str(glass1["id"]), "glass2@contoso.example"]
    result = result_of(run_checks(fake, emergency_accounts=emergency), "mfa-enforced")
    assert result.status is Status.PASS, result.reason
    assert result.observed["uncovered_users"] == [] and result.observed["exclusion_gaps"] == []
    assert result.observed["emergency_accounts_excluded"] == ["Glass2@Contoso.example", "glass1@contoso.example"]
    # Without the config naming them, the same exclusions are gaps.
    assert result_of(run_checks(fake, emergency_accounts=[]), "mfa-enforced").status is Status.FAIL


def test_an_excluded_role_leaves_its_holders_without_mfa(fake: FakeMicrosoft) -> None:
    admin, via_group = directory_user("ga.one@contoso.example"), directory_user("ga.two@contoso.example")
    admins = directory_group("Tier 0 admins", [via_group["id"]])
    automation = {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-1", "displayName": "Automation"}
    directory(fake, admin, via_group, admins, automation)
    fake.scenario.role_assignments = [role_assignment(str(o["id"])) for o in (admin, admins, automation)]
    fake.scenario.ca_policies = [ca_policy("MFA all but GA", exclude_roles=[GLOBAL_ADMIN])]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.FAIL
    assert [u["user_principal_name"] for u in result.observed["uncovered_users"]] == [
        "ga.one@contoso.example",
        "ga.two@contoso.example",
    ]
    assert result.observed["exclusion_gaps"] == [
        {"kind": "role", "id": GLOBAL_ADMIN, "name": "Global Administrator", "uncovered": 2}
    ]
    assert any("$expand=principal" in r.query for r in fake.requests if r.path.endswith("roleAssignments"))


def test_a_user_one_policy_excludes_and_another_covers_is_covered(fake: FakeMicrosoft) -> None:
    kiosk = directory_user("kiosk1@contoso.example")
    directory(fake, kiosk)
    fake.scenario.ca_policies = [
        ca_policy("MFA all (kiosks apart)", exclude_users=[str(kiosk["id"])]),
        ca_policy("MFA all (phishing-resistant)", controls=[], strength_mfa=True),
    ]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.PASS and result.observed["uncovered_count"] == 0


def test_unreadable_group_members_are_an_error_naming_the_permission(fake: FakeMicrosoft) -> None:
    group = directory_group("MFA exemptions", [])
    directory(fake, group)
    fake.scenario.ca_policies = [ca_policy("MFA all", exclude_groups=[str(group["id"])])]
    fake.scenario.faults = [Fault("/v1.0/groups/", 403, DENIED, "Insufficient privileges to complete the operation.")]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.ERROR  # who is excluded cannot be known: neither can a pass or a fail
    assert "GroupMember.Read.All" in result.reason and "MFA exemptions" not in result.reason


def test_an_authentication_strength_counts_as_mfa(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [ca_policy("Phishing-resistant for all", controls=[], strength_mfa=True)]
    assert result_of(run_checks(fake), "mfa-enforced").status is Status.PASS


def test_report_only_risk_scoped_and_optional_mfa_policies_do_not_count(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [
        ca_policy("MFA trial", state="enabledForReportingButNotEnforced"),
        ca_policy("MFA when risky", sign_in_risk=["high", "medium"]),
        ca_policy("MFA or compliant device", controls=["mfa", "compliantDevice"], operator="OR"),
        ca_policy("MFA for finance", include_users=["finance-user"]),
        ca_policy("MFA for Exchange", applications=["00000002-0000-0ff1-ce00-000000000000"]),
    ]
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.FAIL
    reasons = {entry["name"]: " ".join(entry["reasons"]) for entry in result.observed["not_counted"]}
    assert "report-only" in reasons["MFA trial"]
    assert "sign-in risk high, medium" in reasons["MFA when risky"]
    assert "compliantdevice passes without MFA" in reasons["MFA or compliant device"]
    assert "not all users" in reasons["MFA for finance"]
    assert "selected applications" in reasons["MFA for Exchange"]


def test_mfa_and_compliant_device_together_is_mfa(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [ca_policy("MFA and device", controls=["mfa", "compliantDevice"], operator="AND")]
    assert result_of(run_checks(fake), "mfa-enforced").status is Status.PASS


def test_conditional_access_unreadable_without_licence(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [
        Fault("/v1.0/identity/conditionalAccess", 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    ]
    assert result_of(run_checks(fake), "mfa-enforced").status is Status.ERROR
    # ... but security defaults answer the question without it.
    fake.scenario.faults = [
        Fault("/v1.0/identity/conditionalAccess", 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    ]
    fake.scenario.security_defaults = True
    result = result_of(run_checks(fake), "mfa-enforced")
    assert result.status is Status.PASS and result.observed["conditional_access_policies"] is None


def test_policy_read_permission_missing_names_policy_read_all(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault("/v1.0/policies/", 403, DENIED, "Insufficient privileges to complete the operation.")]
    run = run_checks(fake)
    for check in ("mfa-enforced", "legacy-auth-blocked", "admin-roles-require-mfa", "weak-auth-methods-off"):
        result = result_of(run, check)
        assert result.status is Status.ERROR and "Policy.Read.All" in result.reason, check


def test_legacy_auth_needs_both_legacy_client_types_blocked(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [
        ca_policy("Block ActiveSync", client_app_types=["exchangeActiveSync"], controls=["block"]),
        ca_policy(
            "Block legacy (report-only)",
            state="enabledForReportingButNotEnforced",
            client_app_types=["exchangeActiveSync", "other"],
            controls=["block"],
        ),
    ]
    result = result_of(run_checks(fake), "legacy-auth-blocked")
    assert result.status is Status.FAIL
    assert {entry["name"] for entry in result.observed["not_counted"]} == {
        "Block ActiveSync",
        "Block legacy (report-only)",
    }


# --- administrators --------------------------------------------------------------------------------------

ADMIN_ROLE_IDS = [
    "62e90394-69f5-4237-9190-012177145e10", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f", "b0f54661-2d74-4c50-afa3-1ec803f12efe",
    "158c047a-c907-4556-b7ef-446551a6b5f7", "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    "29232cdf-9323-42fd-ade2-1d097af3e4de", "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "966707d0-3269-4727-9be2-8c3a10f19b9d", "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "e8611ab8-c189-46e8-94e1-60213ab1f814", "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "fe930be7-5e62-47db-91af-98c3a49a38b1",
]  # fmt: skip


def test_a_role_targeted_policy_covers_the_admin_roles(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [ca_policy("MFA for admins", include_users=[], include_roles=ADMIN_ROLE_IDS)]
    run = run_checks(fake)
    assert result_of(run, "admin-roles-require-mfa").status is Status.PASS
    assert result_of(run, "mfa-enforced").status is Status.FAIL  # admins only is not everyone


def test_an_uncovered_admin_role_is_named(fake: FakeMicrosoft) -> None:
    fake.scenario.ca_policies = [
        ca_policy("MFA for admins", include_users=[], include_roles=ADMIN_ROLE_IDS[1:]),
        ca_policy("MFA for all but GA", exclude_roles=[ADMIN_ROLE_IDS[0]]),
    ]
    result = result_of(run_checks(fake), "admin-roles-require-mfa")
    assert result.status is Status.FAIL
    assert result.observed["uncovered_roles"] == [
        {"id": ADMIN_ROLE_IDS[0], "name": "Global Administrator", "covered_by": []}
    ]


def test_global_admin_count_within_bounds(fake: FakeMicrosoft) -> None:
    fake.scenario.graph_page_size = 2  # the assignments span pages
    fake.scenario.role_assignments = [role_assignment(f"ga-{i}") for i in range(3)] + [
        role_assignment("ga-0", "62e90394-69f5-4237-9190-012177145e10"),  # the same principal twice
        role_assignment("reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
    ]
    result = result_of(run_checks(fake), "global-admin-count")
    assert result.status is Status.PASS and result.observed["count"] == 3
    assert any("roleDefinitionId%20eq%20'62e90394" in r.query for r in fake.requests if "roleAssignments" in r.path)


def test_too_many_or_too_few_global_admins_fail(fake: FakeMicrosoft) -> None:
    fake.scenario.role_assignments = [role_assignment(f"ga-{i}") for i in range(6)]
    assert result_of(run_checks(fake), "global-admin-count").status is Status.FAIL
    fake.scenario.role_assignments = [role_assignment("only-one")]
    result = result_of(run_checks(fake), "global-admin-count")
    assert result.status is Status.FAIL and "count" in result.reason


def test_role_read_permission_missing_names_the_permission(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault("/v1.0/roleManagement", 403, DENIED, "Insufficient privileges")]
    result = result_of(run_checks(fake), "global-admin-count")
    assert result.status is Status.ERROR and "RoleManagement.Read.Directory" in result.reason


# --- methods and Secure Score ----------------------------------------------------------------------------


def test_weak_methods_enabled_fail(fake: FakeMicrosoft) -> None:
    fake.scenario.methods = methods_policy(["MicrosoftAuthenticator", "Sms", "Voice"])
    result = result_of(run_checks(fake), "weak-auth-methods-off")
    assert result.status is Status.FAIL and result.observed["enabled_weak_methods"] == ["sms", "voice"]


def test_secure_score_level_and_trend(fake: FakeMicrosoft) -> None:
    fake.scenario.scores = secure_scores([55.0] + [58.0] * 35)
    run = run_checks(fake)
    level, trend = result_of(run, "secure-score"), result_of(run, "secure-score-not-falling")
    assert level.status is Status.FAIL and level.observed["percent"] == 55.0
    assert trend.status is Status.FAIL and trend.observed["change_points"] == -3.0
    assert trend.observed["previous_measured_at"] == "2025-05-31T00:00:00Z"  # 30 days before the latest


def test_secure_score_without_snapshots_is_an_error(fake: FakeMicrosoft) -> None:
    fake.scenario.scores = []
    result = result_of(run_checks(fake), "secure-score")
    assert result.status is Status.ERROR and "no Secure Score" in result.reason


def test_secure_score_permission_missing(fake: FakeMicrosoft) -> None:
    fake.scenario.faults = [Fault("/v1.0/security/", 403, DENIED, "Insufficient privileges")]
    result = result_of(run_checks(fake), "secure-score")
    assert result.status is Status.ERROR and "SecurityEvents.Read.All" in result.reason


def test_each_cloud_probe_example_runs_against_the_fake(fake: FakeMicrosoft) -> None:
    from checks.probes import registry

    specs = [s for s in registry.all_probes() if set(s.platforms) & {"microsoft365", "azure"}]
    text = 'id: examples\nversion: "1"\ntitle: Examples\nchecks:\n' + "".join(
        "  " + line + "\n" for spec in specs for line in spec.example.splitlines()
    )
    policy = load_policy_text(text)
    run = run_cloud_checks(cloud_config(fake), policies=[policy], waivers=[], backoff_base_s=0.01)
    assert {r.status for r in run.results} == {Status.PASS}
    assert {r.check_id for r in run.results} == {c.id for c in policy.checks}
