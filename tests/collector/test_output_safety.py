"""Output cannot be turned against its reader: host names and people's text enrolled through the real API
are shown by the CLI (as a process) with control characters escaped, and CSV cells are formula-safe."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.support.agents import make_result
from tests.support.live import LiveCollector

REPO = Path(__file__).resolve().parents[2]
# Clears the screen, then starts a line that looks like a row of the table.
HOSTILE_HOST = "evil\x1b[2J\nforged-host  servers  linux  never  active"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(live: LiveCollector, tmp_path: Path) -> Cli:
    config = tmp_path / "cli.yaml"
    section = {"data_dir": live.config.data_dir, "database_url": live.config.database_url}
    config.write_text(yaml.safe_dump({"collector": section}), encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("rampart-collector", "--config", str(config), *args)

    return run


def assert_shown_as_text(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\u202e" not in stream, stream
        assert not any(line.startswith("forged") for line in stream.splitlines()), stream


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_text_is_escaped_in_every_cli_output(live: LiveCollector, cli: Cli) -> None:
    agent = live.enrolled_agent(group="servers", hostname=HOSTILE_HOST)
    result = make_result("c00", "fail", observed={"banner": "\x1b]0;owned\x07\u202eexe.txt"})
    result["reason"] = "bad\x1b[31m\nforged reason"
    assert agent.report([result]).status_code == 200
    admin = live.admin()
    waiver = {
        "check": "c00",
        "scope": {"hosts": [agent.agent_id]},
        "justification": "needed\x1b[2J\nforged justification",
        "expires": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }
    assert admin.post(live.url + "/api/v1/waivers", json=waiver).status_code == 201

    args: tuple[str, ...]
    for args in (
        ("hosts",),
        ("hosts", "--search", "evil"),
        ("host", agent.agent_id),
        ("agents", "list"),
        ("check", "c00"),
        ("summary", "--by", "check"),
        ("waivers", "list"),
        ("audit",),
    ):
        shown = cli(*args)
        assert shown.returncode == 0, (args, shown.stderr)
        assert_shown_as_text(shown)
    host = cli("host", agent.agent_id).stdout
    assert "evil\\x1b[2J\\nforged-host" in host.splitlines()[0]  # one line, the escapes visible
    assert "\\x1b[31m\\nforged reason" in host

    # Errors that echo what was typed, and argparse's own.
    for args in (
        ("host", "nowhere\x1b[2J\nforged"),
        ("users", "disable", "nobody\x1b[2J"),
        ("summary", "--by", "\x1b[2Jforged"),
        ("hosts", "--limit", "\x1b[2J"),
        ("hosts", "--offset", str(2**63)),
        ("hosts", "\x1b[2J\nforged"),  # argparse: unrecognized arguments
        ("policy", "unassign", "p\x1b[2J\nforged", "servers"),  # a message that names what was typed
    ):
        refused = cli(*args)
        assert refused.returncode in (1, 2), (args, refused.stderr)
        assert_shown_as_text(refused)
    assert "\\x1b[2J" in cli("host", "nowhere\x1b[2J\nforged").stderr
    assert cli("hosts", "--offset", str(2**63)).returncode == 2
    assert cli("hosts", "--search", "a" * 300).returncode == 2


def test_csv_exports_are_formula_safe(live: LiveCollector) -> None:
    agent = live.enrolled_agent(hostname="=cmd|' /C calc'!A0")
    result = make_result("c00", "fail")
    result["reason"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    assert agent.report([result]).status_code == 200
    response = live.admin().get(live.url + "/api/v1/export/results", params={"format": "csv"})
    assert response.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert row["subject_name"] == "'=cmd|' /C calc'!A0"
    assert row["reason"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    jsonl = live.admin().get(live.url + "/api/v1/export/results", params={"format": "jsonl"}).text
    assert json.loads(jsonl.splitlines()[0])["subject_name"] == "=cmd|' /C calc'!A0"  # JSON keeps the value


def test_every_csv_the_code_writes_goes_through_safetext() -> None:
    """The csv module's writers are used in one place, checks/safetext.py, whose writers neutralise
    formulas: a CSV written any other way could carry a formula to an auditor's spreadsheet. (Reading CSV,
    as `evidence verify` does, is fine.)"""
    writers = {"writer", "DictWriter"}
    offenders = []
    for package in ("checks", "agent", "collector"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "checks" / "safetext.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                used = (
                    isinstance(node, ast.Attribute)
                    and node.attr in writers
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "csv"
                ) or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "csv"
                    and any(alias.name in writers for alias in node.names)
                )
                if used and isinstance(node, ast.expr | ast.stmt):  # always; it tells mypy they have a line
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
