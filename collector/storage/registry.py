"""Enrolment tokens and the agent registry.

A token is consumed with one conditional UPDATE (not used up, not expired, not revoked), so two agents
enrolling at once on two replicas cannot both take its last use. An agent that enrols again with the
same key and the same token (its answer was lost) gets its enrolment back without spending a use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.policy.model import canonical_json
from collector.security import ENROLLMENT_PREFIX, new_id, new_secret, token_hash
from collector.storage import audit
from collector.storage.bulk import insert_rows
from collector.storage.history import retire_subject
from collector.storage.models import agents, audit_log, enrollment_tokens, iso, subjects

HOST_TEXT_FIELDS = {"hostname": 255, "os": 100, "os_version": 100, "agent_version": 50}
MAX_HOST_FACTS_BYTES = 16384


class BadToken(Exception):
    pass


class AgentRevoked(Exception):
    pass


class BadHostFacts(ValueError):
    pass


@dataclass(frozen=True)
class AgentAuth:
    """What request authentication needs to know about an agent."""

    agent_id: str
    public_key: str
    revoked: bool
    group: str
    hostname: str
    subject_id: int


@dataclass(frozen=True)
class Enrolment:
    agent_id: str
    group: str
    created: bool


@dataclass(frozen=True)
class NewAgent:
    """One agent of `enroll_many`: what POST /api/v1/enroll carries (its id derived from its key by the caller)."""

    agent_id: str
    public_key: str
    host: dict[str, Any]


# --- enrolment tokens ----------------------------------------------------------------------------------


def create_token(
    connection: Connection,
    *,
    group: str,
    max_uses: int,
    valid_for: dt.timedelta,
    created_by: str,
    now: dt.datetime,
    note: str = "",
) -> tuple[str, dict[str, Any]]:
    """A new enrolment token: (the secret, shown once; its listing)."""
    if max_uses < 1:
        raise ValueError("a token must allow at least one use")
    if valid_for.total_seconds() <= 0:
        raise ValueError("a token must be valid for some time")
    if not group or len(group) > 100:
        raise ValueError("a group name is 1 to 100 characters")
    secret = new_secret(ENROLLMENT_PREFIX)
    token_id = new_id("et-")
    row: dict[str, Any] = {
        "id": token_id,
        "token_hash": token_hash(secret),
        "group_name": group,
        "max_uses": max_uses,
        "uses": 0,
        "expires_at": now + valid_for,
        "created_at": now,
        "created_by": created_by,
        "note": note[:255],
        "revoked_at": None,
    }
    connection.execute(enrollment_tokens.insert().values(**row))
    audit.record(
        connection,
        created_by,
        "enroll_token.create",
        token_id,
        {"group": group, "max_uses": max_uses, "expires_at": iso(row["expires_at"])},
        now,
    )
    return secret, _token_listing(row, now)


def _token_listing(row: Any, now: dt.datetime) -> dict[str, Any]:
    get: Any = row.get if isinstance(row, dict) else row._mapping.get
    revoked, expires, uses, max_uses = get("revoked_at"), get("expires_at"), get("uses"), get("max_uses")
    state = "revoked" if revoked else "expired" if expires <= now else "used up" if uses >= max_uses else "active"
    return {
        "id": get("id"),
        "group": get("group_name"),
        "uses": uses,
        "max_uses": max_uses,
        "expires_at": iso(expires),
        "created_at": iso(get("created_at")),
        "created_by": get("created_by"),
        "note": get("note"),
        "state": state,
    }


def list_tokens(connection: Connection, now: dt.datetime) -> list[dict[str, Any]]:
    rows = connection.execute(sa.select(enrollment_tokens).order_by(enrollment_tokens.c.created_at.desc()))
    return [_token_listing(row, now) for row in rows]


def revoke_token(connection: Connection, token_id: str, *, by: str, now: dt.datetime) -> bool:
    result = connection.execute(
        enrollment_tokens.update()
        .where(enrollment_tokens.c.id == token_id, enrollment_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount:
        audit.record(connection, by, "enroll_token.revoke", token_id, at=now)
    return bool(result.rowcount)


def _consume_token(connection: Connection, secret: str, now: dt.datetime, uses: int = 1) -> tuple[str, str]:
    """Take `uses` uses of the token at once, all or none."""
    row = connection.execute(
        enrollment_tokens.update()
        .where(
            enrollment_tokens.c.token_hash == token_hash(secret),
            enrollment_tokens.c.revoked_at.is_(None),
            enrollment_tokens.c.expires_at > now,
            enrollment_tokens.c.uses + uses <= enrollment_tokens.c.max_uses,
        )
        .values(uses=enrollment_tokens.c.uses + uses)
        .returning(enrollment_tokens.c.id, enrollment_tokens.c.group_name)
    ).first()
    if row is None:
        raise BadToken()
    return row.id, row.group_name


# --- agents --------------------------------------------------------------------------------------------


def host_fields(host: Any) -> dict[str, Any]:
    """The inventory columns and the full facts from an agent's `host` object."""
    if not isinstance(host, dict):
        raise BadHostFacts("host must be an object")
    columns: dict[str, Any] = {}
    for name, limit in HOST_TEXT_FIELDS.items():
        value = host.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadHostFacts(f"host.{name} must be a string")
        columns[name] = value[:limit]
    try:
        size = len(canonical_json(host))
    except (TypeError, ValueError) as exc:
        raise BadHostFacts(f"host facts are not plain JSON: {exc}") from None
    if size > MAX_HOST_FACTS_BYTES:
        raise BadHostFacts(f"host facts are larger than {MAX_HOST_FACTS_BYTES} bytes")
    columns["host_facts"] = host
    return columns


