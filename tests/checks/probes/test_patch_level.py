"""patch_level: parsers on recorded outputs, the collectors on recorded hosts, the live probe here, and the
agent's record of when pending apt security updates appeared (patch_level/apt_release_record.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from checks.probes.common import parse_timestamp
from checks.probes.host import ProbeError
from checks.probes.local import LocalHost
from checks.probes.patch_level.apt_release_record import (
    Observation,
    advance,
    bounds_without_record,
    read_record,
    write_record,
)
from checks.probes.patch_level.darwin import collect_patch_level_darwin
from checks.probes.patch_level.linux import collect_patch_level_linux
from checks.probes.patch_level.parse_apt import parse_apt_cache_policy, parse_dpkg_log_last_upgrade, parse_dpkg_status
from checks.probes.patch_level.parse_macos import parse_softwareupdate_prefs
from checks.probes.patch_level.parse_rpm import (
    parse_check_update,
    parse_metadata_age,
    parse_rpm_last_install,
    parse_updateinfo_dates,
    parse_updateinfo_list,
)
from checks.probes.patch_level.parse_windows import parse_windows_update
from checks.probes.patch_level.parse_zypper import parse_zypper_xml
from checks.probes.patch_level.windows import collect_patch_level_windows
from checks.probes.replay import ReplayHost
from tests.conftest import DATA, run_cli

FIXTURES = DATA / "probes" / "patch_level"
HOSTS = DATA / "hosts"
NOW = parse_timestamp("2024-06-28T12:00:00Z") or 0.0


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --- apt -----------------------------------------------------------------------------------------------


def test_apt_counts_every_upgradable_package_and_classifies_security_by_pocket() -> None:
    upgradable = parse_apt_cache_policy(fixture("debian12-apt-cache-policy.txt"))
    names = {u.name: u.security for u in upgradable}
    assert len(upgradable) == 124  # apt-get -s dist-upgrade on the same machine: "124 upgraded"
    assert names["libssl3"] is True  # candidate from bookworm-security
    assert names["krb5-locales"] is True  # in both bookworm and bookworm-security
    assert names["bash"] is False  # point release only
    assert sum(names.values()) == 70


def test_apt_security_fix_superseded_by_a_point_release_still_counts() -> None:
    # openssh-client: installed deb12u6; deb12u9 came through bookworm-security; the candidate deb12u10 is
    # from the point release. The security fix is still missing, though the candidate's own source is not
    # a security pocket (`apt list --upgradable` shows only that one).
    names = {u.name: u.security for u in parse_apt_cache_policy(fixture("debian12-apt-cache-policy.txt"))}
    assert names["openssh-client"] is True
    # A security version older than the installed one does not count (curl: deb12u5 < installed deb12u14).
    assert names["curl"] is False


def test_apt_nothing_pending_and_pinned_downgrade() -> None:
    assert parse_apt_cache_policy(fixture("debian12-apt-cache-policy-no-sources.txt")) == []
    pinned = (
        "foo:\n  Installed: 2.0\n  Candidate: 1.0\n  Version table:\n *** 2.0 100\n        100 /var/lib/dpkg/status\n"
        "     1.0 1001\n        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n"
    )
    assert parse_apt_cache_policy(pinned) == []


def test_dpkg_status_holds_and_last_upgrade() -> None:
    packages = parse_dpkg_status(fixture("debian12-dpkg-status-trimmed.txt"))
    assert len(packages) == 759 and not any(p.held for p in packages)
    assert {p.name for p in parse_dpkg_status(fixture("debian12-dpkg-status-trimmed-held.txt")) if p.held} == {
        "curl",
        "jq",
    }
    assert next(p for p in packages if p.name == "tzdata").query == "tzdata:all"
    last = parse_dpkg_log_last_upgrade(fixture("debian12-dpkg.log"))
    assert last == parse_timestamp("2026-11-26T02:20:19")
    assert parse_dpkg_log_last_upgrade("2026-11-26 02:20:20 install libfoo:amd64 <none> 1.0\n") is None


# --- dnf / yum / zypper --------------------------------------------------------------------------------


def test_yum_updateinfo_security_counts_packages_not_advisories() -> None:
    packages = parse_updateinfo_list(fixture("rhel7-yum-updateinfo-list-security.txt"))
    assert packages == {"389-ds-base": "Important", "389-ds-base-libs": "Important"}


def test_check_update_ignores_plugin_noise_and_the_security_summary() -> None:
    # CentOS 6.7's yum printed the non-security packages after "No packages needed for security": they are
    # pending updates, and nothing in this output says they are security updates.
    assert parse_check_update(fixture("centos6-yum-security-check-update.txt")) == ["php", "php-cli"]


def test_dnf_metadata_age_and_advisory_dates() -> None:
    assert parse_metadata_age("Last metadata expiration check: 0:41:07 ago on Tue 14 May 2024.") == 2467.0
    assert parse_metadata_age("Last metadata expiration check: 3 days, 1:00:00 ago on ...") == 3 * 86400 + 3600.0
    assert parse_metadata_age("nothing here") is None
    assert parse_rpm_last_install("1700000000\n1710000000\n²\n") == 1710000000.0  # a Unicode digit is no time
    dates = parse_updateinfo_dates("  Update ID: RHSA-1\n    Updated: 2024-05-08 00:00:00\n   Issued : 2024-05-01\n")
    assert dates == [parse_timestamp("2024-05-08T00:00:00"), parse_timestamp("2024-05-01T00:00:00")]


def test_zypper_xml() -> None:
    updates, security = parse_zypper_xml(fixture("sles15-zypper-list-patches.xml"))
    assert security == ["SUSE-SLE-Module-Basesystem-15-SP5-2024-1695"]
    with pytest.raises(ProbeError, match="not XML"):
        parse_zypper_xml("Repository 'x' is out-of-date")


def test_rhel_recording_reads_dnf_without_refreshing() -> None:
    host = ReplayHost(HOSTS / "rhel9-server")
    facts = collect_patch_level_linux(host, {})
    assert facts["manager"] == "dnf"
    assert facts["pending_updates"] == 8
    assert facts["security_updates"] == 6
    assert facts["security_packages"][:2] == ["kernel", "kernel-core"]
    assert facts["reboot_pending"] is True  # needs-restarting -r exit 1
    assert facts["index_age_days"] == 0.0  # "0:41:07 ago"
    released = dt.datetime(2024, 5, 8, tzinfo=dt.UTC)
    assert facts["oldest_security_update_age_days"] == (dt.datetime.now(dt.UTC) - released).days


def test_dnf_exit_code_1_is_an_error_and_no_cache_says_so(tmp_path: Path) -> None:
    spec = json.loads((HOSTS / "rhel9-server" / "host.json").read_text())
    spec["commands"][0] = {
        "argv": ["dnf", "-C", "check-update"],
        "returncode": 1,
        "stderr": "Error: Cache-only enabled but no cache for 'rhel-9-for-x86_64-baseos-rpms'\n",
    }
    (tmp_path / "host.json").write_text(json.dumps(spec))
    with pytest.raises(ProbeError, match="no metadata cache"):
        collect_patch_level_linux(ReplayHost(tmp_path), {})


def test_apt_timeout_and_missing_command_are_errors(tmp_path: Path) -> None:
    spec = json.loads((HOSTS / "debian12-laptop-lvm-luks" / "host.json").read_text())
    spec["commands"][0] = {"match": "apt-cache policy ", "timeout": True}
    spec["files"] = {
        k: {**v, "content_file": str((HOSTS / "debian12-laptop-lvm-luks" / v["content_file"]).resolve())}
        if "content_file" in v
        else v
        for k, v in spec["files"].items()
    }
    (tmp_path / "host.json").write_text(json.dumps(spec))
    with pytest.raises(ProbeError, match="timed out"):
        collect_patch_level_linux(ReplayHost(tmp_path), {})
    (tmp_path / "host.json").write_text(json.dumps({"platform": "linux"}))
    with pytest.raises(ProbeError, match="no supported package manager"):
        collect_patch_level_linux(ReplayHost(tmp_path), {})


def test_debian_recording_held_packages_stale_index_and_pending_reboot() -> None:
    facts = collect_patch_level_linux(ReplayHost(HOSTS / "debian12-laptop-lvm-luks"), {})
    assert facts["pending_updates"] == 124 and facts["security_updates"] == 70
    assert facts["held_packages"] == ["curl", "jq"]
    assert facts["index_updated_at"] == "2026-10-01T06:12:00+00:00"
    assert facts["index_age_days"] is not None and facts["index_age_days"] > 7
    assert facts["reboot_pending"] is True  # vmlinuz-6.1.0-26 installed after the boot
    # apt dates nothing, but the index that lists these updates was refreshed on 2026-10-01: they are at
    # least that old. No upper bound without the agent's record.
    assert facts["oldest_security_update_age_days"] is None and facts["oldest_security_update_max_age_days"] is None
    index_age = (dt.datetime.now(dt.UTC) - dt.datetime(2026, 10, 1, 6, 12, tzinfo=dt.UTC)).days
    assert facts["oldest_security_update_min_age_days"] == index_age
    assert any("this run keeps no record" in note for note in facts["notes"])


# --- Windows and macOS ---------------------------------------------------------------------------------


def test_windows_update_classifies_by_category_id_and_msrc_severity() -> None:
    facts = parse_windows_update(json.loads(fixture("windows11-wua-pending.json")), NOW).facts(NOW)
    assert facts["pending_updates"] == 3
    assert facts["security_updates"] == 1  # the .NET update and Defender definitions are not counted
    assert facts["oldest_security_update_age_days"] == 16  # released 2024-06-11
    assert facts["index_updated_at"] == "2024-06-28T08:15:02+00:00"
    assert facts["last_installed_at"] == "2024-05-20T09:02:11+00:00"
    assert facts["reboot_pending"] is False


def test_windows_update_never_scanned_is_unknown_not_zero() -> None:
    facts = parse_windows_update(json.loads(fixture("windows-server2022-wua-never-scanned.json")), NOW).facts(NOW)
    assert facts["pending_updates"] is None and facts["security_updates"] is None
    assert facts["index_age_days"] is None


def test_windows_update_access_denied(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "platform": "windows",
                "commands": [
                    {
                        "match": "Microsoft.Update.Session",
                        "returncode": 1,
                        "stderr_file": str(FIXTURES / "windows-access-denied.stderr"),
                    }
                ],
            }
        )
    )
    with pytest.raises(ProbeError, match="permission denied"):
        collect_patch_level_windows(ReplayHost(tmp_path), {})


def test_macos_recommended_updates_and_last_check() -> None:
    facts = parse_softwareupdate_prefs(fixture("macos10.15-softwareupdate-defaults.txt"), NOW).facts(NOW)
    assert facts["pending_updates"] == 3 and facts["security_updates"] == 3
    assert "macOS Catalina Security Update 2021-001" in facts["security_packages"]
    assert facts["index_updated_at"] == "2021-02-23T07:52:51+00:00"
    none = parse_softwareupdate_prefs(fixture("macos10.15-softwareupdate-defaults-nothing-pending.txt"), NOW)
    assert none.pending_updates == 0 and none.security_updates == 0


def test_macos_localized_update_names() -> None:
    facts = parse_softwareupdate_prefs(fixture("macos10.13-softwareupdate-defaults-localized.txt"), NOW).facts(NOW)
    assert facts["security_packages"] == ["macOS 10.13.2アップデート"]


def test_macos_recording_without_install_history() -> None:
    facts = collect_patch_level_darwin(ReplayHost(HOSTS / "macos-laptop"), {})
    assert facts["last_installed_at"] is None and facts["reboot_pending"] is None
    assert any("InstallHistory" in note for note in facts["notes"])


# --- live, on this machine -----------------------------------------------------------------------------

needs_apt = pytest.mark.skipif(shutil.which("apt") is None, reason="this machine has no apt")


@needs_apt
def test_live_apt_facts_agree_with_what_the_machine_shows() -> None:
    facts = collect_patch_level_linux(LocalHost(), {})
    env = {**os.environ, "LC_ALL": "C"}
    listing = subprocess.run(["apt", "list", "--upgradable"], capture_output=True, text=True, env=env, check=True)
    lines = [line for line in listing.stdout.splitlines() if "[upgradable from:" in line]
    assert facts["pending_updates"] == len(lines)
    candidate_security = {line.split("/")[0] for line in lines if re.search(r"/\S*-security", line)}
    # Every package whose candidate comes from a security pocket counts; --all-versions may find more.
    assert facts["security_updates"] >= len(candidate_security)
    assert len(facts["security_packages"]) == min(facts["security_updates"], 50)
    lists = Path("/var/lib/apt/lists")
    newest = max(
        [lists.stat().st_mtime]
        + [p.stat().st_mtime for p in lists.iterdir() if p.name.endswith(("_InRelease", "_Release"))]
        + ([Path(p).stat().st_mtime] if Path(p := "/var/lib/apt/periodic/update-success-stamp").exists() else [])
    )
    assert facts["index_updated_at"] == dt.datetime.fromtimestamp(newest, dt.UTC).isoformat(timespec="seconds")
    upgrades = [line[:19] for line in Path("/var/log/dpkg.log").read_text().splitlines() if " upgrade " in line]
    if upgrades:
        assert facts["last_installed_at"] == upgrades[-1].replace(" ", "T") + "+00:00"
    if not any(Path("/boot").glob("vmlinuz-*")) and shutil.which("needs-restarting") is None:
        assert facts["reboot_pending"] is Path("/run/reboot-required").exists()


@needs_apt
def test_live_apt_keeps_its_package_cache_in_the_agents_directory_and_the_facts_do_not_change(
    tmp_path: Path,
) -> None:
    plain = collect_patch_level_linux(LocalHost(), {})
    cache_dir = tmp_path / "cache"
    first = collect_patch_level_linux(LocalHost(cache_dir=str(cache_dir)), {})
    cache = cache_dir / "apt-pkgcache.bin"
    assert cache.stat().st_size > 0 and (cache_dir.stat().st_mode & 0o777) == 0o700
    # apt's source cache beside it, never in /var/cache/apt (read-only under the agent's unit)
    assert (cache_dir / "apt-srcpkgcache.bin").stat().st_size > 0
    built = cache.stat().st_mtime_ns
    second = collect_patch_level_linux(LocalHost(cache_dir=str(cache_dir)), {})
    assert cache.stat().st_mtime_ns == built  # reused, not rebuilt: the lists and dpkg status did not change
    # The same facts, but for the note on how the age of a pending security update is bounded: with the
    # agent's directory there is a record of when updates appeared (apt_release_record), and so for the words
    # on what is known of that age (unknown_because).
    same: dict[str, object] = {"notes": [], "unknown_because": {}}
    assert {**plain, **same} == {**first, **same} == {**second, **same}
    assert first["notes"] == second["notes"]
    if first["security_updates"]:
        assert (cache_dir / "apt-security-updates.json").stat().st_mode & 0o777 == 0o600


def test_a_recorded_host_keeps_no_cache() -> None:
    assert ReplayHost(HOSTS / "debian12-laptop-lvm-luks").cache_file("apt-pkgcache.bin") is None


def test_the_agents_record_bounds_the_age_of_updates_that_arrived_while_it_watched(tmp_path: Path) -> None:
    """The Debian recording, observed a second time: the agent's record holds the observation before, whose
    index (refreshed 2026-09-20) listed 48 of today's 70 security updates for the same installed versions;
    the other 22 were released between that refresh and today's index (2026-10-01)."""
    debian = HOSTS / "debian12-laptop-lvm-luks"
    spec = json.loads((debian / "host.json").read_text())
    installed = {
        p.name if p.arch in ("amd64", "all") else p.query: p.version
        for p in parse_dpkg_status((debian / spec["files"]["/var/lib/dpkg/status"]["content_file"]).read_text())
    }
    older = collect_patch_level_linux(ReplayHost(debian), {})["security_packages"][2:]  # 48 of the first 50
    earlier_index = parse_timestamp("2026-09-20T06:00:00Z") or 0.0
    first_listed = parse_timestamp("2026-09-01T06:00:00Z") or 0.0
    unlisted_before = parse_timestamp("2026-08-25T06:00:00Z") or 0.0
    record_file = tmp_path / "apt-security-updates.json"

    def observe(**changes: Any) -> dict[str, Any]:
        record = {
            "format": 1,
            "observed_at": earlier_index + 3600,
            "index_updated": earlier_index,
            "sources": sorted(n for n in spec["dirs"]["/var/lib/apt/lists"] if n.endswith("InRelease")),
            "installed": installed,
            "pending": {name: {"since": first_listed, "after": unlisted_before} for name in older},
            **changes,
        }
        record_file.write_text(json.dumps(record))
        return collect_patch_level_linux(ReplayHost(debian, cache_dir=tmp_path), {})

    now = dt.datetime.now(dt.UTC)
    facts = observe()
    assert facts["oldest_security_update_age_days"] is None  # apt dates nothing: bounds only
    assert facts["oldest_security_update_max_age_days"] == (now - dt.datetime(2026, 8, 25, 6, tzinfo=dt.UTC)).days
    assert facts["oldest_security_update_min_age_days"] == (now - dt.datetime(2026, 9, 1, 6, tzinfo=dt.UTC)).days
    assert any("bracketed by the index refreshes" in note for note in facts["notes"])
    kept = json.loads(record_file.read_text())
    arrived = sorted(set(kept["pending"]) - set(older))
    assert len(kept["pending"]) == 70 and len(arrived) == 22
    today_index = parse_timestamp("2026-10-01T06:12:00Z")
    assert all(kept["pending"][name] == {"since": today_index, "after": earlier_index} for name in arrived)
    assert kept["pending"][older[0]] == {"since": first_listed, "after": unlisted_before}
    assert kept["index_updated"] == today_index and kept["installed"] == installed

    # A package installed at another version before: its pending update may be old. No upper bound.
    facts = observe(installed={**installed, arrived[0]: "0.0-old"})
    assert facts["oldest_security_update_max_age_days"] is None
    assert facts["oldest_security_update_min_age_days"] == (now - dt.datetime(2026, 9, 1, 6, tzinfo=dt.UTC)).days
    assert any("1 pending security update(s) were already pending" in note for note in facts["notes"])

    # A source added since (a security suite newly configured brings old updates): none of the 22 is bounded.
    facts = observe(sources=["deb.debian.org_debian_dists_bookworm_InRelease"])
    assert facts["oldest_security_update_max_age_days"] is None
    assert any("22 pending security update(s)" in note for note in facts["notes"])

    # A record that cannot be read starts again: nothing is bounded, and the lower bound is today's index.
    record_file.write_text("{not json")
    facts = collect_patch_level_linux(ReplayHost(debian, cache_dir=tmp_path), {})
    assert facts["oldest_security_update_max_age_days"] is None
    assert facts["oldest_security_update_min_age_days"] == (now - dt.datetime(2026, 10, 1, 6, 12, tzinfo=dt.UTC)).days
    assert json.loads(record_file.read_text())["format"] == 1


