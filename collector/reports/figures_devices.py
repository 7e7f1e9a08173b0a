"""The briefing's device figures: enrolled, reporting, stale, never seen and revoked hosts at a moment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.reports.figures_base import Moment
from collector.storage.models import agents, iso, reports, subjects

STALE_LISTED = 10


def devices(
    connection: Connection, moment: Moment, stale_after: dt.timedelta, group: str | None, period_start: dt.date
) -> dict[str, Any]:
    """Enrolled hosts (not revoked by then), those that sent a report within `stale_after` before the
    moment (reporting), those that never sent one (never seen), the rest (stale), and the revoked."""
    at, window = moment.at, moment.at - stale_after
    a = agents.c

    def scoped(query: Any) -> Any:
        return query.where(a.group_name == group) if group else query

    count = sa.select(sa.func.count()).select_from(agents)
    enrolled_by = connection.execute(scoped(count.where(a.enrolled_at < at))).scalar_one()
    revoked_by = connection.execute(scoped(count.where(a.enrolled_at < at, a.revoked_at < at))).scalar_one()
    start = dt.datetime.combine(period_start, dt.time())
    revoked_in_period = connection.execute(scoped(count.where(a.revoked_at >= start, a.revoked_at < at))).scalar_one()
    active = (a.enrolled_at < at, sa.or_(a.revoked_at.is_(None), a.revoked_at >= at))
    joined = sa.select(sa.func.count()).select_from(agents.join(subjects, subjects.c.id == a.subject_id))
    if moment.current:
        reporting = connection.execute(scoped(joined.where(*active, subjects.c.last_report_at >= window))).scalar_one()
        never = connection.execute(scoped(joined.where(*active, subjects.c.last_report_at.is_(None)))).scalar_one()
    else:
        reported = sa.select(sa.func.count(sa.distinct(reports.c.agent_id))).select_from(
            reports.join(agents, a.agent_id == reports.c.agent_id)
        )
        reporting = connection.execute(
            scoped(reported.where(reports.c.received_at >= window, reports.c.received_at < at, *active))
        ).scalar_one()
        earlier = sa.exists().where(reports.c.agent_id == a.agent_id, reports.c.received_at < at)
        never = connection.execute(
            scoped(
                joined.where(
                    *active,
                    sa.or_(subjects.c.last_report_at.is_(None), sa.and_(subjects.c.last_report_at >= at, ~earlier)),
                )
            )
        ).scalar_one()
    enrolled = enrolled_by - revoked_by
    silent: list[dict[str, Any]] = []
    if moment.current:
        rows = connection.execute(
            scoped(
                sa.select(a.hostname, a.agent_id, a.group_name, subjects.c.last_report_at)
                .join(subjects, subjects.c.id == a.subject_id)
                .where(*active, sa.or_(subjects.c.last_report_at < window, subjects.c.last_report_at.is_(None)))
            )
            .order_by(subjects.c.last_report_at.is_not(None), subjects.c.last_report_at, a.hostname)
            .limit(STALE_LISTED)
        )
        silent = [
            {
                "hostname": r.hostname,
                "agent_id": r.agent_id,
                "group": r.group_name,
                "last_report": iso(r.last_report_at),
            }
            for r in rows
        ]
    return {
        "enrolled": enrolled,
        "reporting": reporting,
        "never_seen": never,
        "stale": enrolled - reporting - never,
        "revoked": revoked_by,
        "revoked_in_period": revoked_in_period,
        "stale_after_hours": stale_after.total_seconds() / 3600,
        "not_reporting_listed": silent,
    }
