"""The auditor's evidence pack: a zip of what the collector holds for a period, hashed and signed.

    pack.zip
      manifest.json                 SHA-256 and size of every other file, the export's parameters and the
                                    collector's Ed25519 public key, signed with that key (checks.wire)
      README.txt                    what each file is, and how to verify the pack
      results.csv, results.jsonl    every result in force at the end of the period: status, since when,
                                    the observed facts, expectation and reason behind that status
      changes.csv, changes.jsonl    every status change in the period (from, to, when, which report)
      policies/index.json           every policy version stored by the end, with its SHA-256, and which
      policies/<id>/<version>-<sha>.json   groups they were assigned to then; each document as stored
      waivers.json, waivers.csv     every waiver requested by the end, its state then and its whole history
      audit-log.jsonl, audit-log.csv   the audit log of the period
      agents.csv, agents.json       the agent inventory as at the end: id, host, OS, group, enrolled,
                                    revoked, last report, public key
      briefing.pdf                  the audit-committee briefing of the period
      oscal/assessment-results.json OSCAL assessment results
      ocsf/compliance-findings.jsonl  OCSF Compliance Finding events (class 2003), one per result
      reports/signed-reports.jsonl  (--with-reports) every signed agent report received in the period,
                                    its bytes and signature headers, so each agent's signature verifies

Everything is "as at the end of the period" from the stored history (status intervals, the reports
kept, the waivers' dates, the audit log), so an export as at a past date made today shows the state on
that date, not today's state relabelled. A result's facts are those of the signed report that set its
status (agents), the tenant's observation of that day (Microsoft 365), or not kept (Azure resources).

The files are written to a temporary directory one row at a time (one pass over the results feeds the
CSV, the JSON lines and the OCSF events), then zipped: memory stays bounded whatever the period.
Every CSV cell is formula-safe (checks.safetext).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection, Engine

from checks import __version__, wire
from checks.policy.waiverfile import load_waiver_document
from checks.results import Subject, SubjectKind
from checks.safetext import SafeDictWriter
from collector.config import CollectorConfig
from collector.reports import ocsf, oscal
from collector.reports.periods import Period, date_range, quarter_containing
from collector.storage import audit
from collector.storage.engine import read_tx, write_tx
from collector.storage.models import (
    agents,
    audit_log,
    check_catalog,
    daily_changes,
    iso,
    observations,
    policies,
    reports,
    result_intervals,
    subjects,
    waivers,
)
from collector.storage.queries import common

FORMAT = "rampart-evidence/1"
FRAMEWORKS = ("cyber_essentials", "ncsc_caf", "cis_controls_v8")
BATCH = 1000
RESULT_COLUMNS = (
    "subject_kind", "subject_id", "subject_name", "group", "policy", "check", "title", "severity", "frameworks",
    "status", "waived_status", "waiver_id", "since", "policy_hash", "report_id", "facts_from", "reason",
    "expectation", "observed",
)  # fmt: skip
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

# (what is being written, rows so far, rows expected when known): drives the command's progress bar.
Progress = Callable[[str, int, int | None], None]


class EvidenceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExportRequest:
    """A period (start..end), or as at one day (start None). Optional framework, group, raw reports."""

    end: dt.date
    start: dt.date | None = None
    framework: str | None = None
    group: str | None = None
    with_reports: bool = False

    def parameters(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.start else None,
            "as_of": None if self.start else self.end.isoformat(),
            "framework": self.framework,
            "group": self.group,
            "with_reports": self.with_reports,
        }

    @property
    def first_day(self) -> dt.date:
        return self.start or self.end

    def period(self, year_starts: int) -> Period:
        """The briefing's period: the range, or for an as-at export the quarter up to that day."""
        if self.start:
            return date_range(self.start, self.end)
        quarter = quarter_containing(self.end, year_starts)
        return Period(quarter.start, self.end, f"{quarter.label} to {self.end.isoformat()}", quarter.quarter,
                      quarter.year_starts)  # fmt: skip


