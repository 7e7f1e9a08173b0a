"""The SSH server's effective settings, from `sshd -T` (defaults, includes and overrides applied).

Reading the file would miss Include directives, drop-ins and compiled-in defaults; `sshd -T` prints what the
daemon would actually use. It must read the host keys, so it needs root: unprivileged, the result is an
error saying so, never a guess from the file.
"""

from __future__ import annotations

from checks.probes.host import AccessDenied, Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register

# Algorithms OpenSSH itself has deprecated or disabled by default.
WEAK_ALGORITHMS = {
    "ciphers": (
        "3des-cbc",
        "aes128-cbc",
        "aes192-cbc",
        "aes256-cbc",
        "arcfour",
        "arcfour128",
        "arcfour256",
        "blowfish-cbc",
        "cast128-cbc",
        "rijndael-cbc@lysator.liu.se",
    ),
    "macs": (
        "hmac-md5",
        "hmac-md5-96",
        "hmac-sha1-96",
        "hmac-md5-etm@openssh.com",
        "hmac-md5-96-etm@openssh.com",
        "hmac-sha1-96-etm@openssh.com",
        "hmac-ripemd160",
    ),
    "kexalgorithms": (
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
        "gss-group1-sha1-",
        "gss-gex-sha1-",
    ),
}

SSHD = register(
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


def _flag(settings: dict[str, str], key: str) -> bool | None:
    value = settings.get(key)
    return None if value is None else value.lower() == "yes"


def parse_sshd_t(text: str) -> Facts:
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            # Repeatable keywords (listenaddress, hostkey, ...) are kept comma-joined.
            settings[key.lower()] = f"{settings[key.lower()]},{value}" if key.lower() in settings else value
    if not settings:
        raise ProbeError("sshd -T printed no settings")
    weak = sorted(
        algorithm
        for key, bad in WEAK_ALGORITHMS.items()
        for algorithm in settings.get(key, "").split(",")
        if algorithm and any(algorithm == b or (b.endswith("-") and algorithm.startswith(b)) for b in bad)
    )
    tries = settings.get("maxauthtries", "")
    return {
        "installed": True,
        "settings": settings,
        "permit_root_login": settings.get("permitrootlogin"),
        "password_authentication": _flag(settings, "passwordauthentication"),
        "permit_empty_passwords": _flag(settings, "permitemptypasswords"),
        "x11_forwarding": _flag(settings, "x11forwarding"),
        "max_auth_tries": int(tries) if tries.isdigit() else None,
        "weak_algorithms": weak,
    }


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


@SSHD.collector("linux", "darwin", "windows")
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
