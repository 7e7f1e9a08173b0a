"""One host: what it is and each of its results, now (the latest rows, as reported) or as at the end of a
day (the intervals open then, with what was observed read back from the signed report that began each)."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.ingest import evaluated_at_sql
from collector.storage.models import iso, latest_results, reports, subjects
from collector.storage.queries.common import catalog, empty_counts, score
from collector.storage.queries.hosts import find_host
from collector.storage.queries.statuses import Held, held_at
from collector.storage.remediation import remediations


def _held_query(held: Held, subject_id: int, status: str | None) -> sa.Select[Any]:
    query = sa.select(held.table).where(held.subject_id == subject_id, *held.conditions)
    if status:
        query = query.where(held.status == status)
    return query.order_by(held.policy_id, held.check_id)


def observed_from_reports(
    connection: Connection, wanted: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], Any]:
    """(report_id, policy, check) -> the result as it was reported, read back from the kept raw reports."""
    by_report: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for report_id, policy_id, check_id in wanted:
        by_report[report_id].add((policy_id, check_id))
    found: dict[tuple[str, str, str], Any] = {}
    if not by_report:
        return found
    rows = connection.execute(
        sa.select(reports.c.report_id, reports.c.body_zlib).where(reports.c.report_id.in_(list(by_report)))
    )
    for row in rows:
        body = json.loads(zlib.decompress(row.body_zlib))
        for result in body.get("results", []):
            key = ((result.get("policy") or {}).get("id"), result.get("check_id"))
            if key in by_report[row.report_id]:
                found[(row.report_id, key[0], key[1])] = result
    return found


def host(
    connection: Connection,
    key: str,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    as_of: dt.date | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    agent = find_host(connection, key)
    checks_known = catalog(connection)
    results: list[dict[str, Any]] = []
    held = held_at(as_of)
    if as_of is None:
        # An unchanged result was last evaluated at the host's last report (the store rewrote only what changed).
        now_query = (
            _held_query(held, agent.subject_id, status)
            .add_columns(evaluated_at_sql(latest_results, subjects).label("evaluated"))
            .join(subjects, subjects.c.id == latest_results.c.subject_id)
        )
        for row in connection.execute(now_query):
            entry = checks_known.get((row.policy_id, row.check_id))
            results.append(
                {
                    "policy": row.policy_id,
                    "check": row.check_id,
                    "title": row.title,
                    "severity": row.severity,
                    "status": row.status,
                    "waived_status": row.waived_status,
                    "waiver_id": row.waiver_id,
                    "reason": row.reason,
                    "observed": row.observed,
                    "expectation": row.expectation,
                    "since": iso(row.since),
                    "evaluated_at": iso(row.evaluated),
                    "policy_version": row.policy_version,
                    "policy_hash": row.policy_hash,
                    "report_id": row.report_id,
                    "frameworks": entry.frameworks if entry is not None else {},
                }
            )
    else:
        rows = list(connection.execute(_held_query(held, agent.subject_id, status)))
        reported = observed_from_reports(
            connection, [(r.report_id, r.policy_id, r.check_id) for r in rows if r.report_id]
        )
        for row in rows:
            entry = checks_known.get((row.policy_id, row.check_id))
            original = reported.get((row.report_id, row.policy_id, row.check_id)) or {}
            results.append(
                {
                    "policy": row.policy_id,
                    "check": row.check_id,
                    "title": entry.title if entry is not None else original.get("title", ""),
                    "severity": entry.severity if entry is not None else original.get("severity", ""),
                    "status": row.status,
                    "reason": original.get("reason", ""),
                    # What was observed when this status began (from the signed report kept as evidence).
                    "observed": original.get("observed"),
                    "expectation": original.get("expectation"),
                    "since": iso(row.valid_from),
                    "until": iso(row.valid_to),
                    "policy_hash": row.policy_hash,
                    "report_id": row.report_id,
                    "frameworks": entry.frameworks if entry is not None else {},
                }
            )
    counts = empty_counts()
    texts: dict[tuple[str, str | None], dict[str, str]] = {}  # one look-up per policy version, not per result
    for result in results:
        if result["status"] in counts:  # not `retired`: a revoked host's results no longer count
            counts[result["status"]] += 1
        # What to do about it, for what needs doing: a failure, or a check that could not be judged.
        result["remediation"] = None
        if result["status"] in ("fail", "error"):
            version = (result["policy"], result["policy_hash"])
            if version not in texts:
                texts[version] = remediations(connection, *version)
            result["remediation"] = texts[version].get(result["check"]) or None
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "host": {
            "agent_id": agent.agent_id,
            "hostname": agent.hostname,
            "group": agent.group_name,
            "os": agent.os,
            "os_version": agent.os_version,
            "agent_version": agent.agent_version,
            "facts": agent.host_facts,
            "enrolled_at": iso(agent.enrolled_at),
            "last_seen": iso(agent.last_seen),
            "last_report_at": iso(agent.last_report_at),
            "stale": agent.last_seen is None or agent.last_seen < now - stale_after,
            "revoked_at": iso(agent.revoked_at),
        },
        "score": score(counts),
        "results": results,
    }
