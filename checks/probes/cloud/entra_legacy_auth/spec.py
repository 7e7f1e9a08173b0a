"""The entra_legacy_auth probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.conditional_access import COMMON_FACTS, PERMISSIONS, POLICY_FIELDS
from checks.probes.cloud.entra_legacy_auth import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="entra_legacy_auth",
        description="Whether legacy authentication (Exchange ActiveSync and other legacy clients, which cannot "
        "do MFA) is blocked by security defaults or an enabled conditional access policy for all users",
        scope="tenant",
        permissions=PERMISSIONS,
        facts=(
            Field("blocked", "boolean", "Legacy authentication is blocked for all users"),
            Field("blocked_by", "array", "`security defaults` or the names of the blocking policies", items="string"),
            Field("policies", "array", "Conditional access policies that block legacy clients", fields=POLICY_FIELDS),
            *COMMON_FACTS,
        ),
        example="""\
- id: legacy-auth-blocked
  title: Legacy authentication is blocked
  description: Security defaults or an enabled conditional access policy blocking legacy clients.
  rationale: Legacy protocols cannot do MFA, so password spraying against them bypasses it.
  remediation: Enable a conditional access policy blocking Exchange ActiveSync and other clients for all users.
  severity: high
  platforms: [microsoft365]
  probe: entra_legacy_auth
  expect: {fact: blocked, eq: true}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_legacy_auth)
