"""The sshd probe: `sshd -T`, the same on every platform; it needs root to read the host keys."""

from __future__ import annotations

from checks.probes.host import AccessDenied, Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.sshd.parse import parse_sshd_t

NOT_INSTALLED: Facts = {
    "installed": False,
    "settings": {},
    "permit_root_login": None,
    "password_authentication": None,
    "permit_empty_passwords": None,
    "x11_forwarding": None,
    "max_auth_tries": None,
    "weak_algorithms": [],
}


def collect_sshd(host: Host, params: Params) -> Facts:
    binary = host.which("sshd")
    if binary is None:
        return dict(NOT_INSTALLED)
    result = host.run([binary, "-T"], timeout=30)
    if not result.ok:
        text = (result.stderr + result.stdout).strip()
        if "no hostkeys available" in text or "Permission denied" in text or "must be run as root" in text.lower():
            raise AccessDenied(f"permission denied: `sshd -T` must read the host keys and needs root ({text[:200]})")
        raise ProbeError(result.describe_failure())
    return parse_sshd_t(result.stdout)
