"""The durable local spool: results are collected once they are committed here, and leave only when the
collector has acknowledged them.

One row is one report (a run's results, or a slice of them) with the report id it will carry to the
collector, so a report sent twice (the answer was lost, the agent was killed) is recognised there and
never counted twice. SQLite in WAL mode with `synchronous=FULL`: a committed report survives a crash or
power cut; a transaction cut off by SIGKILL leaves nothing behind.

The spool is bounded by the size of the stored report bodies. When a new report does not fit, the oldest
reports are dropped and their result count is added to `dropped_pending`; the next report sent carries
that count in its `dropped` field (frozen onto it before its first attempt, so a re-send is identical),
so loss is never silent.

The same database keeps the agent's small runtime state (last run, last delivery, backoff, clock offset):
one durable store, updated in the same transactions as the reports it describes.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ord REAL NOT NULL,              -- send order: a split report's halves sit where it was
    report_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    results INTEGER NOT NULL,
    size INTEGER NOT NULL,          -- bytes of body, what the bound counts
    body TEXT NOT NULL,             -- the report without `dropped`
    dropped INTEGER,                -- NULL until first sent, then frozen so every attempt is identical
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS reports_ord ON reports (ord);
CREATE TABLE IF NOT EXISTS rejected (
    report_id TEXT PRIMARY KEY,
    rejected_at REAL NOT NULL,
    reason TEXT NOT NULL,
    results INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
"""

COUNTERS = (
    "dropped_pending",
    "dropped_total",
    "delivered_reports",
    "delivered_results",
    "rejected_reports",
    "collected_results",
)


class SpoolError(Exception):
    pass


@dataclass(frozen=True)
class SpooledReport:
    seq: int
    report_id: str
    created_at: str
    results: int
    size: int
    dropped: int | None
    attempts: int
    body: str

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        data["dropped"] = self.dropped or 0
        return data


@dataclass(frozen=True)
class AddOutcome:
    added: int
    dropped_results: int
    dropped_reports: int


@dataclass(frozen=True)
class SpoolStats:
    reports: int
    results: int
    bytes: int
    max_bytes: int
    dropped_pending: int
    dropped_total: int
    delivered_reports: int
    delivered_results: int
    rejected_reports: int
    collected_results: int
    oldest_created_at: str | None


