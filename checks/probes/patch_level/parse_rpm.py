"""dnf, yum and rpm: pending updates, security advisories and their dates, metadata age, last install."""

from __future__ import annotations

import re

from checks.probes.common import parse_timestamp

_NEVRA_ARCH = re.compile(r"\.(x86_64|noarch|i686|aarch64|ppc64le|s390x|armv7hl|src)$")


def parse_check_update(text: str) -> list[str]:
    """Package names from `dnf/yum check-update` (exit 100 means updates are listed)."""
    names: list[str] = []
    for line in text.splitlines():
        if line.startswith(("Obsoleting Packages", "Security:")):
            break
        parts = line.split()
        if len(parts) == 3 and _NEVRA_ARCH.search(parts[0]) and not line.startswith(" "):
            names.append(_NEVRA_ARCH.sub("", parts[0]))
    return sorted(set(names))


def _name_from_nevra(nevra: str) -> str:
    # openssl-libs-1:3.0.7-27.el9.x86_64 -> openssl-libs
    base = _NEVRA_ARCH.sub("", nevra)
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


def parse_updateinfo_list(text: str) -> dict[str, str]:
    """`dnf updateinfo list --security` / `yum updateinfo list security`: package name -> severity."""
    packages: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and re.match(r"^[A-Z]+[A-Z0-9-]*[-:]\d", parts[0]) and "/Sec" in parts[1]:
            packages.setdefault(_name_from_nevra(parts[2]), parts[1].split("/")[0])
    return packages


def parse_updateinfo_dates(text: str) -> list[float]:
    """`Issued`/`Updated` dates of advisories in `dnf updateinfo info --security` output."""
    dates: list[float] = []
    for match in re.finditer(r"^\s*(?:Issued|Updated)\s*:\s*(\d{4}-\d\d-\d\d)(?:[ T](\d\d:\d\d:\d\d))?", text, re.M):
        stamp = parse_timestamp(f"{match.group(1)}T{match.group(2) or '00:00:00'}")
        if stamp is not None:
            dates.append(stamp)
    return dates


_EXPIRATION = re.compile(r"Last metadata expiration check: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d) ago")


def parse_metadata_age(text: str) -> float | None:
    """Seconds since dnf's last metadata refresh, from its `Last metadata expiration check` line."""
    match = _EXPIRATION.search(text)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def parse_rpm_last_install(text: str) -> float | None:
    # isdigit() alone takes any Unicode digit ('²'), which int() refuses.
    stamps = [int(v) for v in text.split() if v.isascii() and v.isdigit()]
    return float(max(stamps)) if stamps else None
