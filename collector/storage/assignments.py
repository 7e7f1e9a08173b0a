"""Which of an agent's results count: those judged against a policy the collector stores and assigned.

The collector is the authority on what a check is. An agent's result is counted only when its policy id is
assigned to the agent's group (or, when nothing is assigned to the group, to the default group: the bundle
the agent gets, collector/storage/policies.py), its policy hash is a version of that policy the collector
stores, and its check id is a check of that version. The check's title, severity, weight and framework
mapping, and the version's name, are then taken from the stored version, whatever the result said.

A version stays good for results evaluated before it was replaced by a newer one, plus a grace
(`collector.policy_change_grace_hours`): an agent picks up a new version at its next check-in, and an
agent that was away delivers, when it returns, the results it judged with the version in force then.
Results judged with a version replaced longer ago, with a version or a policy never assigned, or for a
check that version does not have, are not counted: they stay in the signed raw report (evidence) only,
and the answer to the report says how many there were and why.

Each process keeps, per group, what is assigned, and reloads it when a shared version number
(`state_versions` row `policies`, bumped by every policy change) has moved: one small read per report on
SQLite; on PostgreSQL the storing function checks the number the caller judged with (migration 0005).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.bulk import upsert
from collector.storage.models import policies, policy_assignments, state_versions

if TYPE_CHECKING:  # ingest imports this module
    from collector.storage.ingest import IncomingResult

POLICIES_STATE = "policies"

# Why a result was not counted (stable: they appear in the API's answers and the metrics).
NOT_ASSIGNED = "policy_not_assigned"
UNKNOWN_VERSION = "policy_version_unknown"
REPLACED = "policy_version_replaced"
UNKNOWN_CHECK = "check_not_in_policy"
REASONS = (NOT_ASSIGNED, UNKNOWN_VERSION, REPLACED, UNKNOWN_CHECK)


def state_version(connection: Connection, name: str) -> int:
    value = connection.execute(sa.select(state_versions.c.version).where(state_versions.c.name == name)).scalar()
    return int(value or 0)


def bump_state_version(connection: Connection, name: str) -> None:
    statement = upsert(connection, state_versions).values(name=name, version=1)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["name"], set_={"version": state_versions.c.version + 1})
    )


@dataclass(frozen=True)
class CheckInfo:
    """What the collector says a check is."""

    title: str
    severity: str
    weight: float | None
    frameworks: dict[str, Any]


@dataclass(frozen=True)
class PolicyVersion:
    policy_id: str
    version: str
    sha256: str
    replaced_at: dt.datetime | None  # when a newer version was stored; None for the newest
    checks: Mapping[str, CheckInfo]


def check_info(entry: Mapping[str, Any]) -> CheckInfo:
    """A check of a stored policy document (validated when it was stored)."""
    weight = entry.get("weight")
    return CheckInfo(
        title=str(entry.get("title") or ""),
        severity=str(entry.get("severity") or ""),
        weight=None if weight is None else float(weight),
        frameworks=dict(entry.get("frameworks") or {}),
    )


_PARSED: dict[str, Mapping[str, CheckInfo]] = {}


def checks_of(sha256: str, document: Mapping[str, Any]) -> Mapping[str, CheckInfo]:
    """The checks of a stored version by id, parsed once per process (the hash names the document)."""
    found = _PARSED.get(sha256)
    if found is None:
        if len(_PARSED) > 4096:
            _PARSED.clear()
        found = _PARSED[sha256] = {str(entry["id"]): check_info(entry) for entry in document.get("checks", [])}
    return found


class Assigned:
    """What an agent of one group may report: every stored version of each policy assigned to the group."""

    def __init__(self, versions: Sequence[PolicyVersion], grace: dt.timedelta) -> None:
        self.by_hash = {v.sha256: v for v in versions}
        self.policy_ids = frozenset(v.policy_id for v in versions)
        self.grace = grace

    def admit(self, results: Sequence[IncomingResult], now: dt.datetime) -> tuple[list[IncomingResult], dict[str, int]]:
        """(the results that count, with the collector's title, severity, weight, frameworks and version;
        how many do not, by reason)."""
        counted: list[IncomingResult] = []
        refused: dict[str, int] = defaultdict(int)
        for result in results:
            version = self.by_hash.get(result.policy_hash)
            if version is None or version.policy_id != result.policy_id:
                refused[UNKNOWN_VERSION if result.policy_id in self.policy_ids else NOT_ASSIGNED] += 1
                continue
            if version.replaced_at is not None:
                evaluated_at = min(result.evaluated_at or now, now)
                if evaluated_at >= version.replaced_at + self.grace:
                    refused[REPLACED] += 1
                    continue
            info = version.checks.get(result.check_id)
            if info is None:
                refused[UNKNOWN_CHECK] += 1
                continue
            result.title, result.severity = info.title, info.severity
            result.weight, result.frameworks = info.weight, info.frameworks
            result.policy_version = version.version
            counted.append(result)
        return counted, dict(refused)


def assigned_policy_ids(connection: Connection, group: str, default_group: str) -> list[str]:
    """The policies an agent in `group` gets: the group's own, or the default group's when it has none."""

    def for_group(name: str) -> list[str]:
        return list(
            connection.execute(
                sa.select(policy_assignments.c.policy_id)
                .where(policy_assignments.c.group_name == name)
                .order_by(policy_assignments.c.policy_id)
            ).scalars()
        )

    return for_group(group) or for_group(default_group)


def load_assigned(connection: Connection, group: str, default_group: str, grace: dt.timedelta) -> Assigned:
    policy_ids = assigned_policy_ids(connection, group, default_group)
    versions: list[PolicyVersion] = []
    if policy_ids:
        rows = connection.execute(
            sa.select(
                policies.c.policy_id, policies.c.version, policies.c.sha256, policies.c.document, policies.c.added_at
            )
            .where(policies.c.policy_id.in_(policy_ids))
            .order_by(policies.c.policy_id, policies.c.id)
        ).all()
        for index, row in enumerate(rows):
            following = rows[index + 1] if index + 1 < len(rows) else None
            replaced_at = following.added_at if following is not None and following.policy_id == row.policy_id else None
            versions.append(
                PolicyVersion(row.policy_id, row.version, row.sha256, replaced_at, checks_of(row.sha256, row.document))
            )
    return Assigned(versions, grace)


# (connection, group) -> what agents of that group may report; AssignmentCache.current is one.
AssignmentSource = Callable[[Connection, str], Assigned]


class AssignmentCache:
    """What each group may report, reloaded when any process changed a policy or an assignment."""

    def __init__(self, default_group: str, grace: dt.timedelta) -> None:
        self.default_group = default_group
        self.grace = grace
        self._lock = threading.Lock()
        self._version = -1
        self._groups: dict[str, Assigned] = {}

    def current(self, connection: Connection, group: str) -> Assigned:
        version = state_version(connection, POLICIES_STATE)
        if version == self._version:
            found = self._groups.get(group)
            if found is not None:
                return found
        return self._load(connection, version, group)

    def cached(self, group: str) -> tuple[int, Assigned] | None:
        """The version and what `group` may report as last read, without asking the database (the caller
        must have it checked: collector/storage/fast_ingest.py compares it with the one its transaction read)."""
        version, found = self._version, self._groups.get(group)
        return None if found is None else (version, found)

    def reload(self, connection: Connection, group: str) -> tuple[int, Assigned]:
        version = state_version(connection, POLICIES_STATE)
        return version, self._load(connection, version, group)

    def _load(self, connection: Connection, version: int, group: str) -> Assigned:
        assigned = load_assigned(connection, group, self.default_group, self.grace)
        with self._lock:
            if version != self._version:
                self._groups = {}
                self._version = version
            if len(self._groups) > 10_000:
                self._groups.clear()
            self._groups[group] = assigned
        return assigned
