"""Every error is JSON {"code", "message"} with a stable code, plus fields named per code."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fields = fields


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **fields: Any
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **fields}, status_code=status, headers=headers)


async def handle_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.fields)


async def handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(400, "bad_request", "; ".join(problems) or "invalid request", problems=problems)


# --- what the OpenAPI document says of errors -----------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error answer: a stable `code`, a `message` for people, and fields named per code."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str


_DESCRIPTIONS = {
    400: "The request is malformed or a value is refused (`bad_request`, or a more precise code)",
    401: "No credentials, or credentials that are unknown, revoked or expired",
    403: "The caller's role does not allow this (`forbidden`), or the agent is revoked",
    404: "No such object (`not_found`)",
    406: "None of the media types in Accept can be given (`not_acceptable`)",
    408: "The body did not arrive within body_timeout_s (`body_timeout`)",
    409: "The change conflicts with the current state (a duplicate, a state that does not allow it)",
    413: "The body exceeds max_body_bytes (`body_too_large`)",
    429: "Too many attempts from this address (`rate_limited`); Retry-After says when to come back",
    503: "The collector is overloaded or cannot reach its database; Retry-After says when to come back",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status with the error body's schema."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


# What any route behind an API token can answer, whatever it does: a bad request, no or a bad token, a
# role that may not, a body too large or too slow, too many bad tokens, the database out of reach.
API_ERRORS = error_responses(400, 401, 403, 408, 413, 429, 503)
