"""How the fake answers on the wire: query reading, opaque skip tokens, and the error bodies of the sign-in
service, Graph and Resource Manager."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import uuid
from typing import Any

from tests.fakes.microsoft.certificates import b64url
from tests.fakes.microsoft.scenario import Fault

# (status, JSON body, extra headers)
Reply = tuple[int, dict[str, Any], dict[str, str]]


def public(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A directory object as Graph shows it (a group's members are a relationship, not a property)."""
    return None if item is None else {k: v for k, v in item.items() if k != "members"}


def first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def filter_eq(expression: str | None, field_name: str) -> str | None:
    if not expression:
        return None
    prefix = f"{field_name} eq '"
    if expression.startswith(prefix) and expression.endswith("'"):
        return expression[len(prefix) : -1]
    return "<unsupported filter>"


def encode_skiptoken(offset: int) -> str:
    # Opaque to the client, as Microsoft's are.
    return b64url(hashlib.sha256(str(offset).encode()).digest()[:6] + offset.to_bytes(8, "big"))


def decode_skiptoken(token: str | None) -> int | None:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    offset = int.from_bytes(raw[6:], "big")
    return offset if raw[:6] == hashlib.sha256(str(offset).encode()).digest()[:6] else None


def retry(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


def arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "target": None, "details": []}}


def aad_error(code: str, description: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "error": code,
        "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\n"
        f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}",
        "error_codes": [int(code) for code in re.findall(r"^AADSTS(\d+)", description)],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