def enroll(
    connection: Connection,
    *,
    agent_id: str,
    public_key: str,
    token: str,
    host: dict[str, Any],
    now: dt.datetime,
) -> Enrolment:
    """Register an agent (its id was derived from `public_key` by the caller). BadToken, AgentRevoked."""
    facts = host_fields(host)
    existing = connection.execute(sa.select(agents).where(agents.c.agent_id == agent_id)).first()
    if existing is not None:
        if existing.revoked_at is not None:
            raise AgentRevoked()
        token_row = connection.execute(
            sa.select(enrollment_tokens.c.id).where(enrollment_tokens.c.token_hash == token_hash(token))
        ).first()
        if token_row is None or token_row.id != existing.token_id:
            _consume_token(connection, token, now)
        return Enrolment(agent_id, existing.group_name, created=False)
    token_id, group = _consume_token(connection, token, now)
    subject_id = connection.execute(
        subjects.insert()
        .values(
            kind="host",
            ext_id=agent_id,
            name=facts["hostname"],
            group_name=group,
            first_seen=now,
            last_seen=now,
            last_report_at=None,
        )
        .returning(subjects.c.id)
    ).scalar_one()
    connection.execute(
        agents.insert().values(
            agent_id=agent_id,
            subject_id=subject_id,
            public_key=public_key,
            group_name=group,
            enrolled_at=now,
            token_id=token_id,
            **facts,
        )
    )
    audit.record(connection, f"agent:{agent_id}", "agent.enroll", agent_id, {"token": token_id, "group": group}, now)
    return Enrolment(agent_id, group, created=True)


def enroll_many(
    connection: Connection, enrolling: Sequence[NewAgent], *, token: str, now: dt.datetime
) -> list[Enrolment]:
    """Register many agents with one token in a few statements, writing what `enroll` writes for each
    (loading a fleet: bench/_fleet.py). The token's uses are taken all at once, so BadToken means none was
    enrolled. An agent already enrolled is handed to `enroll` (its own rules); ids must be distinct."""
    if not enrolling:
        return []
    facts = [host_fields(agent.host) for agent in enrolling]  # BadHostFacts before anything is written
    ids = [agent.agent_id for agent in enrolling]
    if len(set(ids)) != len(ids):
        raise ValueError("an agent is named twice")
    known = set(connection.execute(sa.select(agents.c.agent_id).where(agents.c.agent_id.in_(ids))).scalars())
    fresh = [(agent, fact) for agent, fact in zip(enrolling, facts, strict=True) if agent.agent_id not in known]
    answers = {
        agent.agent_id: enroll(connection, agent_id=agent.agent_id, public_key=agent.public_key, token=token,
                               host=agent.host, now=now)
        for agent in enrolling
        if agent.agent_id in known
    }  # fmt: skip
    if fresh:
        token_id, group = _consume_token(connection, token, now, uses=len(fresh))
        subject_of = _insert_subjects(connection, [(a.agent_id, f["hostname"]) for a, f in fresh], group, now)
        insert_rows(
            connection,
            agents,
            [
                {"agent_id": a.agent_id, "subject_id": subject_of[a.agent_id], "public_key": a.public_key,
                 **f, "group_name": group, "enrolled_at": now, "token_id": token_id, "revoked_at": None,
                 "revoked_by": None}
                for a, f in fresh
            ],
        )  # fmt: skip
        insert_rows(
            connection,
            audit_log,
            [
                {"at": now, "actor": f"agent:{a.agent_id}"[:100], "action": "agent.enroll", "target": a.agent_id[:255],
                 "details": {"token": token_id, "group": group}}
                for a, _ in fresh
            ],
        )  # fmt: skip
        answers.update({a.agent_id: Enrolment(a.agent_id, group, created=True) for a, _ in fresh})
    return [answers[agent_id] for agent_id in ids]


