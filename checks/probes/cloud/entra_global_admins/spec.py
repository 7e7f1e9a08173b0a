"""The entra_global_admins probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.entra_global_admins import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="entra_global_admins",
        description="Principals holding the Global Administrator role (active assignments, read from "
        "roleManagement, which pages; /directoryRoles does not)",
        scope="tenant",
        permissions=("RoleManagement.Read.Directory (Microsoft Graph application permission)",),
        facts=(
            Field("count", "integer", "Distinct principals assigned Global Administrator"),
            Field("principal_ids", "array", "Their object ids (first 100)", items="string"),
        ),
        example="""\
- id: global-admin-count
  title: Two to four Global Administrators
  description: Counts principals assigned the Global Administrator role.
  rationale: One admin is a single point of failure; many widen the target.
  remediation: Keep two to four Global Administrators; use least-privileged roles for the rest.
  severity: high
  platforms: [microsoft365]
  probe: entra_global_admins
  expect:
    all:
      - {fact: count, gte: 2}
      - {fact: count, lte: 4}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_global_admins)