def _full_disk_hint(path: Path) -> str:
    """SQLite reports a full disk at open time as "disk I/O error" (it cannot create the WAL index): say so."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f"; the disk holding it is full ({free} bytes free)" if free < 256 * 1024 else ""


def _report_row(report: dict[str, Any]) -> tuple[str, str, int, str]:
    body = {k: v for k, v in report.items() if k != "dropped"}
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return str(report["report_id"]), str(report["created_at"]), len(report.get("results") or []), text


class Spool:
    def __init__(self, path: Path | str, max_bytes: int, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.now = now
        if not self.path.exists():
            # Owner-only from the first byte; SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._setup()
        except sqlite3.DatabaseError as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}{_full_disk_hint(self.path)}") from exc

    def _setup(self) -> None:
        if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
            # Must precede the first table; lets freed pages go back to the filesystem after a backlog.
            self.db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SpoolError(f"the spool {self.path} cannot use WAL (journal mode {mode})")
        # FULL: a commit is on disk (WAL fsynced) before it returns, so a collected result survives a crash.
        self.db.execute("PRAGMA synchronous = FULL")
        with self.transaction():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SpoolError(f"the spool {self.path} was written by a newer agent (schema {version})")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front, so concurrent workers queue instead of failing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        try:
            freelist = self.db.execute("PRAGMA freelist_count").fetchone()[0]
            if freelist > 256:
                self.db.execute("PRAGMA incremental_vacuum")
        except sqlite3.DatabaseError:
            pass
        self.db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta ------------------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _set(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _add(self, db: sqlite3.Connection, key: str, amount: int) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + ?",
            (key, amount, amount),
        )

    def set(self, **values: Any) -> None:
        with self.transaction() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    self._set(db, key, value)

    def meta(self) -> dict[str, Any]:
        return {row[0]: row[1] for row in self.db.execute("SELECT key, value FROM meta")}

    # --- reports ---------------------------------------------------------------------------------------

    def add(self, reports: Sequence[dict[str, Any]]) -> AddOutcome:
        """Commit reports (each with report_id, created_at, results); drop the oldest if over the bound."""
        rows = [_report_row(report) for report in reports]
        with self.transaction() as db:
            top = db.execute("SELECT COALESCE(MAX(ord), 0) FROM reports").fetchone()[0]
            for offset, (report_id, created_at, count, body) in enumerate(rows, start=1):
                db.execute(
                    "INSERT INTO reports (ord, report_id, created_at, results, size, body) VALUES (?, ?, ?, ?, ?, ?)",
                    (float(int(top) + offset), report_id, created_at, count, len(body.encode()), body),
                )
                self._add(db, "collected_results", count)
            dropped_results, dropped_reports = self._enforce_bound(db)
        return AddOutcome(len(rows), dropped_results, dropped_reports)

    def _enforce_bound(self, db: sqlite3.Connection) -> tuple[int, int]:
        total = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM reports").fetchone()[0])
        dropped_results = dropped_reports = 0
        while total > self.max_bytes:
            row = db.execute("SELECT seq, size, results, dropped FROM reports ORDER BY ord LIMIT 1").fetchone()
            if row is None:
                break
            db.execute("DELETE FROM reports WHERE seq = ?", (row["seq"],))
            total -= int(row["size"])
            # The results of the dropped report are lost, and so is the dropped count it was carrying.
            self._add(db, "dropped_pending", int(row["results"]) + int(row["dropped"] or 0))
            self._add(db, "dropped_total", int(row["results"]))
            dropped_results += int(row["results"])
            dropped_reports += 1
        return dropped_results, dropped_reports

    def _row(self, row: sqlite3.Row) -> SpooledReport:
        return SpooledReport(
            seq=int(row["seq"]),
            report_id=str(row["report_id"]),
            created_at=str(row["created_at"]),
            results=int(row["results"]),
            size=int(row["size"]),
            dropped=None if row["dropped"] is None else int(row["dropped"]),
            attempts=int(row["attempts"]),
            body=str(row["body"]),
        )

    def pending(self, limit: int = 100) -> list[SpooledReport]:
        rows = self.db.execute("SELECT * FROM reports ORDER BY ord LIMIT ?", (limit,)).fetchall()
        return [self._row(row) for row in rows]

    def oldest(self) -> SpooledReport | None:
        rows = self.pending(1)
        return rows[0] if rows else None

    def prepare_send(self, seq: int) -> SpooledReport | None:
        """Freeze the dropped count onto the report before its first attempt and count the attempt."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM reports WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return None
            if row["dropped"] is None:
                pending = int(self.get("dropped_pending", 0) or 0)
                db.execute("UPDATE reports SET dropped = ? WHERE seq = ?", (pending, seq))
                self._set(db, "dropped_pending", 0)
            db.execute("UPDATE reports SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            row = db.execute("SELECT * FROM reports WHERE seq = ?", (seq,)).fetchone()
        return self._row(row)

    def acknowledge(self, seq: int) -> None:
        """The collector stored the report: it may leave the spool."""
        with self.transaction() as db:
            row = db.execute("SELECT results FROM reports WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM reports WHERE seq = ?", (seq,))
            self._add(db, "delivered_reports", 1)
            self._add(db, "delivered_results", int(row["results"]))
            self._set(db, "last_delivery_at", self.now())

    def record_error(self, seq: int, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE reports SET last_error = ? WHERE seq = ?", (error[:500], seq))

    def reject(self, seq: int, reason: str) -> None:
        """The collector refused the report for good: keep it aside for the admin, count it as dropped."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM reports WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            db.execute(
                "INSERT OR REPLACE INTO rejected (report_id, rejected_at, reason, results, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (row["report_id"], self.now(), reason[:1000], row["results"], row["body"]),
            )
            db.execute("DELETE FROM reports WHERE seq = ?", (seq,))
            self._add(db, "dropped_pending", int(row["results"]) + int(row["dropped"] or 0))
            self._add(db, "dropped_total", int(row["results"]))
            self._add(db, "rejected_reports", 1)

    def split(self, seq: int) -> bool:
        """Halve a report the collector found too large; both halves get new ids (it stored neither)."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM reports WHERE seq = ?", (seq,)).fetchone()
            if row is None or int(row["results"]) < 2:
                return False
            body = json.loads(row["body"])
            results = body["results"]
            middle = len(results) // 2
            after = db.execute("SELECT MIN(ord) FROM reports WHERE ord > ?", (row["ord"],)).fetchone()[0]
            second_ord = (float(row["ord"]) + (float(after) if after is not None else float(row["ord"]) + 1)) / 2
            halves = ((results[:middle], float(row["ord"]), row["dropped"]), (results[middle:], second_ord, 0))
            db.execute("DELETE FROM reports WHERE seq = ?", (seq,))
            for part, ord_value, dropped in halves:
                part_body = dict(body, results=part, report_id=str(uuid.uuid4()))
                text = json.dumps(part_body, separators=(",", ":"), sort_keys=True)
                db.execute(
                    "INSERT INTO reports (ord, report_id, created_at, results, size, body, dropped) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        ord_value,
                        part_body["report_id"],
                        row["created_at"],
                        len(part),
                        len(text.encode()),
                        text,
                        dropped,
                    ),
                )
        return True

    def rejected(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT report_id, rejected_at, reason, results FROM rejected ORDER BY rejected_at")
        return [dict(row) for row in rows]

    def stats(self) -> SpoolStats:
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(results), 0), COALESCE(SUM(size), 0), MIN(created_at) FROM reports"
        ).fetchone()
        meta = self.meta()
        return SpoolStats(
            reports=int(row[0]),
            results=int(row[1]),
            bytes=int(row[2]),
            max_bytes=self.max_bytes,
            oldest_created_at=row[3],
            **{name: int(meta.get(name) or 0) for name in COUNTERS},
        )

    def integrity(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])
