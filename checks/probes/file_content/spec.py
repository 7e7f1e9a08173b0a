"""The `file_content` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.common import path_field, path_read
from checks.probes.file_content import collect
from checks.probes.grammar import checker
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="file_content",
        description="The lines of a text file, optionally only those matching a regular expression",
        params=(
            path_field(),
            Field(
                "pattern",
                "string",
                "Keep only lines where this regular expression is found",
                required=False,
                max_length=1000,
                regex=True,
            ),
            Field(
                "skip_comments",
                "boolean",
                "Drop blank lines and lines starting with #",
                required=False,
                default=True,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The file exists"),
            Field("lines", "array", "The (matching) lines, stripped", items="string"),
            Field("match_count", "integer", "How many lines are in `lines`"),
        ),
        example="""\
- id: no-nis-passwd
  title: No NIS entries in /etc/passwd
  description: Looks for legacy '+' entries in /etc/passwd.
  rationale: Lines starting with a plus sign pull accounts from NIS, which is unauthenticated.
  remediation: Remove the lines starting with a plus sign from /etc/passwd.
  severity: medium
  platforms: [linux]
  probe: {name: file_content, params: {path: /etc/passwd, pattern: "^\\\\+"}}
  expect: {fact: match_count, eq: 0}
""",
        check_params=checker("path", grammar.path_problem),
        reads=path_read,
    )
)


SPEC.collector("linux", "darwin", "windows")(collect.collect_file_content)
