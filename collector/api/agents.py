"""The endpoints agents use (docs/protocol.md): enroll, checkin, policy and reports.

Before a body is read, in this order: the signature headers are present and well formed, the agent is
known and not revoked, its timestamp is within the allowed skew, and the declared length is within the
limit. Only then is the body read (never more than the limit), its digest and signature checked, and
only then is it parsed.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from checks import wire
from collector.api import bodies
from collector.api.errors import ApiError, error_responses
from collector.api.ratelimit import client_key, retry_after
from collector.api.state import AppState
from collector.storage import policies as policy_store
from collector.storage import registry
from collector.storage.ingest import ReportError, SignedEvidence, StoreOutcome, parse_report, store_agent_report
from collector.storage.registry import AgentAuth, AgentRevoked, BadHostFacts, BadToken
from collector.storage.report_codec import decode_report, encode

log = logging.getLogger("rampart.collector.agents")
# What any agent route can answer: a malformed or badly signed request, an unknown or revoked agent, a
# body too large or too slow, and 503 when the collector is overloaded or cannot reach its database.
router = APIRouter(prefix="/api/v1", tags=["agents"], responses=error_responses(400, 401, 403, 408, 413, 503))
REPORTS_PATH = "/api/v1/reports"
AGENT_PATHS = ("/api/v1/enroll", "/api/v1/checkin", "/api/v1/policy", REPORTS_PATH)


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.rampart
    return state


def _reject(state: AppState, status: int, code: str, message: str, **fields: Any) -> ApiError:
    state.metrics.rejected.labels(code).inc()
    headers = {}
    if "clock_skew_s" in fields:
        headers["X-Rampart-Clock-Skew"] = str(fields["clock_skew_s"])
    if "retry_after_s" in fields:
        headers["Retry-After"] = str(fields["retry_after_s"])
    # Most refusals come before the body is read: close rather than reuse a connection with a body in it.
    headers["Connection"] = "close"
    return ApiError(status, code, message, headers=headers, **fields)


def _signed_headers(state: AppState, request: Request) -> wire.SignedHeaders:
    try:
        return wire.parse_signed_headers(request.headers)
    except wire.WireError as exc:
        raise _reject(state, 401 if exc.code == "unsigned" else 400, exc.code, exc.message) from None


def _check_time(state: AppState, signed: wire.SignedHeaders) -> None:
    try:
        wire.check_timestamp(signed, max_skew_s=state.config.max_clock_skew_s)
    except wire.WireError as exc:
        raise _reject(state, 401, exc.code, exc.message, clock_skew_s=exc.clock_skew_s) from None


def _check_declared_length(state: AppState, request: Request) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise _reject(state, 400, "bad_request", "Content-Length is not a number") from None
    if length > state.config.max_body_bytes:
        raise _reject(
            state,
            413,
            "body_too_large",
            f"the body is {length} bytes; the limit is {state.config.max_body_bytes}",
            limit_bytes=state.config.max_body_bytes,
        )


async def _read_body(state: AppState, request: Request) -> bytes:
    limit = state.config.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _reject(state, 413, "body_too_large", f"the body exceeds {limit} bytes", limit_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@functools.lru_cache(maxsize=65536)
def _public_key(text: str) -> Ed25519PublicKey:
    """An agent's key, loaded once (it never changes for an agent id); a malformed one is not kept."""
    return wire.load_public_key(text)


def _verify(state: AppState, auth_key: str, signed: wire.SignedHeaders, request: Request, body: bytes) -> None:
    try:
        # The path as sent: the scope's (request.url would build the whole URL for it).
        wire.verify_request(_public_key(auth_key), signed, request.method, request.scope["path"], body)
    except wire.WireError as exc:
        raise _reject(state, 400 if exc.code == "bad_digest" else 401, exc.code, exc.message) from None


def _json_object(state: AppState, body: bytes, max_depth: int | None = bodies.MAX_JSON_DEPTH) -> dict[str, Any]:
    try:
        data = bodies.loads(body, max_depth)
    except bodies.BadJson as exc:
        raise _reject(state, 400, "bad_json", str(exc)) from None
    if not isinstance(data, dict):
        raise _reject(state, 400, "bad_json", "the body must be a JSON object")
    return data


async def _known_agent(state: AppState, signed: wire.SignedHeaders, *, cached: bool = False) -> AgentAuth:
    auth = state.agents.get(signed.agent_id) if cached else None
    if auth is None:
        auth = await state.read(lambda c: registry.authenticate(c, signed.agent_id))
        if auth is not None and not auth.revoked:
            state.agents.put(auth)
    if auth is None:
        raise _reject(state, 401, "unknown_agent", f"agent {signed.agent_id[:40]} is not enrolled here")
    if auth.revoked:
        raise _reject(state, 403, "agent_revoked", f"agent {auth.agent_id} has been revoked")
    return auth


