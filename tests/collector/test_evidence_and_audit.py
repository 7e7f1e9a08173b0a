"""Exports for auditors, signed reports verified again from storage, and the audit log of every change."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zlib

import sqlalchemy as sa

from collector.storage import models
from tests.support.agents import make_results
from tests.support.live import LiveCollector
from tests.support.policies import FLEET_POLICY, FLEET_POLICY_ID


def auditor(live: LiveCollector) -> tuple[str, str]:
    admin = live.admin()
    assert admin.post(live.url + "/api/v1/users", json={"name": "audrey", "role": "auditor"}).status_code == 201
    return "audrey", admin.post(live.url + "/api/v1/api-tokens", json={"user": "audrey"}).json()["token"]


def test_results_export_as_csv_and_json_lines_is_audited(live: LiveCollector) -> None:
    for _ in range(2):
        assert live.enrolled_agent(group="servers").report(make_results(5)).status_code == 200
    name, token = auditor(live)
    session = live.session(token)
    response = session.get(live.url + "/api/v1/export/results", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 10
    assert {row["status"] for row in rows} == {"pass", "fail"}
    assert all(row["policy_hash"] == FLEET_POLICY.sha256 and row["report_id"] for row in rows)
    assert json.loads(rows[0]["observed"])["value"] == rows[0]["check"]
    lines = session.get(live.url + "/api/v1/export/results", params={"format": "jsonl", "group": "servers"}).text
    assert len([json.loads(line) for line in lines.splitlines()]) == 10
    entries = live.admin().get(live.url + "/api/v1/audit", params={"action": "export.results"}).json()["entries"]
    assert [(e["actor"], e["target"]) for e in entries] == [(f"user:{name}", "jsonl"), (f"user:{name}", "csv")]
    assert entries[0]["details"]["group"] == "servers"


def test_a_stored_report_verifies_again_and_tampering_is_detected(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    report_id = str(uuid.uuid4())
    assert agent.report(make_results(3), report_id=report_id).status_code == 200
    _, token = auditor(live)
    evidence = live.session(token).get(f"{live.url}/api/v1/reports/{report_id}").json()
    assert evidence["signature"]["verified"] is True
    assert json.loads(evidence["body"])["report_id"] == report_id
    # Someone edits the stored report: verification now fails, saying why.
    body = json.loads(evidence["body"])
    body["results"][0]["status"] = "pass" if body["results"][0]["status"] == "fail" else "fail"
    with live.engine.begin() as connection:
        connection.execute(
            models.reports.update()
            .where(models.reports.c.report_id == report_id)
            .values(body_zlib=zlib.compress(json.dumps(body).encode()))
        )
    tampered = live.session(token).get(f"{live.url}/api/v1/reports/{report_id}").json()
    assert tampered["signature"]["verified"] is False
    assert "does not match" in tampered["signature"]["problem"]
    missing = live.session(token).get(f"{live.url}/api/v1/reports/nope")
    assert missing.status_code == 404


def test_every_change_is_in_the_audit_log(live: LiveCollector) -> None:
    admin = live.admin()
    token = admin.post(live.url + "/api/v1/enroll-tokens", json={"group": "servers", "uses": 2}).json()
    agent = live.agent()
    assert agent.enroll(token["token"]).status_code == 201
    assert admin.post(f"{live.url}/api/v1/agents/{agent.agent_id}/revoke").status_code == 200
    assert admin.delete(f"{live.url}/api/v1/enroll-tokens/{token['id']}").status_code == 200
    assert admin.post(live.url + "/api/v1/users", json={"name": "erin", "role": "analyst"}).status_code == 201
    api_token = admin.post(live.url + "/api/v1/api-tokens", json={"user": "erin"}).json()
    assert admin.delete(f"{live.url}/api/v1/api-tokens/{api_token['id']}").status_code == 200
    assert admin.put(f"{live.url}/api/v1/policies/baseline/groups/servers").status_code == 200
    assert admin.delete(f"{live.url}/api/v1/policies/baseline/groups/servers").status_code == 200
    entries = admin.get(live.url + "/api/v1/audit", params={"limit": 50}).json()["entries"]
    seen = [(e["actor"], e["action"]) for e in reversed(entries)]
    assert seen[:2] == [("system:init", "policy.add"), ("system:init", "policy.assign")]
    assert seen[-9:] == [
        ("user:admin", "enroll_token.create"),
        (f"agent:{agent.agent_id}", "agent.enroll"),
        ("user:admin", "agent.revoke"),
        ("user:admin", "enroll_token.revoke"),
        ("user:admin", "user.add"),
        ("user:admin", "api_token.create"),
        ("user:admin", "api_token.revoke"),
        ("user:admin", "policy.assign"),
        ("user:admin", "policy.unassign"),
    ]
    # Secrets never reach the log.
    text = json.dumps(entries)
    assert token["token"] not in text and api_token["token"] not in text
    assert live.scalar(sa.select(sa.func.count()).select_from(models.audit_log)) == len(entries)


def test_policies_are_stored_validated_and_assigned(live: LiveCollector) -> None:
    admin = live.admin()
    policy = """
id: servers-extra
version: "1.0"
title: Extra server checks
checks:
  - id: passwd-owner
    title: passwd belongs to root
    description: d
    rationale: r
    remediation: chown root /etc/passwd
    severity: low
    probe: {name: file, params: {path: /etc/passwd}}
    expect: {fact: owner, eq: root}
"""
    stored = admin.post(live.url + "/api/v1/policies", json={"yaml": policy})
    assert stored.status_code == 201, stored.text
    assert stored.json()["added"] is True
    broken = admin.post(live.url + "/api/v1/policies", json={"yaml": policy.replace("eq: root", "equals: root")})
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_policy"
    assert any("uploaded policy:" in problem for problem in broken.json()["problems"])
    server = live.enrolled_agent(group="servers")
    before = server.policy().json()["payload"]
    # No assignment for servers: the default group's (the shipped baseline, and the tests' own).
    assert [p["id"] for p in before["policies"]] == ["baseline", FLEET_POLICY_ID]
    assert admin.put(f"{live.url}/api/v1/policies/servers-extra/groups/servers").status_code == 200
    after = server.policy(etag=before["etag"])
    assert after.status_code == 200
    assert [p["id"] for p in after.json()["payload"]["policies"]] == ["servers-extra"]
    unknown = admin.put(f"{live.url}/api/v1/policies/nothing/groups/servers")
    assert unknown.status_code == 404
    listed = {p["id"]: p["groups"] for p in admin.get(live.url + "/api/v1/policies").json()}
    assert listed == {"baseline": ["default"], FLEET_POLICY_ID: ["default"], "servers-extra": ["servers"]}
