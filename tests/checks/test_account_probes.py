"""local_admins, password_policy, screen_lock, antivirus and sshd on recorded outputs and on this machine."""

from __future__ import annotations

import grp
import json
import pwd
import shutil
from pathlib import Path

import pytest

from checks.probes.accounts import (
    collect_local_admins_darwin,
    collect_local_admins_linux,
    collect_password_policy_linux,
    collect_screen_lock_darwin,
    parse_linux_admins,
    parse_linux_password_policy,
    parse_sysadminctl_screenlock,
    parse_windows_admins,
    parse_windows_password_policy,
    parse_windows_screen_lock,
)
from checks.probes.antivirus import (
    collect_antivirus_darwin,
    collect_antivirus_linux,
    decode_product_state,
    parse_windows_antivirus,
)
from checks.probes.common import parse_timestamp
from checks.probes.host import AccessDenied, LocalHost, ProbeError, ReplayHost
from checks.probes.sshd import collect_sshd, parse_sshd_t
from tests.conftest import DATA

PROBES = DATA / "probes"
NOW = parse_timestamp("2024-06-13T12:00:00Z") or 0.0


def fixture(family: str, name: str) -> str:
    return (PROBES / family / name).read_text(encoding="utf-8")


# --- administrators ------------------------------------------------------------------------------------


def test_linux_admins_from_groups_primary_groups_and_uid0() -> None:
    passwd = (
        "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n"
        "ann:x:1000:1000::/h:/bin/sh\nbob:x:1001:10::/h:/bin/sh\n"
    )
    group = "root:x:0:\nwheel:x:10:ann\nsudo:x:27:\n"
    facts = parse_linux_admins(passwd, group)
    assert [(a["name"], a["via"]) for a in facts["admins"]] == [
        ("root", "uid0"),
        ("toor", "uid0"),
        ("ann", "wheel"),
        ("bob", "wheel"),  # primary group wheel
    ]
    assert facts["uid0_accounts"] == ["toor"]


def test_live_admins_match_getent() -> None:
    facts = collect_local_admins_linux(LocalHost(), {})
    expected = {u.pw_name for u in pwd.getpwall() if u.pw_uid == 0}
    for name in ("sudo", "wheel", "admin"):
        try:
            group = grp.getgrnam(name)
        except KeyError:
            continue
        expected |= set(group.gr_mem) | {u.pw_name for u in pwd.getpwall() if u.pw_gid == group.gr_gid}
    assert {a["name"] for a in facts["admins"]} == expected
    assert facts["count"] == len(expected)


def test_windows_admins_by_sid_in_any_language() -> None:
    english = parse_windows_admins(json.loads(fixture("accounts", "windows-admins.json")))
    assert [a["kind"] for a in english["admins"]] == ["user", "group", "user"]
    assert english["builtin_admin_enabled"] is False
    german = parse_windows_admins(json.loads(fixture("accounts", "windows-admins-german.json")))
    assert german["count"] == 2 and {a["kind"] for a in german["admins"]} == {"user"}
    assert german["builtin_admin_enabled"] is True


def test_macos_admins() -> None:
    facts = collect_local_admins_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert [a["name"] for a in facts["admins"]] == ["root", "jappleseed"]


# --- password policy and screen lock -------------------------------------------------------------------


def test_linux_password_policy() -> None:
    facts = parse_linux_password_policy(fixture("accounts", "debian12-login.defs"), None, None)
    assert (facts["max_age_days"], facts["min_length"], facts["lockout_threshold"]) == (None, None, None)
    assert "PASS_MAX_DAYS is 99999: passwords never expire" in facts["notes"]
    facts = parse_linux_password_policy("PASS_MAX_DAYS 90\n", "minlen = 14\n", "deny = 5\n")
    assert (facts["max_age_days"], facts["min_length"], facts["lockout_threshold"]) == (90, 14, 5)


def test_live_password_policy_reads_login_defs() -> None:
    facts = collect_password_policy_linux(LocalHost(), {})
    text = Path("/etc/login.defs").read_text() if Path("/etc/login.defs").exists() else ""
    max_days = [line.split()[1] for line in text.splitlines() if line.startswith("PASS_MAX_DAYS")]
    if max_days and int(max_days[-1]) < 99999:
        assert facts["max_age_days"] == int(max_days[-1])
    else:
        assert facts["max_age_days"] is None


