"""The pages that read: overview, hosts, a host, checks, a check, the tenant, Azure, the audit log, downloads.

Each filtered view is a GET with its filters in the query string (a stable URL to share), and each table
downloads as CSV with `format=csv` added to the same URL.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection
from starlette.routing import NoMatchFound

from collector.api.state import AppState
from collector.dashboard import data, overview
from collector.dashboard.downloads import csv_response, wants_csv
from collector.dashboard.render import page
from collector.dashboard.session import can_audit, can_export, can_read, state_of
from collector.security import Permission, allowed
from collector.storage import audit
from collector.storage.engine import read_tx
from collector.storage.policy_texts import check_texts
from collector.storage.queries import checks as check_view
from collector.storage.queries import common
from collector.storage.queries import host as host_view
from collector.storage.queries import hosts as hosts_view
from collector.storage.queries import summary as summary_view
from collector.storage.queries.common import QueryError
from collector.storage.sessions import SessionUser

router = APIRouter(include_in_schema=False)
Reader = Annotated[SessionUser, Depends(can_read)]
Text = Annotated[str, Query(max_length=200)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def _stale_after(state: AppState) -> dt.timedelta:
    return dt.timedelta(hours=state.config.stale_after_hours)


def _read(state: AppState, work: Any) -> Any:
    with read_tx(state.engine) as connection:
        return work(connection)


def _not_found(request: Request, message: str) -> Response:
    return page(request, "error.html", {"title": "Not found", "message": message}, status=404)


def may(user: SessionUser, permission: Permission) -> bool:
    return allowed(user.role, permission)


# --- overview ------------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, user: Reader) -> Response:
    state = state_of(request)
    now = state.now()

    def work(connection: Connection) -> dict[str, Any]:
        return overview.build(connection, state.config, now=now, stale_after=_stale_after(state))

    context = _read(state, work)
    return page(request, "overview.html", {"title": "Overview", **context})


# --- hosts ---------------------------------------------------------------------------------------------


@router.get("/hosts")
def hosts(
    request: Request,
    user: Reader,
    q: Text = "",
    group: Text = "",
    os: Text = "",
    status: Text = "",
    stale: Text = "",
    revoked: Text = "",
    sort: Text = "name",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    format: Text = "",
) -> Response:
    state = state_of(request)
    query = data.HostQuery(
        search=q.strip(),
        group=group,
        os=os,
        status=status if status in data.HOST_STATUSES else "",
        stale=stale == "yes",
        revoked=revoked == "yes",
        sort=sort if sort in data.HOST_SORTS else "name",
        page=page_number,
    )
    now = state.now()
    if wants_csv(format):
        engine_rows = _stream(
            state, lambda c: data.host_rows_for_export(c, query, now=now, stale_after=_stale_after(state))
        )
        header = ("hostname", "agent_id", "group", "os", "last_seen", "stale", "revoked")
        return csv_response("rampart-hosts.csv", header, ([row[k] for k in header] for row in engine_rows))

    def work(connection: Connection) -> dict[str, Any]:
        found = data.host_page(connection, query, now=now, stale_after=_stale_after(state))
        return {**found, "options": data.host_filter_options(connection)}

    found = _read(state, work)
    last_page = None if found["total"] is None else max(1, -(-found["total"] // query.per_page))
    context = {
        "title": "Hosts",
        "query": query,
        "statuses": data.HOST_STATUSES,
        "sorts": data.HOST_SORTS,
        "csv_url": "/hosts?" + urlencode({**query.params(page=1), "format": "csv"}),
        "page_url": lambda n: "/hosts?" + urlencode(query.params(page=n)),
        "sort_url": lambda s: "/hosts?" + urlencode(query.params(sort=s, page=1)),
        "last_page": last_page,
        "has_next": found["more"],
        **found,
    }
    return page(request, "hosts.html", context)


def _stream(state: AppState, rows_of: Any) -> Any:
    """Rows read in batches inside one read transaction, as the response is sent."""

    def generate() -> Any:
        with read_tx(state.engine) as connection:
            yield from rows_of(connection)

    return generate()


@router.get("/hosts/{agent_id}")
def host(request: Request, agent_id: str, user: Reader, status: Text = "", format: Text = "") -> Response:
    state = state_of(request)
    now = state.now()

    def work(connection: Connection) -> dict[str, Any]:
        found = host_view.host(connection, agent_id, now=now, stale_after=_stale_after(state))
        agent = hosts_view.find_host(connection, agent_id)
        for result in found["results"]:
            texts = check_texts.get(connection, result["policy"], result.get("policy_hash"))
            result.update(texts.get(result["check"], {}))
        history = data.host_history(connection, agent.subject_id)
        return {**found, "history": history}

    try:
        found = _read(state, work)
    except QueryError as exc:
        return _not_found(request, exc.message)
    order = {"fail": 0, "error": 1, "waived": 2, "pass": 3, "not_applicable": 4}
    results = sorted(found["results"], key=lambda r: (order.get(r["status"], 9), r["policy"], r["check"]))
    if status:
        results = [r for r in results if r["status"] == status]
    if wants_csv(format):
        header = ("policy", "check", "title", "severity", "status", "since", "reason", "observed", "expectation")
        return csv_response(
            f"rampart-host-{found['host']['agent_id']}.csv", header, ([r.get(k) for k in header] for r in results)
        )
    context = {
        "title": found["host"]["hostname"] or found["host"]["agent_id"],
        "host": found["host"],
        "score": found["score"],
        "results": results,
        "history": found["history"],
        "status": status,
        "can_waive": may(user, Permission.WAIVE),
        "can_admin": may(user, Permission.ADMIN),
        "csv_url": f"/hosts/{found['host']['agent_id']}?" + urlencode({"status": status, "format": "csv"}),
    }
    return page(request, "host.html", context)


# --- checks --------------------------------------------------------------------------------------------


@router.get("/checks")
def checks(request: Request, user: Reader, group: Text = "", policy: Text = "", format: Text = "") -> Response:
    state = state_of(request)
    now = state.now()
    filters = common.Filters(group or None, policy or None)

    def work(connection: Connection) -> dict[str, Any]:
        found = summary_view.summary(connection, now=now, stale_after=_stale_after(state), filters=filters)
        data.with_policy_titles(connection, found["by_check"])
        return found

    summary = _read(state, work)
    rows = summary["by_check"]
    if wants_csv(format):
        header = ("policy", "check", "title", "severity", "compliance", "pass", "fail", "error", "waived")
        return csv_response("rampart-checks.csv", header, ([r.get(k) for k in header] for r in rows))
    context = {
        "title": "Checks",
        "checks": rows,
        "group": group,
        "policy": policy,
        "groups": [g["group"] for g in summary["by_group"]],
        "policies": [p["policy"] for p in summary["by_policy"]],
        "csv_url": "/checks?"
        + urlencode({k: v for k, v in (("group", group), ("policy", policy)) if v} | {"format": "csv"}),
    }
    return page(request, "checks.html", context)


@router.get("/checks/{policy_id}/{check_id}")
def check(
    request: Request,
    policy_id: str,
    check_id: str,
    user: Reader,
    status: Text = "fail",
    group: Text = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    format: Text = "",
) -> Response:
    state = state_of(request)
    per_page = 50
    status = status if status in common.STATUSES else "fail"

    def work(connection: Connection, limit: int, offset: int) -> dict[str, Any]:
        found = check_view.check(
            connection, check_id, policy_id=policy_id, status=status, group=group or None, limit=limit, offset=offset
        )
        texts = check_texts.get(connection, policy_id, found.get("policy_hash"))
        return {**found, **texts.get(check_id, {})}

    try:
        if wants_csv(format):
            found = _read(state, lambda c: work(c, 100_000, 0))
        else:
            found = _read(state, lambda c: work(c, per_page, (page_number - 1) * per_page))
    except QueryError as exc:
        return _not_found(request, exc.message)
    if not found["title"] and not found["score"]["total"]:
        return _not_found(request, f"No check {check_id!r} in policy {policy_id!r}.")
    if wants_csv(format):
        header = ("name", "id", "kind", "group", "since", "reason", "observed")
        return csv_response(
            f"rampart-check-{check_id}-{status}.csv", header, ([s.get(k) for k in header] for s in found["subjects"])
        )
    base = {"status": status, "group": group}
    in_status = found["score"].get(status, 0)
    context = {
        "title": found["title"] or check_id,
        "check": found,
        "status": status,
        "group": group,
        "page_number": page_number,
        "has_next": page_number * per_page < in_status,
        "last_page": max(1, -(-in_status // per_page)),
        "page_url": lambda n: f"/checks/{policy_id}/{check_id}?" + urlencode({**base, "page": n}),
        "status_url": lambda s: f"/checks/{policy_id}/{check_id}?" + urlencode({**base, "status": s}),
        "csv_url": f"/checks/{policy_id}/{check_id}?" + urlencode({**base, "format": "csv"}),
        "can_waive": may(user, Permission.WAIVE),
        "statuses": common.STATUSES,
    }
    return page(request, "check.html", context)


# --- the Microsoft 365 tenant and Azure ----------------------------------------------------------------


@router.get("/tenant")
def tenant(request: Request, user: Reader, format: Text = "") -> Response:
    state = state_of(request)
    today = state.now().date()

    def work(connection: Connection) -> dict[str, Any]:
        tenants = data.cloud_subjects(connection, "tenant")
        results = data.subject_results(connection, [t["subject_id"] for t in tenants])
        coverage = next((r for r in results if r["check"] == "mfa-coverage"), None)
        chart = None
        if coverage is not None and tenants:
            chart = data.mfa_chart(connection, tenants[0]["subject_id"], coverage["policy"], today)
        return {"tenants": tenants, "results": results, "coverage": coverage, "mfa_chart": chart}

    found = _read(state, work)
    coverage = found["coverage"]
    facts = (coverage or {}).get("observed") or {}
    without = list(facts.get("users_without_mfa") or []) if isinstance(facts, dict) else []
    without.sort(key=lambda u: (not u.get("is_admin"), str(u.get("user_principal_name") or "")))
    if wants_csv(format):
        header = ("user_principal_name", "display_name", "is_admin", "methods_registered")
        return csv_response("rampart-users-without-mfa.csv", header, ([u.get(k) for k in header] for u in without))
    context = {
        "title": "Microsoft 365 tenant",
        **found,
        "facts": facts if isinstance(facts, dict) else {},
        "without": without,
        "csv_url": "/tenant?format=csv",
    }
    return page(request, "tenant.html", context)


@router.get("/cloud")
def cloud(request: Request, user: Reader, status: Text = "", format: Text = "") -> Response:
    state = state_of(request)

    def work(connection: Connection) -> dict[str, Any]:
        resources = data.cloud_subjects(connection, "cloud_resource")
        findings = data.subject_results(connection, [r["subject_id"] for r in resources], status or None)
        return {"resources": resources, "findings": findings}

    found = _read(state, work)
    if wants_csv(format):
        header = ("subject", "subject_id", "policy", "check", "title", "severity", "status", "since", "reason")
        return csv_response("rampart-azure.csv", header, ([f.get(k) for k in header] for f in found["findings"]))
    context = {
        "title": "Azure resources",
        **found,
        "status": status,
        "statuses": common.STATUSES,
        "csv_url": "/cloud?" + urlencode({k: v for k, v in (("status", status),) if v} | {"format": "csv"}),
    }
    return page(request, "cloud.html", context)


# --- the audit log and downloads -----------------------------------------------------------------------


@router.get("/audit")
def audit_log(
    request: Request,
    user: Annotated[SessionUser, Depends(can_audit)],
    actor: Text = "",
    action: Text = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    format: Text = "",
) -> Response:
    state = state_of(request)
    per_page = 50
    if wants_csv(format):

        def everything(connection: Connection) -> Any:
            offset = 0
            while True:
                batch = audit.entries(connection, actor=actor or None, action=action or None, limit=1000, offset=offset)
                yield from batch
                if len(batch) < 1000:
                    return
                offset += 1000

        header = ("at", "actor", "action", "target", "details")
        rows = _stream(state, everything)
        return csv_response("rampart-audit.csv", header, ([e.get(k) for k in header] for e in rows))
    entries = _read(
        state,
        lambda c: audit.entries(
            c, actor=actor or None, action=action or None, limit=per_page + 1, offset=(page_number - 1) * per_page
        ),
    )
    base = {k: v for k, v in (("actor", actor), ("action", action)) if v}
    context = {
        "title": "Audit log",
        "entries": entries[:per_page],
        "actor": actor,
        "action": action,
        "page_number": page_number,
        "has_next": len(entries) > per_page,
        "page_url": lambda n: "/audit?" + urlencode({**base, "page": n}),
        "csv_url": "/audit?" + urlencode({**base, "format": "csv"}),
    }
    return page(request, "audit.html", context)


@router.get("/downloads")
def downloads(request: Request, user: Annotated[SessionUser, Depends(can_export)]) -> Response:
    context = {
        "title": "Downloads",
        "briefing": _has_route(request, "briefing_document"),
        "evidence": _has_route(request, "evidence_pack"),
        "today": state_of(request).now().date().isoformat(),
    }
    return page(request, "downloads.html", context)


def _has_route(request: Request, name: str) -> bool:
    """Whether this collector serves the API route of that name (the reports may be left out of a build)."""
    try:
        request.app.url_path_for(name)
    except NoMatchFound:
        return False
    return True
