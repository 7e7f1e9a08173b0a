"""The entra_admin_mfa probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.conditional_access import ADMIN_ROLES, COMMON_FACTS, PERMISSIONS
from checks.probes.cloud.entra_admin_mfa import collect
from checks.probes.registry import Field, ProbeSpec, register

ROLE_FIELDS = (
    Field("id", "string", "Role template id"),
    Field("name", "string", "Role name (when known)"),
    Field("covered_by", "array", "`security defaults` or the policies requiring MFA for it", items="string"),
)

SPEC = register(
    ProbeSpec(
        name="entra_admin_mfa",
        description="Whether every privileged directory role must use MFA (security defaults, or enabled "
        "conditional access policies for those roles and all apps requiring MFA)",
        scope="tenant",
        permissions=PERMISSIONS,
        params=(
            Field(
                "roles",
                "array",
                "Role template ids that must require MFA (default: the 14 roles of Microsoft's "
                "'require MFA for administrators' template)",
                items="string",
                required=False,
                default=list(ADMIN_ROLES),
            ),
        ),
        facts=(
            Field("required", "boolean", "Every listed role must use MFA"),
            Field("covered_roles", "array", "Roles that must use MFA, and by what", fields=ROLE_FIELDS),
            Field("uncovered_roles", "array", "Roles no counting policy covers", fields=ROLE_FIELDS),
            *COMMON_FACTS,
        ),
        example="""\
- id: admin-mfa-required
  title: Administrators must use MFA
  description: Every privileged role is covered by security defaults or a conditional access policy requiring MFA.
  rationale: An administrator account without MFA is the quickest way to take over a tenant.
  remediation: Enable a conditional access policy requiring MFA for the administrator roles.
  severity: critical
  platforms: [microsoft365]
  probe: entra_admin_mfa
  expect: {fact: uncovered_roles, count: {eq: 0}}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_admin_mfa)
