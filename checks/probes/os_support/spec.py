"""The `os_support` probe's contract: facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes.os_support import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="os_support",
        description="The operating system release against the shipped end-of-life table: the date security "
        "updates end, days left, and where that date comes from",
        facts=(
            Field("os", "string", "The OS as detected, e.g. Debian GNU/Linux 12 (bookworm)"),
            Field("product", "string", "Table product: debian, ubuntu, rhel, windows, windows_server, macos, ..."),
            Field("cycle", "string", "Release cycle in the table, e.g. 12, 22.04, 11-23H2-enterprise", nullable=True),
            Field("eol_date", "string", "Last day of free security updates (ISO date)", nullable=True),
            Field("days_to_eol", "integer", "Days from today to eol_date (negative once passed)", nullable=True),
            Field("supported", "boolean", "Security updates are still published for this release", nullable=True),
            Field("eol_estimated", "boolean", "The vendor has not published the date; the table estimates it"),
            Field("extended_eol", "string", "End of paid extended support (ESM, ELS), if any", nullable=True),
            Field("eol_source", "string", "Where the date comes from", nullable=True),
        ),
        example="""\
- id: os-still-supported
  title: The operating system still receives security updates
  description: Compares the OS release with the shipped end-of-life table.
  rationale: An unsupported OS gets no fixes for newly found vulnerabilities.
  remediation: Upgrade to a supported release before the end-of-life date.
  severity: high
  probe: os_support
  expect:
    all:
      - {fact: supported, eq: true}
      - {fact: days_to_eol, gt: 30}
""",
    )
)


SPEC.collector("linux")(linux.collect_os_support_linux)
SPEC.collector("windows")(windows.collect_os_support_windows)
SPEC.collector("darwin")(darwin.collect_os_support_darwin)
