"""The evidence pack's results: every result in force at the end of the period, with the facts, expectation
and reason behind its status, written as CSV, JSON lines and OCSF events in one pass."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.policy.waiverfile import load_waiver_document
from checks.results import Subject, SubjectKind
from checks.safetext import SafeDictWriter
from collector.reports import ocsf
from collector.reports.evidence_files import BATCH, ExportRequest, Files, Progress, csv_value, jsonl
from collector.storage.models import check_catalog, iso, observations, reports, result_intervals, subjects, waivers

RESULT_COLUMNS = (
    "subject_kind", "subject_id", "subject_name", "group", "policy", "check", "title", "severity", "frameworks",
    "status", "waived_status", "waiver_id", "since", "policy_hash", "report_id", "facts_from", "reason",
    "expectation", "observed",
)  # fmt: skip


def catalog_entries(connection: Connection) -> dict[tuple[str, str], dict[str, Any]]:
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
    catalog = catalog_entries(facts)
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
            writer.writerow({k: csv_value(v) for k, v in row.items()})
            jsonl(json_stream, row)
            jsonl(ocsf_stream, ocsf.finding(row, at_ms))
            counts[(row["policy"], row["check"])][row["status"]] += 1
            if index % 5000 == 0:
                progress("results", index, expected)
    return {key: dict(value) for key, value in counts.items()}
