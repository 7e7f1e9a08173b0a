"""The process probe on this machine: it finds the test run itself."""

from __future__ import annotations

import os

from tests.checks.probes.live import probe


def test_process_probe_finds_this_test_run() -> None:
    facts = probe("process", cmdline_pattern="pytest")
    assert os.getpid() in [p["pid"] for p in facts["processes"]]
