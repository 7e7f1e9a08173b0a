"""The `key_value_file` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.common import path_field, path_read
from checks.probes.grammar import checker
from checks.probes.key_value_file import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="key_value_file",
        description="Settings of a `key value` or `key=value` configuration file (login.defs, sysctl.conf, ...); "
        "keys lower-cased, the last occurrence wins",
        params=(
            path_field(),
            Field(
                "separator",
                "string",
                "`whitespace` or `=`",
                required=False,
                default="whitespace",
                enum=("whitespace", "="),
            ),
        ),
        facts=(
            Field("exists", "boolean", "The file exists"),
            Field("settings", "object", "Key (lower case) to value (string)"),
            Field("numbers", "object", "The settings whose value is a plain decimal number, as numbers"),
        ),
        example="""\
- id: password-max-days
  title: Passwords expire within a year
  description: Reads PASS_MAX_DAYS from /etc/login.defs.
  rationale: Long-lived passwords stay useful to an attacker who learned them.
  remediation: Set PASS_MAX_DAYS 365 (or less) in /etc/login.defs.
  severity: low
  platforms: [linux]
  probe: {name: key_value_file, params: {path: /etc/login.defs}}
  expect: {fact: numbers.pass_max_days, lte: 365}
""",
        check_params=checker("path", grammar.path_problem),
        reads=path_read,
    )
)


SPEC.collector("linux", "darwin", "windows")(collect.collect_key_value_file)
