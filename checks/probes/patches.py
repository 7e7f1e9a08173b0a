"""Patch level: pending updates (all and security), their age, the last install, reboot and index freshness.

Every package manager is read from what it already knows: no probe refreshes an index (no `apt-get
update`, `dnf makecache` or online Windows Update scan). How fresh that knowledge is, is a fact of its own,
because a stale index hides pending updates. Whatever cannot be known is null, with the reason in `notes`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from checks.probes import apt_release_record
from checks.probes.common import (
    age_days,
    iso,
    parse_timestamp,
    raise_for_failure,
    read_optional,
    whole_days,
)
from checks.probes.host import Host, ProbeError
from checks.probes.registry import UNKNOWN_BECAUSE, Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import powershell_json

# Names listed in `security_packages` are capped so a neglected host does not make results huge.
MAX_LISTED = 50

PATCH_LEVEL = register(
    ProbeSpec(
        name="patch_level",
        description="Pending updates (all and security), the age of the oldest pending security update, the last "
        "install, a pending reboot and how fresh the package index is (apt, dnf/yum, zypper, Windows Update, "
        "macOS Software Update); never refreshes the index itself",
        facts=(
            Field("manager", "string", "What answered: apt, dnf, yum, zypper, windows_update or softwareupdate"),
            Field("pending_updates", "integer", "Updates available for installed software", nullable=True),
            Field("security_updates", "integer", "Pending updates that fix security issues", nullable=True),
            Field(
                "security_packages",
                "array",
                f"Names of the pending security updates (first {MAX_LISTED})",
                items="string",
            ),
            Field(
                "held_packages",
                "array",
                "Packages with a pending update that is held back (apt-mark hold, versionlock)",
                items="string",
            ),
            Field(
                "oldest_security_update_age_days",
                "integer",
                "Days since the oldest pending security update was released, where the source dates its updates "
                "(dnf, zypper, Windows Update); null where it does not (apt, macOS)",
                nullable=True,
            ),
            Field(
                "oldest_security_update_min_age_days",
                "integer",
                "The least that age can be: the age itself where it is known; for apt, the days since the refresh "
                "of the first index that listed the update (it was released by then)",
                nullable=True,
            ),
            Field(
                "oldest_security_update_max_age_days",
                "integer",
                "The most that age can be: the age itself where it is known; for apt, the days since the refresh "
                "of the last index the agent saw without the update (from its record); null where not known",
                nullable=True,
            ),
            Field("last_installed_at", "string", "When updates were last installed (ISO 8601)", nullable=True),
            Field("days_since_last_install", "integer", "Whole days since updates were last installed", nullable=True),
            Field("reboot_pending", "boolean", "Installed updates wait for a restart", nullable=True),
            Field(
                "index_updated_at",
                "string",
                "When the package index was last refreshed (ISO 8601): pending counts are as of then",
                nullable=True,
            ),
            Field("index_age_days", "number", "Days since the package index was last refreshed", nullable=True),
            Field("notes", "array", "Why a fact is null, and caveats about the counts", items="string"),
            Field(
                UNKNOWN_BECAUSE,
                "object",
                "For each fact that is null: what is known instead and when it will be known (an error result "
                "shows it)",
            ),
        ),
        example="""\
- id: security-updates-within-14-days
  title: Security updates are installed within 14 days
  description: Counts pending security updates and the age of the oldest.
  rationale: Cyber Essentials requires critical and high-risk updates within 14 days of release.
  remediation: Install the pending security updates (apt upgrade, dnf upgrade --security, Windows Update).
  severity: high
  probe: patch_level
  expect:
    any:
      - {fact: security_updates, eq: 0}
      - all:  # surely within 14 days
          - {fact: oldest_security_update_min_age_days, lte: 14}
          - {fact: oldest_security_update_max_age_days, lte: 14}
      - all:  # false once surely older (a fail); unknown while the age is not known (an error)
          - {fact: oldest_security_update_min_age_days, lte: 14}
          - {fact: oldest_security_update_age_days, lte: 14}
