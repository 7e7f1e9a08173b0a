"""The patch_level probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.patch_level import darwin, linux, windows
from checks.probes.patch_level.facts import MAX_LISTED
from checks.probes.registry import UNKNOWN_BECAUSE, Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="patch_level",
        description="Pending updates (all and security), the age of the oldest pending security update, the last "
        "install, a pending reboot and how fresh the package index is (apt, dnf/yum, zypper, Windows Update, "
        "macOS Software Update); never refreshes the index itself",
        facts=(
            Field("manager", "string", "What answered: apt, dnf, yum, zypper, windows_update or softwareupdate"),
            Field("pending_updates", "integer", "Updates available for installed software", nullable=True),
            Field("security_updates", "integer", "Pending updates that fix security issues", nullable=True),
            Field(
                "security_packages",
                "array",
                f"Names of the pending security updates (first {MAX_LISTED})",
                items="string",
            ),
            Field(
                "held_packages",
                "array",
                "Packages with a pending update that is held back (apt-mark hold, versionlock)",
                items="string",
            ),
            Field(
                "oldest_security_update_age_days",
                "integer",
                "Days since the oldest pending security update was released, where the source dates its updates "
                "(dnf, zypper, Windows Update); null where it does not (apt, macOS)",
                nullable=True,
            ),
            Field(
                "oldest_security_update_min_age_days",
                "integer",
                "The least that age can be: the age itself where it is known; for apt, the days since the refresh "
                "of the first index that listed the update (it was released by then)",
                nullable=True,
            ),
            Field(
                "oldest_security_update_max_age_days",
                "integer",
                "The most that age can be: the age itself where it is known; for apt, the days since the refresh "
                "of the last index the agent saw without the update (from its record); null where not known",
                nullable=True,
            ),
            Field("last_installed_at", "string", "When updates were last installed (ISO 8601)", nullable=True),
            Field("days_since_last_install", "integer", "Whole days since updates were last installed", nullable=True),
            Field("reboot_pending", "boolean", "Installed updates wait for a restart", nullable=True),
            Field(
                "index_updated_at",
                "string",
                "When the package index was last refreshed (ISO 8601): pending counts are as of then",
                nullable=True,
            ),
            Field("index_age_days", "number", "Days since the package index was last refreshed", nullable=True),
            Field("notes", "array", "Why a fact is null, and caveats about the counts", items="string"),
            Field(
                UNKNOWN_BECAUSE,
                "object",
                "For each fact that is null: what is known instead and when it will be known (an error result "
                "shows it)",
            ),
        ),
        example="""\
- id: security-updates-within-14-days
  title: Security updates are installed within 14 days
  description: Counts pending security updates and the age of the oldest.
  rationale: Cyber Essentials requires critical and high-risk updates within 14 days of release.
  remediation: Install the pending security updates (apt upgrade, dnf upgrade --security, Windows Update).
  severity: high
  probe: patch_level
  expect:
    any:
      - {fact: security_updates, eq: 0}
      - all:  # surely within 14 days
          - {fact: oldest_security_update_min_age_days, lte: 14}
          - {fact: oldest_security_update_max_age_days, lte: 14}
      - all:  # false once surely older (a fail); unknown while the age is not known (an error)
          - {fact: oldest_security_update_min_age_days, lte: 14}
          - {fact: oldest_security_update_age_days, lte: 14}
""",
        collectors={
            "linux": linux.collect_patch_level_linux,
            "windows": windows.collect_patch_level_windows,
            "darwin": darwin.collect_patch_level_darwin,
        },
    )
)
