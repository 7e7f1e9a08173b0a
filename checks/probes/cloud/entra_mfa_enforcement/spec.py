"""The entra_mfa_enforcement probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.conditional_access import COMMON_FACTS, MAX_LISTED_UNCOVERED, PERMISSIONS, POLICY_FIELDS
from checks.probes.cloud.directory import GROUP_MEMBER_READ, ROLE_READ, USER_READ
from checks.probes.cloud.entra_mfa_enforcement import collect
from checks.probes.registry import Field, ProbeSpec, register

DIRECTORY_USER_FIELDS = (
    Field("id", "string", "User object id"),
    Field("user_principal_name", "string", "Sign-in name (empty when the app may not read it)"),
    Field("display_name", "string", "Display name"),
)
UNCOVERED_FIELDS = (
    *DIRECTORY_USER_FIELDS,
    Field("excluded_by", "array", "How: `user`, `group <name or id>`, `role <name or id>`", items="string"),
)
GAP_FIELDS = (
    Field("kind", "string", "user, group or role"),
    Field("id", "string", "Object id (role template id for a role)"),
    Field("name", "string", "Its name, when known"),
    Field("uncovered", "integer", "Users it leaves without MFA (not emergency accounts, excluded everywhere)"),
)

# Reading who exclusions leave out (only asked when a counting policy excludes someone).
EXCLUSION_PERMISSIONS = (
    f"{USER_READ}, {GROUP_MEMBER_READ} and {ROLE_READ} (Microsoft Graph application permissions) to read "
    "who excluded users, groups and roles are",
)

SPEC = register(
    ProbeSpec(
        name="entra_mfa_enforcement",
        description="Whether MFA is enforced for all users: security defaults, or enabled conditional access "
        "policies for all users and all apps requiring MFA or an MFA authentication strength, excluding no "
        "one but the emergency accounts named in the collector's config",
        scope="tenant",
        permissions=PERMISSIONS + EXCLUSION_PERMISSIONS,
        facts=(
            Field("enforced", "boolean", "MFA is enforced for all users but the emergency accounts"),
            Field("enforced_by", "array", "`security defaults` or the names of the counting policies", items="string"),
            Field("policies", "array", "Conditional access policies that enforce MFA for all", fields=POLICY_FIELDS),
            Field(
                "uncovered_users",
                "array",
                f"Users every counting policy excludes, emergency accounts apart (first {MAX_LISTED_UNCOVERED})",
                fields=UNCOVERED_FIELDS,
            ),
            Field("uncovered_count", "integer", "How many users every counting policy excludes (exact)"),
            Field("uncovered_truncated", "boolean", "uncovered_users lists only the first of them"),
            Field(
                "exclusion_gaps",
                "array",
                "Exclusions that leave users other than emergency accounts out",
                fields=GAP_FIELDS,
            ),
            Field("emergency_accounts_excluded", "array", "Emergency accounts the policies exclude", items="string"),
            *COMMON_FACTS,
        ),
        example="""\
- id: mfa-enforced
  title: MFA is enforced for all users
  description: Security defaults or an enabled conditional access policy for all users and apps.
  rationale: MFA that users may skip protects nobody.
  remediation: Turn on security defaults, or enable a conditional access policy requiring MFA for all users.
  severity: critical
  platforms: [microsoft365]
  probe: entra_mfa_enforcement
  expect: {fact: enforced, eq: true}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_mfa_enforcement)
