"""The compliance API over HTTPS on SQLite and PostgreSQL: summary, hosts, host, check, trends, as at a date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from collector.storage import models
from tests.support.agents import SimAgent, make_result
from tests.support.live import LiveCollector
from tests.support.policies import FLEET_POLICY, FLEET_POLICY_ID

TODAY = dt.datetime.now(dt.UTC).date()


def days_ago(n: int) -> str:
    return (dt.datetime.combine(TODAY, dt.time(12)) - dt.timedelta(days=n)).isoformat() + "+00:00"


def fleet(live: LiveCollector) -> dict[str, SimAgent]:
    """Three hosts in two groups with a little history:

    web-1 (servers): patch failed 10 days ago, passes since 5 days ago; firewall passes; disk errors.
    web-2 (servers): patch fails throughout; firewall passes; disk passes.
    lap-1 (default): patch passes; firewall fails since 3 days ago (passed before); disk not applicable.
    """
    agents = {
        "web-1": live.enrolled_agent(group="servers", hostname="web-1"),
        "web-2": live.enrolled_agent(group="servers", hostname="web-2"),
        "lap-1": live.enrolled_agent(hostname="lap-1"),
    }
    fw = {"cyber_essentials": ["firewalls"], "ncsc_caf": ["B4.c"]}
    patch = {"cyber_essentials": ["security_update_management"]}

    def send(name: str, results: list[dict[str, Any]]) -> None:
        response = agents[name].report(results)
        assert response.status_code == 200, response.text

    send("web-1", [make_result("patch", "fail", severity="high", frameworks=patch, evaluated_at=days_ago(10))])
    send("web-2", [make_result("patch", "fail", severity="high", frameworks=patch, evaluated_at=days_ago(10))])
    send("lap-1", [make_result("firewall", "pass", frameworks=fw, evaluated_at=days_ago(10))])
    send("web-1", [make_result("patch", "pass", severity="high", frameworks=patch, evaluated_at=days_ago(5))])
    send(
        "lap-1", [make_result("firewall", "fail", frameworks=fw, evaluated_at=days_ago(3), observed={"enabled": False})]
    )
    now = days_ago(0)
    send(
        "web-1",
        [
            make_result("patch", "pass", severity="high", frameworks=patch, evaluated_at=now),
            make_result("firewall", "pass", frameworks=fw, evaluated_at=now),
            make_result("disk", "error", severity="critical", evaluated_at=now),
        ],
    )
    send(
        "web-2",
        [
            make_result(
                "patch", "fail", severity="high", frameworks=patch, evaluated_at=now, observed={"age_days": 90}
            ),
            make_result("firewall", "pass", frameworks=fw, evaluated_at=now),
            make_result("disk", "pass", severity="critical", evaluated_at=now),
        ],
    )
    send(
        "lap-1",
        [
            make_result("patch", "pass", severity="high", frameworks=patch, evaluated_at=now),
            make_result("firewall", "fail", frameworks=fw, evaluated_at=now, observed={"enabled": False}),
            make_result("disk", "not_applicable", severity="critical", evaluated_at=now),
        ],
    )
    return agents


def get(live: LiveCollector, path: str, **params: Any) -> Any:
    response = live.admin().get(live.url + path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_summary_now_by_policy_group_check_and_control(live: LiveCollector) -> None:
    fleet(live)
    data = get(live, "/api/v1/summary")
    totals = data["totals"]
    assert (totals["pass"], totals["fail"], totals["error"], totals["not_applicable"]) == (5, 2, 1, 1)
    assert totals["compliance"] == round(5 / 7, 4)
    # Severity weights (high 5, medium 3, critical 10): passes are web-1 patch and firewall, web-2 firewall
    # and disk, lap-1 patch; failures web-2 patch and lap-1 firewall.
    assert totals["compliance_weighted"] == round((5 + 3 + 3 + 5 + 10) / (5 + 3 + 3 + 5 + 10 + 5 + 3), 4)
    assert data["hosts"] == {"total": 3, "stale": 0, "stale_after_hours": 48.0}
    groups = {g["group"]: (g["pass"], g["fail"], g["error"]) for g in data["by_group"]}
    assert groups == {"servers": (4, 1, 1), "default": (1, 1, 0)}
    checks = {c["check"]: (c["pass"], c["fail"]) for c in data["by_check"]}
    assert checks == {"patch": (2, 1), "firewall": (2, 1), "disk": (1, 0)}
    assert data["by_check"][0]["severity"] == "high"  # most failing first, then the more severe
    controls = {(c["framework"], c["control"]): (c["pass"], c["fail"]) for c in data["by_control"]}
    assert controls[("cyber_essentials", "firewalls")] == (2, 1)
    assert controls[("cyber_essentials", "security_update_management")] == (2, 1)
    assert controls[("ncsc_caf", "B4.c")] == (2, 1)
    servers = get(live, "/api/v1/summary", group="servers")
    assert servers["totals"]["fail"] == 1 and servers["hosts"]["total"] == 2


def test_summary_and_views_as_at_a_past_date(live: LiveCollector) -> None:
    fleet(live)
    eight_days_ago = (TODAY - dt.timedelta(days=8)).isoformat()
    then = get(live, "/api/v1/summary", as_of=eight_days_ago)
    assert then["as_of"] == eight_days_ago
    assert (then["totals"]["pass"], then["totals"]["fail"]) == (1, 2)  # lap-1 firewall passed; both patches failed
    four_days_ago = (TODAY - dt.timedelta(days=4)).isoformat()
    later = get(live, "/api/v1/summary", as_of=four_days_ago)
    assert (later["totals"]["pass"], later["totals"]["fail"]) == (2, 1)  # web-1 patched
    host = get(live, "/api/v1/hosts/web-1", as_of=eight_days_ago)
    assert [(r["check"], r["status"]) for r in host["results"]] == [("patch", "fail")]
    assert host["results"][0]["observed"] == {"value": "patch", "ok": False}  # from the signed report
    failing = get(live, "/api/v1/checks/patch", as_of=eight_days_ago)
    assert sorted(s["name"] for s in failing["subjects"]) == ["web-1", "web-2"]
    assert (failing["score"]["pass"], failing["score"]["fail"]) == (0, 2)
    before_anything = get(live, "/api/v1/summary", as_of=(TODAY - dt.timedelta(days=20)).isoformat())
    assert before_anything["totals"]["total"] == 0


def test_hosts_counted_as_at_a_past_date(live: LiveCollector) -> None:
    """Hosts enrolled by the end of that day and not revoked by then, in each group."""
    agents = fleet(live)

    def enrolment(name: str, enrolled: int, revoked: int | None = None) -> None:
        def moment(n: int) -> dt.datetime:
            return dt.datetime.combine(TODAY, dt.time(12)) - dt.timedelta(days=n)

        with live.engine.begin() as connection:
            connection.execute(
                models.agents.update()
                .where(models.agents.c.agent_id == agents[name].agent_id)
                .values(enrolled_at=moment(enrolled), revoked_at=None if revoked is None else moment(revoked))
            )

    enrolment("web-1", enrolled=12)
    enrolment("web-2", enrolled=9, revoked=3)
    enrolment("lap-1", enrolled=6, revoked=1)

    def hosts_on(n: int, **params: Any) -> int:
        return int(
            get(live, "/api/v1/summary", as_of=(TODAY - dt.timedelta(days=n)).isoformat(), **params)["hosts"]["total"]
        )

    assert [hosts_on(n) for n in (13, 12, 9, 6, 4, 3, 1, 0)] == [0, 1, 2, 3, 3, 2, 1, 1]
    assert [hosts_on(n, group="servers") for n in (12, 9, 3)] == [1, 2, 1]
    assert [hosts_on(n, group="default") for n in (7, 6, 1)] == [0, 1, 0]


def test_trends_by_day_week_and_month(live: LiveCollector) -> None:
    fleet(live)
    daily = get(live, "/api/v1/trends", period="day", **{"from": (TODAY - dt.timedelta(days=11)).isoformat()})
    points = {p["date"]: (p["pass"], p["fail"]) for p in daily["points"]}
    assert points[(TODAY - dt.timedelta(days=11)).isoformat()] == (0, 0)
    assert points[(TODAY - dt.timedelta(days=10)).isoformat()] == (1, 2)
    assert points[(TODAY - dt.timedelta(days=5)).isoformat()] == (2, 1)
    assert points[(TODAY - dt.timedelta(days=3)).isoformat()] == (1, 2)
    assert points[TODAY.isoformat()] == (5, 2)
    weekly = get(live, "/api/v1/trends", period="week")
    assert weekly["points"][-1]["date"] == TODAY.isoformat() and weekly["points"][-1]["pass"] == 5
    assert all(dt.date.fromisoformat(p["date"]).weekday() == 6 for p in weekly["points"][:-1])
    monthly = get(live, "/api/v1/trends", period="month", check="patch")
    assert monthly["points"][-1]["fail"] == 1


def test_hosts_list_with_stale_flag_and_counts(live: LiveCollector) -> None:
    agents = fleet(live)
    with live.engine.begin() as connection:
        connection.execute(
            models.subjects.update()
            .where(models.subjects.c.ext_id == agents["lap-1"].agent_id)
            .values(last_seen=models.utcnow() - dt.timedelta(days=3))
        )
    data = get(live, "/api/v1/hosts")
    rows = {h["hostname"]: h for h in data["hosts"]}
    assert data["total"] == 3
    assert rows["lap-1"]["stale"] is True and rows["web-1"]["stale"] is False
    assert (rows["web-2"]["pass"], rows["web-2"]["fail"]) == (2, 1)
    stale = get(live, "/api/v1/hosts", stale="true")
    assert [h["hostname"] for h in stale["hosts"]] == ["lap-1"]
    assert get(live, "/api/v1/summary")["hosts"]["stale"] == 1
    page = get(live, "/api/v1/hosts", limit=2, offset=2)
    assert [h["hostname"] for h in page["hosts"]] == ["web-2"] and page["total"] == 3
    assert [h["hostname"] for h in get(live, "/api/v1/hosts", search="WEB")["hosts"]] == ["web-1", "web-2"]
    # Never seen is stale too; a revoked host is no longer counted, stale or not, in any group.
    with live.engine.begin() as connection:
        connection.execute(
            models.subjects.update().where(models.subjects.c.ext_id == agents["web-1"].agent_id).values(last_seen=None)
        )
    assert get(live, "/api/v1/summary")["hosts"]["stale"] == 2
    revoked = live.admin().post(live.url + f"/api/v1/agents/{agents['lap-1'].agent_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert get(live, "/api/v1/summary")["hosts"] == {"total": 2, "stale": 1, "stale_after_hours": 48.0}
    assert get(live, "/api/v1/summary", group="servers")["hosts"]["total"] == 2
    assert get(live, "/api/v1/summary", group="default")["hosts"] == {"total": 0, "stale": 0, "stale_after_hours": 48.0}
    assert get(live, "/api/v1/hosts", stale="true")["total"] == 1


def test_a_hosts_results_carry_the_observed_facts(live: LiveCollector) -> None:
    agents = fleet(live)
    data = get(live, f"/api/v1/hosts/{agents['web-2'].agent_id}")
    assert data["host"]["hostname"] == "web-2" and data["host"]["group"] == "servers"
    patch = next(r for r in data["results"] if r["check"] == "patch")
    assert patch["status"] == "fail"
    assert patch["observed"] == {"age_days": 90}
    assert patch["expectation"] == {"fact": "ok", "eq": True}
    assert patch["reason"] and patch["policy_hash"] == FLEET_POLICY.sha256
    assert patch["since"].startswith((TODAY - dt.timedelta(days=10)).isoformat())
    by_name = get(live, "/api/v1/hosts/WEB-2")
    assert by_name["host"]["agent_id"] == agents["web-2"].agent_id
    missing = live.admin().get(live.url + "/api/v1/hosts/nowhere")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_checks_failing_subjects(live: LiveCollector) -> None:
    fleet(live)
    data = get(live, "/api/v1/checks/firewall")
    assert data["policy"] == FLEET_POLICY_ID and data["score"]["fail"] == 1
    (subject,) = data["subjects"]
    assert subject["name"] == "lap-1" and subject["observed"] == {"enabled": False}
    assert subject["since"].startswith((TODAY - dt.timedelta(days=3)).isoformat())
    errors = get(live, "/api/v1/checks/disk", status="error")
    assert [s["name"] for s in errors["subjects"]] == ["web-1"]
    unknown = live.admin().get(live.url + "/api/v1/checks/nothing")
    assert unknown.status_code == 404


def test_dates_outside_the_kept_history_are_refused(live: LiveCollector) -> None:
    too_old = (TODAY - dt.timedelta(days=401)).isoformat()
    response = live.admin().get(live.url + "/api/v1/summary", params={"as_of": too_old})
    assert response.status_code == 400 and response.json()["code"] == "outside_retention"
    bad = live.admin().get(live.url + "/api/v1/summary", params={"as_of": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    assert "as_of" in bad.json()["message"]


def test_the_summary_reads_counters_that_match_the_latest_rows(live: LiveCollector) -> None:
    fleet(live)
    latest = live.rows(
        sa.select(models.latest_results.c.status, sa.func.count()).group_by(models.latest_results.c.status)
    )
    totals = get(live, "/api/v1/summary")["totals"]
    assert {status: totals[status] for status, _ in latest} == {status: n for status, n in latest}


def refused_with(live: LiveCollector, path: str, code: str, mentions: str, **params: Any) -> None:
    response = live.admin().get(live.url + path, params=params)
    assert response.status_code == 400, (path, params, response.text)
    assert response.json()["code"] == code and mentions in response.json()["message"], response.json()


def test_future_dates_are_refused_on_every_route(live: LiveCollector) -> None:
    """The state as at a later day is not known: waivers will have expired by then, hosts gone quiet."""
    agents = fleet(live)
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    for path in ("/api/v1/summary", f"/api/v1/hosts/{agents['web-1'].agent_id}", "/api/v1/checks/patch"):
        refused_with(live, path, "as_of_in_future", tomorrow, as_of=tomorrow)
    refused_with(live, "/api/v1/export/results", "as_of_in_future", "as_of", as_of=tomorrow)
    refused_with(live, "/api/v1/trends", "as_of_in_future", "to", to=tomorrow)
    refused_with(live, "/api/v1/trends", "as_of_in_future", "from", **{"from": tomorrow})
    assert get(live, "/api/v1/summary", as_of=TODAY.isoformat())["totals"]["pass"] == 5  # today is known


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/v1/summary", {"as_of": "9999-12-31"}, "as_of_in_future"),
        ("/api/v1/checks/patch", {"as_of": "9999-12-31"}, "as_of_in_future"),
        ("/api/v1/hosts/web-1", {"as_of": "9999-12-31"}, "as_of_in_future"),
        ("/api/v1/export/results", {"as_of": "9999-12-31"}, "as_of_in_future"),
        ("/api/v1/trends", {"to": "9999-12-31"}, "as_of_in_future"),
        ("/api/v1/trends", {"to": "0001-01-01"}, "outside_retention"),
        ("/api/v1/trends", {"from": "0001-01-01"}, "outside_retention"),
        ("/api/v1/summary", {"as_of": "0001-01-01"}, "outside_retention"),
        ("/api/v1/audit", {"since": "9999-12-31T23:30:00-05:00"}, "bad_request"),
        ("/api/v1/audit", {"since": "0001-01-01T00:30:00+05:00"}, "bad_request"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_a_400(
    live: LiveCollector, path: str, params: dict[str, str], code: str
) -> None:
    live.enrolled_agent(hostname="web-1")
    refused_with(live, path, code, next(iter(params)), **params)


def test_a_token_valid_past_the_year_9999_is_refused(live: LiveCollector) -> None:
    for expires_in in ("3000000d", "99999999999d"):
        response = live.admin().post(live.url + "/api/v1/enroll-tokens", json={"expires_in": expires_in})
        assert response.status_code == 400 and "9999" in response.json()["message"], response.text


def test_a_revoked_hosts_results_stop_counting_from_its_revocation(live: LiveCollector) -> None:
    agents = fleet(live)
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    before = get(live, "/api/v1/summary", as_of=yesterday)
    revoked = live.admin().post(live.url + f"/api/v1/agents/{agents['web-2'].agent_id}/revoke")
    assert revoked.status_code == 200, revoked.text

    # Now (and as at today, which ends after the revocation): web-2's patch fail, firewall and disk passes
    # are gone from the totals, the group figures, the check's counts and its failing subjects.
    for params in ({}, {"as_of": TODAY.isoformat()}):
        now = get(live, "/api/v1/summary", **params)
        totals = now["totals"]
        assert (totals["pass"], totals["fail"], totals["error"], totals["not_applicable"]) == (3, 1, 1, 1), params
        groups = {g["group"]: (g["pass"], g["fail"], g["error"]) for g in now["by_group"]}
        assert groups == {"servers": (2, 0, 1), "default": (1, 1, 0)}, params
        patch = get(live, "/api/v1/checks/patch", **params)
        assert patch["subjects"] == [] and (patch["score"]["pass"], patch["score"]["fail"]) == (2, 0), params
    assert get(live, "/api/v1/trends", period="day")["points"][-1]["fail"] == 1
    assert get(live, "/api/v1/summary", group="servers")["totals"]["fail"] == 0
    host = get(live, f"/api/v1/hosts/{agents['web-2'].agent_id}")
    assert {r["status"] for r in host["results"]} == {"retired"} and host["score"]["total"] == 0
    exported = live.admin().get(live.url + "/api/v1/export/results", params={"format": "jsonl"})
    assert agents["web-2"].agent_id not in exported.text

    # As at an earlier date it still counts, exactly as it did.
    assert get(live, "/api/v1/summary", as_of=yesterday)["totals"] == before["totals"]
    failing_then = get(live, "/api/v1/checks/patch", as_of=yesterday)
    assert [s["name"] for s in failing_then["subjects"]] == ["web-2"]
    host_then = get(live, f"/api/v1/hosts/{agents['web-2'].agent_id}", as_of=yesterday)
    assert [(r["check"], r["status"]) for r in host_then["results"]] == [("patch", "fail")]
    # The counters still agree with the latest rows that count.
    latest = live.rows(
        sa.select(models.latest_results.c.status, sa.func.count())
        .where(models.latest_results.c.status != "retired")
        .group_by(models.latest_results.c.status)
    )
    counted = live.scalar(sa.select(sa.func.sum(models.status_counts.c.count)))
    assert counted == sum(n for _, n in latest) == 6
