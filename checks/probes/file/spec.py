"""The `file` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.common import path_field
from checks.probes.file import collect
from checks.probes.grammar import checker
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="file",
        description="A file's existence, type, owner, group and permission bits (and optionally its SHA-256)",
        params=(
            path_field(),
            Field("hash", "boolean", "Also compute the SHA-256 of the content", required=False, default=False),
        ),
        facts=(
            Field("exists", "boolean", "The path exists"),
            Field("is_dir", "boolean", "It is a directory", nullable=True),
            Field("mode", "string", "Permission bits in octal, e.g. 0640", nullable=True),
            Field("owner", "string", "Owning user", nullable=True),
            Field("group", "string", "Owning group", nullable=True),
            Field("size", "integer", "Size in bytes", nullable=True),
            Field("world_readable", "boolean", "Others may read it", nullable=True),
            Field("world_writable", "boolean", "Others may write it", nullable=True),
            Field("group_writable", "boolean", "The group may write it", nullable=True),
            Field("sha256", "string", "SHA-256 of the content, when asked", nullable=True, required=False),
        ),
        example="""\
- id: shadow-permissions
  title: /etc/shadow is readable by root and the shadow group only
  description: Reads the permission bits of /etc/shadow.
  rationale: Password hashes must not be readable by ordinary users.
  remediation: chown root:shadow /etc/shadow && chmod 0640 /etc/shadow
  severity: high
  platforms: [linux]
  probe: {name: file, params: {path: /etc/shadow}}
  expect:
    all:
      - {fact: exists, eq: true}
      - {fact: world_readable, eq: false}
      - {fact: owner, eq: root}
""",
        check_params=checker("path", grammar.path_problem),
        # The metadata is not the content: only a hash reads the file.
        reads=lambda params: (params["path"],) if params.get("hash") else (),
    )
)


SPEC.collector("linux", "darwin")(collect.collect_file)