def fresh_debian(directory: Path, minutes_ago: int = 10) -> Path:
    """The Debian recording as on a machine whose index was refreshed `minutes_ago`: its 70 security updates
    are listed by an index of today, so their age is known only to be at least 0 days."""
    original = HOSTS / "debian12-laptop-lvm-luks"
    copy = directory / "debian-fresh"
    shutil.copytree(original, copy)
    spec = json.loads((copy / "host.json").read_text())

    def anchor(node: Any) -> None:  # the recording names shared fixtures relative to where it lives
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    node[key] = str((original / value).resolve())
                else:
                    anchor(value)
        elif isinstance(node, list):
            for item in node:
                anchor(item)

    anchor(spec)
    refreshed = dt.datetime.now(dt.UTC).timestamp() - minutes_ago * 60
    for path, entry in spec["files"].items():
        if path.startswith(("/var/lib/apt/lists", "/var/lib/apt/periodic")):
            entry["mtime"] = refreshed
    (copy / "host.json").write_text(json.dumps(spec))
    return copy


def test_a_14_day_check_that_cannot_be_decided_yet_says_what_is_known_and_when_it_will_be(tmp_path: Path) -> None:
    done = run_cli(
        "rampart-agent", "check", "--replay", str(fresh_debian(tmp_path)),
        "--only", "security-updates-within-14-days", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    reason = result["reason"]
    assert result["status"] == "error"
    assert "could not determine" not in reason
    assert "70 security updates pending; the package index was refreshed 10 minutes ago" in reason
    assert "known only to be at least 0 days old" in reason
    decided = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10) + dt.timedelta(days=15)).date().isoformat()
    assert f"Decided once they are installed (a pass), or, if they are still pending, on {decided}" in reason
    assert reason.count("70 security updates pending") == 1  # what is known is said once, not per unknown fact
    assert reason.endswith(
        "fact oldest_security_update_age_days is unknown: apt does not record when an update was released"
    )


