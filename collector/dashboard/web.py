"""Putting the dashboard into the collector's application: routes, assets, error pages, security headers.

`install(app, state)` is called by collector/api/app.py once the API is built. Every response gets
X-Content-Type-Options, Referrer-Policy and a Content-Security-Policy that allows nothing but this
collector's own scripts, styles, fonts and images (no inline script, no other origin, no framing).
Every dashboard response also says how long the server took (Server-Timing), which bench/ reads.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.errors import handle_http_exception
from collector.api.state import AppState
from collector.dashboard import assets, manage, pages, signin
from collector.dashboard.render import page
from collector.dashboard.session import BadForm, Forbidden, SignInRequired, session_of, sign_in_url

log = logging.getLogger("rampart.collector.dashboard")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI adds <style> elements as it renders; its scripts are still only our own files.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# API answers: JSON, CSV, zip, and the briefing's self-contained HTML (its styles and SVG charts inline):
# styles and inline images, never a script.
API_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
NOT_DASHBOARD = ("/api/", "/healthz", "/readyz", "/metrics")
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above to every response, and Server-Timing to the dashboard's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        policy = DOCS_CSP if path == "/api/v1/docs" else API_CSP if path.startswith("/api/") else CSP
        timed = not path.startswith(NOT_DASHBOARD) and not path.startswith(("/assets/", "/static/"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() not in (b"content-security-policy",)]
                headers += COMMON_HEADERS
                headers.append((b"content-security-policy", policy.encode()))
                if timed:
                    elapsed = (time.perf_counter() - started) * 1000
                    headers.append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BuiltAssets(StaticFiles):
    """/assets/: the npm-built GOV.UK Frontend and Swagger UI files; a clear 404 when not built."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=str(directory), check_dir=False)
        self.root = directory

    async def check_config(self) -> None:
        if assets.built(self.root):
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not assets.built(self.root):
            return PlainTextResponse(
                "The dashboard's assets were not built: run `make assets` (npm ci in collector/dashboard/frontend, "
                "then python -m collector.dashboard.assets).",
                status_code=404,
            )
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "public, max-age=86400")
        return response


def install(app: FastAPI, state: AppState) -> None:
    state.config.dashboard.validate()
    built = assets.directory_of(state.config.dashboard.assets_dir)
    if not assets.built(built):
        log.warning(f"dashboard assets not built in {built}: pages are served without styles (run `make assets`)")
    app.mount("/assets", BuiltAssets(built), name="assets")
    app.mount("/static", StaticFiles(directory=str(assets.OWN)), name="static")
    app.add_api_route("/api/v1/docs", api_docs, methods=["GET"], include_in_schema=False)
    if state.config.dashboard.enabled:
        app.include_router(signin.router)
        app.include_router(pages.router)
        app.include_router(manage.router)
        app.add_exception_handler(SignInRequired, _to_sign_in)
        app.add_exception_handler(Forbidden, _forbidden)
        app.add_exception_handler(BadForm, _bad_form)
        app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(SecurityHeaders)


def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from this collector's own files (the FastAPI default loads it from a CDN)."""
    built = assets.built(assets.directory_of(request.app.state.rampart.config.dashboard.assets_dir))
    note = "" if built else "<p>The Swagger UI assets were not built: run <code>make assets</code>.</p>"
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rampart collector API</title>
<link rel="stylesheet" href="/assets/swagger-ui/swagger-ui.css"></head>
<body>{note}<div id="swagger-ui" data-openapi-url="/api/v1/openapi.json"></div>
<script src="/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script></body></html>"""
    return HTMLResponse(html)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(sign_in_url(exc.next_path), status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return page(request, "error.html", {"title": "You cannot do this", "message": exc.message}, status=403)


async def _bad_form(request: Request, _exc: Exception) -> Response:
    message = (
        "This form was not sent from a page of this session (it may have expired, or come from another site). "
        "Nothing was changed. Go back, reload the page and try again."
    )
    return page(request, "error.html", {"title": "Form refused", "message": message}, status=403)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(NOT_DASHBOARD):
        return await handle_http_exception(request, exc)
    if exc.status_code == 404:
        user = await to_thread.run_sync(session_of, request)
        if user is None:  # a signed-out visitor learns nothing about what exists
            return RedirectResponse(sign_in_url("/"), status_code=303)
        context: dict[str, Any] = {"title": "Page not found", "message": "There is no such page here."}
        return page(request, "error.html", context, status=404)
    title = {405: "Not allowed"}.get(exc.status_code, "Something went wrong")
    return page(request, "error.html", {"title": title, "message": str(exc.detail)}, status=exc.status_code)
