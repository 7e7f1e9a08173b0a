"""The sysctl probe on this machine, checked against /proc/sys."""

from __future__ import annotations

from pathlib import Path

from tests.checks.probes.live import probe


def test_sysctl_matches_procfs() -> None:
    facts = probe("sysctl", name="kernel.pid_max")
    assert facts["int_value"] == int(Path("/proc/sys/kernel/pid_max").read_text())
    assert probe("sysctl", name="no.such.parameter") == {"exists": False, "value": None, "int_value": None}
