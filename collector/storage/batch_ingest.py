"""Many agent reports in one transaction: the store pipeline in bulk (loading a fleet, bench/_fleet.py).

`store_agent_reports` writes exactly what `store_agent_report` (collector/storage/ingest.py) writes for
each report in turn, with the same decisions: `insert_reports` keeps each signed report as
`insert_report` does (a known report_id is a re-send), `admit` says which results count, `plan_results`
decides what changes. What it saves is statements: the subjects, the reports, their latest rows, the
latest rows written, history, counters and the subjects' marks are each one statement for all the reports
of a wave, not one per report. A wave holds at most one
report per agent, in the order given; an agent's next report goes in the next wave, which reads what the
last one wrote, so several reports of one agent are stored one after the other as they would be alone.

Locks are taken in one order (subjects by id, then their latest rows, then counters sorted, as
collector/storage/history.py does), so two batches, or a batch and the collector, cannot deadlock. An
agent unknown or revoked raises AgentRevoked before anything of its wave is written: the caller rolls
the transaction back (a batch is for loading, where that is a fault, not an agent to answer).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.assignments import AssignmentSource
from collector.storage.bulk import insert_rows, update_rows
from collector.storage.history import Change, record_changes
from collector.storage.ingest import (
    LATEST_KEY,
    PREVIOUS_COLUMNS,
    SUBJECT_ROW_COLUMNS,
    ParsedReport,
    Plan,
    Previous,
    SignedEvidence,
    StoreOutcome,
    SubjectRow,
    WaiverIndex,
    WaiverSource,
    _latest_update,
    created_on,
    plan_results,
)
from collector.storage.models import agents, latest_results, reports, subjects
from collector.storage.registry import AgentRevoked


@dataclass(frozen=True)
class IncomingReport:
    """One report of a batch: what `store_agent_report` takes, and the moment it is stored at (naive UTC)."""

    parsed: ParsedReport
    body: bytes
    evidence: SignedEvidence
    now: dt.datetime


def store_agent_reports(
    connection: Connection,
    batch: Sequence[IncomingReport],
    *,
    waivers: WaiverSource,
    assignments: AssignmentSource,
) -> list[StoreOutcome]:
    """Store every report of `batch` in the caller's transaction; their outcomes, in the batch's order."""
    outcomes: list[StoreOutcome | None] = [None] * len(batch)
    for wave in waves(batch):
        for index, outcome in zip(
            wave, _store_wave(connection, [batch[i] for i in wave], waivers, assignments), strict=True
        ):
            outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


def waves(batch: Sequence[IncomingReport]) -> list[list[int]]:
    """The batch's positions in waves: the n-th report of each agent in wave n, in the batch's order."""
    seen: dict[str, int] = {}
    found: list[list[int]] = []
    for index, report in enumerate(batch):
        wave = seen.get(report.parsed.agent_id, 0)
        seen[report.parsed.agent_id] = wave + 1
        if wave == len(found):
            found.append([])
        found[wave].append(index)
    return found


def _store_wave(
    connection: Connection, wave: list[IncomingReport], waivers: WaiverSource, assignments: AssignmentSource
) -> list[StoreOutcome]:
    subject_of = lock_subjects(connection, [report.parsed.agent_id for report in wave])
    update_rows(
        connection,
        subjects,
        [{"id": subject_of[r.parsed.agent_id].id, "last_seen": r.now, "last_report_at": r.now} for r in wave],
        match=("id",),
        values=("last_seen", "last_report_at"),
    )
    outcomes = [StoreOutcome(duplicate=True) for _ in wave]
    fresh = insert_reports(connection, wave, subject_of)
    stored: list[tuple[int, SubjectRow, Sequence[Any], dict[str, int]]] = []
    # What each group may report and the waivers of each day, asked once a wave (each asking reads a version).
    assigned: dict[str, Any] = {}
    in_force: dict[dt.date, WaiverIndex] = {}
    for position in fresh:
        report = wave[position]
        subject = subject_of[report.parsed.agent_id]
        if subject.group not in assigned:
            assigned[subject.group] = assignments(connection, subject.group)
        counted, refused = assigned[subject.group].admit(report.parsed.results, report.now)
        stored.append((position, subject, counted, refused))
    if not stored:
        return outcomes
    previous = _previous(connection, sorted({subject.id for _, subject, _, _ in stored}))
    plans: list[tuple[SubjectRow, Plan]] = []
    for position, subject, counted, refused in stored:
        report = wave[position]
        today = report.now.date()
        if today not in in_force:
            in_force[today] = waivers(connection, today)
        plan = plan_results(
            subject,
            previous.get(subject.id, {}),
            counted,
            now=report.now,
            report_id=report.parsed.report_id,
            waivers=in_force[today],
        )
        plan.outcome.not_counted = refused
        outcomes[position] = plan.outcome
        plans.append((subject, plan))
    _write(connection, plans)
    return outcomes


def insert_reports(
    connection: Connection, wave: Sequence[IncomingReport], subject_of: dict[str, SubjectRow]
) -> list[int]:
    """Keep the wave's signed reports, the row `insert_report` writes for each, in one statement; the
    positions of those not stored before (a known report_id, or one twice in the wave, is a re-send).

    Known ids are read first: the subjects' locks, held, keep an agent's re-send from being stored
    meanwhile by another transaction (the unique report_id still refuses any other: the batch then fails)."""
    ids = [report.parsed.report_id for report in wave]
    known = set(connection.execute(sa.select(reports.c.report_id).where(reports.c.report_id.in_(ids))).scalars())
    fresh: list[int] = []
    for position, report_id in enumerate(ids):
        if report_id not in known:
            known.add(report_id)
            fresh.append(position)
    rows = []
    for position in fresh:
        parsed, evidence, now = wave[position].parsed, wave[position].evidence, wave[position].now
        rows.append(
            {
                "report_id": parsed.report_id,
                "agent_id": parsed.agent_id,
                "subject_id": subject_of[parsed.agent_id].id,
                "received_at": now,
                "created_at": parsed.created_at,
                "created_on": created_on(parsed, now),
                "result_count": len(parsed.results),
                "dropped": parsed.dropped,
                "signed_method": evidence.method,
                "signed_path": evidence.path,
                "signed_timestamp": evidence.timestamp,
                "content_sha256": evidence.content_sha256,
                "signature": evidence.signature,
                "body_zlib": zlib.compress(wave[position].body, 1),
            }
        )
    if rows:  # an executemany: the bodies are bytes, which a JSON recordset (collector/storage/bulk.py) cannot carry
        connection.execute(reports.insert(), rows)
    return fresh


def lock_subjects(connection: Connection, agent_ids: Sequence[str]) -> dict[str, SubjectRow]:
    """The agents' subjects, locked for this transaction in id order; AgentRevoked when one may not report."""
    subject_ids: dict[str, int] = {
        agent_id: subject_id
        for agent_id, subject_id in connection.execute(
            sa.select(agents.c.agent_id, agents.c.subject_id).where(
                agents.c.agent_id.in_(agent_ids), agents.c.revoked_at.is_(None)
            )
        )
    }
    missing = sorted(set(agent_ids) - set(subject_ids))
    if missing:
        raise AgentRevoked(missing[0])
    rows = connection.execute(
        sa.select(*SUBJECT_ROW_COLUMNS)
        .where(subjects.c.id.in_(sorted(subject_ids.values())))
        .order_by(subjects.c.id)
        .with_for_update()
    ).all()
    if connection.dialect.name == "postgresql":
        # As lock_agent_subject does: a revocation committed while this waited for the locks was not in the
        # first statement's snapshot (SQLite runs one writer at a time).
        revoked = connection.execute(
            sa.select(agents.c.agent_id).where(agents.c.agent_id.in_(agent_ids), agents.c.revoked_at.is_not(None))
        ).first()
        if revoked is not None:
            raise AgentRevoked(revoked.agent_id)
    by_id = {row.id: SubjectRow(*row) for row in rows}
    return {agent_id: by_id[subject_id] for agent_id, subject_id in subject_ids.items()}


