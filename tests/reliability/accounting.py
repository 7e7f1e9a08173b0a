"""The accounting every fault scenario ends with: nothing lost, nothing counted twice.

What the agents hold is read from their own spools (the agent's Spool class, integrity checked); what the
collector holds is read from its database (SQLite or PostgreSQL). `settle` checks, for every agent:

- every result the agent collected is delivered, still waiting in its spool, or counted as dropped
  (collected = delivered + spooled + dropped);
- every report the collector acknowledged is stored (the ids a test saw acknowledged are all there), each
  exactly once (no id twice), and the collector holds nothing the agent did not send;
- what the collector stored of an agent is what the agent counts as delivered, plus reports it sent but
  never heard back about (stored and still spooled: the next attempt is a duplicate, never a second copy);
- once a spool is empty, the dropped counts the collector was told add up to what the agent dropped;

and for the collector: the status counters agree with the latest results (by status), every latest
result has one open history interval, and the daily changes add up to the current counts.

The figures it returns (reports and results stored, still spooled, dropped) go into the scenario's JSON.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agent.spool import Spool
from agent.state import StatePaths
from collector.storage import models
from collector.storage.engine import make_engine


@dataclass(frozen=True)
class AgentBooks:
    """One agent's own account of its results, from its spool."""

    agent_id: str
    spooled_ids: frozenset[str]
    spooled_results: int
    collected_results: int
    delivered_reports: int
    delivered_results: int
    dropped_total: int
    dropped_waiting: int  # dropped counts not yet told to the collector (pending, or frozen on unsent reports)
    rejected_reports: int
    integrity: str


def agent_books(state_dir: Path, agent_id: str) -> AgentBooks:
    with Spool(StatePaths(state_dir).spool, 1 << 40) as spool:
        integrity = spool.integrity()
        stats = spool.stats()
        pending = spool.pending(10_000_000)
    return AgentBooks(
        agent_id=agent_id,
        spooled_ids=frozenset(r.report_id for r in pending),
        spooled_results=stats.results,
        collected_results=stats.collected_results,
        delivered_reports=stats.delivered_reports,
        delivered_results=stats.delivered_results,
        dropped_total=stats.dropped_total,
        dropped_waiting=stats.dropped_pending + sum(r.dropped or 0 for r in pending),
        rejected_reports=stats.rejected_reports,
        integrity=integrity,
    )


@dataclass(frozen=True)
class StoredReport:
    report_id: str
    agent_id: str
    result_count: int
    dropped: int
    received_at: dt.datetime


@dataclass
class CollectorBooks:
    """What the collector stored, from its database."""

    reports: list[StoredReport]
    latest_by_status: dict[str, int]
    counted_by_status: dict[str, int]
    open_intervals: int
    daily_change_total: int
    latest_total: int

    def of(self, agent_id: str) -> list[StoredReport]:
        return [r for r in self.reports if r.agent_id == agent_id]


def collector_books(database_url: str) -> CollectorBooks:
    engine = make_engine(database_url, 1)
    try:
        with engine.connect() as connection:
            r = models.reports.c
            rows = connection.execute(
                sa.select(r.report_id, r.agent_id, r.result_count, r.dropped, r.received_at).order_by(r.id)
            ).all()
            latest: dict[str, Any] = dict(
                connection.execute(
                    sa.select(models.latest_results.c.status, sa.func.count()).group_by(models.latest_results.c.status)
                ).all()
            )
            counted = dict(
                connection.execute(
                    sa.select(models.status_counts.c.status, sa.func.sum(models.status_counts.c.count)).group_by(
                        models.status_counts.c.status
                    )
                ).all()
            )
            open_intervals = connection.execute(
                sa.select(sa.func.count()).where(models.result_intervals.c.valid_to.is_(None))
            ).scalar_one()
            daily = connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(models.daily_changes.c.delta), 0))
            ).scalar_one()
    finally:
        engine.dispose()
    return CollectorBooks(
        reports=[StoredReport(*row) for row in rows],
        latest_by_status={k: int(v) for k, v in latest.items()},
        counted_by_status={k: int(v) for k, v in counted.items() if v},
        open_intervals=int(open_intervals),
        daily_change_total=int(daily),
        latest_total=sum(int(v) for v in latest.values()),
    )


@dataclass
class Settlement:
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self) -> dict[str, Any]:
        assert not self.problems, "the books do not balance:\n" + "\n".join(self.problems)
        return self.figures


