"""The entra_secure_score probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.entra_secure_score import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="entra_secure_score",
        description="Microsoft Secure Score: the latest value as a percentage of the maximum, and its change "
        "over a period (daily snapshots)",
        scope="tenant",
        permissions=("SecurityEvents.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "trend_days",
                "integer",
                "Compare with the snapshot this many days before the latest (or the oldest available)",
                required=False,
                default=30,
            ),
        ),
        facts=(
            Field("current_score", "number", "Points scored"),
            Field("max_score", "number", "Points available"),
            Field("percent", "number", "current / max x 100, two decimals"),
            Field("measured_at", "string", "When the latest snapshot was taken"),
            Field("previous_percent", "number", "The percentage at the start of the period", nullable=True),
            Field("previous_measured_at", "string", "When that snapshot was taken", nullable=True),
            Field("change_points", "number", "percent - previous_percent", nullable=True),
            Field("trend", "string", "up, down or flat (null without an earlier snapshot)", nullable=True),
        ),
        example="""\
- id: secure-score
  title: Secure Score is at least 60% and not falling
  description: Reads the latest Microsoft Secure Score and its change over 30 days.
  rationale: Secure Score summarises many tenant settings; a falling score means settings drifted.
  remediation: Work through the Secure Score recommended actions in the Defender portal.
  severity: medium
  platforms: [microsoft365]
  probe: entra_secure_score
  expect:
    all:
      - {fact: percent, gte: 60}
      - {fact: trend, ne: down}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_secure_score)
