"""The entra_mfa_coverage probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.entra_mfa_coverage import collect
from checks.probes.cloud.entra_mfa_coverage.parse import DEFAULT_EVIDENCE_LIMIT
from checks.probes.registry import Field, ProbeSpec, register

USER_FIELDS = (
    Field("id", "string", "Object id of the user"),
    Field("user_principal_name", "string", "Sign-in name"),
    Field("display_name", "string", "Display name"),
    Field("is_admin", "boolean", "Holds an administrative role"),
    Field("methods_registered", "array", "Authentication methods the user has registered", items="string"),
)

SPEC = register(
    ProbeSpec(
        name="entra_mfa_coverage",
        description="Share of member users who are MFA capable, from the Entra ID registration report "
        "(guests and disabled accounts are not counted); the users who are not, listed as evidence",
        scope="tenant",
        permissions=("AuditLog.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "evidence_limit",
                "integer",
                "Most users listed by name in `users_without_mfa` and `admins_without_mfa_list` "
                "(the first by sign-in name); counts are always exact",
                required=False,
                default=DEFAULT_EVIDENCE_LIMIT,
            ),
        ),
        facts=(
            Field("members", "integer", "Member users in the report (enabled accounts; guests not counted)"),
            Field("mfa_capable", "integer", "Members who are MFA capable"),
            Field("not_mfa_capable", "integer", "Members who are not MFA capable"),
            Field(
                "coverage_percent",
                "number",
                "mfa_capable / members x 100, two decimals; null when the tenant has no members",
                nullable=True,
            ),
            Field("admins", "integer", "Members marked as holding an administrative role"),
            Field("admins_without_mfa", "integer", "Administrators who are not MFA capable"),
            Field("guests_not_counted", "integer", "Guest users left out of the counts"),
            Field("users_without_mfa", "array", "Members who are not MFA capable (capped)", fields=USER_FIELDS),
            Field("admins_without_mfa_list", "array", "Administrators not MFA capable (capped)", fields=USER_FIELDS),
            Field("evidence_truncated", "boolean", "More users lack MFA than are listed"),
            Field("evidence_limit", "integer", "The cap on the lists"),
            Field("pages", "integer", "Report pages read"),
        ),
        example="""\
- id: mfa-coverage
  title: At least 95% of users can sign in with MFA
  description: Counts member users who are MFA capable in the Entra ID registration report.
  rationale: Passwords alone are phished and guessed; MFA stops most account takeovers.
  remediation: Require users to register for MFA (registration campaign or conditional access).
  severity: high
  platforms: [microsoft365]
  probe: entra_mfa_coverage
  expect: {fact: coverage_percent, gte: 95}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_mfa_coverage)
