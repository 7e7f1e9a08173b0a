"""password_policy: login.defs, pwquality, faillock and the PAM stacks; the WinNT provider; live here."""

from __future__ import annotations

import json
from pathlib import Path

from checks.probes.local import LocalHost
from checks.probes.password_policy.linux import collect_password_policy_linux
from checks.probes.password_policy.parse import parse_linux_password_policy, parse_windows_password_policy
from checks.probes.replay import ReplayHost
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "password_policy"
DESKTOP = DATA / "hosts" / "debian12-desktop-gnome-clamav"
LAPTOP = DATA / "hosts" / "debian12-laptop-lvm-luks"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_linux_password_policy() -> None:
    facts = parse_linux_password_policy(fixture("debian12-login.defs"), None, None)
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


def test_windows_password_policy() -> None:
    strict = parse_windows_password_policy(json.loads(fixture("windows-password-policy.json")))
    assert (strict["min_length"], strict["max_age_days"], strict["lockout_threshold"]) == (14, 42, 10)
    default = parse_windows_password_policy(json.loads(fixture("windows-password-policy-defaults.json")))
    assert (default["min_length"], default["lockout_threshold"]) == (0, 0)


# --- Linux parity: the PAM stacks through the live collector on recorded Debian hosts -------------------


def test_debian_default_pam_stack_allows_six_characters_and_never_locks() -> None:
    facts = collect_password_policy_linux(ReplayHost(LAPTOP), {})
    assert (facts["min_length"], facts["lockout_threshold"]) == (6, 0)
    assert any("pam_faillock is not in the auth stack" in n for n in facts["notes"])
    assert any("pam_pwquality is not in the password stack" in n for n in facts["notes"])


def test_pwquality_conf_d_and_faillock_arguments() -> None:
    facts = collect_password_policy_linux(ReplayHost(DESKTOP), {})
    assert (facts["min_length"], facts["lockout_threshold"]) == (14, 5)


def test_pwquality_order_and_defaults() -> None:
    stack = fixture("debian12-common-password-pwquality")
    auth = fixture("debian12-common-auth")
    shipped = fixture("debian12-pwquality.conf")  # every setting commented out
    # pwquality's built-in 8; faillock.conf's deny does not count without pam_faillock in the stack.
    facts = parse_linux_password_policy(None, [shipped], "deny = 4\n", stack, auth)
    assert (facts["min_length"], facts["lockout_threshold"]) == (8, 0)
    # The .d files are read first, the main file last: the main file wins (pwquality.conf(5)).
    facts = parse_linux_password_policy(None, ["minlen = 14\n", "minlen = 10\n"], None, stack, None)
    assert facts["min_length"] == 10
    # A module argument beats both; faillock.conf's deny applies when the module gives none.
    with_args = stack.replace("pam_pwquality.so retry=3", "pam_pwquality.so retry=3 minlen=16")
    faillock_auth = fixture("debian12-common-auth-faillock").replace(" deny=5", "")
    facts = parse_linux_password_policy(None, ["minlen = 10\n"], "deny = 4\n", with_args, faillock_auth)
    assert (facts["min_length"], facts["lockout_threshold"]) == (16, 4)
    facts = parse_linux_password_policy(None, [], None, stack, faillock_auth)
    assert facts["lockout_threshold"] == 3  # pam_faillock(8)'s default
    # Nothing to go on: null, with the reason an error result shows.
    facts = parse_linux_password_policy(None, [], None)
    assert facts["min_length"] is None and facts["lockout_threshold"] is None
    assert "no minimum length is configured" in facts["unknown_because"]["min_length"]
    assert "lockout threshold unknown" in facts["unknown_because"]["lockout_threshold"]
