"""The typed report decoder takes only what parse_report takes, and gives the same report.

Every variant below is decoded both ways: where parse_report accepts, decode_report must give the same
ParsedReport (observed facts and expectation compared as JSON) or decline (None); where parse_report
refuses, decode_report must decline, so that the agent is told what is wrong by parse_report.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from checks import wire
from collector.storage.ingest import ReportError, parse_report
from collector.storage.report_codec import decode_report, encode
from tests.support.agents import make_result

AGENT = "a" * 26


def report(**changes: Any) -> dict[str, Any]:
    results = [
        make_result("c00", "pass", evaluated_at="2026-11-26T06:00:00+00:00"),
        make_result("c01", "fail", evaluated_at="2026-11-26T07:00:00+01:00"),
        make_result("c02", "waived", waived_status="error", waiver_id="wv-1", evaluated_at="2026-11-26T06:00:00Z"),
    ]
    body = wire.make_report(agent_id=AGENT, results=results, report_id="r-0123456789")
    body.update(changes)
    return body


def in_result(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for name, value in changes.items():
            if value is DELETE:
                body["results"][index].pop(name, None)
            else:
                body["results"][index][name] = value

    return change


DELETE = object()
VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "as sent": lambda body: None,
    "no results": lambda body: body.update(results=[]),
    "results not a list": lambda body: body.update(results={}),
    "wrong protocol": lambda body: body.update(protocol="rampart-v0"),
    "no protocol": lambda body: body.pop("protocol"),
    "short report id": lambda body: body.update(report_id="abc"),
    "report id with a slash": lambda body: body.update(report_id="abc/defghij"),
    "another agent": lambda body: body.update(agent_id="b" * 26),
    "negative dropped": lambda body: body.update(dropped=-1),
    "dropped true": lambda body: body.update(dropped=True),
    "dropped a string": lambda body: body.update(dropped="3"),
    "host a list": lambda body: body.update(host=[]),
    "host empty string": lambda body: body.update(host=""),
    "created_at not a time": lambda body: body.update(created_at="yesterday"),
    "created_at empty": lambda body: body.update(created_at=""),
    "result not an object": lambda body: body["results"].append("pass"),
    "bad status": in_result(1, status="failed"),
    "bad severity": in_result(0, severity="urgent"),
    "blank check id": in_result(0, check_id="  "),
    "long check id": in_result(0, check_id="c" * 201),
    "check id a number": in_result(0, check_id=7),
    "no policy": in_result(0, policy=DELETE),
    "policy hash in capitals": in_result(0, policy={"id": "p", "version": "1", "hash": "A" * 64}),
    "blank policy version": in_result(0, policy={"id": "p", "version": " ", "hash": "a" * 64}),
    # The policy is checked once per distinct policy: a second result's other policy is checked too.
    "blank policy id in a later result": in_result(2, policy={"id": "\u2003", "version": "1", "hash": "a" * 64}),
    "empty policy id": in_result(1, policy={"id": "", "version": "1", "hash": "a" * 64}),
    "policy hash with a newline after it": in_result(0, policy={"id": "p", "version": "1", "hash": "a" * 64 + "\n"}),
    "policy hash too short": in_result(0, policy={"id": "p", "version": "1", "hash": "a" * 63}),
    "check id of other spaces": in_result(1, check_id="\t\u00a0\n"),
    "check id with a space around": in_result(1, check_id=" c01 "),
    "empty check id": in_result(0, check_id=""),
    "waived without underlying status": in_result(2, waived_status=None),
    "waived over pass": in_result(2, waived_status="pass"),
    "waived_status ignored when not waived": in_result(1, waived_status="pass"),
    "weight true": in_result(0, weight=True),
    "weight an integer": in_result(0, weight=3),
    "weight a string": in_result(0, weight="3"),
    "observed a string": in_result(0, observed="yes"),
    "observed a list": in_result(0, observed=[1, 2]),
    "observed missing": in_result(0, observed=DELETE),
    "expectation a number": in_result(0, expectation=5),
    "frameworks a list": in_result(0, frameworks=["ce"]),
    "frameworks empty list": in_result(0, frameworks=[]),
    "title a number": in_result(0, title=5),
    "title null": in_result(0, title=None),
    "long reason": in_result(1, reason="x" * 20001),
    "evaluated_at not a time": in_result(0, evaluated_at="soon"),
    "evaluated_at a number": in_result(0, evaluated_at=5),
    "evaluated_at empty": in_result(0, evaluated_at=""),
    "unknown field": in_result(0, colour="blue"),
    "severity a list": in_result(0, severity=["high"]),
    "status a list": in_result(1, status=["fail"]),
    "status an object": in_result(1, status={"fail": 1}),
    "waived_status a list": in_result(2, waived_status=["fail"]),
    "evaluated_at after the end of time in UTC": in_result(0, evaluated_at="9999-12-31T23:30:00-05:00"),
    "evaluated_at before the start of time in UTC": in_result(0, evaluated_at="0001-01-01T00:30:00+05:00"),
    "created_at after the end of time in UTC": lambda body: body.update(created_at="9999-12-31T23:30:00-05:00"),
}


def comparable(parsed: Any) -> dict[str, Any]:
    value = dataclasses.asdict(parsed)
    for result, original in zip(value["results"], parsed.results, strict=True):
        for name in ("observed", "expectation"):
            raw = getattr(original, name)
            result[name] = json.loads(bytes(raw)) if isinstance(raw, msgspec.Raw) else raw
    return value


@pytest.mark.parametrize("name", list(VARIANTS))
def test_decode_report_agrees_with_parse_report(name: str) -> None:
    body = copy.deepcopy(report())
    VARIANTS[name](body)
    text = json.dumps(body).encode()
    try:
        expected = parse_report(json.loads(text), AGENT)
    except ReportError:
        expected = None
    decoded = decode_report(text, AGENT)
    if expected is None:
        assert decoded is None, "parse_report refuses this; the typed decoder must decline it"
    elif decoded is not None:
        assert comparable(decoded) == comparable(expected)


def test_plain_reports_take_the_typed_path_and_raw_facts_are_written_as_they_came() -> None:
    text = json.dumps(report()).encode()
    decoded = decode_report(text, AGENT)
    assert decoded is not None and len(decoded.results) == 3
    assert isinstance(decoded.results[0].observed, msgspec.Raw)
    assert json.loads(encode([decoded.results[0].observed])) == [{"value": "c00", "ok": True}]
    assert decode_report(b"{not json", AGENT) is None
