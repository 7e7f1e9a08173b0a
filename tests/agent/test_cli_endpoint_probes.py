"""`rampart-agent check` with the baseline: on recorded Windows, macOS and Linux hosts, and on this machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, DATA, run_cli

HOSTS = DATA / "hosts"


def check(*args: str) -> dict[str, Any]:
    result = run_cli("rampart-agent", "check", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["check_id"]: r["status"] for r in report["results"]}


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["check_id"]: r for r in report["results"]}


def test_windows11_laptop() -> None:
    report = check("--replay", str(HOSTS / "windows11-laptop"))
    got = statuses(report)
    assert got["security-updates-within-14-days"] == "fail"  # KB5039212, June 2024
    assert got["disks-encrypted"] == "fail"  # C: still encrypting, D: not encrypted
    assert got["host-firewall-enabled"] == "pass" and got["firewall-blocks-inbound"] == "pass"
    assert got["antimalware-realtime"] == "pass" and got["antimalware-signatures-current"] == "fail"
    assert got["password-min-length"] == "fail" and got["account-lockout"] == "fail"
    # 24H2 Enterprise is serviced until 2027-10-12 (checks/probes/os_support/eol.json).
    assert got["os-supported"] == ("pass" if dt.datetime.now(dt.UTC).date() <= dt.date(2027, 10, 12) else "fail")
    assert got["builtin-administrator-disabled"] == "pass"
    disks = by_id(report)["disks-encrypted"]
    assert {v["status"] for v in disks["observed"]["volumes"]} == {"encrypting", "not_encrypted"}
    assert got["shadow-file-permissions"] == "not_applicable"


def test_windows_server_unknowns_are_errors_with_reasons() -> None:
    report = check("--replay", str(HOSTS / "windows-server-2022"))
    got, results = statuses(report), by_id(report)
    assert got["no-pending-security-updates"] == "error"  # Windows Update never scanned
    assert "security_updates is unknown" in results["no-pending-security-updates"]["reason"]
    assert got["disks-encrypted"] == "fail"
    assert results["disks-encrypted"]["observed"]["volumes"][0]["status"] == "suspended"
    assert got["firewall-blocks-inbound"] == "fail"  # Domain profile allows inbound
    assert got["antimalware-realtime"] == "error" and "no antivirus status" in results["antimalware-realtime"]["reason"]
    assert got["password-min-length"] == "pass" and got["builtin-administrator-disabled"] == "fail"


def test_macos_laptop() -> None:
    got = statuses(check("--replay", str(HOSTS / "macos-laptop")))
    assert got["os-supported"] == "fail"  # Catalina
    assert got["disks-encrypted"] == "fail"  # FileVault still encrypting
    assert got["security-updates-within-14-days"] == "error"  # Apple gives no release dates
    assert got["no-pending-security-updates"] == "fail"
    assert got["host-firewall-enabled"] == "pass" and got["screen-locks-when-idle"] == "pass"
    assert got["no-reboot-pending"] == "not_applicable"


def test_rhel_server_with_dnf() -> None:
    report = check("--replay", str(HOSTS / "rhel9-server"))
    got = statuses(report)
    assert got["security-updates-within-14-days"] == "fail"  # RHSA-2024:2758, May 2024
    assert got["package-index-fresh"] == "pass" and got["no-reboot-pending"] == "fail"
    assert got["host-firewall-enabled"] == "pass"  # firewalld's final reject
    assert got["ssh-root-login-disabled"] == "pass" and got["ssh-no-weak-algorithms"] == "pass"
    volumes = by_id(report)["disks-encrypted"]["observed"]["volumes"]
    assert {v["mount"]: v["compliant"] for v in volumes} == {"/": False, "/srv/data": True, "/dev/dm-1": False}


def test_debian_laptop_lvm_on_luks() -> None:
    report = check("--replay", str(HOSTS / "debian12-laptop-lvm-luks"))
    got, results = statuses(report), by_id(report)
    assert got["package-index-fresh"] == "fail"  # last refreshed 2026-10-01
    assert results["no-pending-security-updates"]["observed"]["held_packages"] == ["curl", "jq"]
    assert got["disks-encrypted"] == "fail"
    volumes = {v["mount"]: v for v in results["disks-encrypted"]["observed"]["volumes"]}
    assert volumes["/"]["method"] == "luks" and volumes["/dev/dm-2"]["compliant"] is True
    assert volumes["/data"]["compliant"] is False
    assert got["host-firewall-enabled"] == "pass"  # ufw, IPv6 disabled
    # apt dates nothing, but these updates are listed by an index refreshed on 2026-10-01: over 14 days old
    assert got["security-updates-within-14-days"] == "fail"


def test_this_machine_against_what_it_independently_shows() -> None:
    report = check()
    got, results = statuses(report), by_id(report)
    assert report["platform"] == "linux"
    for result in report["results"]:
        if result["status"] == "error":
            assert result["reason"]
    firewall_tools = [t for t in ("nft", "iptables-save") if shutil.which(t, path="/usr/sbin:/sbin:/usr/bin:/bin")]
    if not firewall_tools:
        assert got["host-firewall-enabled"] == "fail"
        assert results["host-firewall-enabled"]["observed"]["backend"] == "none"
    if shutil.which("sshd", path="/usr/sbin:/sbin:/usr/bin") is None:
        assert got["ssh-root-login-disabled"] == "not_applicable"
    patch = results["no-pending-security-updates"]["observed"]
    if shutil.which("apt"):
        listing = subprocess.run(
            ["apt", "list", "--upgradable"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
        )
        pending = sum("[upgradable from:" in line for line in listing.stdout.splitlines())
        assert patch["pending_updates"] == pending
        assert got["no-pending-security-updates"] == ("pass" if patch["security_updates"] == 0 else "fail")
    if shutil.which("dmsetup"):
        crypt = subprocess.run(["dmsetup", "ls", "--target", "crypt"], capture_output=True, text=True)
        if "No devices found" in crypt.stdout:
            assert got["disks-encrypted"] in ("fail", "error")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_unprivileged_run_gives_the_same_answers_or_says_why_not() -> None:
    as_root = statuses(check())
    agent = str(BIN / "rampart-agent")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", agent, "check", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")} | {"HOME": "/tmp"},
        cwd="/tmp",
    )
    if result.returncode != 0 and "Permission denied" in result.stderr:
        pytest.skip(f"the virtual environment is not readable by nobody: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    as_nobody = json.loads(result.stdout)
    for item in as_nobody["results"]:
        if item["status"] == "error":
            assert item["reason"]
        elif as_root[item["check_id"]] != "error":
            # Without root, a check can only lose information (error), never change pass into fail or back.
            assert item["status"] == as_root[item["check_id"]], item


def test_every_fixture_says_where_it_came_from() -> None:
    root = DATA / "probes"
    missing = []
    for family in sorted(p for p in root.iterdir() if p.is_dir()):
        sources = (family / "SOURCES.md").read_text(encoding="utf-8")
        for path in sorted(family.iterdir()):
            if path.name != "SOURCES.md" and f"`{path.name}`" not in sources and not _covered(path.name, sources):
                missing.append(str(path.relative_to(root)))
    assert not missing, f"fixtures without a SOURCES.md entry: {missing}"
    for host in sorted(p for p in HOSTS.iterdir() if p.is_dir()):
        assert json.loads((host / "host.json").read_text())["source"], host


def _covered(name: str, sources: str) -> bool:
    # Entries may name a family of files with a wildcard, e.g. `macos-fdesetup-*.txt`.
    import fnmatch
    import re

    return any(fnmatch.fnmatch(name, pattern) for pattern in re.findall(r"`([^`]*\*[^`]*)`", sources))


def test_recordings_reference_existing_files() -> None:
    for host in sorted(p for p in HOSTS.iterdir() if p.is_dir()):
        spec = json.loads((host / "host.json").read_text())
        entries = list(spec.get("commands", [])) + list(spec.get("files", {}).values())
        for entry in entries:
            for key in ("stdout_file", "stderr_file", "content_file"):
                if key in entry:
                    assert (host / entry[key]).is_file(), (host.name, entry[key])


def test_policy_tests_and_probe_listing_cover_the_new_probes() -> None:
    listing = json.loads(run_cli("rampart-agent", "policy", "probes", "--format", "json").stdout)
    names = {p["name"] for p in listing}
    assert {
        "patch_level",
        "os_support",
        "disk_encryption",
        "firewall",
        "local_admins",
        "password_policy",
        "screen_lock",
        "antivirus",
        "sshd",
    } <= names
    baseline = str(Path(__file__).parents[2] / "policies" / "baseline.yaml")
    result = run_cli("rampart-agent", "policy", "test", baseline)
    assert result.returncode == 0, result.stdout


LINUX_PARITY = (
    "antimalware-realtime",
    "antimalware-signatures-current",
    "antimalware-service-running",
    "password-min-length",
    "account-lockout",
    "screen-locks-when-idle",
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        # Debian's defaults: pam_unix's 6 characters, no pam_faillock; no anti-malware, no desktop.
        (
            "debian12-laptop-lvm-luks",
            ("not_applicable", "not_applicable", "not_applicable", "fail", "fail", "not_applicable"),
        ),
        # ClamAV just installed (no signatures yet, no daemon), pwquality minlen 14, faillock deny=5, GNOME defaults.
        ("debian12-desktop-gnome-clamav", ("fail", "error", "fail", "pass", "pass", "pass")),
        # Defender for Endpoint healthy; Debian's PAM defaults; no desktop.
        ("debian12-server-mdatp", ("pass", "pass", "pass", "fail", "fail", "not_applicable")),
    ],
)
def test_linux_parity_checks_on_recorded_hosts(host: str, expected: tuple[str, ...]) -> None:
    report = check("--replay", str(HOSTS / host))
    got, results = statuses(report), by_id(report)
    assert tuple(got[c] for c in LINUX_PARITY) == expected
    for check_id in LINUX_PARITY:
        if got[check_id] in ("fail", "error"):
            assert results[check_id]["remediation"], check_id  # plain words on what to do
    if host == "debian12-desktop-gnome-clamav":
        assert "freshclam has not yet downloaded one" in results["antimalware-signatures-current"]["reason"]