def _insert_subjects(
    connection: Connection, named: Sequence[tuple[str, str]], group: str, now: dt.datetime
) -> dict[str, int]:
    """Insert the subjects of new agents (agent id, hostname); their ids by agent id."""
    insert_rows(
        connection,
        subjects,
        [
            {"kind": "host", "ext_id": agent_id, "name": name, "group_name": group, "first_seen": now,
             "last_seen": now, "last_report_at": None}
            for agent_id, name in named
        ],
    )  # fmt: skip
    rows = connection.execute(
        sa.select(subjects.c.ext_id, subjects.c.id).where(
            subjects.c.kind == "host", subjects.c.ext_id.in_([agent_id for agent_id, _ in named])
        )
    )
    return {ext_id: subject_id for ext_id, subject_id in rows}


def authenticate(connection: Connection, agent_id: str) -> AgentAuth | None:
    row = connection.execute(
        sa.select(
            agents.c.agent_id,
            agents.c.public_key,
            agents.c.revoked_at,
            agents.c.group_name,
            agents.c.hostname,
            agents.c.subject_id,
        ).where(agents.c.agent_id == agent_id)
    ).first()
    if row is None:
        return None
    return AgentAuth(
        row.agent_id, row.public_key, row.revoked_at is not None, row.group_name, row.hostname, row.subject_id
    )


def checkin(connection: Connection, agent_id: str, host: Any, now: dt.datetime) -> bool:
    """Record host facts (only the inventory fields the agent sent are replaced) and that it was seen."""
    facts = host_fields(host)
    values = {name: facts[name] for name in HOST_TEXT_FIELDS if name in host}
    updated = connection.execute(
        agents.update()
        .where(agents.c.agent_id == agent_id, agents.c.revoked_at.is_(None))
        .values(host_facts=facts["host_facts"], **values)
    ).rowcount
    if not updated:
        return False
    subject_values: dict[str, Any] = {"last_seen": now}
    if values.get("hostname"):
        subject_values["name"] = values["hostname"]
    connection.execute(
        subjects.update()
        .where(subjects.c.id == sa.select(agents.c.subject_id).where(agents.c.agent_id == agent_id).scalar_subquery())
        .values(**subject_values)
    )
    return True


def list_agents(connection: Connection, include_revoked: bool = True) -> list[dict[str, Any]]:
    query = (
        sa.select(agents, subjects.c.last_seen, subjects.c.last_report_at)
        .join(subjects, subjects.c.id == agents.c.subject_id)
        .order_by(agents.c.hostname, agents.c.agent_id)
    )
    if not include_revoked:
        query = query.where(agents.c.revoked_at.is_(None))
    return [
        {
            "agent_id": row.agent_id,
            "hostname": row.hostname,
            "os": row.os,
            "os_version": row.os_version,
            "agent_version": row.agent_version,
            "group": row.group_name,
            "enrolled_at": iso(row.enrolled_at),
            "last_seen": iso(row.last_seen),
            "last_report_at": iso(row.last_report_at),
            "revoked_at": iso(row.revoked_at),
            "revoked_by": row.revoked_by,
        }
        for row in connection.execute(query)
    ]


def revoke_agent(connection: Connection, agent_id: str, *, by: str, now: dt.datetime) -> bool:
    """Refuse the agent from now on; its results stop counting from now (they still count as at earlier
    dates: collector/storage/history.py)."""
    revoked = connection.execute(
        agents.update()
        .where(agents.c.agent_id == agent_id, agents.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
        .returning(agents.c.subject_id)
    ).first()
    if revoked is None:
        return False
    retired = retire_subject(connection, revoked.subject_id, now)
    audit.record(connection, by, "agent.revoke", agent_id, {"results_retired": retired}, now)
    return True
