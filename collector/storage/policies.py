"""Policies the collector serves: stored versions, assignments to groups, and the bundle an agent gets.

An agent gets the newest stored version of each policy assigned to its group (or, when nothing is
assigned to its group, to the default group) and the waivers in force that cover it. The bundle's ETag
is the SHA-256 of what it carries, so an agent polling with If-None-Match gets 304 until something changes.

What a check is (title, severity, weight, framework mapping: `check_catalog`) is written here, from the
newest stored version of its policy, never from results; every change bumps the `policies` state version
so that each process reloads what its agents may report (collector/storage/assignments.py).
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
from collector.storage.assignments import POLICIES_STATE, assigned_policy_ids, bump_state_version
from collector.storage.bulk import insert_rows, upsert
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
        write_catalog(connection, policy, now)
        bump_state_version(connection, POLICIES_STATE)
        audit.record(connection, by, "policy.add", policy.id, {"version": policy.version, "sha256": policy.sha256}, now)
    return {"id": policy.id, "version": policy.version, "sha256": policy.sha256, "added": inserted is not None}


_CATALOG_VALUES = ("title", "severity", "weight", "frameworks", "policy_version", "policy_hash", "updated_at")


def _catalog_update(excluded: Any) -> dict[str, Any]:
    return {name: excluded[name] for name in _CATALOG_VALUES}


def catalog_rows(policy: Policy, now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "policy_id": policy.id,
            "check_id": check.id,
            "title": check.title,
            "severity": check.severity.value,
            "weight": check.weight,
            "frameworks": check.frameworks,
            "policy_version": policy.version,
            "policy_hash": policy.sha256,
            "updated_at": now,
        }
        for check in sorted(policy.checks, key=lambda c: c.id)
    ]


def write_catalog(connection: Connection, policy: Policy, now: dt.datetime) -> None:
    """What each check of `policy` is, as this version says (the newest stored, or a cloud policy the
    collector runs). A check the version dropped keeps its last entry: its past results still name it."""
    insert_rows(
        connection, check_catalog, catalog_rows(policy, now), key=("policy_id", "check_id"), update=_catalog_update
    )


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
        bump_state_version(connection, POLICIES_STATE)
        audit.record(connection, by, "policy.assign", policy_id, {"group": group}, now)
    return inserted is not None


def unassign(connection: Connection, group: str, policy_id: str, *, by: str, now: dt.datetime) -> bool:
    removed = connection.execute(
        policy_assignments.delete().where(
            policy_assignments.c.group_name == group, policy_assignments.c.policy_id == policy_id
        )
    ).rowcount
    if removed:
        bump_state_version(connection, POLICIES_STATE)
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
