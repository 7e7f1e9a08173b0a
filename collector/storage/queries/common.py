"""What every view shares: the statuses counted, query bounds and errors, filters, dates, scoring."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.results import SEVERITY_WEIGHTS, Severity
from collector.storage.models import check_catalog

STATUSES = ("pass", "fail", "error", "not_applicable", "waived")

# Bounds of what a query may ask (the API and the CLI check them too, with their own messages).
MAX_OFFSET = 1_000_000_000
MAX_SEARCH = 200
MAX_TREND_POINTS = 1000
AMBIGUOUS_LISTED = 50  # agents listed when a host name is ambiguous; more are counted, not listed


class QueryError(Exception):
    def __init__(self, code: str, message: str, candidates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # For `ambiguous`: what the name could mean, for the caller to list (each has what tells them apart).
        self.candidates = candidates or []


@dataclass(frozen=True)
class Filters:
    group: str | None = None
    policy: str | None = None


NO_FILTERS = Filters()


def retention_horizon(today: dt.date, retention_days: int) -> dt.date:
    """The first day whose state is still known (`retention_days` of history are kept)."""
    try:
        return today - dt.timedelta(days=retention_days)
    except OverflowError:  # more days than the calendar holds: everything is kept
        return dt.date.min


def check_as_of(as_of: dt.date | None, today: dt.date, retention_days: int, name: str = "as_of") -> None:
    """A date the state can be given as at: not in the future (waivers that will have expired by then, hosts
    that will have gone quiet, are not known today), nor before the history kept (`retention_days`)."""
    if as_of is None:
        return
    if as_of > today:
        raise QueryError(
            "as_of_in_future",
            f"{name} {as_of.isoformat()} is in the future (today is {today.isoformat()}, UTC): "
            "the state is known up to today",
        )
    if as_of < retention_horizon(today, retention_days):
        raise QueryError(
            "outside_retention",
            f"{name} {as_of.isoformat()} is before the {retention_days} days of history kept (retention_days)",
        )


def end_of(day: dt.date) -> dt.datetime:
    """The first instant after `day`: "as at day" means the state just before it."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def score(
    counts: dict[str, int], weighted_pass: float | None = None, weighted_fail: float | None = None
) -> dict[str, Any]:
    judged = counts["pass"] + counts["fail"]
    result: dict[str, Any] = {**counts, "total": sum(counts.values())}
    result["compliance"] = None if judged == 0 else round(counts["pass"] / judged, 4)
    if weighted_pass is not None and weighted_fail is not None:
        weighted = weighted_pass + weighted_fail
        result["compliance_weighted"] = None if weighted == 0 else round(weighted_pass / weighted, 4)
    return result


def catalog(connection: Connection) -> dict[tuple[str, str], Any]:
    return {(row.policy_id, row.check_id): row for row in connection.execute(sa.select(check_catalog))}


def weight(entry: Any) -> float:
    if entry is None:
        return 1.0
    if entry.weight is not None:
        return float(entry.weight)
    try:
        return SEVERITY_WEIGHTS[Severity(entry.severity)]
    except ValueError:
        return 1.0


def contains_pattern(search: str) -> str:
    """A LIKE pattern that finds `search` literally, anywhere (lower case): its %, _ and \\ escaped."""
    if len(search) > MAX_SEARCH:
        raise QueryError("bad_request", f"a search is at most {MAX_SEARCH} characters")
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
