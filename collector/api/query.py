"""The compliance API: summary, hosts, one host, one check, trends, exports and the audit log."""

from __future__ import annotations

import datetime as dt
import io
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Connection

from checks import wire
from checks.safetext import SafeDictWriter
from collector.api.auth import audit_access, export_access, read_access
from collector.api.errors import API_ERRORS, ApiError, error_responses
from collector.api.state import AppState
from collector.storage import audit
from collector.storage.engine import read_tx, write_tx
from collector.storage.history import RETIRED
from collector.storage.ingest import evaluated_at_sql
from collector.storage.models import agents, iso, latest_results, reports, result_intervals, subjects
from collector.storage.queries import checks as check_view
from collector.storage.queries import common
from collector.storage.queries import host as host_view
from collector.storage.queries import hosts as hosts_view
from collector.storage.queries import summary as summary_view
from collector.storage.queries import trends as trend_view
from collector.storage.queries.common import Filters, QueryError
from collector.storage.users import Caller

router = APIRouter(prefix="/api/v1", responses=API_ERRORS, tags=["compliance"])
T = TypeVar("T")
TEXT: dict[str, Any] = {"schema": {"type": "string"}}  # a media type answered as text, not JSON

AsOf = Annotated[dt.date | None, Query(description="the state at the end of this day (UTC), YYYY-MM-DD")]
Group = Annotated[str | None, Query(description="only subjects in this group")]
Policy = Annotated[str | None, Query(description="only this policy id")]
Limit = Annotated[int, Query(ge=1, le=1000)]
# Beyond a database's integers (2^63 made SQLite fail) and beyond any list here.
Offset = Annotated[int, Query(ge=0, le=common.MAX_OFFSET)]
StatusName = Literal["pass", "fail", "error", "not_applicable", "waived"]


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.rampart
    return state


def reading(request: Request, work: Callable[[Connection, AppState], T], as_of: dt.date | None = None) -> T:
    state = state_of(request)
    try:
        common.check_as_of(as_of, state.now().date(), state.config.retention_days)
        with read_tx(state.engine) as connection:
            return work(connection, state)
    except QueryError as exc:
        status = {"not_found": 404, "ambiguous": 409}.get(exc.code, 400)
        raise ApiError(status, exc.code, exc.message) from None


def _stale_after(state: AppState) -> dt.timedelta:
    return dt.timedelta(hours=state.config.stale_after_hours)


@router.get("/summary", summary="Compliance overall and by policy, group, check and framework control")
def summary(
    request: Request,
    _caller: Annotated[Caller, Depends(read_access)],
    as_of: AsOf = None,
    group: Group = None,
    policy: Policy = None,
) -> dict[str, Any]:
    return reading(
        request,
        lambda c, s: summary_view.summary(
            c, now=s.now(), stale_after=_stale_after(s), as_of=as_of, filters=Filters(group, policy)
        ),
        as_of,
    )


@router.get("/hosts", summary="Hosts with last contact, stale flag and result counts")
def hosts(
    request: Request,
    _caller: Annotated[Caller, Depends(read_access)],
    group: Group = None,
    stale: Annotated[bool, Query(description="only stale hosts")] = False,
    search: Annotated[
        str | None, Query(max_length=common.MAX_SEARCH, description="part of a host name or agent id (literal)")
    ] = None,
    include_revoked: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
    as_of: AsOf = None,
) -> dict[str, Any]:
    return reading(
        request,
        lambda c, s: hosts_view.hosts(
            c,
            now=s.now(),
            stale_after=_stale_after(s),
            group=group,
            stale_only=stale,
            search=search,
            include_revoked=include_revoked,
            limit=limit,
            offset=offset,
            as_of=as_of,
        ),
        as_of,
    )