def _previous(connection: Connection, subject_ids: list[int]) -> dict[int, dict[tuple[str, str], Previous]]:
    """The subjects' latest rows, locked in key order, as `store_results` reads them for one subject."""
    found: dict[int, dict[tuple[str, str], Previous]] = {}
    rows = connection.execute(
        sa.select(
            latest_results.c.subject_id,
            latest_results.c.policy_id,
            latest_results.c.check_id,
            *(latest_results.c[n] for n in PREVIOUS_COLUMNS),
        )
        .where(latest_results.c.subject_id.in_(subject_ids))
        .order_by(latest_results.c.subject_id, latest_results.c.policy_id, latest_results.c.check_id)
        .with_for_update()
    ).all()  # fetched at once: row by row costs a call per row, and a wave's subjects have thousands
    for row in rows:
        found.setdefault(row[0], {})[(row[1], row[2])] = Previous(*row[3:])
    return found


def _write(connection: Connection, plans: list[tuple[SubjectRow, Plan]]) -> None:
    """What the wave's plans say, one statement per table (store_results' statements, for many subjects)."""
    rows = [row for _, plan in plans for row in plan.rows]
    rows.sort(key=lambda row: (row["subject_id"], row["policy_id"], row["check_id"]))
    insert_rows(connection, latest_results, rows, key=LATEST_KEY, update=_latest_update)
    frozen = [{"subject_id": subject.id, **row} for subject, plan in plans for row in plan.frozen]
    update_rows(
        connection,
        latest_results,
        frozen,
        match=("subject_id", "policy_id", "check_id"),
        values=("evaluated_at", "digest"),
    )
    changes: list[Change] = [change for _, plan in plans for change in plan.changes]
    record_changes(connection, changes)
    marks = [
        {"id": subject.id, "last_report_id": plan.mark[0], "last_evaluated_at": plan.mark[1]}
        for subject, plan in plans
        if plan.mark is not None
    ]
    update_rows(connection, subjects, marks, match=("id",), values=("last_report_id", "last_evaluated_at"))
