"""The `command` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes.command import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="command",
        description="Runs a command (an argument list, never a shell) with a timeout and an output cap",
        params=(
            Field("argv", "array", "The program and its arguments", items="string"),
            Field("timeout", "integer", "Seconds before the command is killed", required=False, default=30),
            Field("max_output", "integer", "Bytes of output kept", required=False, default=1048576),
            Field(
                "parse",
                "string",
                "How stdout is read: text, lines or json",
                required=False,
                default="text",
                enum=("text", "lines", "json"),
            ),
        ),
        facts=(
            Field("exit_code", "integer", "The command's exit status"),
            Field("stdout", "string", "Standard output (capped)"),
            Field("stderr", "string", "Standard error (capped)"),
            Field(
                "lines",
                "array",
                "Non-empty lines of stdout, when parse is lines",
                items="string",
                required=False,
            ),
            Field("json", "object", "stdout parsed as JSON, when parse is json", required=False, nullable=True),
            Field("truncated", "boolean", "Output went past max_output and was cut"),
        ),
        example="""\
- id: no-world-writable-root-path
  title: root's PATH has no world-writable directory
  description: Lists the directories of the default PATH that anyone may write.
  rationale: A writable PATH entry lets any user plant a program that root runs.
  remediation: Remove the write bit for others from the listed directories.
  severity: medium
  platforms: [linux]
  probe:
    name: command
    params: {argv: [find, /usr/local/bin, /usr/bin, -maxdepth, "0", -perm, "-0002"], parse: lines}
  expect: {fact: lines, count: {eq: 0}}
""",
    )
)


SPEC.collector("linux", "darwin", "windows")(collect.collect_command)
