"""The collector's FastAPI application.

`create_app(config)` builds it; `app_from_env()` is the factory uvicorn imports in each worker process
(`serve` hands the workers its config path in $RAMPART_CONFIG, read here once at start-up). Every response
carries X-Rampart-Time; every request is logged as one JSON line and counted in /metrics.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from checks import __version__
from collector.api import admin, agents, query, reports
from collector.api.errors import (
    ApiError,
    error_response,
    error_responses,
    handle_api_error,
    handle_http_exception,
    handle_validation_error,
)
from collector.api.metrics import Metrics
from collector.api.state import AppState
from collector.config import CollectorConfig, load_collector_config
from collector.initialise import load_signing_key
from collector.jobs import JobRunner, build_jobs
from collector.logs import setup_logging
from collector.storage import migrate
from collector.storage.engine import make_engine
from collector.storage.unavailable import DatabaseUnavailable, is_connection_failure

log = logging.getLogger("rampart.collector.http")
# Errors that may mean the database cannot be reached (is_connection_failure decides): 503, else 500.
DATABASE_ERRORS = (DatabaseUnavailable, psycopg.OperationalError, sa.exc.DBAPIError)


class BodyTimeout(ApiError):
    """The request's body did not arrive within body_timeout_s: 408, and the connection is closed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, "body_timeout", f"the body took more than {seconds:g}s to arrive", headers={"Connection": "close"}
        )


def bounded_receive(receive: Receive, seconds: float) -> Receive:
    """`receive` that raises BodyTimeout when the body is not all received within `seconds` from now.
    Once the body is complete it waits without limit: a streamed response listens for the disconnect."""
    deadline = time.monotonic() + seconds
    complete = False

    async def bounded() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        with anyio.move_on_after(max(deadline - time.monotonic(), 0.0)):
            message = await receive()
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message
        raise BodyTimeout(seconds)

    return bounded


