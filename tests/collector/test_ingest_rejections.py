"""Requests that must be refused, each with its status and code, and with nothing stored."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
import sqlalchemy as sa

from checks import wire
from collector.storage import models
from collector.storage.registry import revoke_agent
from tests.support.agents import SimAgent, make_results
from tests.support.live import LiveCollector


def assert_nothing_stored(live: LiveCollector) -> None:
    assert live.count(models.reports) == 0
    assert live.count(models.latest_results) == 0
    assert live.count(models.result_intervals) == 0
    assert live.scalar(sa.select(sa.func.coalesce(sa.func.sum(models.status_counts.c.count), 0))) == 0


def refused(response: requests.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return dict(body)


def test_unknown_agent(live: LiveCollector) -> None:
    stranger = live.agent()  # never enrolled
    refused(stranger.report(make_results(3)), 401, "unknown_agent")
    assert_nothing_stored(live)


def test_revoked_agent(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    with live.engine.begin() as connection:
        revoke_agent(connection, agent.agent_id, by="test", now=models.utcnow())
    refused(agent.report(make_results(3)), 403, "agent_revoked")
    refused(agent.checkin(), 403, "agent_revoked")
    refused(agent.policy(), 403, "agent_revoked")
    assert_nothing_stored(live)


def test_revocation_takes_effect_for_an_agent_that_just_reported(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    assert agent.report(make_results(2)).status_code == 200
    with live.engine.begin() as connection:
        revoke_agent(connection, agent.agent_id, by="test", now=models.utcnow())
    refused(agent.report(make_results(2)), 403, "agent_revoked")
    assert live.count(models.reports) == 1


def test_missing_signature_headers(live: LiveCollector) -> None:
    body = live.agent().report_body(make_results(1))
    response = live.session().post(live.url + "/api/v1/reports", data=body)
    refused(response, 401, "unsigned")
    assert_nothing_stored(live)


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        (wire.HEADER_TIMESTAMP, "yesterday", "bad_timestamp"),
        (wire.HEADER_CONTENT_SHA256, "abc", "bad_digest"),
        (wire.HEADER_SIGNATURE, "!!not base64!!", "bad_encoding"),
    ],
)
def test_malformed_signature_headers(live: LiveCollector, header: str, value: str, code: str) -> None:
    agent = live.enrolled_agent()
    refused(
        agent.signed("POST", "/api/v1/reports", agent.report_body(make_results(1)), extra_headers={header: value}),
        400,
        code,
    )
    assert_nothing_stored(live)


def test_stale_timestamp_gets_the_measured_skew(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    behind = agent.signed(
        "POST", "/api/v1/reports", agent.report_body(make_results(1)), timestamp=int(time.time()) - 1000
    )
    body = refused(behind, 401, "stale_timestamp")
    assert 995 <= int(str(body["clock_skew_s"])) <= 1010
    assert behind.headers["X-Rampart-Clock-Skew"] == str(body["clock_skew_s"])
    ahead = agent.signed(
        "POST", "/api/v1/reports", agent.report_body(make_results(1)), timestamp=int(time.time()) + 900
    )
    assert int(str(refused(ahead, 401, "stale_timestamp")["clock_skew_s"])) < -890
    assert_nothing_stored(live)


def test_tampered_body(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    signed_body = agent.report_body(make_results(2, fail_every=1))
    sent_body = signed_body.replace(b'"fail"', b'"pass"')
    # The digest header is of the signed body: the body no longer matches it.
    refused(agent.signed("POST", "/api/v1/reports", sent_body, sign_body=signed_body), 400, "bad_digest")
    assert_nothing_stored(live)


def test_forged_signature(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    forger = SimAgent(live.url, live.ca_file)
    forger.agent_id = agent.agent_id  # claims to be the enrolled agent, signs with its own key
    body = agent.report_body(make_results(2))
    refused(forger.signed("POST", "/api/v1/reports", body), 401, "bad_signature")
    assert_nothing_stored(live)


def test_a_signature_for_another_path_or_method_does_not_verify(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    body = agent.report_body(make_results(1))
    headers = wire.sign_request(agent.key, agent.agent_id, "POST", "/api/v1/checkin", body)
    response = agent.session.post(live.url + "/api/v1/reports", data=body, headers=headers, verify=live.ca_file)
    refused(response, 401, "bad_signature")
    assert_nothing_stored(live)


def test_a_replayed_request_is_acknowledged_and_not_counted_twice(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    body = agent.report_body(make_results(5, fail_every=1))
    headers = wire.sign_request(agent.key, agent.agent_id, "POST", "/api/v1/reports", body)
    for _ in range(3):  # the same bytes and headers, captured and sent again
        response = agent.session.post(live.url + "/api/v1/reports", data=body, headers=headers, verify=live.ca_file)
        assert response.status_code == 200
    assert response.json()["duplicate"] is True
    assert live.count(models.reports) == 1
    assert live.scalar(sa.select(sa.func.sum(models.status_counts.c.count))) == 5


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (b"{not json", "bad_json", "not JSON"),
        (b"[1, 2]", "bad_json", "object"),
        (b'{"protocol": "rampart-v0"}', "bad_report", "protocol"),
        ("report-without-id", "bad_report", "report_id"),
        ("result-bad-status", "bad_report", "results[1].status"),
        ("result-bad-hash", "bad_report", "results[0].policy.hash"),
        ("waived-without-status", "bad_report", "results[0].waived_status"),
        ("other-agent", "agent_mismatch", "agent_id"),
        # Lists where a name is expected: refused with a 400 naming the field, not a 500.
        ("result-severity-list", "bad_report", "results[0].severity"),
        ("result-status-list", "bad_report", "results[1].status"),
        ("waived-status-list", "bad_report", "results[0].waived_status"),
        # A time that exists in its own offset but not in UTC.
        ("evaluated-at-past-the-end", "bad_report", "results[0].evaluated_at"),
    ],
)
def test_malformed_reports(live: LiveCollector, body: bytes | str, code: str, where: str) -> None:
    agent = live.enrolled_agent()
    if isinstance(body, str):
        report = json.loads(agent.report_body(make_results(2)))
        if body == "report-without-id":
            del report["report_id"]
        elif body == "result-bad-status":
            report["results"][1]["status"] = "great"
        elif body == "result-bad-hash":
            report["results"][0]["policy"]["hash"] = "not-a-hash"
        elif body == "waived-without-status":
            report["results"][0]["status"] = "waived"
        elif body == "other-agent":
            report["agent_id"] = "ag-" + "0" * 32
        elif body == "result-severity-list":
            report["results"][0]["severity"] = ["high"]
        elif body == "result-status-list":
            report["results"][1]["status"] = ["pass", "fail"]
        elif body == "waived-status-list":
            report["results"][0].update(status="waived", waived_status=["fail"])
        elif body == "evaluated-at-past-the-end":
            report["results"][0]["evaluated_at"] = "9999-12-31T23:30:00-05:00"
        body = json.dumps(report).encode()
    response = agent.signed("POST", "/api/v1/reports", body)
    assert where in str(refused(response, 400, code)["message"])
    assert_nothing_stored(live)


@pytest.mark.parametrize("live_config", [{"max_body_bytes": 2000}])
def test_declared_oversized_body_is_refused_before_it_is_read(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    body = agent.report_body(make_results(40))
    assert len(body) > 2000
    refused(agent.signed("POST", "/api/v1/reports", body), 413, "body_too_large")

    # Without a Content-Length (chunked), the limit applies while reading.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    headers = wire.sign_request(agent.key, agent.agent_id, "POST", "/api/v1/reports", body)
    chunked = agent.session.post(live.url + "/api/v1/reports", data=chunks(), headers=headers, verify=live.ca_file)
    refused(chunked, 413, "body_too_large")
    assert_nothing_stored(live)
    # The same limit protects the enrolment endpoint.
    refused(live.agent().enroll(live.enrollment_token(), {"hostname": "x" * 3000}), 413, "body_too_large")
    assert live.count(models.agents) == 1


def _hold_database(live: LiveCollector) -> tuple[Callable[[], None], threading.Event]:
    """Block writers until the returned function is called (a long transaction in another session)."""
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with live.engine.connect() as connection:
            if live.engine.dialect.name == "sqlite":
                connection.execution_options(rampart_write=True)
            with connection.begin():
                if live.engine.dialect.name == "postgresql":
                    connection.exec_driver_sql("LOCK TABLE reports IN EXCLUSIVE MODE")
                else:
                    connection.execute(models.audit_log.insert().values(at=models.utcnow(), actor="t", action="hold"))
                holding.set()
                release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)

    def release_it() -> None:
        release.set()
        thread.join(10)

    return release_it, holding


def _pending(live: LiveCollector) -> float:
    text = live.session().get(live.url + "/metrics").text
    line = next(line for line in text.splitlines() if line.startswith("rampart_ingest_pending "))
    return float(line.split()[1])


@pytest.mark.parametrize("live_config", [{"max_concurrent_ingest": 1, "max_pending_ingest": 1, "retry_after_s": 7}])
def test_overload_answers_503_with_retry_after_and_loses_nothing(live: LiveCollector) -> None:
    agents = [live.enrolled_agent() for _ in range(2)]
    release, _ = _hold_database(live)
    first: dict[str, int] = {}
    sender = threading.Thread(target=lambda: first.update(status=agents[0].report(make_results(3)).status_code))
    try:
        sender.start()
        deadline = time.monotonic() + 10
        while _pending(live) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        report_id = str(uuid.uuid4())
        busy = agents[1].report(make_results(3), report_id=report_id)
        refused(busy, 503, "overloaded")
        assert busy.headers["Retry-After"] == "7"
    finally:
        release()
        sender.join(30)
    assert first["status"] == 200
    again = agents[1].report(make_results(3), report_id=report_id)  # the agent retries later
    assert again.status_code == 200 and again.json()["duplicate"] is False
    assert live.count(models.reports) == 2
    assert live.count(models.latest_results) == 6
