"""The one duration grammar (checks/durations.py) and the places that read one: config, policy, CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from checks.durations import parse_duration, parse_seconds
from tests.conftest import run_cli
from tests.support.collector import init_collector


def test_bare_seconds_units_and_fractions() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "6h", "1d", " 2h ", 300)] == [
        90, 90, 900, 21600, 86400, 7200, 300,
    ]  # fmt: skip
    assert parse_seconds("1.5h") == 5400.0 and parse_seconds("0.25s") == 0.25 and parse_duration("1.5m") == 90
    assert parse_duration("9" * 30 + "d") == int("9" * 30) * 86400  # exact: never through a float


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-5m", "1w", "6H", "1e3", True, None, "9" * 400 + ".5d"])
def test_anything_else_is_refused_saying_the_forms(text: object) -> None:
    with pytest.raises(
        ValueError, match=r"invalid duration .*(a number of seconds or a number and s, m, h or d|too long)"
    ):
        parse_duration(text)


def test_the_collector_cli_takes_bare_seconds_as_the_config_does(tmp_path: Path) -> None:
    collector = init_collector(tmp_path / "c")
    done = run_cli(
        "rampart-collector", "--config", str(collector.config_path),
        "enroll-token", "create", "--expires", "3600", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expires = dt.datetime.fromisoformat(json.loads(done.stdout)["expires_at"].rstrip("Z"))
    left = expires - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(minutes=58) < left <= dt.timedelta(hours=1)
    refused = run_cli(
        "rampart-collector", "--config", str(collector.config_path), "enroll-token", "create", "--expires", "soon"
    )
    assert refused.returncode == 2 and "invalid duration 'soon': use a number of seconds or" in refused.stderr
