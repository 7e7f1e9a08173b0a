"""The spool against real SQLite files: order, acknowledgement, the size bound, dropped counts, splitting."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.spool import Spool, SpoolError
from checks import wire


def report(n_results: int, *, pad: int = 0, tag: str = "") -> dict[str, Any]:
    results = [{"check_id": f"c{i}{tag}", "status": "pass", "observed": {"pad": "x" * pad}} for i in range(n_results)]
    return wire.make_report(agent_id="ag-test", results=results)


def test_reports_come_out_oldest_first_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    sent = [report(2, tag="a"), report(3, tag="b"), report(1, tag="c")]
    with Spool(path, 10_000_000) as spool:
        assert spool.add(sent[:2]).added == 2
        spool.add(sent[2:])
        assert [r.report_id for r in spool.pending()] == [r["report_id"] for r in sent]
        first = spool.prepare_send(spool.pending()[0].seq)
        assert first is not None and first.attempts == 1
        assert first.payload()["results"] == sent[0]["results"] and first.payload()["dropped"] == 0
    # reopened: nothing acknowledged, so nothing gone
    with Spool(path, 10_000_000) as spool:
        assert spool.stats().reports == 3 and spool.stats().results == 6
        spool.acknowledge(spool.pending()[0].seq)
        stats = spool.stats()
        assert (stats.reports, stats.results, stats.delivered_reports, stats.delivered_results) == (2, 4, 1, 2)
        assert [r.report_id for r in spool.pending()] == [sent[1]["report_id"], sent[2]["report_id"]]
        spool.acknowledge(12345)  # acknowledging twice or an unknown report changes nothing
        assert spool.stats().reports == 2


def test_spool_is_wal_synchronous_full_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    with Spool(path, 1_000_000) as spool:
        spool.add([report(1)])
        assert spool.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert spool.integrity() == "ok"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 1


def test_full_spool_drops_oldest_and_the_next_report_carries_the_count(tmp_path: Path) -> None:
    one = len(json.dumps({k: v for k, v in report(1, pad=1000).items() if k != "dropped"}))
    with Spool(tmp_path / "spool.sqlite", max_bytes=int(one * 3.5)) as spool:
        first = [report(1, pad=1000, tag=str(i)) for i in range(3)]
        assert spool.add(first).dropped_results == 0
        outcome = spool.add([report(2, pad=450, tag="new")])  # about one report's size: one must go
        assert (outcome.dropped_reports, outcome.dropped_results) == (1, 1)
        remaining = [r.report_id for r in spool.pending()]
        assert first[0]["report_id"] not in remaining and first[1]["report_id"] == remaining[0]
        stats = spool.stats()
        assert stats.dropped_pending == 1 and stats.dropped_total == 1 and stats.bytes <= stats.max_bytes
        # the count is frozen onto the next report sent, and stays the same on every attempt
        head = spool.prepare_send(spool.pending()[0].seq)
        assert head is not None and head.payload()["dropped"] == 1
        again = spool.prepare_send(head.seq)
        assert again is not None and again.payload() == head.payload() and again.attempts == 2
        assert spool.stats().dropped_pending == 0
        # a report dropped while carrying a count passes the count on: loss is never silent
        spool.add([report(3, pad=1000, tag="z")])
        assert spool.stats().dropped_pending >= 1 + 1


def test_rejected_report_is_kept_aside_and_counted_as_dropped(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.sqlite", 1_000_000) as spool:
        spool.add([report(4), report(1)])
        head = spool.pending()[0]
        spool.reject(head.seq, "400 bad_report: results[0] has no status")
        assert spool.stats().reports == 1 and spool.stats().dropped_pending == 4
        assert spool.stats().rejected_reports == 1
        assert spool.rejected()[0]["report_id"] == head.report_id
        assert "no status" in spool.rejected()[0]["reason"]


def test_split_keeps_order_and_gives_new_ids(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.sqlite", 1_000_000) as spool:
        big, after = report(5, tag="big"), report(1, tag="after")
        spool.add([big, after])
        head = spool.prepare_send(spool.pending()[0].seq)
        assert head is not None
        assert spool.split(head.seq)
        rows = spool.pending()
        assert [r.results for r in rows] == [2, 3, 1]
        assert rows[2].report_id == after["report_id"]
        assert big["report_id"] not in {r.report_id for r in rows}
        assert [x["check_id"] for r in rows[:2] for x in json.loads(r.body)["results"]] == [
            f"c{i}big" for i in range(5)
        ]
        assert rows[0].dropped == 0 and rows[1].dropped == 0
        # halving again stays in order; a single result cannot be split
        assert spool.split(rows[0].seq)
        assert [r.results for r in spool.pending()] == [1, 1, 3, 1]
        assert not spool.split(spool.pending()[0].seq)


def test_meta_values_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    with Spool(path, 1_000_000) as spool:
        spool.set(clock_offset_s=-42.0, last_run_at=1.5, policy_error="x")
        spool.set(policy_error=None)
    with Spool(path, 1_000_000) as spool:
        assert spool.get("clock_offset_s") == -42.0 and spool.get("last_run_at") == 1.5
        assert spool.get("policy_error") is None


def test_a_file_that_is_not_a_spool_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(SpoolError, match=f"cannot open the spool {path}"):
        Spool(path, 1_000_000)