@router.get("/hosts/{host}", responses=error_responses(404, 409), summary="One host's results with the observed facts")
def host(
    request: Request,
    host: str,
    _caller: Annotated[Caller, Depends(read_access)],
    as_of: AsOf = None,
    status: StatusName | None = None,
) -> dict[str, Any]:
    return reading(
        request,
        lambda c, s: host_view.host(c, host, now=s.now(), stale_after=_stale_after(s), as_of=as_of, status=status),
        as_of,
    )


@router.get(
    "/checks/{check_id}",
    responses=error_responses(404, 409),
    summary="One check: counts and the subjects in a status (default: failing)",
)
def check(
    request: Request,
    check_id: str,
    _caller: Annotated[Caller, Depends(read_access)],
    policy: Policy = None,
    status: StatusName = "fail",
    as_of: AsOf = None,
    group: Group = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return reading(
        request,
        lambda c, s: check_view.check(
            c, check_id, policy_id=policy, status=status, as_of=as_of, group=group, limit=limit, offset=offset
        ),
        as_of,
    )


@router.get("/trends", summary="Compliance at the end of each day, week or month")
def trends(
    request: Request,
    _caller: Annotated[Caller, Depends(read_access)],
    period: Literal["day", "week", "month"] = "day",
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    group: Group = None,
    policy: Policy = None,
    check: Annotated[str | None, Query(description="only this check id")] = None,
) -> dict[str, Any]:
    state = state_of(request)
    try:
        first, last = trend_view.trend_range(period, start, end, state.now().date(), state.config.retention_days)
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    return reading(
        request,
        lambda c, s: trend_view.trends(
            c, period=period, start=first, end=last, filters=Filters(group, policy), check_id=check
        ),
    )


# --- exports (auditor, admin) --------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "subject_kind",
    "subject_id",
    "subject_name",
    "group",
    "policy",
    "check",
    "status",
    "since",
    "until",
    "policy_hash",
    "report_id",
    "severity",
    "title",
    "waived_status",
    "waiver_id",
    "evaluated_at",
    "reason",
    "observed",
)


def _export_rows(
    state: AppState, as_of: dt.date | None, group: str | None, policy: str | None
) -> Iterator[dict[str, Any]]:
    subject_columns = (
        subjects.c.kind.label("subject_kind"),
        subjects.c.ext_id.label("subject_id"),
        subjects.c.name.label("subject_name"),
        subjects.c.group_name.label("group"),
    )
    if as_of is None:
        latest = latest_results.c
        query = sa.select(
            *subject_columns,
            latest.policy_id.label("policy"),
            latest.check_id.label("check"),
            latest.status,
            latest.since,
            sa.null().label("until"),
            latest.policy_hash,
            latest.report_id,
            latest.severity,
            latest.title,
            latest.waived_status,
            latest.waiver_id,
            evaluated_at_sql(latest_results, subjects).label("evaluated_at"),
            latest.reason,
            latest.observed,
        ).join(subjects, subjects.c.id == latest.subject_id)
        query = query.where(latest.status != RETIRED)  # what no longer counts is history, kept as at its dates
        policy_column = latest.policy_id
    else:
        moment = common.end_of(as_of)
        intervals = result_intervals.c
        query = (
            sa.select(
                *subject_columns,
                intervals.policy_id.label("policy"),
                intervals.check_id.label("check"),
                intervals.status,
                intervals.valid_from.label("since"),
                intervals.valid_to.label("until"),
                intervals.policy_hash,
                intervals.report_id,
            )
            .join(subjects, subjects.c.id == intervals.subject_id)
            .where(intervals.valid_from < moment, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment))
        )
        policy_column = intervals.policy_id
    if group:
        query = query.where(subjects.c.group_name == group)
    if policy:
        query = query.where(policy_column == policy)
    with read_tx(state.engine) as connection:
        for row in connection.execution_options(yield_per=2000).execute(query.order_by(subjects.c.id, policy_column)):
            record = dict(row._mapping)
            for name in ("since", "until", "evaluated_at"):
                if isinstance(record.get(name), dt.datetime):
                    record[name] = iso(record[name])
            yield record


