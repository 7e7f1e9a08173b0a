"""The evidence pack's other records: status changes in the period, policies, waivers, the audit log, the
agent inventory and (on request) the signed reports, each as it stood at the end of the period."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.safetext import SafeDictWriter
from collector.reports.evidence_files import BATCH, ExportRequest, Files, Progress, csv_value, jsonl
from collector.storage.models import agents, audit_log, iso, policies, reports, result_intervals, subjects, waivers

CHANGE_COLUMNS = (
    "at", "subject_kind", "subject_id", "subject_name", "group", "policy", "check", "from_status", "to_status",
    "until", "policy_hash", "report_id",
)  # fmt: skip
AGENT_COLUMNS = (
    "agent_id", "hostname", "os", "os_version", "agent_version", "group", "enrolled_at", "revoked_at", "revoked_by",
    "last_report_before_end", "public_key",
)  # fmt: skip
AUDIT_COLUMNS = ("id", "at", "actor", "action", "target", "details")
WAIVER_COLUMNS = (
    "id", "check", "policy", "scope", "justification", "ticket", "expires", "state_at_end", "requested_by",
    "requested_at", "approved_by", "approved_at", "closed_by", "closed_at",
)  # fmt: skip


def write_changes(
    files: Files, connection: Connection, request: ExportRequest, start: dt.datetime, end: dt.datetime,
    checks: set[tuple[str, str]] | None, progress: Progress,
) -> int:  # fmt: skip
    """Every status change in [start, end): each interval that began then, with the status it followed.

    Two reports evaluated in the same instant leave an interval that ends where it began; the interval id
    (the order they were stored in) keeps such ties in order, on PostgreSQL as on SQLite.
    """
    intervals = result_intervals.c
    query = (
        sa.select(
            intervals.subject_id,
            intervals.policy_id,
            intervals.check_id,
            intervals.status,
            intervals.valid_from,
            intervals.valid_to,
            intervals.policy_hash,
            intervals.report_id,
            subjects.c.kind,
            subjects.c.ext_id,
            subjects.c.name,
            subjects.c.group_name,
        )  # fmt: skip
        .join(subjects, subjects.c.id == intervals.subject_id)
        .where(intervals.valid_from < end, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= start))
        .order_by(intervals.subject_id, intervals.policy_id, intervals.check_id, intervals.valid_from, intervals.id)
    )
    if request.group:
        query = query.where(subjects.c.group_name == request.group)
    written = 0
    previous: Any = None
    with files.open("changes.csv") as csv_stream, files.open("changes.jsonl") as json_stream:
        writer = SafeDictWriter(csv_stream, fieldnames=CHANGE_COLUMNS)
        writer.writeheader()
        for row in connection.execution_options(yield_per=BATCH).execute(query):
            key = (row.subject_id, row.policy_id, row.check_id)
            follows = previous is not None and previous[0] == key and previous[1].valid_to == row.valid_from
            prior = previous[1].status if follows else None
            previous = (key, row)
            if row.valid_from < start or (checks is not None and (row.policy_id, row.check_id) not in checks):
                continue
            record = {
                "at": iso(row.valid_from),
                "subject_kind": row.kind,
                "subject_id": row.ext_id,
                "subject_name": row.name,
                "group": row.group_name,
                "policy": row.policy_id,
                "check": row.check_id,
                "from_status": prior,
                "to_status": row.status,
                "until": iso(row.valid_to) if row.valid_to is not None and row.valid_to < end else None,
                "policy_hash": row.policy_hash,
                "report_id": row.report_id,
            }
            writer.writerow(record)
            jsonl(json_stream, record)
            written += 1
            if written % 5000 == 0:
                progress("changes", written, None)
    return written


def write_policies(files: Files, connection: Connection, end: dt.datetime) -> None:
    """Every policy version stored by `end`, as stored, and the assignments then (replayed from the
    audit log, which records every assign and unassign)."""
    assigned: dict[str, set[str]] = defaultdict(set)
    for entry in connection.execute(
        sa.select(audit_log.c.action, audit_log.c.target, audit_log.c.details)
        .where(audit_log.c.action.in_(["policy.assign", "policy.unassign"]), audit_log.c.at < end)
        .order_by(audit_log.c.id)
    ):
        group = str((entry.details or {}).get("group", ""))
        if entry.action == "policy.assign":
            assigned[entry.target].add(group)
        else:
            assigned[entry.target].discard(group)
    index = []
    for row in connection.execute(sa.select(policies).where(policies.c.added_at < end).order_by(policies.c.id)):
        name = f"policies/{row.policy_id}/{row.version}-{row.sha256[:12]}.json"
        files.write_json(name, row.document)
        index.append(
            {
                "id": row.policy_id,
                "version": row.version,
                "sha256": row.sha256,
                "title": row.title,
                "source": row.source,
                "added_at": iso(row.added_at),
                "added_by": row.added_by,
                "file": name,
            }
        )
    files.write_json(
        "policies/index.json",
        {
            "policies": index,
            "assigned_to_groups": {k: sorted(v) for k, v in sorted(assigned.items()) if v},
            "note": "sha256 is the policy's own hash (of the canonical form of what it judges by), the one "
            "every result names; the manifest hashes each file as written.",
        },
    )


def _waiver_state(row: Any, end: dt.datetime) -> str:
    if row.closed_at is not None and row.closed_at < end:
        return str(row.state)
    if row.approved_at is not None and row.approved_at < end:
        return "approved" if row.expires >= (end - dt.timedelta(days=1)).date() else "expired"
    return "requested"


def write_waivers(files: Files, connection: Connection, end: dt.datetime) -> None:
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in connection.execute(
        sa.select(audit_log).where(audit_log.c.action.like("waiver.%"), audit_log.c.at < end).order_by(audit_log.c.id)
    ):
        history[entry.target].append(
            {"at": iso(entry.at), "actor": entry.actor, "action": entry.action, "details": entry.details}
        )
    listed = []
    for row in connection.execute(sa.select(waivers).where(waivers.c.requested_at < end).order_by(waivers.c.id)):
        approved = row.approved_at is not None and row.approved_at < end
        closed = row.closed_at is not None and row.closed_at < end
        listed.append(
            {
                "id": row.id,
                "check": row.check_id,
                "policy": row.policy_id,
                "scope": row.scope,
                "justification": row.justification,
                "ticket": row.ticket,
                "expires": row.expires.isoformat(),
                "state_at_end": _waiver_state(row, end),
                "requested_by": row.requested_by,
                "requested_at": iso(row.requested_at),
                "approved_by": row.approved_by if approved else None,
                "approved_at": iso(row.approved_at) if approved else None,
                "closed_by": row.closed_by if closed else None,
                "closed_at": iso(row.closed_at) if closed else None,
                "history": history.get(row.id, []),
            }
        )
    files.write_json("waivers.json", {"waivers": listed})
    with files.open("waivers.csv") as stream:
        writer = SafeDictWriter(stream, fieldnames=WAIVER_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for waiver in listed:
            writer.writerow({k: csv_value(v) for k, v in waiver.items()})


def write_audit_log(files: Files, connection: Connection, start: dt.datetime, end: dt.datetime) -> int:
    count = 0
    with files.open("audit-log.csv") as csv_stream, files.open("audit-log.jsonl") as json_stream:
        writer = SafeDictWriter(csv_stream, fieldnames=AUDIT_COLUMNS)
        writer.writeheader()
        query = sa.select(audit_log).where(audit_log.c.at >= start, audit_log.c.at < end).order_by(audit_log.c.id)
        for row in connection.execution_options(yield_per=BATCH).execute(query):
            record = {"id": row.id, "at": iso(row.at), "actor": row.actor, "action": row.action,
                      "target": row.target, "details": row.details}  # fmt: skip
            writer.writerow({k: csv_value(v) for k, v in record.items()})
            jsonl(json_stream, record)
            count += 1
    return count


def write_agents(files: Files, connection: Connection, request: ExportRequest, end: dt.datetime) -> dict[str, str]:
    """The inventory as at `end`; returns agent id -> public key (what the raw reports are checked with)."""
    last_report = dict(
        connection.execute(
            sa.select(reports.c.agent_id, sa.func.max(reports.c.received_at))
            .where(reports.c.received_at < end)
            .group_by(reports.c.agent_id)
        ).all()
    )
    keys: dict[str, str] = {}
    query = sa.select(agents).where(agents.c.enrolled_at < end).order_by(agents.c.agent_id)
    if request.group:
        query = query.where(agents.c.group_name == request.group)
    with files.open("agents.csv") as csv_stream, files.open("agents.json") as json_stream:
        writer = SafeDictWriter(csv_stream, fieldnames=AGENT_COLUMNS)
        writer.writeheader()
        json_stream.write('{"agents": [\n')
        for index, row in enumerate(connection.execution_options(yield_per=BATCH).execute(query)):
            revoked = row.revoked_at is not None and row.revoked_at < end
            record = {
                "agent_id": row.agent_id,
                "hostname": row.hostname,
                "os": row.os,
                "os_version": row.os_version,
                "agent_version": row.agent_version,
                "group": row.group_name,
                "enrolled_at": iso(row.enrolled_at),
                "revoked_at": iso(row.revoked_at) if revoked else None,
                "revoked_by": row.revoked_by if revoked else None,
                "last_report_before_end": iso(last_report.get(row.agent_id)),
                "public_key": row.public_key,
            }
            keys[row.agent_id] = row.public_key
            writer.writerow(record)
            json_stream.write((",\n" if index else "") + json.dumps(record, sort_keys=True))
        json_stream.write("\n]}\n")
    return keys


def write_reports(
    files: Files, connection: Connection, request: ExportRequest, start: dt.datetime, end: dt.datetime,
    progress: Progress,
) -> int:  # fmt: skip
    query = (
        sa.select(reports, agents.c.group_name)
        .join(agents, agents.c.agent_id == reports.c.agent_id)
        .where(reports.c.received_at >= start, reports.c.received_at < end)
        .order_by(reports.c.id)
    )
    if request.group:
        query = query.where(agents.c.group_name == request.group)
    count = 0
    with files.open("reports/signed-reports.jsonl") as stream:
        for row in connection.execution_options(yield_per=200).execute(query):
            jsonl(
                stream,
                {
                    "report_id": row.report_id,
                    "agent_id": row.agent_id,
                    "received_at": iso(row.received_at),
                    "signed": {
                        "method": row.signed_method,
                        "path": row.signed_path,
                        "timestamp": row.signed_timestamp,
                        "content_sha256": row.content_sha256,
                        "signature": row.signature,
                    },
                    "body_base64": base64.b64encode(zlib.decompress(row.body_zlib)).decode("ascii"),
                },
            )
            count += 1
            if count % 1000 == 0:
                progress("signed reports", count, None)
    return count
