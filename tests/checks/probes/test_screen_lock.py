"""screen_lock: the Windows inactivity limit, macOS sysadminctl, GNOME's gsettings on recorded hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.probes.host import ProbeError
from checks.probes.replay import ReplayHost
from checks.probes.screen_lock.darwin import collect_screen_lock_darwin
from checks.probes.screen_lock.linux import collect_screen_lock_linux
from checks.probes.screen_lock.parse import (
    gnome_screen_lock,
    parse_gsettings_value,
    parse_sysadminctl_screenlock,
    parse_windows_screen_lock,
)
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "screen_lock"
DESKTOP = DATA / "hosts" / "debian12-desktop-gnome-clamav"
LAPTOP = DATA / "hosts" / "debian12-laptop-lvm-luks"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_windows_screen_lock() -> None:
    assert parse_windows_screen_lock({"InactivityTimeoutSecs": 900})["timeout_seconds"] == 900
    assert parse_windows_screen_lock({"InactivityTimeoutSecs": None})["enabled"] is False


def test_macos_screen_lock_from_stderr() -> None:
    assert parse_sysadminctl_screenlock(fixture("macos-sysadminctl-immediate.txt"))["timeout_seconds"] == 0
    assert parse_sysadminctl_screenlock(fixture("macos-sysadminctl-off.txt"))["enabled"] is False
    assert collect_screen_lock_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})["enabled"] is True
    with pytest.raises(ProbeError):
        parse_sysadminctl_screenlock("sysadminctl: unknown option\n")


# --- Linux parity: GNOME through the live collector on recorded Debian hosts ----------------------------


def test_gnome_screen_lock_from_recorded_gsettings() -> None:
    host = ReplayHost(DESKTOP)
    facts = collect_screen_lock_linux(host, {})
    assert facts == {"desktop": "gnome", "enabled": True, "timeout_seconds": 300, "source": facts["source"]}
    assert [c.argv[:2] for c in host.calls] == [("gsettings", "get")] * 3
    assert collect_screen_lock_linux(ReplayHost(LAPTOP), {})["desktop"] is None  # no GNOME: not read at all
    assert parse_gsettings_value(fixture("debian12-gsettings-idle-delay.txt")) == 300
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
