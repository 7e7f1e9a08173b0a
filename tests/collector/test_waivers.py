"""Waivers: requested by one user, approved by another, shown on results as waived, revoked or expired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

from checks import wire
from checks.policy.waiverfile import load_waiver_document
from collector import jobs
from collector.initialise import load_signing_key
from tests.support.agents import SimAgent, make_result, make_results
from tests.support.live import LiveCollector

TODAY = dt.datetime.now(dt.UTC).date()


def user_session(live: LiveCollector, name: str, role: str) -> requests.Session:
    admin = live.admin()
    assert admin.post(live.url + "/api/v1/users", json={"name": name, "role": role}).status_code == 201
    created = admin.post(live.url + "/api/v1/api-tokens", json={"user": name, "label": "test"})
    assert created.status_code == 201, created.text
    return live.session(created.json()["token"])


def summary(live: LiveCollector) -> dict[str, Any]:
    response = live.admin().get(live.url + "/api/v1/summary")
    assert response.status_code == 200
    totals: dict[str, Any] = response.json()["totals"]
    return totals


def request_waiver(session: requests.Session, live: LiveCollector, **fields: Any) -> requests.Response:
    body = {
        "check": "c00",
        "scope": {"groups": ["servers"]},
        "justification": "legacy application needs it until migration",
        "expires": (TODAY + dt.timedelta(days=30)).isoformat(),
        "ticket": "CHG-1",
        **fields,
    }
    return session.post(live.url + "/api/v1/waivers", json=body)


def test_an_approved_waiver_turns_failures_waived_until_revoked(live: LiveCollector) -> None:
    alice = user_session(live, "alice", "analyst")
    bob = user_session(live, "bob", "analyst")
    servers = [live.enrolled_agent(group="servers") for _ in range(2)]
    laptop = live.enrolled_agent()
    for agent in [*servers, laptop]:
        assert agent.report(make_results(3, fail_every=1)).status_code == 200  # c00..c02 all fail
    assert summary(live)["fail"] == 9

    requested = request_waiver(alice, live)
    assert requested.status_code == 201, requested.text
    waiver = requested.json()
    assert waiver["state"] == "requested" and waiver["requested_by"] == "alice"
    assert summary(live)["fail"] == 9  # a request changes nothing

    own = alice.post(f"{live.url}/api/v1/waivers/{waiver['id']}/approve")
    assert own.status_code == 403 and own.json()["code"] == "approver_is_requester"

    etag_before = servers[0].checkin().json()["policy_etag"]
    approved = bob.post(f"{live.url}/api/v1/waivers/{waiver['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["approved_by"] == "bob"
    totals = summary(live)
    assert (totals["fail"], totals["waived"]) == (7, 2)

    host = live.admin().get(f"{live.url}/api/v1/hosts/{servers[0].agent_id}").json()
    c00 = next(r for r in host["results"] if r["check"] == "c00")
    assert (c00["status"], c00["waived_status"], c00["waiver_id"]) == ("waived", "fail", waiver["id"])
    laptop_c00 = live.admin().get(f"{live.url}/api/v1/hosts/{laptop.agent_id}", params={"status": "fail"}).json()
    assert "c00" in [r["check"] for r in laptop_c00["results"]]  # not in the waiver's scope

    # The agents in scope get the waiver in their signed bundle; the others do not.
    checkin = servers[0].checkin().json()
    assert checkin["policy_etag"] != etag_before
    bundle = servers[0].policy().json()
    payload = bundle["payload"]
    (entry,) = load_waiver_document({"waivers": payload["waivers"]})
    assert entry.id == waiver["id"] and entry.approved_by == "bob"
    assert laptop.policy().json()["payload"]["waivers"] == []

    # An agent that has not yet fetched the waiver still reports the failure: it stays waived.
    assert servers[1].report(make_results(3, fail_every=1)).status_code == 200
    assert summary(live)["waived"] == 2

    revoked = alice.post(f"{live.url}/api/v1/waivers/{waiver['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert (summary(live)["fail"], summary(live)["waived"]) == (9, 0)
    again = bob.post(f"{live.url}/api/v1/waivers/{waiver['id']}/approve")
    assert again.status_code == 409 and again.json()["code"] == "bad_state"

    # One form of actor everywhere: user:<name> for whoever acted over the API.
    audit = live.admin().get(live.url + "/api/v1/audit", params={"action": "waiver.approve"}).json()["entries"]
    assert [(e["actor"], e["target"], e["details"]["results_changed"], e["details"]["as"]) for e in audit] == [
        ("user:bob", waiver["id"], 2, "bob")
    ]
    actors = {
        e["action"]: e["actor"]
        for e in live.admin().get(live.url + "/api/v1/audit", params={"limit": 100}).json()["entries"]
        if e["action"].startswith("waiver.")
    }
    assert actors == {"waiver.request": "user:alice", "waiver.approve": "user:bob", "waiver.revoke": "user:alice"}


def test_a_waived_result_from_an_agent_without_a_waiver_here_keeps_its_own_status(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    result = make_result("c00", "waived", waived_status="fail", waiver_id="local-only")
    assert agent.report([result]).status_code == 200
    assert (summary(live)["fail"], summary(live)["waived"]) == (1, 0)


def test_expiry_gives_results_back_their_status(live: LiveCollector) -> None:
    alice = user_session(live, "alice", "analyst")
    agent = live.enrolled_agent(group="servers")
    assert agent.report(make_results(1, fail_every=1)).status_code == 200
    waiver = request_waiver(alice, live, expires=TODAY.isoformat()).json()
    assert live.admin().post(f"{live.url}/api/v1/waivers/{waiver['id']}/approve").status_code == 200
    assert summary(live)["waived"] == 1
    tomorrow = dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(1))
    outcome = jobs.retention(live.engine, live.config, tomorrow)
    assert outcome["expired_waivers"] == [waiver["id"]]
    assert (summary(live)["fail"], summary(live)["waived"]) == (1, 0)
    listed = live.admin().get(live.url + "/api/v1/waivers", params={"state": "expired"}).json()
    assert [w["id"] for w in listed] == [waiver["id"]]


def test_bad_waiver_requests(live: LiveCollector) -> None:
    alice = user_session(live, "alice", "analyst")
    agent = live.enrolled_agent()
    assert agent.report(make_results(1)).status_code == 200
    past = request_waiver(alice, live, expires=(TODAY - dt.timedelta(days=1)).isoformat())
    assert past.status_code == 400 and past.json()["code"] == "bad_waiver"
    unknown = request_waiver(alice, live, check="no-such-check")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_check"
    empty_scope = request_waiver(alice, live, scope={})
    assert empty_scope.status_code == 400 and empty_scope.json()["code"] == "bad_waiver"
    auditor = user_session(live, "carol", "auditor")
    assert request_waiver(auditor, live).status_code == 403


def test_a_waiver_for_a_shipped_check_is_served_to_agents_in_scope(live: LiveCollector) -> None:
    alice = user_session(live, "alice", "analyst")
    agent: SimAgent = live.enrolled_agent(hostname="kiosk-7")
    waiver = request_waiver(alice, live, check="shadow-file-permissions", scope={"hosts": ["kiosk-*"]}).json()
    assert live.admin().post(f"{live.url}/api/v1/waivers/{waiver['id']}/approve").status_code == 200
    payload = wire.verify_document(load_signing_key(live.config).public_key(), agent.policy().json())
    assert [w["id"] for w in payload["waivers"]] == [waiver["id"]]
