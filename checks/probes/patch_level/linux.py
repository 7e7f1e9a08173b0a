"""patch_level on Linux: apt, then dnf or yum, then zypper, whichever the machine has; and a pending reboot.

Each is read from its own cache (`apt-cache policy`, `dnf -C`, `zypper --no-refresh`): never refreshed.
"""

from __future__ import annotations

import time
from collections import Counter

from checks.probes.common import raise_for_failure, read_optional, whole_days
from checks.probes.host import Host, ProbeError
from checks.probes.patch_level import apt_release_record
from checks.probes.patch_level.facts import PatchFacts
from checks.probes.patch_level.parse_apt import (
    DpkgPackage,
    explain_apt_age,
    parse_apt_cache_policy,
    parse_dpkg_log_last_upgrade,
    parse_dpkg_status,
)
from checks.probes.patch_level.parse_reboot import parse_btime
from checks.probes.patch_level.parse_rpm import (
    parse_check_update,
    parse_metadata_age,
    parse_rpm_last_install,
    parse_updateinfo_dates,
    parse_updateinfo_list,
)
from checks.probes.patch_level.parse_zypper import parse_zypper_xml
from checks.probes.registry import Facts, Params


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


# --- apt -----------------------------------------------------------------------------------------------

APT_LISTS = "/var/lib/apt/lists"
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"


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
    if path is None:
        return []
    # The source cache too: building the binary cache writes srcpkgcache.bin, by default in /var/cache/apt,
    # which is read-only under the agent's unit (and not the agent's to write).
    source = host.cache_file("apt-srcpkgcache.bin")
    return ["-o", f"Dir::Cache::pkgcache={path}", "-o", f"Dir::Cache::srcpkgcache={source}"]


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
    """Bounds on the age of the oldest pending security update (see checks/probes/patch_level/apt_release_record.py)."""
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
    explain_apt_age(result, bounds, kept=path is not None, now=now)
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


# --- reboot ---------------------------------------------------------------------------------------------


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


def rpm_last_install(host: Host) -> float | None:
    # The newest package install time is the last time any update (or install) landed.
    result = host.run(["rpm", "-qa", "--qf", "%{INSTALLTIME}\n"], timeout=120)
    return parse_rpm_last_install(result.stdout) if result.ok else None


# --- zypper --------------------------------------------------------------------------------------------


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
