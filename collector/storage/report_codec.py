"""Decoding a report body straight into checked values, in C (msgspec), for the PostgreSQL ingest path.

It accepts only reports that `parse_report` (collector/storage/ingest.py) accepts, and gives the same
ParsedReport, except that each result's observed facts and expectation stay the JSON text they arrived
as (msgspec.Raw): nothing reads them on the way to the database. Whatever it does not accept (including
every malformed report) returns None, and the caller runs `parse_report`, which says what is wrong and
where; so the errors an agent sees do not depend on the path.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from checks.wire import PROTOCOL
from collector.storage.ingest import (
    MAX_RESULTS_PER_REPORT,
    IncomingResult,
    ParsedReport,
    ReportError,
    parse_time,
)

_REPORT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_SHA256 = re.compile(r"[0-9a-f]{64}")

StatusText = Literal["pass", "fail", "error", "not_applicable", "waived"]
SeverityText = Literal["critical", "high", "medium", "low", "info"]


# No patterns here: msgspec calls Python's re for each value (four per result, 60 us of a report's 120);
# the blank checks and the policy's hash are made after decoding, the policy once per distinct policy.
class _Policy(Struct):
    id: Annotated[str, Meta(max_length=100)]
    version: Annotated[str, Meta(max_length=50)]
    hash: Annotated[str, Meta(min_length=64, max_length=64)]


class _Result(Struct):
    check_id: Annotated[str, Meta(max_length=200)]
    status: StatusText
    severity: SeverityText
    policy: _Policy
    title: Annotated[str, Meta(max_length=2000)] | None = None
    reason: Annotated[str, Meta(max_length=20000)] | None = None
    waived_status: str | None = None
    waiver_id: Annotated[str, Meta(max_length=100)] | None = None
    observed: Raw = Raw(b"null")
    expectation: Raw = Raw(b"null")
    frameworks: dict[str, Any] | None = None
    weight: float | None = None
    evaluated_at: str | None = None


class _Report(Struct):
    protocol: str
    report_id: str
    agent_id: str
    results: list[_Result]
    created_at: str | None = None
    dropped: int = 0
    host: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Report)
_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """JSON for the database; Raw values are written as they came."""
    return _encoder.encode(value)


def decode_report(body: bytes, agent_id: str) -> ParsedReport | None:
    """The report, checked as `parse_report` checks it; None when it is not plainly valid."""
    try:
        report = _decoder.decode(body)
    except msgspec.MsgspecError:
        return None
    if (
        report.protocol != PROTOCOL
        or not _REPORT_ID.match(report.report_id)
        or report.agent_id != agent_id
        or report.dropped < 0
        or len(report.results) > MAX_RESULTS_PER_REPORT
    ):
        return None
    try:
        parse_time(report.created_at or "", "created_at")
        times: dict[str, dt.datetime | None] = {}  # the results of one run mostly share their time
        policies: set[tuple[str, str, str]] = set()  # checked, and the results mostly share one
        results = [_incoming(result, times, policies) for result in report.results]
    except (ReportError, _NotPlain):
        return None
    return ParsedReport(
        report_id=report.report_id,
        agent_id=agent_id,
        created_at=(report.created_at or "")[:40],
        dropped=report.dropped,
        host=report.host or {},
        results=results,
    )


class _NotPlain(Exception):
    pass


def _time(value: str | None, seen: dict[str, dt.datetime | None]) -> dt.datetime | None:
    if not value:
        return None
    if value not in seen:
        seen[value] = parse_time(value, "evaluated_at")
    return seen[value]


def _blank(text: str) -> bool:
    """What parse_report refuses as blank (str.strip and str.isspace share one idea of a space)."""
    return not text or text.isspace()


def _plain_policy(policy: _Policy) -> bool:
    return not (_blank(policy.id) or _blank(policy.version)) and _SHA256.fullmatch(policy.hash) is not None


# The first byte of plain observed facts: an object, a list, or null (the one JSON value that starts with n).
_PLAIN_FACTS = frozenset(b"{[n")


def _incoming(
    result: _Result, times: dict[str, dt.datetime | None], policies: set[tuple[str, str, str]]
) -> IncomingResult:
    """One result, checked as parse_result checks it (40 per report: the checks are written inline)."""
    check_id = result.check_id
    if not check_id or check_id.isspace():
        raise _NotPlain
    policy = result.policy
    key = (policy.id, policy.version, policy.hash)
    if key not in policies:
        if not _plain_policy(policy):
            raise _NotPlain
        policies.add(key)
    waived_status = None
    if result.status == "waived":
        if result.waived_status not in ("fail", "error"):
            raise _NotPlain
        waived_status = result.waived_status
    if memoryview(result.observed)[0] not in _PLAIN_FACTS:  # the first byte, without copying the text
        raise _NotPlain
    stamp = result.evaluated_at
    # Positional (the order of IncomingResult's fields): 40 of these per report.
    return IncomingResult(
        policy.id,
        result.check_id,
        result.status,
        waived_status,
        result.waiver_id or None,
        result.severity,
        result.title or "",
        result.reason or "",
        result.observed,
        result.expectation,
        policy.version,
        policy.hash,
        times[stamp] if stamp in times else _time(stamp, times),
        result.frameworks or {},
        result.weight,
    )
