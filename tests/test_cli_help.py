"""Every option and argument of both command lines says what it is in `--help`: the parsers are walked, and
any action without help text fails, named by the command it belongs to."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import build_parser as agent_parser
from collector.cli import build_parser as collector_parser
from tests.conftest import run_cli


def _undocumented(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not described.get(name):
                    yield f"{path} {name} (the command itself)"
                yield from _undocumented(sub, f"{path} {name}")
            continue
        if not action.help:
            yield f"{path} {'/'.join(action.option_strings) or action.metavar or action.dest}"


@pytest.mark.parametrize(
    ("program", "build"), [("rampart-agent", agent_parser), ("rampart-collector", collector_parser)]
)
def test_every_option_and_argument_has_help_text(program: str, build: object) -> None:
    missing = list(_undocumented(build(), program))  # type: ignore[operator]
    assert missing == [], "without help text:\n" + "\n".join(missing)


def test_help_shows_the_text_as_a_process() -> None:
    shown = run_cli("rampart-collector", "check", "--help")
    assert shown.returncode == 0
    assert "at most this many" in shown.stdout
    added = run_cli("rampart-collector", "policy", "add", "--help")
    assert "policy file (YAML)" in added.stdout
    assert "one point per day, week or month" in run_cli("rampart-collector", "trends", "--help").stdout
    assert "policy or waiver files" in run_cli("rampart-agent", "policy", "validate", "--help").stdout


def test_audit_since_takes_the_api_form(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert run_cli("rampart-collector", "--config", str(config), "init").returncode == 0

    def audit(*args: str) -> list[dict[str, object]]:
        shown = run_cli("rampart-collector", "--config", str(config), "audit", "--format", "json", *args)
        assert shown.returncode == 0, shown.stderr
        return list(json.loads(shown.stdout))

    everything = audit()
    assert everything
    newest = dt.datetime.fromisoformat(str(everything[0]["at"]).replace("Z", "+00:00"))
    assert audit("--since", newest.isoformat())[0]["id"] == everything[0]["id"]  # at or after
    later = newest + dt.timedelta(seconds=1)
    assert audit("--since", later.strftime("%Y-%m-%dT%H:%M:%SZ")) == []
    # The same moment an hour east of UTC, and a bare date (UTC midnight).
    east = later.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    assert audit("--since", east) == []
    assert len(audit("--since", newest.date().isoformat())) == len(everything)
    assert len(audit("--offset", "1")) == len(everything) - 1
    bad = run_cli("rampart-collector", "--config", str(config), "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "'yesterday' is not an ISO 8601 date or time" in bad.stderr


def test_expires_help_says_bare_seconds_are_taken() -> None:
    for command in (("enroll-token", "create"), ("api-token", "create")):
        shown = run_cli("rampart-collector", *command, "--help")
        assert shown.returncode == 0
        assert "bare seconds" in " ".join(shown.stdout.split()), shown.stdout
