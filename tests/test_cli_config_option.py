"""`--config PATH` is taken before the command and after it, at any depth, by both command lines (run as
processes): administrators type it both ways, and one that works in one place must work in the other."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_the_agent_takes_config_before_and_after_every_command(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  state_dir: {state}\n", encoding="utf-8")
    for args in (("--config", str(config), "status"), ("status", "--config", str(config))):
        shown = run_cli("rampart-agent", *args, "--format", "json", cwd=tmp_path)
        assert shown.returncode == 1, shown.stderr  # not enrolled, in the state directory the config names
        assert json.loads(shown.stdout)["state_dir"] == str(state)
    # Commands that read no config take it too (and so do nested ones), rather than failing on it.
    policy = Path(__file__).parent.parent / "policies" / "baseline.yaml"
    for args in (("check", "--only", "os-64-bit"), ("policy", "validate", str(policy))):
        done = run_cli("rampart-agent", *args, "--config", str(config), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent:\n  spool_max_bytes: lots\n", encoding="utf-8")
    refused = run_cli("rampart-agent", "status", "--config", str(bad), cwd=tmp_path)
    assert refused.returncode == 2 and str(bad) in refused.stderr  # read, not ignored


def test_the_collector_takes_config_before_and_after_every_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "collector.yaml"
    config.write_text(f"collector:\n  data_dir: {data}\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"  # the working directory: ./rampart-data would be made here without it
    elsewhere.mkdir()
    made = run_cli("rampart-collector", "init", "--config", str(config), cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    assert any(data.iterdir()) and not (elsewhere / "rampart-data").exists()
    for args in (
        ("--config", str(config), "summary", "--format", "json"),
        ("summary", "--format", "json", "--config", str(config)),
        ("db", "current", "--config", str(config)),
        ("db", "--config", str(config), "current"),
    ):
        done = run_cli("rampart-collector", *args, cwd=elsewhere)
        assert done.returncode == 0, (args, done.stderr)
    assert not (elsewhere / "rampart-data").exists()
