"""The `process` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes.process import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="process",
        description="Running processes with a given name (or whose command line matches a pattern)",
        params=(
            Field("name", "string", "Exact process name", required=False, pattern=r"^[^\x00-\x1f\x7f]{1,255}$"),
            Field(
                "cmdline_pattern",
                "string",
                "Regular expression searched in the joined command line (policies from the collector: only "
                "where the agent's local config allows, agent.pushed_process_cmdlines)",
                required=False,
                max_length=1000,
                regex=True,
            ),
        ),
        facts=(
            Field("running", "boolean", "At least one such process runs"),
            Field("count", "integer", "How many run"),
            Field(
                "processes",
                "array",
                "The matching processes",
                fields=(
                    Field("pid", "integer", "Process id"),
                    Field("name", "string", "Process name"),
                    Field("user", "string", "User it runs as"),
                    Field(
                        "cmdline",
                        "string",
                        "Command line, joined with spaces (null for policies from the collector unless the agent's "
                        "local config allows them, agent.pushed_process_cmdlines)",
                        nullable=True,
                    ),
                ),
            ),
        ),
        example="""\
- id: sshd-not-as-user
  title: The SSH daemon runs as root only
  description: Lists sshd processes and the users they run as.
  rationale: An sshd under an ordinary account suggests a planted backdoor.
  remediation: Investigate and stop sshd processes not started by the system.
  severity: high
  platforms: [linux]
  probe: {name: process, params: {name: sshd}}
  expect: {fact: processes, every_item: {fact: user, eq: root}}
""",
    )
)


SPEC.collector("linux", "darwin", "windows")(collect.collect_process)
