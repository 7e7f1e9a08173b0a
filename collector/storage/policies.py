"""Policies the collector serves: stored versions, assignments to groups, and the bundle an agent gets.

An agent gets the newest stored version of each policy assigned to its group (or, when nothing is
assigned to its group, to the default group) and the waivers in force that cover it. The bundle's ETag
is the SHA-256 of what it carries, so an agent polling with If-None-Match gets 304 until something changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.policy.model import Policy, canonical_json
from collector.storage import audit
from collector.storage import waivers as waiver_store
from collector.storage.history import upsert
from collector.storage.models import check_catalog, iso, policies, policy_assignments


@dataclass
class Bundle:
    etag: str
    group: str
    policies: list[dict[str, Any]]  # the stored policy documents
    waivers: list[dict[str, Any]]  # waiver-file entries
    policy_hashes: list[str]

    def payload(self, agent_id: str, issued_at: dt.datetime) -> dict[str, Any]:
        return {
            "agent_id": agent_id,
            "group": self.group,
            "issued_at": iso(issued_at),
            "etag": self.etag,
            "policies": self.policies,
            "waivers": self.waivers,
        }


def add(connection: Connection, policy: Policy, *, by: str, now: dt.datetime, source: str = "") -> dict[str, Any]:
    """Store a policy version (validated by the caller's loader); storing the same version again is a no-op."""
    statement = upsert(connection, policies).values(
        policy_id=policy.id,
        version=policy.version,
        sha256=policy.sha256,
        title=policy.title,
        document=policy.document,
        source=(source or policy.source)[:255],
        added_at=now,
        added_by=by,
    )
    inserted = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["sha256"]).returning(policies.c.id)
    ).first()
    if inserted is not None:
        audit.record(connection, by, "policy.add", policy.id, {"version": policy.version, "sha256": policy.sha256}, now)
    return {"id": policy.id, "version": policy.version, "sha256": policy.sha256, "added": inserted is not None}


def assign(connection: Connection, group: str, policy_id: str, *, by: str, now: dt.datetime) -> bool:
    if connection.execute(sa.select(policies.c.id).where(policies.c.policy_id == policy_id)).first() is None:
        raise LookupError(f"no stored policy {policy_id!r}")
    statement = upsert(connection, policy_assignments).values(
        group_name=group, policy_id=policy_id, assigned_at=now, assigned_by=by
    )
    inserted = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["group_name", "policy_id"]).returning(
            policy_assignments.c.group_name
        )
    ).first()
    if inserted is not None:
        audit.record(connection, by, "policy.assign", policy_id, {"group": group}, now)
    return inserted is not None


def unassign(connection: Connection, group: str, policy_id: str, *, by: str, now: dt.datetime) -> bool:
    removed = connection.execute(
        policy_assignments.delete().where(
            policy_assignments.c.group_name == group, policy_assignments.c.policy_id == policy_id
        )
    ).rowcount
    if removed:
        audit.record(connection, by, "policy.unassign", policy_id, {"group": group}, now)
    return bool(removed)


def newest_versions(connection: Connection, policy_ids: list[str] | None = None) -> list[Any]:
    newest = sa.select(sa.func.max(policies.c.id)).group_by(policies.c.policy_id)
    if policy_ids is not None:
        newest = newest.where(policies.c.policy_id.in_(policy_ids))
    return list(connection.execute(sa.select(policies).where(policies.c.id.in_(newest)).order_by(policies.c.policy_id)))


def list_policies(connection: Connection) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for row in connection.execute(sa.select(policy_assignments).order_by(policy_assignments.c.group_name)):
        groups.setdefault(row.policy_id, []).append(row.group_name)
    versions = {
        row.policy_id: row.n
        for row in connection.execute(
            sa.select(policies.c.policy_id, sa.func.count().label("n")).group_by(policies.c.policy_id)
        )
    }
    return [
        {
            "id": row.policy_id,
            "version": row.version,
            "sha256": row.sha256,
            "title": row.title,
            "checks": len(row.document.get("checks", [])),
            "added_at": iso(row.added_at),
            "added_by": row.added_by,
            "versions_stored": versions.get(row.policy_id, 1),
            "groups": groups.get(row.policy_id, []),
        }
        for row in newest_versions(connection)
    ]


def assigned_policy_ids(connection: Connection, group: str, default_group: str) -> list[str]:
    def for_group(name: str) -> list[str]:
        return list(
            connection.execute(
                sa.select(policy_assignments.c.policy_id)
                .where(policy_assignments.c.group_name == name)
                .order_by(policy_assignments.c.policy_id)
            ).scalars()
        )

    return for_group(group) or for_group(default_group)


def bundle_for(
    connection: Connection,
    *,
    agent_id: str,
    hostname: str,
    group: str,
    default_group: str,
    today: dt.date,
    with_documents: bool = True,
) -> Bundle:
    policy_ids = assigned_policy_ids(connection, group, default_group)
    rows = newest_versions(connection, policy_ids) if policy_ids else []
    covering = waiver_store.for_agent(connection, agent_id, hostname, group, today)
    hashes = [row.sha256 for row in rows]
    etag = hashlib.sha256(canonical_json({"group": group, "policies": hashes, "waivers": covering})).hexdigest()
    return Bundle(
        etag=etag,
        group=group,
        policies=[row.document for row in rows] if with_documents else [],
        waivers=covering,
        policy_hashes=hashes,
    )


def known_checks(connection: Connection) -> set[tuple[str, str]]:
    """(policy id, check id) of every check in a stored policy or seen in results."""
    known = {(row.policy_id, row.check_id) for row in connection.execute(sa.select(check_catalog))}
    for row in connection.execute(sa.select(policies.c.policy_id, policies.c.document)):
        for entry in row.document.get("checks", []):
            known.add((row.policy_id, str(entry.get("id"))))
    return known
