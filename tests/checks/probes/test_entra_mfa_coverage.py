"""entra_mfa_coverage on recorded registration reports (tests/data/probes/entra_mfa_coverage/)."""

from __future__ import annotations

import pytest

from checks.probes.cloud.entra_mfa_coverage.parse import Coverage
from checks.probes.host import ProbeError
from checks.results import Status
from tests.support.cloud_replay import recording, run_example, run_probe


def test_counts_members_across_pages_and_leaves_guests_out() -> None:
    facts, context = run_probe("entra_mfa_coverage", "paged-report")
    assert len(context.requested) == 2 and "$skiptoken=" in context.requested[1]  # the next link, verbatim
    assert facts["pages"] == 2
    assert facts["members"] == 4 and facts["guests_not_counted"] == 1
    assert facts["mfa_capable"] == 2 and facts["not_mfa_capable"] == 2
    assert facts["coverage_percent"] == 50.0
    assert facts["admins"] == 2 and facts["admins_without_mfa"] == 1
    # Diego registered a phone (isMfaRegistered) but may not use it (isMfaCapable false): not covered.
    assert [u["user_principal_name"] for u in facts["users_without_mfa"]] == ["AlexW@contoso.com", "DiegoS@contoso.com"]
    assert facts["admins_without_mfa_list"] == [
        {
            "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "user_principal_name": "DiegoS@contoso.com",
            "display_name": "Diego Siciliani",
            "is_admin": True,
            "methods_registered": ["mobilePhone"],
        }
    ]
    assert facts["evidence_truncated"] is False and facts["evidence_limit"] == 1000


def test_the_evidence_cap_keeps_the_first_by_sign_in_name_and_the_counts_exact() -> None:
    facts, _ = run_probe("entra_mfa_coverage", "paged-report", {"evidence_limit": 1})
    assert [u["user_principal_name"] for u in facts["users_without_mfa"]] == ["AlexW@contoso.com"]
    assert facts["not_mfa_capable"] == 2 and facts["evidence_truncated"] is True


def test_a_tenant_without_the_licence_is_an_error_naming_it_never_no_mfa() -> None:
    with pytest.raises(ProbeError) as raised:
        run_probe("entra_mfa_coverage", "no-premium-licence")
    assert "HTTP 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant" in raised.value.reason
    assert "Microsoft Entra ID P1 or P2 licence" in raised.value.reason
    (result,) = run_example("entra_mfa_coverage", "no-premium-licence")
    assert result.status is Status.ERROR and "P1 or P2" in result.reason


def test_the_example_check_fails_at_half_coverage() -> None:
    (result,) = run_example("entra_mfa_coverage", "paged-report")
    assert result.status is Status.FAIL
    assert "coverage_percent = 50.0" in result.reason


def test_an_empty_tenant_has_no_percentage() -> None:
    assert Coverage().facts()["coverage_percent"] is None
    assert recording("entra_mfa_coverage", "paged-report", "microsoft365").platform == "microsoft365"