class Observe:
    """Adds X-Rampart-Time, limits the size and reading time of bodies, logs and counts every request.

    The bodies of the non-agent routes are read here (up to max_body_bytes, within body_timeout_s), so
    that a refusal is a 413 or a 408 (the framework would turn an error raised while it reads into a 400);
    the agent routes read their own, under the same limits (collector/api/agents.py).

    Reports, the one route called at fleet rate, go straight to their handler: the same function the router
    would call, with the same answer to its errors (an unexpected one still reaches the 500 handler), but
    without routing through every route and solving dependencies, which cost as much as the handler itself.
    """

    def __init__(self, app: ASGIApp, state: AppState, reports_route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.reports_route = reports_route
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _series(self, method: str, route_path: str, status: int) -> tuple[Any, Any]:
        """The request counter's and timer's series for these labels, looked up once (prometheus_client's
        labels() validates and locks at every call); a few hundred at most are kept."""
        key = (method, route_path, status)
        found = self._children.get(key)
        if found is None:
            if len(self._children) > 512:  # methods are the client's to choose
                self._children.clear()
            metrics = self.state.metrics
            found = metrics.requests.labels(method, route_path, str(status)), metrics.request_seconds.labels(route_path)
            self._children[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        config = self.state.config
        limit = config.max_body_bytes
        path: str = scope["path"]
        guarded = path not in agents.AGENT_PATHS
        receive = bounded_receive(receive, config.body_timeout_s)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-rampart-time", str(int(time.time())).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if guarded and _has_body(scope):
                declared = dict(scope["headers"]).get(b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    await self._too_large(scope, receive, timed_send)
                    return
                buffered = await self._read_limited(receive, limit)
                if buffered is None:
                    await self._too_large(scope, receive, timed_send)
                    return
                receive = self._replay(buffered, receive)
            if path == agents.REPORTS_PATH and scope["method"] == "POST":
                await self._report(scope, receive, timed_send)
            else:
                await self.app(scope, receive, timed_send)
        except BodyTimeout as exc:  # while reading a body here (the routes answer their own)
            response = error_response(exc.status, exc.code, exc.message, exc.headers)
            await response(scope, receive, timed_send)
        finally:
            self._done(scope, status, started)

    async def _report(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.reports_route  # for the metrics, as the router would set it
        request = Request(scope, receive)
        try:
            response = await agents.reports(request)
        except ApiError as exc:
            response = await handle_api_error(request, exc)
        except DATABASE_ERRORS as exc:
            response = await _database_unavailable(request, exc)  # or raised again, for the 500 handler
        await response(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.state.config.max_body_bytes
        response = error_response(
            413, "body_too_large", f"the body exceeds {limit} bytes", {"Connection": "close"}, limit_bytes=limit
        )
        await response(scope, receive, send)

    @staticmethod
    async def _read_limited(receive: Receive, limit: int) -> list[Message] | None:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > limit:
                return None
            if not message.get("more_body", False):
                return messages

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        pending = list(messages)

        async def replayed() -> Message:
            return pending.pop(0) if pending else await receive()

        return replayed

    def _done(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        route_path = getattr(route, "path", "unmatched")
        counted, timed = self._series(scope["method"], route_path, status)
        counted.inc()
        timed.observe(elapsed)
        state = scope.get("state") or {}
        log.info(
            "request",
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "actor": state.get("actor"),
                "client": (scope.get("client") or ("", 0))[0],
            },
        )


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    declared = headers.get(b"content-length")
    if declared is not None:
        return declared.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers or scope["method"] in ("POST", "PUT", "PATCH")


def create_app(
    config: CollectorConfig, engine: Engine | None = None, *, run_jobs: bool = True, config_path: str | None = None
) -> FastAPI:
    """The application; `run_jobs` starts this process's scheduled-job thread (see collector/jobs.py), whose
    cloud job reads its section from `config_path` (None: no file)."""
    engine = engine or make_engine(config.resolved_database_url(), config.db_pool_size)
    state = AppState(
        config=config,
        engine=engine,
        signing_key=load_signing_key(config),
        metrics=Metrics(),
        holder=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("collector started", extra={"version": __version__, "holder": state.holder})
        # What start-up built (the app, models, metadata) lives as long as the process: keep it out of the
        # collector's full passes, which would otherwise walk it again and again under load.
        gc.collect()
        gc.freeze()
        runner = None
        if run_jobs:
            runner = JobRunner(
                engine,
                config,
                build_jobs(config_path),
                state.holder,
                lambda job, status: state.metrics.job_runs.labels(job, status).inc(),
            )
            runner.start()
        yield
        if runner is not None:
            runner.stop()
        state.dispose()
        state.metrics.process_stopped()

    app = FastAPI(
        title="Rampart collector",
        version=__version__,
        description="Verified ingest of agent results and the compliance API. Errors are JSON "
        '{"code", "message"} with a stable code. API calls authenticate with `Authorization: Bearer <token>`.',
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served by the dashboard from this collector's own files (no CDN)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.rampart = state
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _database_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    app.include_router(agents.router)
    app.include_router(query.router)
    app.include_router(admin.router)
    app.include_router(reports.router)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable and its schema current",
        responses=error_responses(503),
    )
    async def readyz() -> JSONResponse:
        try:
            current = await state.read(migrate.revision_of)
        except Exception as exc:  # any database failure means not ready
            message = f"database unavailable: {type(exc).__name__}"
            return JSONResponse({"status": "unavailable", "code": "database_unavailable", "message": message}, 503)
        head = migrate.head_revision()
        if current != head:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "code": "schema_outdated",
                    "message": f"schema {current} is not {head}: run `rampart-collector db upgrade`",
                },
                503,
            )
        return JSONResponse({"status": "ready", "schema": current})

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this collector (all its workers)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(state.metrics.exposition(), media_type=state.metrics.content_type)

    _without_unused_422(app)
    from collector.dashboard import web as dashboard

    dashboard.install(app, state)
    reports_route = next(
        route
        for route in agents.router.routes
        if isinstance(route, APIRoute) and route.path == agents.REPORTS_PATH and "POST" in (route.methods or ())
    )
    app.add_middleware(Observe, state=state, reports_route=reports_route)
    return app


def _without_unused_422(app: FastAPI) -> None:
    """The document without the 422 FastAPI adds to every route with parameters: this API answers a request
    that fails validation with 400 bad_request (collector/api/errors.py), which the routers declare."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # built once, then cached by FastAPI: the edits below are kept with it
        for item in document.get("paths", {}).values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After when the database cannot be reached (restarting, failing over): the caller
    comes back, an agent with the report it still holds. Any other database error goes on to be a 500."""
    if not is_connection_failure(exc):
        raise exc
    state: AppState = request.app.state.rampart
    seconds = state.config.retry_after_s
    error = type(getattr(exc, "orig", None) or exc).__name__  # the type only: a message may name the server
    log.warning("database unavailable", extra={"path": request.url.path, "error": error})
    return error_response(
        503,
        "database_unavailable",
        f"the collector cannot reach its database; retry in {seconds}s",
        {"Retry-After": str(seconds)},
        retry_after_s=seconds,
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(500, "internal_error", "the collector failed to answer; see its log")


def app_from_env() -> Any:
    """uvicorn's factory: config from $RAMPART_CONFIG (and RAMPART_COLLECTOR__* variables)."""
    path = os.environ.get("RAMPART_CONFIG") or None
    config = load_collector_config(path)
    setup_logging(config.log_level, config.log_format)
    return create_app(config, config_path=path)
