"""The password_policy probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.password_policy import linux, windows
from checks.probes.registry import UNKNOWN_BECAUSE, Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="password_policy",
        description="The local password policy: minimum length, maximum age and the lockout threshold (Linux "
        "login.defs, pwquality and faillock; Windows local policy)",
        facts=(
            Field("min_length", "integer", "Shortest password accepted", nullable=True),
            Field("max_age_days", "integer", "Days before a password must change (null: never)", nullable=True),
            Field("lockout_threshold", "integer", "Failed logons before lockout (0: never locks)", nullable=True),
            Field("notes", "array", "Where each value came from; what is not configured", items="string"),
            Field(UNKNOWN_BECAUSE, "object", "For each fact that is null: why, in words (an error result shows it)"),
        ),
        example="""\
- id: password-length
  title: Local passwords are at least 12 characters
  description: Reads the minimum password length of the local policy.
  rationale: Cyber Essentials asks for 12 characters where no other protection applies.
  remediation: Set the minimum password length to 12 or more.
  severity: medium
  platforms: [windows]
  probe: password_policy
  expect: {fact: min_length, gte: 12}
""",
        collectors={
            "linux": linux.collect_password_policy_linux,
            "windows": windows.collect_password_policy_windows,
        },
    )
)
