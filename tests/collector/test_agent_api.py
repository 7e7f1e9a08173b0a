"""The agent-facing endpoints over HTTPS, on SQLite and PostgreSQL: enrol, check in, fetch policy, report."""

from __future__ import annotations

import json
import time
import uuid

import sqlalchemy as sa

from checks import wire
from checks.policy.loader import load_policy_document
from checks.policy.waiverfile import load_waiver_document
from collector.storage import models
from tests.support.agents import make_results
from tests.support.live import LiveCollector
from tests.support.policies import FLEET_POLICY_ID


def status_totals(live: LiveCollector) -> dict[str, int]:
    counts = models.status_counts.c
    rows = live.rows(sa.select(counts.status, sa.func.sum(counts.count)).group_by(counts.status))
    return {status: int(total) for status, total in rows}


def test_enrolment_returns_identity_key_group_and_policy_etag(live: LiveCollector) -> None:
    agent = live.agent()
    token = live.enrollment_token(group="servers")
    response = agent.enroll(token, {"hostname": "web-01", "os": "linux", "os_version": "12", "agent_version": "0.1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["agent_id"] == agent.agent_id == wire.agent_id_for(agent.key)
    assert body["group"] == "servers"
    assert len(body["policy_etag"]) == 64
    assert body["collector_public_key"] == wire.public_key_text(wire.load_public_key(body["collector_public_key"]))
    assert int(response.headers["X-Rampart-Time"]) >= int(time.time()) - 5
    stored = live.scalar(sa.select(models.agents.c.hostname).where(models.agents.c.agent_id == agent.agent_id))
    assert stored == "web-01"
    assert live.scalar(sa.select(models.enrollment_tokens.c.uses)) == 1


def test_enrolling_again_with_the_same_key_and_token_does_not_spend_a_use(live: LiveCollector) -> None:
    agent = live.agent()
    token = live.enrollment_token(uses=1)
    assert agent.enroll(token).status_code == 201
    again = agent.enroll(token)  # the first answer was lost
    assert again.status_code == 201, again.text
    assert again.json()["agent_id"] == agent.agent_id
    assert live.scalar(sa.select(models.enrollment_tokens.c.uses)) == 1
    assert live.count(models.agents) == 1


def test_a_token_is_refused_once_used_up_and_nothing_is_stored(live: LiveCollector) -> None:
    token = live.enrollment_token(uses=2)
    assert live.agent().enroll(token).status_code == 201
    assert live.agent().enroll(token).status_code == 201
    third = live.agent().enroll(token)
    assert third.status_code == 401
    assert third.json()["code"] == "bad_token"
    assert live.count(models.agents) == 2


def test_expired_revoked_and_unknown_tokens_are_refused(live: LiveCollector) -> None:
    expired = live.enrollment_token(valid_for_s=1)
    time.sleep(1.2)
    revoked = live.enrollment_token()
    tokens = models.enrollment_tokens.c
    with live.engine.begin() as connection:
        connection.execute(
            models.enrollment_tokens.update()
            .values(revoked_at=models.utcnow())
            .where(tokens.uses == 0, tokens.expires_at > models.utcnow())
        )
    for token in (expired, revoked, "rpe_not-a-token"):
        response = live.agent().enroll(token)
        assert response.status_code == 401, token
        assert response.json()["code"] == "bad_token"
    assert live.count(models.agents) == 0
    assert live.count(models.subjects) == 0


def test_enrolment_must_be_signed_by_the_key_it_registers(live: LiveCollector) -> None:
    token = live.enrollment_token()
    agent, other = live.agent(), live.agent()
    body = json.dumps({"token": token, "public_key": wire.public_key_text(other.key)}).encode()
    # Headers name `agent`, the body registers `other`'s key.
    mismatch = agent.signed("POST", "/api/v1/enroll", body)
    assert mismatch.status_code == 400
    assert mismatch.json()["code"] == "agent_mismatch"
    # Headers name `other` (as derived from the body's key) but the signature is made with `agent`'s key.
    agent.agent_id = other.agent_id
    forged = agent.signed("POST", "/api/v1/enroll", body)
    assert forged.status_code == 401
    assert forged.json()["code"] == "bad_signature"
    assert live.count(models.agents) == 0
    assert live.scalar(sa.select(models.enrollment_tokens.c.uses)) == 0


def test_checkin_records_host_facts_and_answers_time_and_etag(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    response = agent.checkin({"hostname": "renamed", "os": "linux", "os_version": "13", "agent_version": "0.2"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert abs(body["server_time"] - time.time()) < 5
    assert len(body["policy_etag"]) == 64
    (row,) = live.rows(
        sa.select(models.agents.c.hostname, models.agents.c.os_version).where(
            models.agents.c.agent_id == agent.agent_id
        )
    )
    assert tuple(row) == ("renamed", "13")


def test_policy_bundle_is_signed_and_cached_by_etag(live: LiveCollector) -> None:
    agent = live.agent()
    enrolment = agent.enroll(live.enrollment_token()).json()
    response = agent.policy()
    assert response.status_code == 200, response.text
    payload = wire.verify_document(wire.load_public_key(enrolment["collector_public_key"]), response.json())
    assert payload["agent_id"] == agent.agent_id
    assert payload["etag"] == enrolment["policy_etag"]
    assert response.headers["ETag"] == f'"{payload["etag"]}"'
    # The default group's: the shipped baseline (and the policy the tests' simulated agents report on).
    assert [load_policy_document(document).id for document in payload["policies"]] == ["baseline", FLEET_POLICY_ID]
    assert load_waiver_document({"waivers": payload["waivers"]}) == []
    assert agent.policy(etag=payload["etag"]).status_code == 304
    assert agent.policy(etag="something-else").status_code == 200
    tampered = response.json()
    tampered["payload"]["policies"][0]["checks"] = []
    try:
        wire.verify_document(wire.load_public_key(enrolment["collector_public_key"]), tampered)
        raise AssertionError("a tampered bundle verified")
    except wire.WireError as exc:
        assert exc.code == "bad_signature"


def test_a_report_is_stored_once_even_when_sent_again(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    report_id = str(uuid.uuid4())
    results = make_results(40)
    first = agent.report(results, report_id=report_id)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "report_id": report_id,
        "stored": True,
        "duplicate": False,
        "results": 40,
        "superseded": 0,
        "not_counted": {},
    }
    again = agent.report(results, report_id=report_id)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert live.count(models.reports) == 1
    assert live.count(models.latest_results) == 40
    assert live.count(models.result_intervals) == 40
    assert status_totals(live) == {"pass": 32, "fail": 8}
    # Reports skip the router (collector/api/app.py, Observe) but are logged and counted under their route,
    # and their refusals are the same JSON errors.
    forged = agent.signed("POST", "/api/v1/reports", agent.report_body(results), sign_body=b"{}")
    assert forged.status_code == 400 and forged.json()["code"] == "bad_digest"
    assert first.headers["content-type"] == "application/json" and "x-rampart-time" in first.headers
    metrics = live.session().get(live.url + "/metrics").text
    samples = [line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")]
    counted = {name: float(value) for name, value in samples}
    ok = 'rampart_http_requests_total{method="POST",route="/api/v1/reports",status="200"}'
    refused = 'rampart_http_requests_total{method="POST",route="/api/v1/reports",status="400"}'
    assert counted[ok] == 2 and counted[refused] == 1


def test_status_changes_close_the_interval_and_move_the_counts(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    assert agent.report(make_results(3, fail_every=1)).status_code == 200  # all fail
    assert agent.report(make_results(3, fail_every=0)).status_code == 200  # all pass
    assert agent.report(make_results(3, fail_every=0)).status_code == 200  # unchanged
    intervals = live.rows(
        sa.select(
            models.result_intervals.c.check_id, models.result_intervals.c.status, models.result_intervals.c.valid_to
        ).order_by(models.result_intervals.c.check_id, models.result_intervals.c.id)
    )
    assert [(c, s, v is None) for c, s, v in intervals] == [
        ("c00", "fail", False),
        ("c00", "pass", True),
        ("c01", "fail", False),
        ("c01", "pass", True),
        ("c02", "fail", False),
        ("c02", "pass", True),
    ]
    assert status_totals(live) == {"fail": 0, "pass": 3}


def test_an_older_run_arriving_late_does_not_overwrite_the_latest(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    newer = make_results(1, fail_every=0, evaluated_at="2026-01-02T00:00:00+00:00")
    older = make_results(1, fail_every=1, evaluated_at="2026-01-01T00:00:00+00:00")
    assert agent.report(newer).status_code == 200
    late = agent.report(older)
    assert late.status_code == 200
    assert late.json()["superseded"] == 1
    assert live.scalar(sa.select(models.latest_results.c.status)) == "pass"
    assert live.count(models.reports) == 2  # the late report is still kept as evidence
