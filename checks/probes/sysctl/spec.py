"""The `sysctl` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import checker
from checks.probes.registry import Field, ProbeSpec, register
from checks.probes.sysctl import darwin, linux

SPEC = register(
    ProbeSpec(
        name="sysctl",
        description="A kernel parameter (Linux /proc/sys, macOS sysctl)",
        params=(
            Field(
                "name",
                "string",
                "Parameter name, e.g. net.ipv4.ip_forward (never name=value)",
                pattern=grammar.SYSCTL_PATTERN,
                max_length=512,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The parameter exists on this kernel"),
            Field("value", "string", "Its value, whitespace collapsed", nullable=True),
            Field("int_value", "integer", "Its value as a whole number, when it is one", nullable=True),
        ),
        example="""\
- id: kernel-aslr
  title: Address space layout randomisation is fully on
  description: Reads kernel.randomize_va_space.
  rationale: ASLR makes memory-corruption exploits much harder.
  remediation: Set kernel.randomize_va_space = 2 in /etc/sysctl.d/.
  severity: medium
  platforms: [linux]
  probe: {name: sysctl, params: {name: kernel.randomize_va_space}}
  expect: {fact: int_value, eq: 2}
""",
        check_params=checker("name", grammar.sysctl_name_problem),
    )
)


SPEC.collector("linux")(linux.collect_sysctl_linux)
SPEC.collector("darwin")(darwin.collect_sysctl_darwin)
