"""local_admins, password_policy, screen_lock and antivirus on recorded outputs and on this machine."""

from __future__ import annotations

import grp
import json
import pwd
import shutil
import time
from pathlib import Path

import pytest

from checks.probes.accounts import (
    collect_local_admins_darwin,
    collect_local_admins_linux,
    collect_password_policy_linux,
    collect_screen_lock_darwin,
    collect_screen_lock_linux,
    gnome_screen_lock,
    parse_gsettings_value,
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
    parse_mdatp_health,
    parse_windows_antivirus,
)
from checks.probes.common import parse_timestamp
from checks.probes.host import LocalHost, ProbeError, ReplayHost
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


# --- Linux parity: the PAM stacks, GNOME, ClamAV and Defender for Endpoint through the live collectors ---

DESKTOP = DATA / "hosts" / "debian12-desktop-gnome-clamav"
LAPTOP = DATA / "hosts" / "debian12-laptop-lvm-luks"
SERVER = DATA / "hosts" / "debian12-server-mdatp"


def test_debian_default_pam_stack_allows_six_characters_and_never_locks() -> None:
    facts = collect_password_policy_linux(ReplayHost(LAPTOP), {})
    assert (facts["min_length"], facts["lockout_threshold"]) == (6, 0)
    assert any("pam_faillock is not in the auth stack" in n for n in facts["notes"])
    assert any("pam_pwquality is not in the password stack" in n for n in facts["notes"])


def test_pwquality_conf_d_and_faillock_arguments() -> None:
    facts = collect_password_policy_linux(ReplayHost(DESKTOP), {})
    assert (facts["min_length"], facts["lockout_threshold"]) == (14, 5)


def test_pwquality_order_and_defaults() -> None:
    stack = fixture("accounts", "debian12-common-password-pwquality")
    auth = fixture("accounts", "debian12-common-auth")
    shipped = fixture("accounts", "debian12-pwquality.conf")  # every setting commented out
    # pwquality's built-in 8; faillock.conf's deny does not count without pam_faillock in the stack.
    facts = parse_linux_password_policy(None, [shipped], "deny = 4\n", stack, auth)
    assert (facts["min_length"], facts["lockout_threshold"]) == (8, 0)
    # The .d files are read first, the main file last: the main file wins (pwquality.conf(5)).
    facts = parse_linux_password_policy(None, ["minlen = 14\n", "minlen = 10\n"], None, stack, None)
    assert facts["min_length"] == 10
    # A module argument beats both; faillock.conf's deny applies when the module gives none.
    with_args = stack.replace("pam_pwquality.so retry=3", "pam_pwquality.so retry=3 minlen=16")
    faillock_auth = fixture("accounts", "debian12-common-auth-faillock").replace(" deny=5", "")
    facts = parse_linux_password_policy(None, ["minlen = 10\n"], "deny = 4\n", with_args, faillock_auth)
    assert (facts["min_length"], facts["lockout_threshold"]) == (16, 4)
    facts = parse_linux_password_policy(None, [], None, stack, faillock_auth)
    assert facts["lockout_threshold"] == 3  # pam_faillock(8)'s default
    # Nothing to go on: null, with the reason an error result shows.
    facts = parse_linux_password_policy(None, [], None)
    assert facts["min_length"] is None and facts["lockout_threshold"] is None
    assert "no minimum length is configured" in facts["unknown_because"]["min_length"]
    assert "lockout threshold unknown" in facts["unknown_because"]["lockout_threshold"]


