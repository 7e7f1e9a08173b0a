"""Results count only when judged against what the collector stores and assigned to the agent's group, and
the collector, not the agent, says what a check is (over HTTPS, on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from checks.policy.loader import load_policy_document
from collector.storage import models
from collector.storage.engine import run_write
from tests.support.agents import make_result
from tests.support.live import LiveCollector
from tests.support.policies import FLEET_POLICY, FLEET_POLICY_ID, fleet_document, store_policy


def get(live: LiveCollector, path: str, **params: Any) -> Any:
    response = live.admin().get(live.url + path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def metric(live: LiveCollector, name: str) -> float:
    text = live.session().get(live.url + "/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((name + " ", name + "{"))]
    return sum(values)


def test_an_agent_cannot_say_what_a_check_is(live: LiveCollector) -> None:
    """Its result claims another title, severity, weight and framework mapping for c00: all are ignored."""
    agent = live.enrolled_agent()
    other = live.enrolled_agent()
    assert other.report([make_result("c00", "fail")]).status_code == 200
    rewrite = make_result("c00", "fail", severity="info", title="Nothing to see", frameworks={"ncsc_caf": ["Z9.z"]}) | {
        "weight": 0.0
    }
    answer = agent.report([rewrite])
    assert answer.status_code == 200 and answer.json()["results"] == 1, answer.text

    summary = get(live, "/api/v1/summary")
    (c00,) = [c for c in summary["by_check"] if c["check"] == "c00"]
    assert (c00["title"], c00["severity"], c00["fail"]) == ("Check c00", "medium", 2)
    controls = {(c["framework"], c["control"]) for c in summary["by_control"]}
    assert ("ncsc_caf", "Z9.z") not in controls and ("cis_controls_v8", "4.1") in controls
    assert summary["totals"]["compliance_weighted"] == 0.0  # weight 0 would have taken the fails out
    host = get(live, f"/api/v1/hosts/{agent.agent_id}")
    assert (host["results"][0]["title"], host["results"][0]["severity"]) == ("Check c00", "medium")
    assert host["results"][0]["policy_version"] == FLEET_POLICY.version
    check = get(live, "/api/v1/checks/c00")
    assert (check["title"], check["severity"], check["frameworks"]) == (
        "Check c00",
        "medium",
        {"cyber_essentials": ["secure_configuration"], "cis_controls_v8": ["4.1"]},
    )
    (entry,) = live.rows(
        sa.select(models.check_catalog).where(
            models.check_catalog.c.policy_id == FLEET_POLICY_ID, models.check_catalog.c.check_id == "c00"
        )
    )
    assert (entry.title, entry.severity, entry.weight, entry.policy_hash) == (
        "Check c00",
        "medium",
        None,
        FLEET_POLICY.sha256,
    )


def test_results_for_checks_or_policies_never_assigned_are_kept_only_in_the_raw_report(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    invented = [
        make_result("c00", "fail"),  # counted
        make_result("made-up-check", "fail"),  # not in the assigned version
        make_result("c01", "fail", policy_id="rogue", policy_hash="e" * 64),  # a policy never assigned
        make_result("c02", "fail", policy_hash="f" * 64),  # a version of fleet-test never stored
    ] + [make_result(f"invented-{i}", "fail", policy_id=f"rogue-{i}", policy_hash="d" * 64) for i in range(50)]
    response = agent.report(invented)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["results"] == 1
    assert answer["not_counted"] == {
        "check_not_in_policy": 1,
        "policy_not_assigned": 51,
        "policy_version_unknown": 1,
    }
    summary = get(live, "/api/v1/summary")
    assert (summary["totals"]["fail"], summary["totals"]["total"]) == (1, 1)
    assert [p["policy"] for p in summary["by_policy"]] == [FLEET_POLICY_ID]
    assert [c["check"] for c in summary["by_check"]] == ["c00"]
    assert live.count(models.latest_results) == live.count(models.result_intervals) == 1
    assert live.scalar(sa.select(sa.func.count()).where(models.check_catalog.c.policy_id.like("rogue%"))) == 0
    assert live.admin().get(live.url + "/api/v1/checks/made-up-check").status_code == 404
    # The raw report keeps all of it, signed, as evidence.
    evidence = get(live, f"/api/v1/reports/{answer['report_id']}")
    assert len(json.loads(evidence["body"])["results"]) == 54 and evidence["signature"]["verified"]
    assert metric(live, "rampart_results_not_counted_total") == 53
    # A re-send counts nothing twice.
    again = agent.signed("POST", "/api/v1/reports", agent.report_body(invented, report_id=answer["report_id"]))
    assert again.json()["duplicate"] is True


def test_an_assignment_decides_what_counts_for_a_group(live: LiveCollector) -> None:
    """A group with its own assignment no longer falls back to the default group's policies."""
    server = live.enrolled_agent(group="servers")
    assert server.report([make_result("c00", "pass")]).json()["results"] == 1  # the default group's
    extra = load_policy_document(fleet_document("1.0.0", ["c00", "c01"]) | {"id": "servers-only"})
    run_write(live.engine, lambda c: store_policy(c, extra, group="servers"))
    answer = server.report(
        [make_result("c00", "fail"), make_result("c01", "fail", policy_id="servers-only", policy_hash=extra.sha256)]
    ).json()
    assert (answer["results"], answer["not_counted"]) == (1, {"policy_not_assigned": 1})
    assert {(p["policy"], p["fail"]) for p in get(live, "/api/v1/summary")["by_policy"]} == {
        (FLEET_POLICY_ID, 0),
        ("servers-only", 1),
    }


def test_results_of_the_version_a_new_one_replaced_count_while_agents_catch_up(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    assert agent.report([make_result("c00", "pass")]).status_code == 200
    newer = load_policy_document(fleet_document("2.0.0", ["c00", "c01"]))
    run_write(live.engine, lambda c: store_policy(c, newer))
    # The agent has not checked in since: it judged c01 with version 1, after version 2 was stored.
    late = agent.report([make_result("c01", "fail")]).json()
    assert (late["results"], late["not_counted"]) == (1, {})
    current = agent.report([make_result("c00", "fail", policy_hash=newer.sha256, policy_version="2.0.0")]).json()
    assert current["results"] == 1
    versions = dict(live.rows(sa.select(models.latest_results.c.check_id, models.latest_results.c.policy_version)))
    assert versions == {"c00": "2.0.0", "c01": "1.0.0"}
    # What each check is now comes from version 2; c02, which it dropped, keeps its last entry.
    (c01,) = live.rows(sa.select(models.check_catalog).where(models.check_catalog.c.check_id == "c01"))
    (c02,) = live.rows(sa.select(models.check_catalog).where(models.check_catalog.c.check_id == "c02"))
    assert (c01.policy_version, c02.policy_version) == ("2.0.0", "1.0.0")


@pytest.mark.parametrize("live_config", [{"policy_change_grace_hours": 0}])
def test_results_of_a_replaced_version_stop_counting_after_the_grace(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    newer = load_policy_document(fleet_document("2.0.0"))
    run_write(live.engine, lambda c: store_policy(c, newer))
    answer = agent.report(
        [
            make_result("c00", "fail", evaluated_at=before),  # judged while version 1 was in force: counts
            make_result("c01", "fail"),  # judged with version 1 after version 2 was stored: no grace left
        ]
    ).json()
    assert (answer["results"], answer["not_counted"]) == (1, {"policy_version_replaced": 1})
