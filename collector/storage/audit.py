"""The audit log: who changed or exported what, and when. Written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import audit_log, iso, utcnow


def record(
    connection: Connection,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    connection.execute(
        audit_log.insert().values(
            at=at or utcnow(), actor=actor[:100], action=action, target=target[:255], details=details or {}
        )
    )


def entries(
    connection: Connection,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action == action)
    return [
        {
            "id": row.id,
            "at": iso(row.at),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "details": row.details,
        }
        for row in connection.execute(query)
    ]
