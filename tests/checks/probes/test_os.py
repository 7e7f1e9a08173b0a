"""The os probe on this machine, checked against os-release and Python's own view of the machine."""

from __future__ import annotations

import platform
import socket
from pathlib import Path

from tests.checks.probes.live import probe


def test_os_probe_matches_os_release() -> None:
    facts = probe("os")
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert facts["id"] == release["ID"].strip('"')
    assert facts["version"] == release.get("VERSION_ID", "").strip('"')
    assert facts["kernel"] == platform.release()
    assert facts["arch"] == platform.machine()
    assert facts["hostname"] == socket.gethostname()
