"""The package probe on this machine, checked against dpkg-query."""

from __future__ import annotations

import subprocess

from tests.checks.probes.live import probe


def test_package_probe_matches_dpkg() -> None:
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bash"], capture_output=True, text=True).stdout
    assert probe("package", name="bash") == {"installed": True, "version": version, "manager": "dpkg"}
    assert probe("package", name="no-such-package-xyz")["installed"] is False
