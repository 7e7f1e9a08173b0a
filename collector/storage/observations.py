"""A tenant-wide check's observed facts, once a day (table `observations`, migration 0008).

Written with a cloud run's results (collector/cloud/store.py) for tenant subjects: the day's last run
wins. Read by the briefing (the MFA rollout, who lacks MFA at the end of a past period) and by the
evidence pack (a tenant's facts as at a date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.bulk import insert_rows
from collector.storage.ingest import IncomingResult, newest_results
from collector.storage.models import observations

_KEY = ("subject_id", "policy_id", "check_id", "day")
_VALUES = ("status", "observed", "expectation", "reason", "evaluated_at")


def _replace(excluded: Any) -> dict[str, Any]:
    return {name: excluded[name] for name in _VALUES}


def record(connection: Connection, subject_id: int, results: Sequence[IncomingResult], now: dt.datetime) -> int:
    """Keep today's facts of each (policy, check) of one subject; returns how many rows were written."""
    rows = [
        {
            "subject_id": subject_id,
            "policy_id": r.policy_id,
            "check_id": r.check_id,
            "day": now.date(),
            "status": r.waived_status or r.status,
            "observed": r.observed,
            "expectation": r.expectation,
            "reason": r.reason,
            "evaluated_at": min(r.evaluated_at or now, now),
        }
        for r in sorted(newest_results(results, now), key=lambda r: (r.policy_id, r.check_id))
    ]
    insert_rows(connection, observations, rows, key=_KEY, update=_replace)
    return len(rows)


def as_at(connection: Connection, policy_id: str, check_id: str, day: dt.date) -> list[Any]:
    """Each subject's last observation of a check on or before `day`."""
    last = (
        sa.select(observations.c.subject_id, sa.func.max(observations.c.day).label("day"))
        .where(observations.c.policy_id == policy_id, observations.c.check_id == check_id, observations.c.day <= day)
        .group_by(observations.c.subject_id)
        .subquery()
    )
    query = sa.select(observations).join(
        last, sa.and_(observations.c.subject_id == last.c.subject_id, observations.c.day == last.c.day)
    )
    return list(
        connection.execute(query.where(observations.c.policy_id == policy_id, observations.c.check_id == check_id))
    )


def series(connection: Connection, policy_id: str, check_id: str, start: dt.date, end: dt.date) -> list[Any]:
    """Every observation of a check from `start` to `end`, by subject and day."""
    return list(
        connection.execute(
            sa.select(observations)
            .where(
                observations.c.policy_id == policy_id,
                observations.c.check_id == check_id,
                observations.c.day >= start,
                observations.c.day <= end,
            )
            .order_by(observations.c.subject_id, observations.c.day)
        )
    )
