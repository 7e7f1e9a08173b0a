"""The `service` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import checker
from checks.probes.registry import Field, ProbeSpec, register
from checks.probes.service import darwin, linux, windows

SPEC = register(
    ProbeSpec(
        name="service",
        description="A service's state: installed, running, started at boot",
        params=(
            Field(
                "name",
                "string",
                "Unit (Linux), service (Windows) or launchd label (macOS)",
                pattern=grammar.SERVICE_PATTERN,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The service is installed"),
            Field("active", "boolean", "It is running now"),
            Field("enabled", "boolean", "It starts at boot", nullable=True),
            Field("state", "string", "The platform's own word for its state, e.g. active, Running"),
        ),
        example="""\
- id: auditd-running
  title: The audit daemon is running and enabled
  description: Reads the state of auditd.service.
  rationale: Without auditd, security-relevant events are not recorded.
  remediation: apt install auditd && systemctl enable --now auditd
  severity: medium
  platforms: [linux]
  probe: {name: service, params: {name: auditd}}
  expect:
    all:
      - {fact: active, eq: true}
      - {fact: enabled, eq: true}
""",
        check_params=checker("name", grammar.service_name_problem),
    )
)


SPEC.collector("linux")(linux.collect_service_linux)
SPEC.collector("windows")(windows.collect_service_windows)
SPEC.collector("darwin")(darwin.collect_service_darwin)
