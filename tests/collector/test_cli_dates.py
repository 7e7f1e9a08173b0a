"""Dates the query commands refuse (exit 2, saying which option and why) before the database is opened."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import run_cli

TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("summary", "--as-of", TOMORROW), f"--as-of {TOMORROW} is in the future"),
        (("host", "web-1", "--as-of", "9999-12-31"), "is in the future"),
        (("trends", "--to", "0001-01-01"), "--to 0001-01-01 is before the 400 days of history kept"),
        (("enroll-token", "create", "--expires", "99999999999d"), "too long"),
    ],
)
def test_dates_the_arithmetic_cannot_answer_are_bad_usage(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'none'}\n", encoding="utf-8")
    done = run_cli("rampart-collector", "--config", str(config), *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert says in done.stderr and "Traceback" not in done.stderr
