"""password_policy on Linux: the settings files and the PAM stacks that use them."""

from __future__ import annotations

from checks.probes.common import read_optional
from checks.probes.host import Host
from checks.probes.password_policy.parse import parse_linux_password_policy
from checks.probes.registry import Facts, Params

PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
# Debian and Ubuntu keep the stacks in common-*; Red Hat and SUSE-like systems in system-auth.
PAM_PASSWORD_FILES = ("/etc/pam.d/common-password", "/etc/pam.d/system-auth")
PAM_AUTH_FILES = ("/etc/pam.d/common-auth", "/etc/pam.d/system-auth")


def _first_existing(host: Host, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        text = read_optional(host, path)
        if text is not None:
            return text
    return None


def collect_password_policy_linux(host: Host, params: Params) -> Facts:
    snippets = [
        host.read_text(f"{PWQUALITY_DIR}/{name}")
        for name in sorted(host.list_dir(PWQUALITY_DIR))
        if name.endswith(".conf")
    ]
    main = read_optional(host, "/etc/security/pwquality.conf")
    return parse_linux_password_policy(
        read_optional(host, "/etc/login.defs"),
        snippets + ([main] if main is not None else []),
        read_optional(host, "/etc/security/faillock.conf"),
        _first_existing(host, PAM_PASSWORD_FILES),
        _first_existing(host, PAM_AUTH_FILES),
    )