def test_windows_password_policy_and_screen_lock() -> None:
    strict = parse_windows_password_policy(json.loads(fixture("accounts", "windows-password-policy.json")))
    assert (strict["min_length"], strict["max_age_days"], strict["lockout_threshold"]) == (14, 42, 10)
    default = parse_windows_password_policy(json.loads(fixture("accounts", "windows-password-policy-defaults.json")))
    assert (default["min_length"], default["lockout_threshold"]) == (0, 0)
    assert parse_windows_screen_lock({"InactivityTimeoutSecs": 900})["timeout_seconds"] == 900
    assert parse_windows_screen_lock({"InactivityTimeoutSecs": None})["enabled"] is False


def test_macos_screen_lock_from_stderr() -> None:
    assert parse_sysadminctl_screenlock(fixture("accounts", "macos-sysadminctl-immediate.txt"))["timeout_seconds"] == 0
    assert parse_sysadminctl_screenlock(fixture("accounts", "macos-sysadminctl-off.txt"))["enabled"] is False
    assert collect_screen_lock_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})["enabled"] is True
    with pytest.raises(ProbeError):
        parse_sysadminctl_screenlock("sysadminctl: unknown option\n")


# --- anti-malware --------------------------------------------------------------------------------------


def test_defender_states() -> None:
    docs = parse_windows_antivirus(json.loads(fixture("antivirus", "windows-defender-docs-example.json")), NOW)
    assert docs["realtime_enabled"] is True and docs["tamper_protected"] is None
    assert docs["signature_age_days"] == (NOW - (parse_timestamp("2013-07-30T03:01:45Z") or 0)) // 86400
    off = parse_windows_antivirus(json.loads(fixture("antivirus", "windows-defender-realtime-off.json")), NOW)
    assert off["realtime_enabled"] is False and off["signature_age_days"] == 9
    tamper = parse_windows_antivirus(json.loads(fixture("antivirus", "windows-defender-2022-tamper-off.json")), NOW)
    assert tamper["tamper_protected"] is False and tamper["mode"] == "Normal"


def test_passive_defender_defers_to_the_registered_product() -> None:
    facts = parse_windows_antivirus(json.loads(fixture("antivirus", "windows-defender-passive-thirdparty.json")), NOW)
    assert facts["product"] == "Sophos Anti-Virus" and facts["realtime_enabled"] is True
    assert decode_product_state(266240) == (True, True)
    assert decode_product_state(393472) == (False, True)  # Defender, off
    assert decode_product_state(397584) == (True, False)  # on, signatures out of date


def test_no_antivirus_status_is_an_error() -> None:
    with pytest.raises(ProbeError, match="no antivirus status"):
        parse_windows_antivirus(json.loads(fixture("antivirus", "windows-server-no-security-center.json")), NOW)


def test_xprotect_and_linux() -> None:
    mac = collect_antivirus_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert (mac["product"], mac["signature_version"], mac["realtime_enabled"]) == ("XProtect", "2140", True)
    live = collect_antivirus_linux(LocalHost(), {})
    if not any(shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin") for t in ("clamd", "clamscan", "mdatp")):
        assert live["installed"] is False and live["product"] is None


# --- sshd ----------------------------------------------------------------------------------------------


def test_sshd_t_recorded_on_debian() -> None:
    facts = parse_sshd_t(fixture("sshd", "debian12-sshd-T.txt"))
    assert facts["permit_root_login"] == "without-password"
    assert facts["password_authentication"] is True and facts["permit_empty_passwords"] is False
    assert facts["x11_forwarding"] is True and facts["max_auth_tries"] == 6
    assert facts["weak_algorithms"] == []
    weak = parse_sshd_t(
        "ciphers aes256-ctr,aes128-cbc\nmacs hmac-sha2-256,hmac-md5\nkexalgorithms diffie-hellman-group1-sha1\n"
    )
    assert weak["weak_algorithms"] == ["aes128-cbc", "diffie-hellman-group1-sha1", "hmac-md5"]


def test_sshd_needs_root(tmp_path: Path) -> None:
    stderr = str(PROBES / "sshd" / "debian12-sshd-T-unprivileged.stderr")
    spec = {
        "platform": "linux",
        "which": {"sshd": "/usr/sbin/sshd"},
        "commands": [{"argv": ["/usr/sbin/sshd", "-T"], "returncode": 1, "stderr_file": stderr}],
    }
    (tmp_path / "host.json").write_text(json.dumps(spec))
    with pytest.raises(AccessDenied, match="needs root"):
        collect_sshd(ReplayHost(tmp_path), {})


def test_live_sshd_matches_what_is_installed() -> None:
    host = LocalHost()
    try:
        facts = collect_sshd(host, {})
    except AccessDenied:
        assert host.which("sshd") is not None
        return
    assert facts["installed"] is (host.which("sshd") is not None)
