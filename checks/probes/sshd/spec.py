"""The `sshd` probe's contract: facts, example; and its collector (the same on every platform)."""

from __future__ import annotations

from checks.probes.registry import Field, ProbeSpec, register
from checks.probes.sshd import collect

SPEC = register(
    ProbeSpec(
        name="sshd",
        description="The SSH server's effective configuration from `sshd -T`: root login, password and empty "
        "password authentication, forwarding, tries, and weak algorithms",
        facts=(
            Field("installed", "boolean", "An SSH server (sshd) is installed"),
            Field("settings", "object", "Every effective setting, lower-case keyword to value"),
            Field("permit_root_login", "string", "yes, no, prohibit-password, forced-commands-only", nullable=True),
            Field("password_authentication", "boolean", "Passwords are accepted", nullable=True),
            Field("permit_empty_passwords", "boolean", "Empty passwords are accepted", nullable=True),
            Field("x11_forwarding", "boolean", "X11 forwarding is allowed", nullable=True),
            Field("max_auth_tries", "integer", "Authentication attempts per connection", nullable=True),
            Field(
                "weak_algorithms", "array", "Enabled ciphers, MACs and key exchanges known to be weak", items="string"
            ),
        ),
        example="""\
- id: sshd-no-root-password-login
  title: The SSH server refuses root logins with a password
  description: Reads the effective sshd settings.
  rationale: Root logins with a password invite guessing against the most powerful account.
  remediation: Set PermitRootLogin prohibit-password (or no) and reload sshd.
  severity: high
  probe: sshd
  applicable_if:
    expect: {fact: installed, eq: true}
    reason: no SSH server is installed
  expect: {fact: permit_root_login, in: ["no", prohibit-password, without-password, forced-commands-only]}
""",
    )
)


SPEC.collector("linux", "darwin", "windows")(collect.collect_sshd)
