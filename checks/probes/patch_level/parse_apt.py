"""apt and dpkg: installed packages and their holds, pending updates by pocket, the last upgrade; and what
is known of the age of pending security updates, said in words."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from checks.probes.common import parse_timestamp
from checks.probes.patch_level.apt_release_record import AgeBounds
from checks.probes.patch_level.facts import PatchFacts


@dataclass(frozen=True)
class AptUpgradable:
    name: str
    security: bool


@dataclass(frozen=True)
class DpkgPackage:
    name: str
    arch: str
    held: bool
    version: str = ""

    @property
    def query(self) -> str:
        return f"{self.name}:{self.arch}" if self.arch else self.name


def parse_dpkg_status(status_text: str) -> list[DpkgPackage]:
    """Installed packages in /var/lib/dpkg/status, with their dpkg selection `hold` (apt-mark hold)."""
    installed: list[DpkgPackage] = []
    for stanza in status_text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(": ")
            if sep and not line.startswith(" "):
                fields[key] = value.strip()
        status = fields.get("Status", "").split()
        if "Package" in fields and len(status) == 3 and status[2] == "installed":
            installed.append(
                DpkgPackage(
                    fields["Package"], fields.get("Architecture", ""), status[0] == "hold", fields.get("Version", "")
                )
            )
    return installed


def _is_security_suite(suite: str) -> bool:
    # Debian: bookworm-security, stable-security, oldstable-security; Ubuntu: jammy-security and the
    # Ubuntu Pro pockets jammy-infra-security / jammy-apps-security.
    return suite.endswith("-security")


def parse_apt_cache_policy(text: str) -> list[AptUpgradable]:
    """Parse `apt-cache policy PKG...` for installed packages: the ones with a newer candidate.

    Each version table lists versions newest first, the installed one marked `***`, each followed by the
    sources that carry it (`500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages`).
    A package counts as a security update when the candidate, or any version between the installed one and
    the candidate, comes from a security pocket: a security fix later superseded by an ordinary point-release
    update is still a missing security fix.
    """
    upgradable: list[AptUpgradable] = []
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    for block in blocks:
        name = block[0][:-1]
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block[1:4])}
        installed, candidate = fields.get("Installed", "(none)"), fields.get("Candidate", "(none)")
        if installed == "(none)" or candidate in ("(none)", installed):
            continue
        versions: list[tuple[str, bool, list[str]]] = []  # (version, is installed, suites)
        for line in block[4:]:
            if line.startswith("     ") and not line.startswith("        "):
                parts = line.split()
                versions.append((parts[0], False, []))
            elif line.startswith(" *** "):
                versions.append((line.split()[1], True, []))
            elif line.startswith("        ") and versions:
                parts = line.split()
                if len(parts) >= 3:
                    versions[-1][2].append(parts[2].split("/")[0])
        order = [v for v, _, _ in versions]
        if candidate not in order:
            continue
        first = order.index(candidate)
        last = next((i for i, (_, mine, _) in enumerate(versions) if mine), len(versions))
        if last <= first:
            continue  # the candidate is older than what is installed (a pin): not an update
        security = any(_is_security_suite(suite) for _, _, suites in versions[first:last] for suite in suites)
        upgradable.append(AptUpgradable(name, security))
    return upgradable


_DPKG_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (upgrade|install) ")


def parse_dpkg_log_last_upgrade(text: str) -> float | None:
    """The time of the last `upgrade` in a dpkg.log (local time of the host, read as UTC)."""
    last = None
    for line in text.splitlines():
        match = _DPKG_LOG_LINE.match(line)
        if match and match.group(2) == "upgrade":
            last = match.group(1)
    return parse_timestamp(last.replace(" ", "T")) if last else None


# Cyber Essentials' limit, named when saying by when a lower bound of the age settles a check.
CE_LIMIT_DAYS = 14


def _ago(then: float, now: float) -> str:
    seconds = max(now - then, 0.0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _on(moment: float, now: float) -> str:
    day = dt.datetime.fromtimestamp(moment, dt.UTC)
    if day.date() == dt.datetime.fromtimestamp(now, dt.UTC).date():
        return f"today at {day:%H:%M} UTC"
    return f"on {day:%Y-%m-%d}"


def explain_apt_age(result: PatchFacts, bounds: AgeBounds, *, kept: bool, now: float) -> None:
    """Say what is known about the age of the oldest pending security update, and when more will be."""
    assert result.index_updated is not None
    count = len(result.security_packages)
    known = f"{count} security update{'s' if count != 1 else ''} pending"
    if bounds.record_began is not None:
        known += f", first seen {_on(bounds.record_began, now)}"
    known += f"; the package index was refreshed {_ago(result.index_updated, now)}"
    undated = "apt does not record when an update was released"
    if bounds.most is not None:
        least, most = result.oldest_security_update_min_age_days, result.oldest_security_update_max_age_days
        result.unknown_because["oldest_security_update_age_days"] = (
            f"{known}; {undated}: the oldest is between {least} and {most} days old (from the index refreshes "
            "around its arrival)"
        )
        return
    if bounds.least is None:
        return
    if not kept:
        why = "this run keeps no record of when updates appear (the agent's runs, with its state directory, do)"
    else:
        which = "they" if bounds.unbounded == count else f"{bounds.unbounded} of them"
        why = f"{which} were already pending when the agent began watching (or came with a package or source change)"
    settles = dt.datetime.fromtimestamp(now - bounds.least + (CE_LIMIT_DAYS + 1) * 86400, dt.UTC)
    reason = (
        f"{known}. apt keeps no release dates, and {why}, so the oldest is known only to be at least "
        f"{int(bounds.least // 86400)} days old. Decided once they are installed (a pass), or, if they are still "
        f"pending, on {settles:%Y-%m-%d} for a {CE_LIMIT_DAYS}-day limit (a fail)"
    )
    result.unknown_because["oldest_security_update_max_age_days"] = reason
    result.unknown_because["oldest_security_update_age_days"] = undated
