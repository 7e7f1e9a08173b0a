"""The agent's record of when pending apt security updates appeared (checks/probes/apt_release_record.py)."""

from __future__ import annotations

import json
from pathlib import Path

from checks.probes.apt_release_record import Observation, advance, bounds_without_record, read_record, write_record

DAY = 86400.0
SOURCES = ["security_InRelease", "main_InRelease"]


def seen(security: list[str], index_day: float, now_day: float, **installed: str) -> Observation:
    versions = {"openssl": "3.0.1", "curl": "7.88", "zlib": "1.2", **installed}
    return Observation(versions, security, index_day * DAY, SOURCES, now_day * DAY)


def test_an_update_that_arrives_between_two_refreshes_is_bracketed_by_them() -> None:
    record, bounds = advance(None, seen(["openssl"], 10, 10.5))
    assert bounds.most is None and bounds.least == 0.5 * DAY and bounds.unbounded == 1  # pending from the start
    record, bounds = advance(record, seen(["openssl", "curl"], 20, 21))
    assert record["pending"]["curl"] == {"since": 20 * DAY, "after": 10 * DAY}
    assert bounds.unbounded == 1  # openssl still has no upper bound
    record, bounds = advance(record, seen(["curl"], 30, 31))  # openssl installed: it leaves the record
    assert set(record["pending"]) == {"curl"}
    assert bounds.least == 11 * DAY and bounds.most == 21 * DAY and bounds.unbounded == 0


def test_an_observation_with_nothing_pending_still_brackets_the_next_update() -> None:
    record, bounds = advance(None, seen([], 10, 11))
    assert record["pending"] == {} and bounds.unbounded == 0
    _, bounds = advance(record, seen(["zlib"], 20, 21))
    assert bounds.least == 1 * DAY and bounds.most == 11 * DAY


def test_without_a_refresh_between_observations_a_new_update_is_not_bracketed() -> None:
    # The same index cannot bring an update: one that appears anyway came from something else (a pin removed).
    record, _ = advance(None, seen([], 10, 11))
    _, bounds = advance(record, seen(["zlib"], 10, 12))
    assert bounds.most is None and bounds.least == 2 * DAY


def test_nothing_pending_gives_no_bounds_and_an_unknown_format_starts_again() -> None:
    _, bounds = advance({"format": 99, "pending": {}}, seen([], 10, 11))
    assert (bounds.least, bounds.most, bounds.unbounded) == (None, None, 0)
    assert bounds_without_record(seen(["curl"], 10, 13)).least == 3 * DAY


def test_the_record_is_replaced_whole_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    assert read_record(str(path)) is None
    record, _ = advance(None, seen(["curl"], 10, 11))
    write_record(str(path), record)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_record(str(path)) == json.loads(path.read_text()) == record
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left behind
