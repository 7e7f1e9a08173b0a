"""Generic probes on this machine, checked against what the machine shows independently."""

from __future__ import annotations

import os
import platform
import pwd
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from checks.policy.evaluate import collect
from checks.policy.model import ProbeRef
from checks.probes.generic import parse_launchctl_list, parse_systemctl_show, parse_windows_service
from checks.probes.host import LocalHost

HOST = LocalHost()


def probe(probe_name: str, /, **params: Any) -> Any:
    return collect(HOST, ProbeRef(probe_name, params))


def test_file_probe_matches_stat(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("hello")
    target.chmod(0o604)
    facts = probe("file", path=str(target), hash=True)
    assert facts["exists"] and not facts["is_dir"]
    assert facts["mode"] == "0604" and facts["world_readable"] and not facts["world_writable"]
    assert facts["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert facts["size"] == 5
    assert facts["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert probe("file", path=str(tmp_path / "nope"))["exists"] is False


def test_file_content_and_key_values(tmp_path: Path) -> None:
    config = tmp_path / "login.defs"
    config.write_text("# comment\nPASS_MAX_DAYS\t90\nUMASK 027\n\nPASS_MAX_DAYS 60\n")
    lines = probe("file_content", path=str(config), pattern="^PASS")
    assert lines == {"exists": True, "lines": ["PASS_MAX_DAYS\t90", "PASS_MAX_DAYS 60"], "match_count": 2}
    kv = probe("key_value_file", path=str(config))
    assert kv["settings"] == {"pass_max_days": "60", "umask": "027"}
    assert kv["numbers"] == {"pass_max_days": 60}  # 027 stays text: a leading zero is octal


def test_sysctl_matches_procfs() -> None:
    facts = probe("sysctl", name="kernel.pid_max")
    assert facts["int_value"] == int(Path("/proc/sys/kernel/pid_max").read_text())
    assert probe("sysctl", name="no.such.parameter") == {"exists": False, "value": None, "int_value": None}


def test_command_probe() -> None:
    facts = probe("command", argv=["uname", "-s"], parse="lines")
    assert facts["exit_code"] == 0 and facts["lines"] == [platform.system()]
    assert probe("command", argv=["python3", "-c", "print('{\"a\": 1}')"], parse="json")["json"] == {"a": 1}


def test_process_probe_finds_this_test_run() -> None:
    facts = probe("process", cmdline_pattern="pytest")
    assert os.getpid() in [p["pid"] for p in facts["processes"]]


def test_os_probe_matches_os_release() -> None:
    facts = probe("os")
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert facts["id"] == release["ID"].strip('"')
    assert facts["version"] == release.get("VERSION_ID", "").strip('"')
    assert facts["kernel"] == platform.release()
    assert facts["arch"] == platform.machine()
    assert facts["hostname"] == socket.gethostname()


def test_package_probe_matches_dpkg() -> None:
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bash"], capture_output=True, text=True).stdout
    assert probe("package", name="bash") == {"installed": True, "version": version, "manager": "dpkg"}
    assert probe("package", name="no-such-package-xyz")["installed"] is False


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
