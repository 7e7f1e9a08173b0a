"""`sshd -T` output as facts: the effective settings, and the enabled algorithms OpenSSH calls weak."""

from __future__ import annotations

from checks.probes.host import ProbeError
from checks.probes.registry import Facts

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
        "max_auth_tries": int(tries) if tries.isascii() and tries.isdigit() else None,
        "weak_algorithms": weak,
    }
