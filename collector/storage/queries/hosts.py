"""The hosts list (a page at a time, with each host's results by status), now or as at the end of a day,
and finding one host by agent id or name."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import agents, iso, subjects
from collector.storage.queries.common import (
    AMBIGUOUS_LISTED,
    QueryError,
    contains_pattern,
    empty_counts,
    end_of,
    score,
)
from collector.storage.queries.statuses import status_counts_for
from collector.storage.queries.summary import host_counts


def hosts(
    connection: Connection,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    group: str | None = None,
    stale_only: bool = False,
    search: str | None = None,
    include_revoked: bool = False,
    limit: int = 100,
    offset: int = 0,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """As at a past date: the hosts enrolled by then (less those revoked by then, unless asked), each with
    its results then; staleness then is not kept, so `stale` is None and `stale_only` is refused."""
    if as_of is not None and stale_only:
        raise QueryError("bad_request", "stale hosts are known now only: leave out as_of or stale")
    base = sa.select(
        agents.c.agent_id,
        agents.c.hostname,
        agents.c.os,
        agents.c.os_version,
        agents.c.agent_version,
        agents.c.revoked_at,
        agents.c.enrolled_at,
        subjects.c.id.label("subject_id"),
        subjects.c.group_name,
        subjects.c.last_seen,
        subjects.c.last_report_at,
    ).join(subjects, subjects.c.id == agents.c.subject_id)
    stale_cut = now - stale_after
    moment = None if as_of is None else end_of(as_of)
    if moment is not None:
        base = base.where(agents.c.enrolled_at < moment)
    if not include_revoked:
        if moment is None:
            base = base.where(agents.c.revoked_at.is_(None))
        else:
            base = base.where(sa.or_(agents.c.revoked_at.is_(None), agents.c.revoked_at >= moment))
    if group:
        base = base.where(subjects.c.group_name == group)
    if stale_only:
        base = base.where(sa.or_(subjects.c.last_seen.is_(None), subjects.c.last_seen < stale_cut))
    if search:
        pattern = contains_pattern(search)
        base = base.where(
            sa.or_(
                sa.func.lower(agents.c.hostname).like(pattern, escape="\\"),
                agents.c.agent_id.like(pattern, escape="\\"),
            )
        )
    if search or include_revoked:
        total = connection.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    else:  # from the subjects index (now) or the enrolment index (as at), without joining every host
        known = host_counts(connection, now=now, stale_after=stale_after, as_of=as_of, group=group)
        total = known["stale"] if stale_only else known["total"]
    rows = list(connection.execute(base.order_by(agents.c.hostname, agents.c.agent_id).limit(limit).offset(offset)))
    counts = status_counts_for(connection, [row.subject_id for row in rows], as_of)
    items = []
    for row in rows:
        revoked = row.revoked_at is not None and (moment is None or row.revoked_at < moment)
        items.append(
            {
                "agent_id": row.agent_id,
                "hostname": row.hostname,
                "group": row.group_name,
                "os": " ".join(p for p in (row.os, row.os_version) if p),
                "agent_version": row.agent_version,
                "enrolled_at": iso(row.enrolled_at),
                "last_seen": iso(row.last_seen),
                "last_report_at": iso(row.last_report_at),
                "stale": (row.last_seen is None or row.last_seen < stale_cut) if moment is None else None,
                "revoked": revoked,
                **score(counts.get(row.subject_id, empty_counts())),
            }
        )
    return {"total": total, "limit": limit, "offset": offset, "hosts": items}


def find_host(connection: Connection, key: str) -> Any:
    """An agent by id, or by host name when exactly one agent has it."""
    query = sa.select(agents, subjects.c.last_seen, subjects.c.last_report_at).join(
        subjects, subjects.c.id == agents.c.subject_id
    )
    row = connection.execute(query.where(agents.c.agent_id == key)).first()
    if row is not None:
        return row
    named = query.where(sa.func.lower(agents.c.hostname) == key.lower())
    matches = list(
        connection.execute(named.order_by(subjects.c.last_seen.desc(), agents.c.agent_id).limit(AMBIGUOUS_LISTED + 1))
    )
    if not matches:
        raise QueryError("not_found", f"no host with agent id or host name {key!r}")
    if len(matches) > 1:
        # Several agents on one machine, or machines named alike: never pick one; say which there are.
        total = len(matches)
        if total > AMBIGUOUS_LISTED:
            total = int(connection.execute(sa.select(sa.func.count()).select_from(named.subquery())).scalar_one())
        candidates = [
            {
                "agent_id": m.agent_id,
                "hostname": m.hostname,
                "group": m.group_name,
                "last_seen": iso(m.last_seen),
                "revoked_at": iso(m.revoked_at),
            }
            for m in matches[:AMBIGUOUS_LISTED]
        ]
        raise QueryError(
            "ambiguous",
            f"host name {key!r} is ambiguous: {total} agents have it; name one by its agent id",
            candidates,
        )
    return matches[0]
