"""The agent's config section: config.example.yaml documents every key with its real default, and mistakes
are reported with their file and line (or environment variable) before anything runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from agent.config import AgentConfig, defaults, load_agent_config, parse_seconds
from checks.config import ConfigError
from tests.agent.helpers import ROOT
from tests.conftest import run_cli


def test_config_example_documents_every_agent_key_with_its_default() -> None:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))["agent"]
    assert example == defaults()
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    section = text.split("\nagent:\n", 1)[1].split("\ncollector:", 1)[0]
    for field in dataclasses.fields(AgentConfig):
        # each key has a comment line right above it (or above the key group it belongs to)
        assert f"\n  {field.name}:" in "\n" + section, field.name
    assert load_agent_config(str(ROOT / "config.example.yaml"), environ={}) == AgentConfig()


def test_durations_accept_seconds_and_units() -> None:
    assert parse_seconds("90") == 90
    assert parse_seconds("15m") == 900
    assert parse_seconds("1.5h") == 5400
    assert parse_seconds("1d") == 86400
    with pytest.raises(ValueError, match="invalid duration"):
        parse_seconds("5 minutes")


def test_bad_duration_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  state_dir: /tmp/x\n  jitter: soon\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{config}:3: agent.jitter: invalid duration 'soon'"):
        load_agent_config(str(config), environ={})


def test_bad_check_interval_override_names_the_check(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  check_intervals:\n    kernel-aslr: 5x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{config}:3: agent.check_intervals.kernel-aslr: invalid duration"):
        load_agent_config(str(config), environ={})


def test_environment_overrides_and_its_errors_name_the_variable(tmp_path: Path) -> None:
    config = load_agent_config(None, environ={"RAMPART_AGENT__SPLAY": "0", "RAMPART_AGENT__DRAIN_RATE": "0.5"})
    assert config.seconds("splay") == 0 and config.drain_rate == 0.5
    with pytest.raises(ConfigError, match="environment variable RAMPART_AGENT__READ_TIMEOUT: agent.read_timeout"):
        load_agent_config(None, environ={"RAMPART_AGENT__READ_TIMEOUT": "0"})


def test_plain_http_collector_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  collector_url: http://collector.example\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":2: agent.collector_url: must be an https:// URL"):
        load_agent_config(str(config), environ={})


def test_spool_must_hold_a_report(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  spool_max_mb: 0.1\n  report_max_kb: 512\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="spool_max_mb: the spool must hold at least one report"):
        load_agent_config(str(config), environ={})


def test_cli_reports_config_errors_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  state_dir: /tmp/x\n  drain_rat: 3\n", encoding="utf-8")
    result = run_cli("rampart-agent", "--config", str(config), "status")
    assert result.returncode == 2
    assert f"{config}:3: unknown key agent.drain_rat; did you mean 'drain_rate'?" in result.stderr


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("request_attempts: 1000", "agent.request_attempts must be from 1 to 100, got 1000"),
        ("request_attempts: 0", "agent.request_attempts must be from 1 to 100, got 0"),
        ("drain_rate: 99999999", "agent.drain_rate must be from 0.01 to 10000, got 99999999"),
        ("report_max_results: 1000000000", "agent.report_max_results must be from 1 to 100000, got 1000000000"),
        ("report_max_kb: -1", "agent.report_max_kb must be from 1 to 65536, got -1"),
        ("spool_max_mb: 0", "agent.spool_max_mb must be from 0.01 to 1048576, got 0"),
    ],
)
def test_numbers_out_of_range_are_refused_with_file_and_line(tmp_path: Path, line: str, error: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"agent:\n  state_dir: {tmp_path}\n  {line}\n", encoding="utf-8")
    for args in (("status",), ("run", "--once")):
        result = run_cli("rampart-agent", "--config", str(config), *args)
        assert result.returncode == 2, result.stderr
        assert f"{config}:3: {error}" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_number_out_of_range_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"agent:\n  state_dir: {tmp_path}\n", encoding="utf-8")
    result = run_cli("rampart-agent", "--config", str(config), "status", env={"RAMPART_AGENT__REQUEST_ATTEMPTS": "500"})
    assert result.returncode == 2
    assert "environment variable RAMPART_AGENT__REQUEST_ATTEMPTS: agent.request_attempts must be from 1 to 100" in (
        result.stderr
    )