def test_with_the_agents_record_the_reason_says_when_the_updates_were_first_seen(tmp_path: Path) -> None:
    host = ReplayHost(fresh_debian(tmp_path), cache_dir=tmp_path / "state")
    (tmp_path / "state").mkdir()
    facts = collect_patch_level_linux(host, {})
    reason = facts["unknown_because"]["oldest_security_update_max_age_days"]
    assert re.match(r"70 security updates pending, first seen today at \d\d:\d\d UTC; the package index was", reason)
    assert "they were already pending when the agent began watching" in reason
    assert set(facts["unknown_because"]) == {"oldest_security_update_age_days", "oldest_security_update_max_age_days"}
    # a second observation keeps when the record began
    began = json.loads((tmp_path / "state" / "apt-security-updates.json").read_text())["began"]
    collect_patch_level_linux(host, {})
    assert json.loads((tmp_path / "state" / "apt-security-updates.json").read_text())["began"] == began


# --- the agent's record of when pending apt security updates appeared -------------------------------

DAY = 86400.0
SOURCES = ["security_InRelease", "main_InRelease"]


def seen(security: list[str], index_day: float, now_day: float, **installed: str) -> Observation:
    versions = {"openssl": "3.0.1", "curl": "7.88", "zlib": "1.2", **installed}
    return Observation(versions, security, index_day * DAY, SOURCES, now_day * DAY)


