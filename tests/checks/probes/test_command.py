"""The command probe on this machine."""

from __future__ import annotations

import platform

from tests.checks.probes.live import probe


def test_command_probe() -> None:
    facts = probe("command", argv=["uname", "-s"], parse="lines")
    assert facts["exit_code"] == 0 and facts["lines"] == [platform.system()]
    assert probe("command", argv=["python3", "-c", "print('{\"a\": 1}')"], parse="json")["json"] == {"a": 1}
