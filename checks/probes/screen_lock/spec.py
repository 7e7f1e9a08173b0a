"""The screen_lock probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.registry import Field, ProbeSpec, register
from checks.probes.screen_lock import darwin, linux, windows

SPEC = register(
    ProbeSpec(
        name="screen_lock",
        description="The machine-wide idle screen lock (Windows machine inactivity limit; macOS screen lock "
        "after the screen saver; Linux: GNOME's settings, where GNOME is installed)",
        facts=(
            Field(
                "desktop",
                "string",
                "The desktop whose lock was read: windows, macos, gnome; null on Linux without GNOME",
                nullable=True,
            ),
            Field("enabled", "boolean", "The screen locks after inactivity", nullable=True),
            Field("timeout_seconds", "integer", "Idle seconds before the lock", nullable=True),
            Field("source", "string", "Where the setting was read"),
        ),
        example="""\
- id: screen-locks
  title: The screen locks within 15 minutes of inactivity
  description: Reads the machine inactivity limit.
  rationale: An unattended, unlocked session gives anyone nearby the user's access.
  remediation: Set "Interactive logon - Machine inactivity limit" to 900 seconds or less.
  severity: medium
  platforms: [windows]
  probe: screen_lock
  expect:
    all:
      - {fact: enabled, eq: true}
      - {fact: timeout_seconds, lte: 900}
""",
        collectors={
            "windows": windows.collect_screen_lock_windows,
            "darwin": darwin.collect_screen_lock_darwin,
            "linux": linux.collect_screen_lock_linux,
        },
    )
)