async def _authenticated(state: AppState, request: Request, *, cached: bool = False) -> tuple[AgentAuth, bytes]:
    """The protocol's checks for a signed request from an enrolled agent; returns the agent and the body."""
    signed = _signed_headers(state, request)
    auth = await _known_agent(state, signed, cached=cached)
    _check_time(state, signed)
    _check_declared_length(state, request)
    body = await _read_body(state, request)
    _verify(state, auth.public_key, signed, request, body)
    request.state.actor = auth.agent_id
    return auth, body


def client_address(request: Request) -> str:
    """The client's address: the connection's peer, or what a trusted proxy said (collector/api/server.py)."""
    return request.client.host if request.client else ""


@router.post(
    "/enroll", status_code=201, summary="Enrol an agent (signed by its new key)", responses=error_responses(429)
)
async def enroll(request: Request) -> JSONResponse:
    state = state_of(request)
    if state.enroll_attempts is not None:
        wait = state.enroll_attempts.spend(client_key(client_address(request)))
        if wait:
            raise _reject(
                state,
                429,
                "rate_limited",
                f"too many enrolment attempts from this address; retry in {retry_after(wait)}s",
                retry_after_s=int(retry_after(wait)),
            )
    signed = _signed_headers(state, request)
    _check_time(state, signed)
    _check_declared_length(state, request)
    body = await _read_body(state, request)
    data = _json_object(state, body)
    token, public_key, host = data.get("token"), data.get("public_key"), data.get("host", {})
    if not isinstance(token, str) or not token:
        raise _reject(state, 400, "bad_request", "token must be the enrolment token, a string")
    if not isinstance(public_key, str):
        raise _reject(state, 400, "bad_public_key", "public_key must be the agent's Ed25519 key, base64url")
    try:
        key = wire.load_public_key(public_key)
    except (wire.WireError, ValueError) as exc:
        raise _reject(state, 400, "bad_public_key", f"public_key: {exc}") from None
    agent_id = wire.agent_id_for(key)
    if signed.agent_id != agent_id:
        raise _reject(
            state, 400, "agent_mismatch", "the agent id in the headers is not the one derived from public_key"
        )
    _verify(state, public_key, signed, request, body)
    request.state.actor = agent_id
    now = state.now()

    def work(connection: Any) -> tuple[registry.Enrolment, str]:
        enrolment = registry.enroll(
            connection, agent_id=agent_id, public_key=public_key, token=token, host=host, now=now
        )
        bundle = policy_store.bundle_for(
            connection,
            agent_id=agent_id,
            hostname=str(host.get("hostname", "")) if isinstance(host, dict) else "",
            group=enrolment.group,
            default_group=state.config.default_group,
            today=now.date(),
            with_documents=False,
        )
        return enrolment, bundle.etag

    try:
        enrolment, etag = await state.write(work)
    except BadToken:
        raise _reject(state, 401, "bad_token", "the enrolment token is unknown, used up, revoked or expired") from None
    except AgentRevoked:
        raise _reject(state, 403, "agent_revoked", f"agent {agent_id} has been revoked") from None
    except BadHostFacts as exc:
        raise _reject(state, 400, "bad_request", str(exc)) from None
    log.info("agent enrolled", extra={"agent_id": agent_id, "group": enrolment.group, "new": enrolment.created})
    return JSONResponse(
        {
            "agent_id": agent_id,
            "collector_public_key": wire.public_key_text(state.signing_key),
            "group": enrolment.group,
            "policy_etag": etag,
        },
        status_code=201,
    )


@router.post("/checkin", summary="Report host facts; learn the server time and the current policy ETag")
async def checkin(request: Request) -> dict[str, Any]:
    state = state_of(request)
    auth, body = await _authenticated(state, request)
    data = _json_object(state, body)
    host = data.get("host", {})
    now = state.now()

    def work(connection: Any) -> str | None:
        if not registry.checkin(connection, auth.agent_id, host, now):
            return None
        bundle = policy_store.bundle_for(
            connection,
            agent_id=auth.agent_id,
            hostname=str(host.get("hostname") or auth.hostname),
            group=auth.group,
            default_group=state.config.default_group,
            today=now.date(),
            with_documents=False,
        )
        return bundle.etag

    try:
        etag = await state.write(work)
    except BadHostFacts as exc:
        raise _reject(state, 400, "bad_request", str(exc)) from None
    if etag is None:
        raise _reject(state, 403, "agent_revoked", f"agent {auth.agent_id} has been revoked")
    return {"server_time": int(time.time()), "policy_etag": etag}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/").strip('"') for part in header.split(",")]
    return etag in candidates or "*" in candidates


@router.get(
    "/policy",
    summary="The agent's policy bundle, signed by the collector key",
    responses={304: {"description": "The bundle is still the one named in If-None-Match"}},
)
async def policy(request: Request) -> Response:
    state = state_of(request)
    auth, _body = await _authenticated(state, request)
    now = state.now()
    bundle = await state.read(
        lambda c: policy_store.bundle_for(
            c,
            agent_id=auth.agent_id,
            hostname=auth.hostname,
            group=auth.group,
            default_group=state.config.default_group,
            today=now.date(),
        )
    )
    headers = {"ETag": f'"{bundle.etag}"', "Cache-Control": "no-store"}
    if _etag_matches(request.headers.get("if-none-match"), bundle.etag):
        return Response(status_code=304, headers=headers)
    document = wire.sign_document(state.signing_key, bundle.payload(auth.agent_id, now))
    return JSONResponse(document, headers=headers)


