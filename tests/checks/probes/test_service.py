"""The service probe: live on this machine, and its parsers on recorded systemctl, Get-Service and launchctl
output."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.probes.service.parse import parse_launchctl_list, parse_systemctl_show, parse_windows_service
from tests.checks.probes.live import probe


@pytest.mark.skipif(not Path("/run/systemd/system").exists(), reason="systemd is not running here")
def test_service_probe_live() -> None:
    assert probe("service", name="no-such-unit-xyz")["exists"] is False


def test_systemctl_show_parsing() -> None:
    # Recorded from `systemctl show ssh --property=...` on Debian 12.
    assert parse_systemctl_show("LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n") == {
        "exists": True,
        "active": True,
        "enabled": True,
        "state": "active",
    }
    assert (
        parse_systemctl_show("LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n")["exists"]
        is False
    )
    assert parse_systemctl_show("LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n") == {
        "exists": True,
        "active": False,
        "enabled": False,
        "state": "inactive",
    }


def test_windows_service_and_launchctl_parsing() -> None:
    assert parse_windows_service({"Name": "WinDefend", "Status": "Running", "StartType": "Automatic"})["active"]
    assert parse_windows_service(None)["exists"] is False
    listing = "PID\tStatus\tLabel\n123\t0\tcom.openssh.sshd\n-\t0\tcom.apple.ftpd\n"
    assert parse_launchctl_list(listing, "com.openssh.sshd")["active"] is True
    assert parse_launchctl_list(listing, "com.apple.ftpd")["active"] is False
    assert parse_launchctl_list(listing, "nope")["exists"] is False
