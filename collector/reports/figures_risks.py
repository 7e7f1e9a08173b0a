"""The briefing's accepted risks: waivers in force at a moment, those ending in the next period, and the
period's changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.reports.figures_base import Moment
from collector.reports.periods import Period
from collector.storage.models import latest_results, waivers


def _scope_text(scope: Mapping[str, Any]) -> str:
    parts = []
    for key, label in (("all", "everything"), ("groups", "groups"), ("hosts", "hosts"), ("tenants", "tenants"),
                       ("resources", "resources")):  # fmt: skip
        value = scope.get(key)
        if value is True:
            parts.append(label)
        elif value:
            parts.append(f"{label} {', '.join(map(str, value))}")
    return "; ".join(parts) or "everything"


def accepted_risks(
    connection: Connection,
    period: Period,
    moment: Moment,
    following: Period,
    titles: Mapping[str, str],
    policies_of: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Waivers in force at the moment (those ending in the next period first), and the period's changes."""
    at, start = moment.at, dt.datetime.combine(period.start, dt.time())
    in_force, started, ended = [], 0, 0
    for row in connection.execute(sa.select(waivers).order_by(waivers.c.expires, waivers.c.id)):
        if row.approved_at is not None and start <= row.approved_at < at:
            started += 1
        if row.closed_at is not None and row.approved_at is not None and start <= row.closed_at < at:
            ended += 1
        active = (
            row.approved_at is not None
            and row.approved_at < at
            and row.expires >= moment.day
            and (row.closed_at is None or row.closed_at >= at)
        )
        if not active:
            continue
        waived = None
        if moment.current:
            waived = connection.execute(
                sa.select(sa.func.count())
                .select_from(latest_results)
                .where(
                    latest_results.c.policy_id.in_(
                        [row.policy_id] if row.policy_id else policies_of.get(row.check_id, [])
                    ),
                    latest_results.c.check_id == row.check_id,
                    latest_results.c.status == "waived",
                    latest_results.c.waiver_id == row.id,
                )
            ).scalar_one()
        in_force.append(
            {
                "id": row.id,
                "check": row.check_id,
                "policy": row.policy_id,
                "title": titles.get(row.check_id, ""),
                "scope": _scope_text(row.scope or {}),
                "owner": row.requested_by,
                "approver": row.approved_by,
                "ticket": row.ticket,
                "expires": row.expires.isoformat(),
                "justification": row.justification,
                "results_waived": waived,
                "ends_next_period": row.expires <= following.end,
            }
        )
    in_force.sort(key=lambda w: (not w["ends_next_period"], w["expires"], w["id"]))
    return {
        "in_force": in_force,
        "ending_next_period": sum(1 for w in in_force if w["ends_next_period"]),
        "approved_in_period": started,
        "ended_in_period": ended,
    }
