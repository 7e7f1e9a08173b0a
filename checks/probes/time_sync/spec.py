"""The `time_sync` probe's contract: facts, example; and its Linux collector."""

from __future__ import annotations

from checks.probes.registry import Field, ProbeSpec, register
from checks.probes.time_sync import linux

SPEC = register(
    ProbeSpec(
        name="time_sync",
        description="Whether the clock is synchronised by network time (systemd's `timedatectl show`): "
        "synchronised now, a time service enabled, the time zone",
        facts=(
            Field("synchronized", "boolean", "The system clock is synchronised to a time source now", nullable=True),
            Field("ntp_enabled", "boolean", "A network time service is enabled", nullable=True),
            Field("can_ntp", "boolean", "A network time service is installed and could be enabled", nullable=True),
            Field("timezone", "string", "The time zone, e.g. Europe/London", nullable=True),
            Field("rtc_in_local_time", "boolean", "The hardware clock keeps local time, not UTC", nullable=True),
        ),
        example="""\
- id: clock-synchronised
  title: The clock is kept right by network time
  description: Reads timedatectl show.
  rationale: Logs and evidence need trustworthy timestamps; Kerberos refuses clocks five minutes apart.
  remediation: Enable a time service (timedatectl set-ntp true) and check that it reaches its servers.
  severity: medium
  platforms: [linux]
  probe: time_sync
  frameworks:
    cis_controls_v8: ["8.4"]
  expect: {fact: synchronized, eq: true}
""",
    )
)


SPEC.collector("linux")(linux.collect_time_sync_linux)