def test_gnome_screen_lock_from_recorded_gsettings() -> None:
    host = ReplayHost(DESKTOP)
    facts = collect_screen_lock_linux(host, {})
    assert facts == {"desktop": "gnome", "enabled": True, "timeout_seconds": 300, "source": facts["source"]}
    assert [c.argv[:2] for c in host.calls] == [("gsettings", "get")] * 3
    assert collect_screen_lock_linux(ReplayHost(LAPTOP), {})["desktop"] is None  # no GNOME: not read at all
    assert parse_gsettings_value(fixture("accounts", "debian12-gsettings-idle-delay.txt")) == 300
    assert gnome_screen_lock({"idle-delay": 0, "lock-enabled": True, "lock-delay": 0})["enabled"] is False
    assert gnome_screen_lock({"idle-delay": 600, "lock-enabled": True, "lock-delay": 30})["timeout_seconds"] == 630
    assert gnome_screen_lock({"idle-delay": 600, "lock-enabled": False, "lock-delay": 0})["enabled"] is False
    with pytest.raises(ProbeError, match="unrecognised gsettings value"):
        parse_gsettings_value("No such schema “org.gnome.desktop.session”\n")


def test_gsettings_without_dconf_is_an_error(tmp_path: Path) -> None:
    spec = {
        "platform": "linux",
        "which": {"gnome-shell": "/usr/bin/gnome-shell", "gsettings": "/usr/bin/gsettings"},
        "commands": [
            {
                "match": "gsettings get",
                "stdout": "uint32 300\n",
                "stderr": "GLib-GIO-Message: Using the 'memory' GSettings backend.  Your settings will not be saved "
                "or shared with other applications.\n",
            }
        ],
    }
    (tmp_path / "host.json").write_text(json.dumps(spec))
    with pytest.raises(ProbeError, match="no dconf backend"):
        collect_screen_lock_linux(ReplayHost(tmp_path), {})


def test_mdatp_health_through_the_collector() -> None:
    facts = collect_antivirus_linux(ReplayHost(SERVER), {})
    assert facts["product"] == "Microsoft Defender for Endpoint"
    assert (facts["realtime_enabled"], facts["service_running"], facts["updates_automatic"]) == (True, True, True)
    assert (facts["signature_age_days"], facts["signature_version"]) == (0, "1.411.353.0")
    assert facts["tamper_protected"] is True
    stale = parse_mdatp_health(fixture("antivirus", "mdatp-health-passive-stale.txt"))
    assert (stale["realtime_enabled"], stale["mode"], stale["signature_age_days"]) == (False, "Passive Mode", 10)
    assert (stale["service_running"], stale["updates_automatic"]) == (False, False)
    assert any("definitions_status is stale" in n for n in stale["notes"])
    with pytest.raises(ProbeError, match="unrecognised `mdatp health` output"):
        parse_mdatp_health("ERROR: Could not connect to the daemon\n")


def test_clamav_just_installed_and_running(tmp_path: Path) -> None:
    fresh = collect_antivirus_linux(ReplayHost(DESKTOP), {})
    assert (fresh["product"], fresh["realtime_enabled"], fresh["service_running"]) == ("ClamAV", False, False)
    assert fresh["signature_age_days"] is None and "freshclam" in fresh["unknown_because"]["signature_age_days"]
    # The same machine a day later: daemons running, daily.cld refreshed an hour ago.
    spec = json.loads((DESKTOP / "host.json").read_text())
    spec["processes"] += [
        {"pid": n, "name": name, "user": "clamav", "cmdline": [name]}
        for n, name in ((900, "clamd"), (901, "freshclam"), (902, "clamonacc"))
    ]
    spec["files"]["/var/lib/clamav/daily.cld"] = {"content": "", "mtime": time.time() - 3600}
    spec["commands"] = [
        {**c, "stdout_file": str((DESKTOP / c["stdout_file"]).resolve())} if "stdout_file" in c else c
        for c in spec["commands"]
    ]
    (tmp_path / "host.json").write_text(json.dumps(spec))
    running = collect_antivirus_linux(ReplayHost(tmp_path), {})
    assert (running["realtime_enabled"], running["service_running"], running["updates_automatic"]) == (True, True, True)
    assert running["signature_age_days"] == 0 and running["unknown_because"] == {}
