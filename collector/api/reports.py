"""The briefing and the evidence pack over HTTP, for the admin and auditor roles; both audited.

`GET /api/v1/briefing` answers HTML or PDF by the Accept header; `GET /api/v1/evidence` streams the
signed zip, built in a temporary file next to nothing else (memory stays bounded) and removed once sent.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from collector.api.auth import export_access
from collector.api.errors import API_ERRORS, ApiError, error_responses
from collector.api.query import state_of
from collector.storage import audit
from collector.storage.engine import read_tx, write_tx
from collector.storage.queries.common import QueryError
from collector.storage.users import Caller

router = APIRouter(prefix="/api/v1", responses=API_ERRORS, tags=["reports"])
Day = Annotated[dt.date | None, Query(description="YYYY-MM-DD")]
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
FrameworkName = Literal["cyber_essentials", "ncsc_caf", "cis_controls_v8"]


def _wanted_format(accept: str) -> str:
    """html or pdf from an Accept header (absent or */*: html)."""
    choices = []
    for part in (accept or "*/*").split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        choices.append((quality, media.strip().lower()))
    for _quality, media in sorted(choices, key=lambda c: -c[0]):
        if _quality <= 0:
            continue
        if media in ("text/html", "text/*", "*/*"):
            return "html"
        if media in ("application/pdf", "application/*"):
            return "pdf"
    raise ApiError(406, "not_acceptable", "the briefing is text/html or application/pdf: send one in Accept")


@router.get(
    "/briefing",
    summary="The audit-committee briefing for a quarter or a period, as HTML or PDF (Accept); audited",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}, "application/pdf": BINARY}},
        **error_responses(406),
    },
)
def briefing_document(
    request: Request,
    caller: Annotated[Caller, Depends(export_access)],
    quarter: Annotated[str | None, Query(description="a quarter of the financial year, e.g. 2026-Q3")] = None,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    group: Annotated[str | None, Query(description="only hosts in this group")] = None,
) -> Response:
    from collector.reports import briefing, figures, periods

    state = state_of(request)
    fmt = _wanted_format(request.headers.get("accept", ""))
    moment = state.now()
    try:
        period = periods.choose(
            quarter_label=quarter,
            start=start,
            end=end,
            today=moment.date(),
            year_starts=periods.month_number(state.config.briefing.year_starts),
        )
        with read_tx(state.engine) as connection:
            data = figures.gather(connection, period=period, group=group, config=state.config, now=moment)
    except periods.PeriodError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    document = briefing.render(data, fmt)
    with write_tx(state.engine) as connection:
        audit.record(
            connection,
            f"user:{caller.user}",
            "briefing.create",
            period.label,
            {"format": fmt, "group": group, "from": period.start.isoformat(), "to": period.end.isoformat()},
            moment,
        )
    name = f"rampart-briefing-{period.label.replace(' ', '_')}.{fmt}"
    return Response(
        document,
        media_type=briefing.FORMATS[fmt] + ("; charset=utf-8" if fmt == "html" else ""),
        headers={"Content-Disposition": f'{"inline" if fmt == "html" else "attachment"}; filename="{name}"'},
    )


@router.get(
    "/evidence",
    summary="The signed evidence pack (zip) for a period or as at a date; audited",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": BINARY}}},
)
def evidence_pack(
    request: Request,
    caller: Annotated[Caller, Depends(export_access)],
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    as_of: Day = None,
    framework: FrameworkName | None = None,
    group: Annotated[str | None, Query(description="only subjects and agents in this group")] = None,
    with_reports: bool = False,
) -> FileResponse:
    from collector.reports import evidence
    from collector.reports.evidence_files import ExportRequest

    state = state_of(request)
    moment = state.now()
    if as_of and (start or end):
        raise ApiError(400, "bad_request", "give either as_of or from/to, not both")
    if bool(start) != bool(end):
        raise ApiError(400, "bad_request", "give both from and to")
    wanted = ExportRequest(
        end=end or as_of or moment.date(), start=start, framework=framework, group=group, with_reports=with_reports
    )
    directory = Path(tempfile.mkdtemp(prefix="rampart-pack-"))
    stamp = wanted.end.isoformat() if not start else f"{wanted.first_day.isoformat()}_{wanted.end.isoformat()}"
    out = directory / f"rampart-evidence-{stamp}.zip"

    def remove() -> None:
        out.unlink(missing_ok=True)
        os.rmdir(directory)

    try:
        evidence.export(
            state.engine, state.config, state.signing_key, wanted, out, now=moment, actor=f"user:{caller.user}"
        )
    except evidence.EvidenceError as exc:
        remove()
        raise ApiError(400, exc.code, exc.message) from None
    except BaseException:
        remove()
        raise
    return FileResponse(out, media_type="application/zip", filename=out.name, background=BackgroundTask(remove))