def _admit(state: AppState, agent_id: str) -> None:
    """Take an ingest slot for a verified report, or refuse with 503 and Retry-After: when the process
    holds max_pending_ingest reports, or this agent max_pending_ingest_per_agent of them."""
    config = state.config
    pending = state.ingest_pending_by_agent
    if state.ingest_pending >= config.max_pending_ingest:
        state.metrics.overloaded.inc()
        raise _reject(
            state,
            503,
            "overloaded",
            f"the collector is storing {state.ingest_pending} reports; retry in {config.retry_after_s}s",
            retry_after_s=config.retry_after_s,
        )
    if pending.get(agent_id, 0) >= config.max_pending_ingest_per_agent:
        state.metrics.overloaded.inc()
        raise _reject(
            state,
            503,
            "agent_busy",
            f"this collector is already storing {pending[agent_id]} reports of this agent; "
            f"retry in {config.retry_after_s}s",
            retry_after_s=config.retry_after_s,
        )
    state.ingest_pending += 1
    pending[agent_id] = pending.get(agent_id, 0) + 1
    state.metrics.ingest_pending.inc()


def _release(state: AppState, agent_id: str) -> None:
    state.ingest_pending -= 1
    left = state.ingest_pending_by_agent[agent_id] - 1
    if left:
        state.ingest_pending_by_agent[agent_id] = left
    else:
        del state.ingest_pending_by_agent[agent_id]
    state.metrics.ingest_pending.dec()


@router.post(
    "/reports",
    summary="Deliver a signed report of results",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "Stored, or already stored: report_id, stored, duplicate, results, superseded, "
            "not_counted (results kept only in the raw report, by reason)"
        }
    },
)
async def reports(request: Request) -> Response:
    state = state_of(request)
    signed = _signed_headers(state, request)
    auth = await _known_agent(state, signed, cached=True)
    _check_time(state, signed)
    _check_declared_length(state, request)
    # The body is read and its signature checked before the report takes an ingest slot: an upload
    # that is slow, or that claims another agent's id, holds no slot.
    state.metrics.ingest_receiving.inc()
    try:
        body = await _read_body(state, request)
    finally:
        state.metrics.ingest_receiving.dec()
    _verify(state, auth.public_key, signed, request, body)
    request.state.actor = auth.agent_id
    _admit(state, auth.agent_id)
    try:
        fast = await state.fast_store()
        # The typed decoder takes what is plainly valid, on every database; anything else goes through
        # parse_report, which names what is wrong.
        try:
            parsed = decode_report(body, auth.agent_id)
        except RecursionError:  # nested too deeply for msgspec: json says so below, as a 400
            parsed = None
        if parsed is None:
            data = _json_object(state, body, max_depth=None)
            try:
                parsed = parse_report(data, auth.agent_id)
            except ReportError as exc:
                raise _reject(state, 400, exc.code, exc.message) from None
        evidence = SignedEvidence(
            method=request.method,
            path=request.scope["path"],
            timestamp=signed.timestamp,
            content_sha256=signed.content_sha256,
            signature=wire.b64url(signed.signature),
        )
        now = state.now()

        def work(connection: Any) -> StoreOutcome:
            return store_agent_report(
                connection,
                parsed,
                body,
                evidence,
                now=now,
                waivers=state.waivers.current,
                assignments=state.assignments.current,
            )

        started = time.perf_counter()
        try:
            if fast is not None:
                outcome = await state.in_store_thread(fast.store, parsed, body, evidence, now)
            else:
                outcome = await state.write(work, limiter=state.limiter())
        except AgentRevoked:
            state.agents.forget(auth.agent_id)
            raise _reject(state, 403, "agent_revoked", f"agent {auth.agent_id} has been revoked") from None
        state.metrics.ingest_seconds.observe(time.perf_counter() - started)
    finally:
        _release(state, auth.agent_id)
    state.metrics.reports.labels("duplicate" if outcome.duplicate else "stored").inc()
    state.metrics.results.inc(outcome.stored)
    state.metrics.status_changes.inc(outcome.changed)
    if outcome.not_counted:
        for reason, count in outcome.not_counted.items():
            state.metrics.not_counted.labels(reason).inc(count)
        # A misconfigured agent (or one making results up) shows in the log as well as in the metrics.
        log.info("results not counted", extra={"agent_id": auth.agent_id, "not_counted": outcome.not_counted})
    # Encoded here: the busiest route skips the framework's validation of a response it builds itself.
    answer = {
        "report_id": parsed.report_id,
        "stored": True,
        "duplicate": outcome.duplicate,
        "results": outcome.stored,
        "superseded": outcome.superseded,
        "not_counted": outcome.not_counted,
    }
    return Response(encode(answer), media_type="application/json")