@router.get(
    "/export/results",
    summary="Every result (now or as at a date) as CSV or JSON lines; audited",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": TEXT, "application/x-ndjson": TEXT}}},
)
def export_results(
    request: Request,
    caller: Annotated[Caller, Depends(export_access)],
    format: Literal["csv", "jsonl"] = "csv",
    as_of: AsOf = None,
    group: Group = None,
    policy: Policy = None,
) -> StreamingResponse:
    state = state_of(request)
    try:
        common.check_as_of(as_of, state.now().date(), state.config.retention_days)
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    with write_tx(state.engine) as connection:
        audit.record(
            connection,
            f"user:{caller.user}",
            "export.results",
            format,
            {"as_of": as_of.isoformat() if as_of else None, "group": group, "policy": policy},
        )

    def as_csv() -> Iterator[str]:
        buffer = io.StringIO()
        writer = SafeDictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for index, record in enumerate(_export_rows(state, as_of, group, policy)):
            if record.get("observed") is not None:
                record["observed"] = json.dumps(record["observed"], sort_keys=True)
            writer.writerow(record)
            if index % 500 == 499:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    def as_jsonl() -> Iterator[str]:
        for record in _export_rows(state, as_of, group, policy):
            yield json.dumps(record, default=str) + "\n"

    stamp = (as_of or state.now().date()).isoformat()
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        as_csv() if format == "csv" else as_jsonl(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="rampart-results-{stamp}.{format}"'},
    )


@router.get(
    "/reports/{report_id}",
    responses=error_responses(404),
    summary="A report as the agent signed it, with its signature checked again",
)
def report(request: Request, report_id: str, caller: Annotated[Caller, Depends(export_access)]) -> dict[str, Any]:
    state = state_of(request)
    with write_tx(state.engine) as connection:
        row = connection.execute(
            sa.select(reports, agents.c.public_key)
            .join(agents, agents.c.agent_id == reports.c.agent_id)
            .where(reports.c.report_id == report_id)
        ).first()
        if row is None:
            raise ApiError(404, "not_found", f"no report {report_id!r}")
        audit.record(connection, f"user:{caller.user}", "export.report", report_id)
    body = zlib.decompress(row.body_zlib)
    signed = wire.SignedHeaders(
        row.agent_id, row.signed_timestamp, row.content_sha256, wire.b64url_decode(row.signature)
    )
    try:
        wire.verify_request(wire.load_public_key(row.public_key), signed, row.signed_method, row.signed_path, body)
        verified, problem = True, None
    except wire.WireError as exc:
        verified, problem = False, exc.message
    return {
        "report_id": row.report_id,
        "agent_id": row.agent_id,
        "received_at": iso(row.received_at),
        "signature": {
            "method": row.signed_method,
            "path": row.signed_path,
            "timestamp": row.signed_timestamp,
            "content_sha256": row.content_sha256,
            "value": row.signature,
            "agent_public_key": row.public_key,
            "verified": verified,
            "problem": problem,
        },
        "body": body.decode("utf-8"),
    }


@router.get("/audit", summary="Who changed or exported what, and when (newest first)")
def audit_log(
    request: Request,
    _caller: Annotated[Caller, Depends(audit_access)],
    since: Annotated[dt.datetime | None, Query(description="ISO 8601, UTC")] = None,
    actor: str | None = None,
    action: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    if since is not None and since.tzinfo is not None:
        try:
            since = since.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00: after the last instant in UTC
            raise ApiError(400, "bad_request", f"since {since.isoformat()} is out of range in UTC") from None
    entries = reading(
        request, lambda c, s: audit.entries(c, since=since, actor=actor, action=action, limit=limit, offset=offset)
    )
    return {"limit": limit, "offset": offset, "entries": entries}