""",
    )
)


@dataclass
class PatchFacts:
    manager: str
    pending_updates: int | None = None
    security_updates: int | None = None
    security_packages: list[str] = field(default_factory=list)
    held_packages: list[str] = field(default_factory=list)
    oldest_security_update_age_days: int | None = None
    # Bounds where the age itself is not known (apt); where it is, it is both bounds.
    oldest_security_update_min_age_days: int | None = None
    oldest_security_update_max_age_days: int | None = None
    last_installed: float | None = None
    reboot_pending: bool | None = None
    index_updated: float | None = None
    notes: list[str] = field(default_factory=list)
    unknown_because: dict[str, str] = field(default_factory=dict)  # fact -> why it is null

    def facts(self, now: float) -> Facts:
        facts = self._facts(now)
        facts[UNKNOWN_BECAUSE] = {
            name: reason for name, reason in sorted(self.unknown_because.items()) if facts.get(name) is None
        }
        return facts

    def _facts(self, now: float) -> Facts:
        return {
            "manager": self.manager,
            "pending_updates": self.pending_updates,
            "security_updates": self.security_updates,
            "security_packages": sorted(self.security_packages)[:MAX_LISTED],
            "held_packages": sorted(self.held_packages),
            "oldest_security_update_age_days": self.oldest_security_update_age_days,
            "oldest_security_update_min_age_days": _either(
                self.oldest_security_update_min_age_days, self.oldest_security_update_age_days
            ),
            "oldest_security_update_max_age_days": _either(
                self.oldest_security_update_max_age_days, self.oldest_security_update_age_days
            ),
            "last_installed_at": iso(self.last_installed),
            "days_since_last_install": whole_days(self.last_installed, now),
            "reboot_pending": self.reboot_pending,
            "index_updated_at": iso(self.index_updated),
            "index_age_days": age_days(self.index_updated, now),
            "notes": self.notes,
        }


def _either(bound: int | None, exact: int | None) -> int | None:
    return exact if bound is None else bound


# --- apt -----------------------------------------------------------------------------------------------

APT_LISTS = "/var/lib/apt/lists"
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"


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


def apt_release_files(host: Host) -> list[str]:
    """The Release files in apt's lists: one per source apt read."""
    return [n for n in host.list_dir(APT_LISTS) if n.endswith(("_InRelease", "_Release"))]


def apt_index_updated(host: Host, release_files: list[str]) -> tuple[float | None, str]:
    """When the apt lists were last refreshed, and from what.

    apt stamps each list file with the server's Last-Modified time, so file times are never later than the
    refresh; the lists directory changes when a refresh brings anything new, and apt's periodic job writes
    update-success-stamp. The newest of these is a time the index was certainly current.
    """
    candidates: list[tuple[float, str]] = []
    stamp = host.stat(APT_STAMP)
    if stamp is not None:
        candidates.append((stamp.mtime, APT_STAMP))
    lists = host.stat(APT_LISTS)
    if lists is None or not release_files:
        return None, ""
    candidates.append((lists.mtime, APT_LISTS))
    for name in release_files:
        info = host.stat(f"{APT_LISTS}/{name}")
        if info is not None:
            candidates.append((info.mtime, f"{APT_LISTS}/{name}"))
    when, source = max(candidates)
    return when, source


def _apt_cache_options(host: Host) -> list[str]:
    """apt's binary cache kept in the agent's own directory. Without one (containers configure
    `Dir::Cache::pkgcache ""`, and an unprivileged agent cannot refresh /var/cache/apt) apt-cache parses
    every package list on each call: about a CPU second. apt itself checks the cache against the lists
    and dpkg's status, and rebuilds it when either changed, so a kept cache is never stale."""
    path = host.cache_file("apt-pkgcache.bin")
    return [] if path is None else ["-o", f"Dir::Cache::pkgcache={path}"]


def collect_apt(host: Host, now: float) -> PatchFacts:
    result = PatchFacts("apt")
    release_files = apt_release_files(host)
    result.index_updated, _ = apt_index_updated(host, release_files)
    if result.index_updated is None:
        result.notes.append("apt has no package lists (apt-get update never ran): pending updates cannot be known")
    else:
        packages = parse_dpkg_status(host.read_text("/var/lib/dpkg/status"))
        # One apt-cache call for every installed package: it reads apt's cache once and prints installed,
        # candidate and every version with its sources; cheaper than `apt list --all-versions`.
        policy = host.run(["apt-cache", *_apt_cache_options(host), "policy", *(p.query for p in packages)], timeout=120)
        raise_for_failure(policy, "apt-cache policy")
        upgradable = parse_apt_cache_policy(policy.stdout)
        result.pending_updates = len(upgradable)
        security = [u.name for u in upgradable if u.security]
        result.security_updates = len(security)
        result.security_packages = security
        holds = {p.name for p in packages if p.held}
        result.held_packages = [u.name for u in upgradable if u.name.split(":")[0] in holds]
        if result.held_packages:
            result.notes.append(f"{len(result.held_packages)} pending update(s) are held back and will not install")
        # The record is kept at every run, pending updates or not, so that the next update to arrive is
        # bracketed by the last index seen without it.
        _apt_security_age(host, result, packages, release_files, now)
    last = None
    for path in ("/var/log/dpkg.log", "/var/log/dpkg.log.1"):
        text = read_optional(host, path)
        if text:
            last = parse_dpkg_log_last_upgrade(text)
            if last is not None:
                break
    result.last_installed = last
    if last is None:
        result.notes.append("no upgrade found in /var/log/dpkg.log or dpkg.log.1")
    result.reboot_pending = linux_reboot_pending(host, result.notes)
    return result