def test_an_update_that_arrives_between_two_refreshes_is_bracketed_by_them() -> None:
    record, bounds = advance(None, seen(["openssl"], 10, 10.5))
    assert bounds.most is None and bounds.least == 0.5 * DAY and bounds.unbounded == 1  # pending from the start
    record, bounds = advance(record, seen(["openssl", "curl"], 20, 21))
    assert record["pending"]["curl"] == {"since": 20 * DAY, "after": 10 * DAY}
    assert bounds.unbounded == 1  # openssl still has no upper bound
    record, bounds = advance(record, seen(["curl"], 30, 31))  # openssl installed: it leaves the record
    assert set(record["pending"]) == {"curl"}
    assert bounds.least == 11 * DAY and bounds.most == 21 * DAY and bounds.unbounded == 0


def test_an_observation_with_nothing_pending_still_brackets_the_next_update() -> None:
    record, bounds = advance(None, seen([], 10, 11))
    assert record["pending"] == {} and bounds.unbounded == 0
    _, bounds = advance(record, seen(["zlib"], 20, 21))
    assert bounds.least == 1 * DAY and bounds.most == 11 * DAY


def test_without_a_refresh_between_observations_a_new_update_is_not_bracketed() -> None:
    # The same index cannot bring an update: one that appears anyway came from something else (a pin removed).
    record, _ = advance(None, seen([], 10, 11))
    _, bounds = advance(record, seen(["zlib"], 10, 12))
    assert bounds.most is None and bounds.least == 2 * DAY


def test_nothing_pending_gives_no_bounds_and_an_unknown_format_starts_again() -> None:
    _, bounds = advance({"format": 99, "pending": {}}, seen([], 10, 11))
    assert (bounds.least, bounds.most, bounds.unbounded) == (None, None, 0)
    assert bounds_without_record(seen(["curl"], 10, 13)).least == 3 * DAY


def test_the_record_is_replaced_whole_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    assert read_record(str(path)) is None
    record, _ = advance(None, seen(["curl"], 10, 11))
    write_record(str(path), record)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_record(str(path)) == json.loads(path.read_text()) == record
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left behind