def settle(
    agents: Sequence[AgentBooks],
    collector: CollectorBooks,
    *,
    acknowledged: Iterable[str] = (),
    drained: bool = True,
    foreign_agents_allowed: bool = False,
) -> Settlement:
    """Balance the books of `agents` against the collector's; `drained`: every spool should be empty now.

    `acknowledged` are report ids a test saw the collector acknowledge (e.g. through a proxy): each must
    be stored. Call `.check()` on the result to fail the test with every problem found at once.
    """
    outcome = Settlement()
    problems = outcome.problems
    ids = Counter(r.report_id for r in collector.reports)
    twice = [report_id for report_id, n in ids.items() if n > 1]
    if twice:
        problems.append(f"stored more than once: {twice[:5]}")
    stored_ids = set(ids)
    missing_acks = sorted(set(acknowledged) - stored_ids)
    if missing_acks:
        problems.append(f"{len(missing_acks)} acknowledged report(s) not stored: {missing_acks[:5]}")
    known = {a.agent_id for a in agents}
    strangers = {r.agent_id for r in collector.reports} - known
    if strangers and not foreign_agents_allowed:
        problems.append(f"reports stored for agents not in the scenario: {sorted(strangers)[:3]}")
    totals = Counter[str]()
    lost = len(missing_acks)
    for books in agents:
        name = books.agent_id[:16]
        if books.integrity != "ok":
            problems.append(f"{name}: spool integrity {books.integrity!r}")
        stored = collector.of(books.agent_id)
        stored_here = {r.report_id for r in stored}
        stored_results = sum(r.result_count for r in stored)
        # sent, stored, but the acknowledgement never arrived: still spooled, will be a duplicate
        unacked = books.spooled_ids & stored_here
        unacked_results = sum(r.result_count for r in stored if r.report_id in unacked)
        if books.collected_results != books.delivered_results + books.spooled_results + books.dropped_total:
            problems.append(
                f"{name}: collected {books.collected_results} != delivered {books.delivered_results} + "
                f"spooled {books.spooled_results} + dropped {books.dropped_total}"
            )
        if stored_results != books.delivered_results + unacked_results:
            problems.append(
                f"{name}: the collector stored {stored_results} results; the agent delivered "
                f"{books.delivered_results} (+{unacked_results} sent but unacknowledged)"
            )
        if len(stored) != books.delivered_reports + len(unacked):
            problems.append(
                f"{name}: {len(stored)} reports stored; the agent counts {books.delivered_reports} acknowledged "
                f"(+{len(unacked)} unacknowledged)"
            )
        # results the agent let go of (acknowledged, or never counted) that the collector does not have
        lost += max(0, books.delivered_results - (stored_results - unacked_results))
        lost += max(0, books.collected_results - books.delivered_results - books.spooled_results - books.dropped_total)
        if drained and books.spooled_ids:
            problems.append(f"{name}: {len(books.spooled_ids)} report(s) still in the spool")
        if not books.spooled_ids and books.dropped_waiting == 0:
            told = sum(r.dropped for r in stored)
            if told != books.dropped_total:
                problems.append(f"{name}: dropped {books.dropped_total}, the collector was told {told}")
        totals.update(
            collected_results=books.collected_results,
            delivered_reports=books.delivered_reports,
            delivered_results=books.delivered_results,
            spooled_reports=len(books.spooled_ids),
            spooled_results=books.spooled_results,
            dropped_results=books.dropped_total,
            rejected_reports=books.rejected_reports,
            unacknowledged_stored=len(unacked),
        )
    if collector.counted_by_status != collector.latest_by_status:
        problems.append(f"status counters {collector.counted_by_status} != latest results {collector.latest_by_status}")
    if collector.open_intervals != collector.latest_total:
        problems.append(
            f"{collector.open_intervals} open history intervals for {collector.latest_total} latest results"
        )
    if collector.daily_change_total != collector.latest_total:
        problems.append(f"daily changes add up to {collector.daily_change_total}, not {collector.latest_total}")
    outcome.figures = {
        "agents": len(agents),
        "reports_stored": len(collector.reports),
        "results_stored": sum(r.result_count for r in collector.reports),
        "stored_twice": len(twice),
        "acknowledged_seen": len(set(acknowledged)),
        "acknowledged_lost": len(missing_acks),
        "latest_results": collector.latest_total,
        **dict(totals),
        "lost": lost,  # acknowledged reports missing, plus results an agent let go of that are not stored
    }
    return outcome


def peak_rate(moments: Sequence[dt.datetime | float], window_s: float = 1.0) -> int:
    """The most events in any window of `window_s` seconds (a sliding window over sorted moments)."""
    points = sorted(m.timestamp() if isinstance(m, dt.datetime) else float(m) for m in moments)
    best = start = 0
    for end, moment in enumerate(points):
        while moment - points[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def agent_books_json(state_dir: Path, agent_id: str) -> str:
    import json

    books = agent_books(state_dir, agent_id)
    return json.dumps({**books.__dict__, "spooled_ids": sorted(books.spooled_ids)})


def agent_books_from_json(text: str) -> AgentBooks:
    import json

    data = json.loads(text)
    data["spooled_ids"] = frozenset(data["spooled_ids"])
    return AgentBooks(**data)


if __name__ == "__main__":  # `python -m tests.reliability.accounting STATE_DIR AGENT_ID`, e.g. in a namespace
    import sys

    print(agent_books_json(Path(sys.argv[1]), sys.argv[2]))
