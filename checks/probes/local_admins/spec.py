"""The local_admins probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.local_admins import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="local_admins",
        description="Accounts with local administrator rights: Linux sudo/wheel/admin groups and UID 0, Windows "
        "Administrators (by SID), macOS admin group",
        facts=(
            Field(
                "admins",
                "array",
                "The administrator accounts",
                fields=(
                    Field("name", "string", "Account (DOMAIN\\user on Windows)"),
                    Field("via", "string", "Why it is an administrator: group name, uid0"),
                    Field("kind", "string", "user, group or unknown"),
                ),
            ),
            Field("count", "integer", "How many administrator accounts (users and groups)"),
            Field("uid0_accounts", "array", "Accounts other than root with UID 0 (Linux, macOS)", items="string"),
            Field(
                "builtin_admin_enabled",
                "boolean",
                "The built-in Administrator account (RID 500) is enabled (Windows)",
                nullable=True,
            ),
            Field("notes", "array", "What was not read, and why", items="string"),
        ),
        example="""\
- id: few-local-admins
  title: No more than two local administrator accounts
  description: Lists the accounts with administrator rights on the machine.
  rationale: Every administrator account is a way to take over the whole machine.
  remediation: Remove administrator rights from accounts that do not need them.
  severity: medium
  probe: local_admins
  expect: {fact: count, lte: 2}
""",
        collectors={
            "linux": linux.collect_local_admins_linux,
            "windows": windows.collect_local_admins_windows,
            "darwin": darwin.collect_local_admins_darwin,
        },
    )
)
