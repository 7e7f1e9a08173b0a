"""entra_admin_mfa on recorded conditional access (tests/data/probes/entra_admin_mfa/)."""

from __future__ import annotations

import pytest

from checks.probes.host import ProbeError
from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"


def test_every_role_is_covered_by_the_all_users_policy_and_some_by_the_role_policy() -> None:
    facts, _ = run_probe("entra_admin_mfa", "role-policy")
    assert facts["required"] is True and facts["uncovered_roles"] == []
    covered = {role["id"]: role["covered_by"] for role in facts["covered_roles"]}
    assert len(covered) == 14
    assert covered[GLOBAL_ADMIN] == ["Require MFA for all users", "Require MFA for administrators"]
    assert covered[HELPDESK_ADMIN] == ["Require MFA for all users"]


def test_only_the_listed_roles_are_judged() -> None:
    facts, _ = run_probe("entra_admin_mfa", "role-policy", {"roles": [HELPDESK_ADMIN]})
    assert facts["covered_roles"] == [
        {"id": HELPDESK_ADMIN, "name": "Helpdesk Administrator", "covered_by": ["Require MFA for all users"]}
    ]


def test_a_missing_permission_is_an_error_naming_what_to_grant() -> None:
    with pytest.raises(ProbeError) as raised:
        run_probe("entra_admin_mfa", "permission-missing")
    assert "HTTP 403 Authorization_RequestDenied" in raised.value.reason
    assert "grant the app registration Policy.Read.All" in raised.value.reason
    assert [r.status for r in run_example("entra_admin_mfa", "permission-missing")] == [Status.ERROR]


def test_the_example_check_passes() -> None:
    assert [r.status for r in run_example("entra_admin_mfa", "role-policy")] == [Status.PASS]
