"""Waivers kept by the collector: requested by one person, approved by another, valid through a date.

An approved waiver turns the fail or error results it covers into `waived` at once (history and counts
follow); revoking it, or its expiry, turns them back. Agents receive the waivers that cover them in their
policy bundle, and ingest applies the collector's waivers to every result, so a result is waived exactly
when a waiver in force here covers it.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.policy.errors import PolicyError
from checks.policy.model import Waiver
from checks.policy.waiverfile import load_waiver_document
from checks.results import Status, Subject, SubjectKind
from collector.security import new_id
from collector.storage import audit
from collector.storage.bulk import update_rows, upsert
from collector.storage.history import Change, record_changes
from collector.storage.ingest import WaiverIndex
from collector.storage.models import WAIVER_LOCK_KEY, iso, latest_results, state_versions, subjects, waivers

REQUESTED, APPROVED, REJECTED, REVOKED, EXPIRED = "requested", "approved", "rejected", "revoked", "expired"
_VERSION_NAME = "waivers"


class WaiverError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def file_form(row: Any) -> dict[str, Any]:
    """A stored waiver as a waiver file entry (what agents load with load_waiver_document)."""
    entry: dict[str, Any] = {
        "id": row.id,
        "check": row.check_id,
        "scope": row.scope,
        "justification": row.justification,
        "requested_by": row.requested_by,
        "approved_by": row.approved_by or "",
        "expires": row.expires.isoformat(),
    }
    if row.policy_id:
        entry["policy"] = row.policy_id
    if row.ticket:
        entry["ticket"] = row.ticket
    return entry


def to_waiver(row: Any) -> Waiver:
    (waiver,) = load_waiver_document({"waivers": [file_form(row)]}, source=f"waiver {row.id}")
    return waiver


def listing(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "check": row.check_id,
        "policy": row.policy_id,
        "scope": row.scope,
        "justification": row.justification,
        "ticket": row.ticket,
        "expires": row.expires.isoformat(),
        "state": row.state,
        "requested_by": row.requested_by,
        "requested_at": iso(row.requested_at),
        "requested_actor": row.requested_actor,
        "approved_by": row.approved_by,
        "approved_at": iso(row.approved_at),
        "closed_by": row.closed_by,
        "closed_at": iso(row.closed_at),
    }


# --- what is in force, cached per process ---------------------------------------------------------------


def _bump_version(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Wait for reports being stored with the waivers as they were; later ones see the new version.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(WAIVER_LOCK_KEY)))
    statement = upsert(connection, state_versions).values(name=_VERSION_NAME, version=1)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["name"], set_={"version": state_versions.c.version + 1})
    )


def _version(connection: Connection) -> int:
    value = connection.execute(
        sa.select(state_versions.c.version).where(state_versions.c.name == _VERSION_NAME)
    ).scalar()
    return int(value or 0)


def in_force(connection: Connection, today: dt.date) -> list[Waiver]:
    rows = connection.execute(
        sa.select(waivers).where(waivers.c.state == APPROVED, waivers.c.expires >= today).order_by(waivers.c.id)
    )
    return [to_waiver(row) for row in rows]


class WaiverCache:
    """The waivers in force, reloaded when any process changed them (one small read per use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[int, dt.date, WaiverIndex] | None = None

    def current(self, connection: Connection, today: dt.date) -> WaiverIndex:
        version = _version(connection)
        state = self._state
        if state is not None and state[0] == version and state[1] == today:
            return state[2]
        return self._load(connection, version, today)

    def cached(self, today: dt.date) -> tuple[int, WaiverIndex] | None:
        """The version and waivers last read for `today`, without asking the database (which the caller
        must then do: collector/storage/fast_ingest.py compares it with the one its transaction read)."""
        state = self._state
        if state is None or state[1] != today:
            return None
        return state[0], state[2]

    def reload(self, connection: Connection, today: dt.date) -> tuple[int, WaiverIndex]:
        version = _version(connection)
        return version, self._load(connection, version, today)

    def _load(self, connection: Connection, version: int, today: dt.date) -> WaiverIndex:
        index = WaiverIndex(in_force(connection, today))
        with self._lock:
            self._state = (version, today, index)
        return index


# --- changes -------------------------------------------------------------------------------------------


def request(
    connection: Connection,
    *,
    check_id: str,
    policy_id: str | None,
    scope: dict[str, Any],
    justification: str,
    expires: dt.date,
    requested_by: str,
    now: dt.datetime,
    ticket: str = "",
    waiver_id: str | None = None,
    known_checks: set[tuple[str, str]] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Record a waiver request; it does nothing until someone else approves it.

    `requested_by` is the collector user it is requested as; `actor` who did it, as the audit log names
    them (`user:<name>` over the API, `cli:<login>` on the command line; default `user:<requested_by>`).
    """
    actor = actor or user_actor(requested_by)
    waiver_id = waiver_id or new_id("wv-")
    if expires < now.date():
        raise WaiverError("bad_waiver", f"expires {expires.isoformat()} is in the past")
    draft = {
        "id": waiver_id,
        "check": check_id,
        "scope": scope,
        "justification": justification,
        "requested_by": requested_by,
        "approved_by": "(pending approval)",
        "expires": expires.isoformat(),
        **({"policy": policy_id} if policy_id else {}),
        **({"ticket": ticket} if ticket else {}),
    }
    try:
        load_waiver_document({"waivers": [draft]}, source="waiver")
    except PolicyError as exc:
        raise WaiverError("bad_waiver", "; ".join(issue.message for issue in exc.issues)) from None
    if known_checks is not None and not any(
        c == check_id and (policy_id is None or p == policy_id) for p, c in known_checks
    ):
        where = f" in policy {policy_id}" if policy_id else ""
        raise WaiverError("unknown_check", f"no stored policy has a check {check_id!r}{where}")
    if connection.execute(sa.select(waivers.c.id).where(waivers.c.id == waiver_id)).first() is not None:
        raise WaiverError("duplicate_waiver", f"a waiver with id {waiver_id!r} exists")
    connection.execute(
        waivers.insert().values(
            id=waiver_id,
            check_id=check_id,
            policy_id=policy_id,
            scope=scope,
            justification=justification,
            ticket=ticket,
            expires=expires,
            state=REQUESTED,
            requested_by=requested_by,
            requested_actor=actor[:100],
            requested_at=now,
        )
    )
    details = {"check": check_id, "scope": scope, "as": requested_by}
    audit.record(connection, actor, "waiver.request", waiver_id, details, now)
    return get(connection, waiver_id)


def get(connection: Connection, waiver_id: str) -> dict[str, Any]:
    row = connection.execute(sa.select(waivers).where(waivers.c.id == waiver_id)).first()
    if row is None:
        raise WaiverError("not_found", f"no waiver {waiver_id!r}")
    return listing(row)


def list_waivers(connection: Connection, state: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(waivers).order_by(waivers.c.requested_at.desc(), waivers.c.id)
    if state:
        query = query.where(waivers.c.state == state)
    return [listing(row) for row in connection.execute(query)]


def _locked(connection: Connection, waiver_id: str) -> Any:
    row = connection.execute(sa.select(waivers).where(waivers.c.id == waiver_id).with_for_update()).first()
    if row is None:
        raise WaiverError("not_found", f"no waiver {waiver_id!r}")
    return row


def user_actor(name: str) -> str:
    return f"user:{name}"


def _person(actor: str) -> str:
    """Whom an actor names: `user:alice` and `cli:alice` are both alice."""
    return actor.partition(":")[2] if ":" in actor else actor


def _people(user: str, actor: str | None) -> set[str]:
    names = {user} | ({_person(actor)} if actor else set())
    return {name.strip().lower() for name in names if name.strip()}


def approve(
    connection: Connection, waiver_id: str, *, approver: str, now: dt.datetime, actor: str | None = None
) -> dict[str, Any]:
    """Approve as the user `approver`, by `actor` (default `user:<approver>`). Two people: whoever
    requested it may not approve it, neither under their user name nor their login, nor acting for
    another user (a login that requested as alice cannot approve as bob)."""
    actor = actor or user_actor(approver)
    row = _locked(connection, waiver_id)
    if row.state != REQUESTED:
        raise WaiverError("bad_state", f"waiver {waiver_id} is {row.state}, not awaiting approval")
    if _people(approver, actor) & _people(row.requested_by, row.requested_actor):
        raise WaiverError("approver_is_requester", "a waiver must be approved by someone other than its requester")
    if row.expires < now.date():
        raise WaiverError("bad_state", f"waiver {waiver_id} expired on {row.expires.isoformat()}")
    connection.execute(
        waivers.update().where(waivers.c.id == waiver_id).values(state=APPROVED, approved_by=approver, approved_at=now)
    )
    _bump_version(connection)
    changed = reconcile(connection, row.check_id, row.policy_id, now)
    audit.record(connection, actor, "waiver.approve", waiver_id, {"results_changed": changed, "as": approver}, now)
    return get(connection, waiver_id)


def close(
    connection: Connection,
    waiver_id: str,
    *,
    by: str,
    now: dt.datetime,
    action: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Reject a request, or revoke an approved waiver (its results return to their own status), as the
    user `by`, by `actor` (default `user:<by>`).

    `action` ("reject" or "revoke") insists on one of the two; None does whichever the state allows.
    """
    actor = actor or user_actor(by)
    row = _locked(connection, waiver_id)
    if row.state == REQUESTED and action in (None, "reject"):
        new_state, event = REJECTED, "waiver.reject"
    elif row.state == APPROVED and action in (None, "revoke"):
        new_state, event = REVOKED, "waiver.revoke"
    elif row.state in (REQUESTED, APPROVED):
        raise WaiverError("bad_state", f"waiver {waiver_id} is {row.state}: it cannot be {action}ed")
    else:
        raise WaiverError("bad_state", f"waiver {waiver_id} is already {row.state}")
    connection.execute(
        waivers.update().where(waivers.c.id == waiver_id).values(state=new_state, closed_by=by, closed_at=now)
    )
    changed = 0
    if row.state == APPROVED:
        _bump_version(connection)
        changed = reconcile(connection, row.check_id, row.policy_id, now)
    audit.record(connection, actor, event, waiver_id, {"results_changed": changed, "as": by}, now)
    return get(connection, waiver_id)


def expire_due(connection: Connection, now: dt.datetime) -> list[str]:
    """Mark approved waivers past their date expired and give their results back their own status."""
    rows = connection.execute(
        sa.select(waivers)
        .where(waivers.c.state == APPROVED, waivers.c.expires < now.date())
        .order_by(waivers.c.id)
        .with_for_update()
    ).all()
    if not rows:
        return []
    connection.execute(
        waivers.update()
        .where(waivers.c.id.in_([r.id for r in rows]))
        .values(state=EXPIRED, closed_by="system:retention", closed_at=now)
    )
    _bump_version(connection)
    for row in rows:
        changed = reconcile(connection, row.check_id, row.policy_id, now)
        audit.record(connection, "system:retention", "waiver.expire", row.id, {"results_changed": changed}, now)
    return [r.id for r in rows]


def reconcile(connection: Connection, check_id: str, policy_id: str | None, now: dt.datetime) -> int:
    """Make the latest results of one check agree with the waivers in force; returns how many changed."""
    index = WaiverIndex(in_force(connection, now.date()))
    query = (
        sa.select(
            latest_results.c.subject_id,
            latest_results.c.policy_id,
            latest_results.c.check_id,
            latest_results.c.status,
            latest_results.c.waived_status,
            latest_results.c.waiver_id,
            latest_results.c.policy_hash,
            latest_results.c.report_id,
            latest_results.c.since,
            subjects.c.kind,
            subjects.c.ext_id,
            subjects.c.name,
            subjects.c.group_name,
        )
        .join(subjects, subjects.c.id == latest_results.c.subject_id)
        .where(
            latest_results.c.check_id == check_id,
            latest_results.c.status.in_([Status.FAIL.value, Status.ERROR.value, Status.WAIVED.value]),
        )
        .order_by(latest_results.c.subject_id, latest_results.c.policy_id)
        .with_for_update(of=latest_results)
    )
    if policy_id:
        query = query.where(latest_results.c.policy_id == policy_id)
    updates: list[dict[str, Any]] = []
    changes: list[Change] = []
    today = now.date()
    for row in connection.execute(query):
        underlying = row.waived_status if row.status == Status.WAIVED.value else row.status
        who = Subject(SubjectKind(row.kind), row.ext_id, row.name)
        waiver_id = index.find(row.policy_id, row.check_id, who, [row.group_name], today)
        status = Status.WAIVED.value if waiver_id else underlying
        if (status, waiver_id) == (row.status, row.waiver_id):
            continue
        updates.append(
            {
                "subject_id": row.subject_id,
                "policy_id": row.policy_id,
                "check_id": row.check_id,
                "status": status,
                "waived_status": underlying if waiver_id else None,
                "waiver_id": waiver_id,
                "since": now if status != row.status else row.since,
            }
        )
        if status != row.status:
            changes.append(
                Change(
                    subject_id=row.subject_id,
                    group=row.group_name,
                    policy_id=row.policy_id,
                    check_id=row.check_id,
                    old_status=row.status,
                    new_status=status,
                    at=now,
                    policy_hash=row.policy_hash,
                    report_id=row.report_id,
                )
            )
    update_rows(
        connection,
        latest_results,
        updates,
        match=("subject_id", "policy_id", "check_id"),
        values=("status", "waived_status", "waiver_id", "since"),
    )
    record_changes(connection, changes)
    return len(updates)


def for_agent(connection: Connection, agent_id: str, hostname: str, group: str, today: dt.date) -> list[dict[str, Any]]:
    """The waivers in force that cover this agent, in waiver-file form, for its policy bundle."""
    who = Subject(SubjectKind.HOST, agent_id, hostname)
    rows = connection.execute(
        sa.select(waivers).where(waivers.c.state == APPROVED, waivers.c.expires >= today).order_by(waivers.c.id)
    )
    return [file_form(row) for row in rows if to_waiver(row).scope.covers(who, (group,))]