def _expected_results(connection: Connection, day: dt.date) -> int:
    rows = connection.execute(sa.select(sa.func.sum(daily_changes.c.delta)).where(daily_changes.c.day <= day)).scalar()
    return int(rows or 0)


def check_request(request: ExportRequest, today: dt.date, retention_days: int) -> None:
    if request.framework is not None and request.framework not in FRAMEWORKS:
        raise EvidenceError("bad_request", f"framework must be one of {', '.join(FRAMEWORKS)}")
    if request.start and request.start > request.end:
        raise EvidenceError("bad_request", "the period ends before it starts")
    if request.end > today:
        raise EvidenceError("bad_request", f"{request.end.isoformat()} is after today: the state then is not known")
    try:
        common.check_as_of(request.first_day, today, retention_days)
    except common.QueryError as exc:
        raise EvidenceError(exc.code, exc.message) from None


def fingerprint(key: Ed25519PrivateKey) -> str:
    """The collector key's fingerprint: the SHA-256 of its raw 32-byte public key, in hex."""
    return hashlib.sha256(wire.public_key_bytes(key)).hexdigest()


# --- writing files -------------------------------------------------------------------------------------


class Files:
    """The pack's files in a temporary directory, before they are zipped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []

    def open(self, name: str, binary: bool = False) -> IO[Any]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.names.append(name)
        if binary:
            return path.open("wb")
        return path.open("w", encoding="utf-8", newline="")

    def write_json(self, name: str, data: Any) -> None:
        with self.open(name) as stream:
            json.dump(data, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, binary=True) as stream:
            stream.write(data)


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _jsonl(stream: IO[str], record: Mapping[str, Any]) -> None:
    stream.write(json.dumps(record, sort_keys=True, default=str, separators=(",", ":")))
    stream.write("\n")


# --- results as at the end -----------------------------------------------------------------------------


def _catalog(connection: Connection) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (row.policy_id, row.check_id): {"title": row.title, "severity": row.severity, "frameworks": row.frameworks}
        for row in connection.execute(sa.select(check_catalog))
    }


def _waivers_in_force(connection: Connection, moment: dt.datetime, day: dt.date) -> list[Any]:
    rows = connection.execute(sa.select(waivers).where(waivers.c.approved_at < moment).order_by(waivers.c.id))
    found = []
    for row in rows:
        if row.expires >= day and (row.closed_at is None or row.closed_at >= moment):
            (waiver,) = load_waiver_document(
                {"waivers": [{"id": row.id, "check": row.check_id, "scope": row.scope, "justification": "-",
                              "requested_by": row.requested_by, "approved_by": row.approved_by or "-",
                              "expires": row.expires.isoformat(),
                              **({"policy": row.policy_id} if row.policy_id else {})}]},
                source="waiver",
            )  # fmt: skip
            found.append(waiver)
    return found


def _facts_from_reports(connection: Connection, wanted: set[str]) -> dict[tuple[str, str, str], Any]:
    """(report_id, policy, check) -> the result as the agent reported it, from the kept signed reports."""
    found: dict[tuple[str, str, str], Any] = {}
    if not wanted:
        return found
    for row in connection.execute(
        sa.select(reports.c.report_id, reports.c.body_zlib).where(reports.c.report_id.in_(sorted(wanted)))
    ):
        body = json.loads(zlib.decompress(row.body_zlib))
        for result in body.get("results", []):
            key = (str(row.report_id), str((result.get("policy") or {}).get("id")), str(result.get("check_id")))
            found[key] = result  # the later of two results of one check in a report is the one kept
    return found


def result_rows(
    connection: Connection, facts: Connection, request: ExportRequest, moment: dt.datetime
) -> Iterator[dict[str, Any]]:
    """Every result in force at `moment`, with its facts, a batch of report bodies at a time."""
    catalog = _catalog(facts)
    wanted_framework = request.framework
    in_force = _waivers_in_force(facts, moment, request.end)
    tenant_facts: dict[tuple[int, str, str], Any] = {}
    intervals = result_intervals.c
    query = (
        sa.select(
            intervals.subject_id,
            intervals.policy_id,
            intervals.check_id,
            intervals.status,
            intervals.valid_from,
            intervals.policy_hash,
            intervals.report_id,
            subjects.c.kind,
            subjects.c.ext_id,
            subjects.c.name,
            subjects.c.group_name,
        )  # fmt: skip
        .join(subjects, subjects.c.id == intervals.subject_id)
        .where(intervals.valid_from < moment, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment))
        .order_by(intervals.subject_id, intervals.policy_id, intervals.check_id)
    )
    if request.group:
        query = query.where(subjects.c.group_name == request.group)
    batch: list[Any] = []

    def flush() -> Iterator[dict[str, Any]]:
        reported = _facts_from_reports(facts, {r.report_id for r in batch if r.report_id})
        tenants = {r.subject_id for r in batch if r.kind == "tenant"} - {k[0] for k in tenant_facts}
        for subject_id in tenants:
            last_day = (
                sa.select(
                    observations.c.policy_id, observations.c.check_id, sa.func.max(observations.c.day).label("day")
                )
                .where(observations.c.subject_id == subject_id, observations.c.day <= request.end)
                .group_by(observations.c.policy_id, observations.c.check_id)
                .subquery()
            )  # fmt: skip
            for obs in facts.execute(
                sa.select(observations)
                .join(
                    last_day,
                    sa.and_(
                        observations.c.policy_id == last_day.c.policy_id,
                        observations.c.check_id == last_day.c.check_id,
                        observations.c.day == last_day.c.day,
                    ),
                )
                .where(observations.c.subject_id == subject_id)
            ):
                tenant_facts[(subject_id, obs.policy_id, obs.check_id)] = obs
        for row in batch:
            entry = catalog.get((row.policy_id, row.check_id), {})
            frameworks = entry.get("frameworks") or {}
            if wanted_framework and wanted_framework not in frameworks:
                continue
            source: dict[str, Any] = {}
            facts_from = "not kept"
            if row.report_id and (row.report_id, row.policy_id, row.check_id) in reported:
                source = reported[(row.report_id, row.policy_id, row.check_id)]
                facts_from = f"signed report {row.report_id}"
            elif row.kind == "tenant" and (row.subject_id, row.policy_id, row.check_id) in tenant_facts:
                obs = tenant_facts[(row.subject_id, row.policy_id, row.check_id)]
                source = {"observed": obs.observed, "expectation": obs.expectation, "reason": obs.reason}
                facts_from = f"tenant observation of {obs.day.isoformat()}"
            elif row.report_id:
                facts_from = f"signed report {row.report_id} (no longer kept)"
            waiver_id = None
            waived_status = None
            if row.status == "waived":
                waived_status = source.get("waived_status") or (source.get("status") if source else None)
                if waived_status == "waived":
                    waived_status = None
                who = Subject(SubjectKind(row.kind), row.ext_id, row.name)
                waiver_id = next(
                    (w.id for w in in_force if w.applies_to(row.policy_id, row.check_id)
                     and w.scope.covers(who, (row.group_name,))),
                    None,
                )  # fmt: skip
            yield {
                "subject_kind": row.kind,
                "subject_id": row.ext_id,
                "subject_name": row.name,
                "group": row.group_name,
                "policy": row.policy_id,
                "check": row.check_id,
                "title": entry.get("title") or source.get("title", ""),
                "severity": entry.get("severity") or source.get("severity", ""),
                "frameworks": frameworks,
                "status": row.status,
                "waived_status": waived_status,
                "waiver_id": waiver_id,
                "since": iso(row.valid_from),
                "policy_hash": row.policy_hash,
                "report_id": row.report_id,
                "facts_from": facts_from,
                "reason": source.get("reason", ""),
                "expectation": source.get("expectation"),
                "observed": source.get("observed"),
            }
        batch.clear()
        if len(tenant_facts) > 10_000:
            tenant_facts.clear()

    for row in connection.execution_options(yield_per=BATCH).execute(query):
        batch.append(row)
        if len(batch) >= BATCH:
            yield from flush()
    yield from flush()


def write_results(
    files: Files, rows: Iterator[dict[str, Any]], at_ms: int, progress: Progress, expected: int | None = None
) -> dict[tuple[str, str], dict[str, int]]:
    """results.csv, results.jsonl and the OCSF events, in one pass; returns the counts per check."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with (
        files.open("results.csv") as csv_stream,
        files.open("results.jsonl") as json_stream,
        files.open("ocsf/compliance-findings.jsonl") as ocsf_stream,
    ):
        writer = SafeDictWriter(csv_stream, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for index, row in enumerate(rows, start=1):
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
            _jsonl(json_stream, row)
            _jsonl(ocsf_stream, ocsf.finding(row, at_ms))
            counts[(row["policy"], row["check"])][row["status"]] += 1
            if index % 5000 == 0:
                progress("results", index, expected)
    return {key: dict(value) for key, value in counts.items()}


# --- changes, policies, waivers, audit log, agents, reports ---------------------------------------------


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
            _jsonl(json_stream, record)
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
            writer.writerow({k: _csv_value(v) for k, v in waiver.items()})


def write_audit_log(files: Files, connection: Connection, start: dt.datetime, end: dt.datetime) -> int:
    count = 0
    with files.open("audit-log.csv") as csv_stream, files.open("audit-log.jsonl") as json_stream:
        writer = SafeDictWriter(csv_stream, fieldnames=AUDIT_COLUMNS)
        writer.writeheader()
        query = sa.select(audit_log).where(audit_log.c.at >= start, audit_log.c.at < end).order_by(audit_log.c.id)
        for row in connection.execution_options(yield_per=BATCH).execute(query):
            record = {"id": row.id, "at": iso(row.at), "actor": row.actor, "action": row.action,
                      "target": row.target, "details": row.details}  # fmt: skip
            writer.writerow({k: _csv_value(v) for k, v in record.items()})
            _jsonl(json_stream, record)
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
            _jsonl(
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


README = """Rampart evidence pack
=====================

{summary}

Verify it (offline; no database, no configuration; the fingerprint comes from the collector's
administrator, out of band):

    rampart-collector evidence verify {name} --key {fingerprint}

verify names every file added, removed or changed since the pack was signed, checks the manifest's
signature with the collector key it names (and that key against --key), and checks every signed agent
report in reports/ against the agent's public key in agents.json. Without Rampart: each file's SHA-256
is in manifest.json ("payload"."files"); the signature is Ed25519 over the payload serialised as JSON
with sorted keys and no spaces (UTF-8), in base64url without padding.

Files: see docs/evidence.md. CSV cells that begin with =, +, -, @, tab or carriage return are prefixed
with ' so that a spreadsheet shows them as text.
"""


# --- the pack ------------------------------------------------------------------------------------------


def _zip(
    files: Files, out: Path, sign: Callable[[dict[str, Any]], dict[str, Any]], payload: dict[str, Any]
) -> dict[str, Any]:
    """Hash every file, sign the manifest, write the zip (renamed into place when complete)."""
    entries = []
    names: list[str] = sorted(set(files.names))
    for name in names:
        digest = hashlib.sha256()
        size = 0
        with (files.root / name).open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        entries.append({"path": name, "sha256": digest.hexdigest(), "bytes": size})
    signed = {**payload, "files": entries}
    manifest = sign(signed)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in names:
            archive.write(files.root / name, name)
    os.replace(partial, out)
    return signed


def export(
    engine: Engine,
    config: CollectorConfig,
    key: Ed25519PrivateKey,
    request: ExportRequest,
    out: Path,
    *,
    now: dt.datetime,
    actor: str,
    progress: Progress | None = None,
    render_briefing: bool = True,
) -> dict[str, Any]:
    """Write the pack to `out`; returns the signed manifest's payload. The export is audited first."""
    from collector.reports import briefing, figures
    from collector.reports.periods import month_number

    check_request(request, now.date(), config.retention_days)
    report: Progress = progress or (lambda _what, _n, _total: None)
    with write_tx(engine) as connection:
        audit.record(connection, actor, "evidence.export", str(out.name), request.parameters(), now)
    start = dt.datetime.combine(request.first_day, dt.time())
    end = common.end_of(request.end)
    year_starts = month_number(config.briefing.year_starts)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    summary: dict[str, Any] = {}
    directory = Path(tempfile.mkdtemp(prefix=".rampart-evidence-", dir=out.parent))
    try:
        files = Files(directory)
        with read_tx(engine) as connection, read_tx(engine) as lookups:
            catalog = _catalog(connection)
            checks = (
                {k for k, v in catalog.items() if request.framework in (v.get("frameworks") or {})}
                if request.framework
                else None
            )
            # How many results to expect, from the counters (the whole fleet: a filter only makes it fewer).
            expected = None if request.group or request.framework else _expected_results(connection, request.end)
            report("results", 0, expected)
            at_ms = int(end.replace(tzinfo=dt.UTC).timestamp() * 1000)
            counts = write_results(files, result_rows(connection, lookups, request, end), at_ms, report, expected)
            summary["results"] = sum(sum(v.values()) for v in counts.values())
            report("changes", 0, None)
            summary["changes"] = write_changes(files, connection, request, start, end, checks, report)
            write_policies(files, connection, end)
            write_waivers(files, connection, end)
            summary["audit_entries"] = write_audit_log(files, connection, start, end)
            summary["agents"] = len(write_agents(files, connection, request, end))
            if request.with_reports:
                report("signed reports", 0, None)
                summary["signed_reports"] = write_reports(files, connection, request, start, end, report)
            title = (
                f"Rampart evidence as at the end of {request.end.isoformat()}"
                if not request.start
                else f"Rampart evidence from {request.first_day.isoformat()} to {request.end.isoformat()}"
            )
            files.write_bytes(
                "oscal/assessment-results.json",
                oscal.validated_json(
                    oscal.document(
                        title=title, start=start, end=end, now=now, checks=catalog, counts=counts,
                        frameworks={request.framework} if request.framework else None,
                        pack_id=f"{title}/{now.isoformat()}",
                    )
                ).encode(),
            )  # fmt: skip
            if render_briefing:
                report("briefing", 0, None)
                try:
                    data = figures.gather(
                        connection, period=request.period(year_starts), group=request.group, config=config, now=now
                    )
                except common.QueryError as exc:
                    raise EvidenceError(exc.code, exc.message) from None
                files.write_bytes("briefing.pdf", briefing.render(data, "pdf"))
        public = wire.public_key_text(key)
        files.write_bytes(
            "README.txt",
            README.format(
                summary=title + (f", group {request.group}" if request.group else "")
                + (f", framework {request.framework}" if request.framework else "") + ".",
                name=out.name, fingerprint=fingerprint(key),
            ).encode(),
        )  # fmt: skip
        payload = {
            "format": FORMAT,
            "created_at": iso(now),
            "created_by": actor,
            "rampart_version": __version__,
            "parameters": request.parameters(),
            "collector": {"public_key": public, "fingerprint": fingerprint(key), "key_id": wire.key_id(key)},
            "counts": summary,
        }
        report("zip", 0, None)
        return _zip(files, out, lambda p: wire.sign_document(key, p), payload)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def read_csv(data: bytes) -> list[dict[str, str]]:
    """A pack's CSV read back (tests and tools): the csv module's own reader."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