def _apt_security_age(
    host: Host, result: PatchFacts, packages: list[DpkgPackage], release_files: list[str], now: float
) -> None:
    """Bounds on the age of the oldest pending security update (see checks/probes/apt_release_record.py)."""
    assert result.index_updated is not None
    # apt-cache names a package of the native architecture (or "all") without its architecture.
    arches = Counter(p.arch for p in packages if p.arch and p.arch != "all")
    native = arches.most_common(1)[0][0] if arches else ""
    observation = apt_release_record.Observation(
        installed={p.name if p.arch in (native, "all", "") else p.query: p.version for p in packages},
        security=result.security_packages,
        index_updated=result.index_updated,
        sources=release_files,
        now=now,
    )
    path = host.cache_file(apt_release_record.RECORD_FILE)
    if path is None:
        bounds = apt_release_record.bounds_without_record(observation)
    else:
        record, bounds = apt_release_record.advance(apt_release_record.read_record(path), observation)
        try:
            apt_release_record.write_record(path, record)
        except OSError as exc:
            result.notes.append(f"the record of pending updates could not be kept in {path}: {exc.strerror}")
    result.oldest_security_update_min_age_days = None if bounds.least is None else int(bounds.least // 86400)
    result.oldest_security_update_max_age_days = None if bounds.most is None else int(bounds.most // 86400)
    if not result.security_packages:
        return
    _explain_apt_age(result, bounds, kept=path is not None, now=now)
    if bounds.most is not None:
        result.notes.append(
            "apt does not record when an update was released: the age of the oldest pending security update is "
            "bracketed by the index refreshes around its arrival, from the agent's record"
        )
    elif path is None:
        result.notes.append(
            "apt does not record when an update was released, and this run keeps no record of when updates "
            "appeared (the agent, with its state directory, does): the age of the oldest is only known to be at "
            "least the time since the index that listed it was refreshed"
        )
    else:
        result.notes.append(
            f"apt does not record when an update was released, and {bounds.unbounded} pending security update(s) "
            f"were already pending when the agent's record ({path}) began, or came with a package or source "
            "change: the age of the oldest is only known to be at least the time since the index that listed it "
            "was refreshed"
        )


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


def _explain_apt_age(result: PatchFacts, bounds: apt_release_record.AgeBounds, *, kept: bool, now: float) -> None:
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


# --- reboot (Linux) ------------------------------------------------------------------------------------


def parse_btime(proc_stat: str) -> float | None:
    for line in proc_stat.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def linux_reboot_pending(host: Host, notes: list[str]) -> bool | None:
    """A reboot flag (Debian/Ubuntu), `needs-restarting -r` (RHEL family), or a kernel newer than the boot."""
    for flag in ("/run/reboot-required", "/var/run/reboot-required"):
        if host.stat(flag) is not None:
            return True
    if host.which("needs-restarting"):
        result = host.run(["needs-restarting", "-r"], timeout=60)
        if result.returncode in (0, 1):
            return result.returncode == 1
    kernels = [n for n in host.list_dir("/boot") if n.startswith("vmlinuz-")]
    if not kernels:
        notes.append(
            "the running kernel is not installed in /boot (container or external kernel): only the "
            "reboot-required flag was checked"
        )
        return False
    running = (read_optional(host, "/proc/sys/kernel/osrelease") or "").strip()
    if running and f"vmlinuz-{running}" not in kernels:
        return True  # the running kernel's package was replaced
    boot = parse_btime(read_optional(host, "/proc/stat") or "")
    newest = max((info.mtime for n in kernels if (info := host.stat(f"/boot/{n}")) is not None), default=None)
    if boot is None or newest is None:
        notes.append("boot time or kernel install time unreadable: cannot tell whether a reboot is pending")
        return None
    return newest > boot


# --- dnf / yum ------------------------------------------------------------------------------------------

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


def collect_dnf(host: Host, tool: str, now: float) -> PatchFacts:
    result = PatchFacts(tool)
    # -C: cache only. The probe reads what the last refresh fetched and never refreshes it.
    check = host.run([tool, "-C", "check-update"], timeout=180)
    text = check.stdout + "\n" + check.stderr
    if check.returncode not in (0, 100):
        if "cache" in text.lower() and ("no cache" in text.lower() or "cache-only" in text.lower()):
            raise ProbeError(f"{tool} has no metadata cache (it never refreshed): pending updates cannot be known")
        raise_for_failure(check, f"{tool} check-update")
    pending = parse_check_update(check.stdout)
    result.pending_updates = len(pending)
    age = parse_metadata_age(text)
    result.index_updated = now - age if age is not None else None
    if result.index_updated is None:
        result.notes.append(f"{tool} did not say when its metadata was last refreshed")
    listing = host.run(
        [tool, "-C", "-q", "updateinfo", "list", "--security"]
        if tool == "dnf"
        else [tool, "-C", "-q", "updateinfo", "list", "security"],
        timeout=180,
    )
    raise_for_failure(listing, f"{tool} updateinfo list")
    security = parse_updateinfo_list(listing.stdout)
    result.security_updates = len(security)
    result.security_packages = sorted(security)
    if security:
        info = host.run([tool, "-C", "-q", "updateinfo", "info", "--security"], timeout=180)
        dates = parse_updateinfo_dates(info.stdout) if info.ok else []
        if dates:
            result.oldest_security_update_age_days = whole_days(min(dates), now)
        else:
            result.notes.append("the advisories carry no issue date: the age of the oldest cannot be known")
    else:
        result.oldest_security_update_age_days = None
    result.last_installed = rpm_last_install(host)
    result.reboot_pending = linux_reboot_pending(host, result.notes)
    return result


def parse_rpm_last_install(text: str) -> float | None:
    stamps = [int(v) for v in text.split() if v.isdigit()]
    return float(max(stamps)) if stamps else None


def rpm_last_install(host: Host) -> float | None:
    # The newest package install time is the last time any update (or install) landed.
    result = host.run(["rpm", "-qa", "--qf", "%{INSTALLTIME}\n"], timeout=120)
    return parse_rpm_last_install(result.stdout) if result.ok else None


# --- zypper --------------------------------------------------------------------------------------------


def parse_zypper_xml(text: str) -> tuple[list[str], list[str]]:
    """(all update names, security patch names) from `zypper --xmlout list-updates/list-patches`."""
    start = text.find("<?xml")
    try:
        root = ElementTree.fromstring(text[start:] if start >= 0 else text)
    except ElementTree.ParseError as exc:
        raise ProbeError(f"zypper output is not XML: {exc}") from exc
    updates, security = [], []
    for update in root.iter("update"):
        name = update.get("name", "")
        if update.get("kind") == "patch":
            if update.get("category") == "security" and update.get("status", "needed") == "needed":
                security.append(name)
        else:
            updates.append(name)
    return updates, security


def collect_zypper(host: Host, now: float) -> PatchFacts:
    result = PatchFacts("zypper")
    base = ["zypper", "--non-interactive", "--no-refresh", "--xmlout"]
    updates = host.run([*base, "list-updates"], timeout=180)
    raise_for_failure(updates, "zypper list-updates", ok_codes=(0, 100, 101))
    patches = host.run([*base, "list-patches", "--category", "security"], timeout=180)
    raise_for_failure(patches, "zypper list-patches", ok_codes=(0, 100, 101))
    names, _ = parse_zypper_xml(updates.stdout)
    _, security = parse_zypper_xml(patches.stdout)
    result.pending_updates = len(names)
    result.security_updates = len(security)
    result.security_packages = security
    result.notes.append("zypper's XML does not carry patch release dates: the age cannot be known")
    repos = [n for n in host.list_dir("/var/cache/zypp/raw")]
    times = [info.mtime for n in repos if (info := host.stat(f"/var/cache/zypp/raw/{n}")) is not None]
    result.index_updated = max(times) if times else None
    result.last_installed = rpm_last_install(host)
    result.reboot_pending = linux_reboot_pending(host, result.notes)
    return result


@PATCH_LEVEL.collector("linux")
def collect_patch_level_linux(host: Host, params: Params) -> Facts:
    now = time.time()
    if host.which("apt-cache") and host.which("dpkg-query"):
        return collect_apt(host, now).facts(now)
    if host.which("dnf"):
        return collect_dnf(host, "dnf", now).facts(now)
    if host.which("yum"):
        return collect_dnf(host, "yum", now).facts(now)
    if host.which("zypper"):
        return collect_zypper(host, now).facts(now)
    raise ProbeError("no supported package manager found (looked for apt, dnf, yum, zypper)")


# --- Windows Update ------------------------------------------------------------------------------------

# Category ids do not change with the display language (names do: "Sicherheitsupdates").
SECURITY_UPDATES_CATEGORY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"

WINDOWS_UPDATE_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$session = New-Object -ComObject Microsoft.Update.Session
$searcher = $session.CreateUpdateSearcher()
$searcher.Online = $false
$found = $searcher.Search("IsInstalled=0 and IsHidden=0 and Type='Software'")
$updates = @(foreach ($u in $found.Updates) {
  [pscustomobject]@{
    Title = $u.Title
    KB = @($u.KBArticleIDs)
    MsrcSeverity = $u.MsrcSeverity
    CategoryIDs = @(foreach ($c in $u.Categories) { $c.CategoryID })
    Released = $u.LastDeploymentChangeTime.ToUniversalTime().ToString('o')
  }
})
$results = (New-Object -ComObject Microsoft.Update.AutoUpdate).Results
function Utc($d) { if ($d) { ([datetime]$d).ToUniversalTime().ToString('o') } }
[pscustomobject]@{
  Updates = $updates
  LastSearchSuccessDate = Utc $results.LastSearchSuccessDate
  LastInstallationSuccessDate = Utc $results.LastInstallationSuccessDate
  RebootRequired = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
} | ConvertTo-Json -Depth 4 -Compress
"""


def parse_windows_update(data: Any, now: float) -> PatchFacts:
    if not isinstance(data, dict):
        raise ProbeError("the Windows Update Agent returned nothing")
    result = PatchFacts("windows_update")
    updates = data.get("Updates") or []
    if isinstance(updates, dict):
        updates = [updates]
    security: list[tuple[str, float | None]] = []
    for update in updates:
        categories = [str(c).lower() for c in (update.get("CategoryIDs") or [])]
        if SECURITY_UPDATES_CATEGORY in categories or (update.get("MsrcSeverity") or "").strip():
            security.append((str(update.get("Title", "")), parse_timestamp(update.get("Released"))))
    result.pending_updates = len(updates)
    result.security_updates = len(security)
    result.security_packages = [title for title, _ in security]
    released = [when for _, when in security if when is not None]
    if security and len(released) == len(security):
        result.oldest_security_update_age_days = whole_days(min(released), now)
    elif security:
        result.notes.append("an update carries no release date: the age of the oldest cannot be known")
        result.unknown_because["oldest_security_update_age_days"] = (
            f"{len(security) - len(released)} of {len(security)} pending security updates carry no release date"
        )
    result.index_updated = parse_timestamp(data.get("LastSearchSuccessDate"))
    if result.index_updated is None:
        result.notes.append("Windows Update has never completed a scan: pending updates are not known")
        never = "Windows Update has never completed a scan: known after its first (Settings > Windows Update)"
        for name in ("pending_updates", "security_updates"):
            result.unknown_because[name] = never
        result.pending_updates = result.security_updates = None
    result.last_installed = parse_timestamp(data.get("LastInstallationSuccessDate"))
    reboot = data.get("RebootRequired")
    result.reboot_pending = bool(reboot) if isinstance(reboot, bool) else None
    return result


@PATCH_LEVEL.collector("windows")
def collect_patch_level_windows(host: Host, params: Params) -> Facts:
    now = time.time()
    return parse_windows_update(powershell_json(host, WINDOWS_UPDATE_SCRIPT, timeout=300), now).facts(now)


# --- macOS ---------------------------------------------------------------------------------------------


_PLIST_ESCAPE = re.compile(r"\\(U[0-9a-fA-F]{4}|[0-7]{3}|.)")


def _unescape_plist_string(text: str) -> str:
    """`defaults` escapes non-ASCII as \\UXXXX (four hex digits), plus the usual \\n, \\" and \\\\."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("U") and len(code) == 5:
            return chr(int(code[1:], 16))
        if len(code) == 3 and code.isdigit():
            return chr(int(code, 8))
        return {"n": "\n", "t": "\t", "r": "\r"}.get(code, code)

    return _PLIST_ESCAPE.sub(replace, text)


def parse_old_plist(text: str) -> Any:
    """Parse the old-style (NeXTSTEP) property list that `defaults read` prints."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}()=;,]|[^\s{}()=;,"]+', text)
    position = 0

    def value() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "{":
            result: dict[str, Any] = {}
            while tokens[position] != "}":
                key = value()
                if tokens[position] != "=":
                    raise ProbeError(f"plist: expected '=' after {key!r}")
                position += 1
                result[str(key)] = value()
                if tokens[position] == ";":
                    position += 1
            position += 1
            return result
        if token == "(":
            items: list[Any] = []
            while tokens[position] != ")":
                items.append(value())
                if tokens[position] == ",":
                    position += 1
            position += 1
            return items
        if token.startswith('"'):
            return _unescape_plist_string(token[1:-1])
        return token

    try:
        return value()
    except IndexError as exc:
        raise ProbeError("plist output ended early") from exc


def parse_softwareupdate_prefs(text: str, now: float) -> PatchFacts:
    prefs = parse_old_plist(text) if text.strip() else {}
    if not isinstance(prefs, dict):
        raise ProbeError("com.apple.SoftwareUpdate preferences are not a dictionary")
    result = PatchFacts("softwareupdate")
    recommended = prefs.get("RecommendedUpdates")
    if isinstance(recommended, list):
        names = [str(u.get("Display Name") or u.get("Identifier") or "") for u in recommended if isinstance(u, dict)]
        result.pending_updates = len(names)
        # Apple labels no update as "security": every recommended macOS, Safari and security update ships
        # security content, so all recommended updates count (never fewer than the truth).
        result.security_updates = len(names)
        result.security_packages = names
        result.notes.append("macOS does not classify updates: every recommended update counts as security")
        result.notes.append("Apple's catalog gives no release dates: the age of pending updates cannot be known")
        for name in ("oldest_security_update_age_days", "oldest_security_update_max_age_days"):
            result.unknown_because[name] = (
                f"{len(names)} recommended update(s) pending; Apple's catalog gives no release dates, so their "
                "age is never known: install them"
            )
    else:
        result.notes.append("Software Update has not recorded its recommended updates")
    result.index_updated = parse_timestamp(prefs.get("LastSuccessfulDate") or prefs.get("LastFullSuccessfulDate"))
    if result.index_updated is None:
        result.notes.append("Software Update has never completed a check")
        result.pending_updates = result.security_updates = None
    return result


def parse_install_history(data: Any) -> float | None:
    """The newest Software Update install in /Library/Receipts/InstallHistory.plist (plistlib value)."""
    latest = None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("processName") not in ("softwareupdated", "Software Update"):
            continue
        when = item.get("date")
        stamp = when.timestamp() if isinstance(when, dt.datetime) else parse_timestamp(str(when))
        if stamp is not None and (latest is None or stamp > latest):
            latest = stamp
    return latest


INSTALL_HISTORY = "/Library/Receipts/InstallHistory.plist"


@PATCH_LEVEL.collector("darwin")
def collect_patch_level_darwin(host: Host, params: Params) -> Facts:
    import plistlib

    now = time.time()
    prefs = host.run(["defaults", "read", "/Library/Preferences/com.apple.SoftwareUpdate"], timeout=30)
    if not prefs.ok and "does not exist" not in prefs.stderr:
        raise_for_failure(prefs, "defaults read com.apple.SoftwareUpdate")
    result = parse_softwareupdate_prefs(prefs.stdout if prefs.ok else "", now)
    try:
        history = host.run(["plutil", "-convert", "xml1", "-o", "-", INSTALL_HISTORY], timeout=30)
        result.last_installed = parse_install_history(plistlib.loads(history.stdout.encode("utf-8")))
    except (ProbeError, plistlib.InvalidFileException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, ProbeError) else "it could not be parsed"
        result.notes.append(f"last install unknown: {INSTALL_HISTORY}: {reason}")
    if result.last_installed is None and not any("last install" in n for n in result.notes):
        result.notes.append("no Software Update install found in the install history")
    result.reboot_pending = None
    result.notes.append("macOS does not expose a pending-restart flag to read")
    return result.facts(now)
