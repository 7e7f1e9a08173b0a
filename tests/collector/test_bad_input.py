"""Input that made the collector answer 500 gets a 400 that says what is wrong: integers beyond the
database's, JSON nested beyond the parsers', searches beyond SQLite's patterns, trends beyond their
limit (refused before any point is built)."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
from pathlib import Path

import pytest
import requests

from checks import wire
from collector.commands import queries as query_commands
from collector.storage import models
from collector.storage.queries import common
from collector.storage.queries import trends as trend_view
from tests.conftest import run_cli
from tests.support.agents import make_result
from tests.support.live import LiveCollector

TODAY = dt.datetime.now(dt.UTC).date()


def refused(response: requests.Response, code: str, mentions: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code, body
    assert mentions in body["message"], body["message"]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_integers_beyond_the_bounds_are_400(live: LiveCollector) -> None:
    admin = live.admin()
    for path in ("/api/v1/hosts", "/api/v1/checks/c00", "/api/v1/audit"):
        refused(admin.get(live.url + path, params={"offset": 2**63}), "bad_request", "offset")
        refused(admin.get(live.url + path, params={"offset": -1}), "bad_request", "offset")
        refused(admin.get(live.url + path, params={"limit": 0}), "bad_request", "limit")
        refused(admin.get(live.url + path, params={"limit": 10**30}), "bad_request", "limit")
    assert admin.get(live.url + "/api/v1/hosts", params={"offset": common.MAX_OFFSET}).json()["hosts"] == []
    assert (query_commands.MAX_OFFSET, query_commands.MAX_SEARCH) == (common.MAX_OFFSET, common.MAX_SEARCH)


def test_deeply_nested_json_is_400_wherever_it_is_sent(live: LiveCollector) -> None:
    token = live.enrollment_token(uses=5)
    for depth in (40, 100_000):  # beyond the limit; beyond what Python's parser can nest
        agent = live.agent()
        body = (
            b'{"token": "' + token.encode() + b'", "public_key": "' + wire.public_key_text(agent.key).encode() + b'", '
            b'"host": {"hostname": "deep", "facts": ' + nested(depth) + b"}}"
        )
        refused(agent.signed("POST", "/api/v1/enroll", body), "bad_json", "nests deeper than")
    assert live.count(models.agents) == 0

    agent = live.enrolled_agent()
    checkin = b'{"host": {"hostname": "x", "facts": ' + nested(100_000) + b"}}"
    refused(agent.signed("POST", "/api/v1/checkin", checkin), "bad_json", "nests deeper than")
    report = json.loads(agent.report_body([make_result("c00")]))
    report["results"][0]["observed"] = {"marker": True}
    text = json.dumps(report).encode().replace(b'{"marker": true}', b'{"deep": ' + nested(100_000) + b"}")
    refused(agent.signed("POST", "/api/v1/reports", text), "bad_json", "nests deeper than")
    assert live.count(models.reports) == 0

    admin = live.admin()
    headers = {"Content-Type": "application/json"}
    refused(admin.post(live.url + "/api/v1/policies", data=b'{"id": ' + nested(100) + b"}", headers=headers),
            "bad_json", "nests deeper than")  # fmt: skip
    deep_yaml = {"yaml": "id: x\nchecks: " + "[" * 5000 + "]" * 5000}
    refused(admin.post(live.url + "/api/v1/policies", json=deep_yaml), "invalid_policy", "nests too deeply")
    users = admin.post(live.url + "/api/v1/users", data=b'{"name": ' + nested(100_000) + b"}", headers=headers)
    assert users.status_code == 400, users.text


def test_a_policy_file_nested_too_deeply_is_a_usage_error(tmp_path: Path) -> None:
    policy = tmp_path / "deep.yaml"
    policy.write_text("id: x\nchecks: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert run_cli("rampart-collector", "--config", str(config), "init").returncode == 0
    refused = run_cli("rampart-collector", "--config", str(config), "policy", "add", str(policy))
    assert refused.returncode == 2 and "nests too deeply" in refused.stderr, refused.stderr


@pytest.mark.parametrize("live_config", [{"max_header_bytes": 128 * 1024}])
def test_a_search_is_literal_and_bounded(live: LiveCollector) -> None:
    names = ["web_01", "webx01", "100%", "a\\b", "o'brien"]
    ids = {name: live.enrolled_agent(hostname=name).agent_id for name in names}
    admin = live.admin()

    def found(search: str) -> list[str]:
        response = admin.get(live.url + "/api/v1/hosts", params={"search": search})
        assert response.status_code == 200, response.text
        return sorted(h["hostname"] for h in response.json()["hosts"])

    assert found("_") == ["web_01"]
    assert found("%") == ["100%"]
    assert found("\\") == ["a\\b"]
    assert found("web") == ["web_01", "webx01"]
    assert found("'") == ["o'brien"]
    assert found("' OR '1'='1") == [] and found('"; DROP TABLE agents; --') == []
    assert found(ids["webx01"][:12]) == ["webx01"]
    # 60 kB made SQLite fail ("LIKE pattern too complex"); with headers allowed that long, a 400.
    refused(admin.get(live.url + "/api/v1/hosts", params={"search": "a" * 60_000}), "bad_request", "search")
    assert live.count(models.agents) == len(names)


def test_a_request_line_beyond_the_header_limit_is_refused_by_the_server(live: LiveCollector) -> None:
    response = live.admin().get(live.url + "/api/v1/hosts", params={"search": "a" * 60_000})
    assert response.status_code == 431 and response.json()["code"] == "headers_too_large"


def test_a_trend_beyond_its_limit_is_refused_before_it_is_built(live: LiveCollector) -> None:
    start = (TODAY - dt.timedelta(days=30)).isoformat()
    # Over HTTP, a range long enough to pass the limit is refused sooner: in the future, or beyond retention.
    response = live.admin().get(live.url + "/api/v1/trends", params={"from": start, "to": "5000-01-01"})
    refused(response, "as_of_in_future", "5000-01-01")
    response = live.admin().get(live.url + "/api/v1/trends", params={"from": "0001-01-01"})
    assert response.status_code == 400 and response.json()["code"] in {"outside_retention", "bad_request"}
    assert live.admin().get(live.url + "/api/v1/trends", params={"from": start}).status_code == 200

    tracemalloc.start()
    try:
        with pytest.raises(common.QueryError, match="at most 1000 points"):
            trend_view.bucket_ends("day", dt.date(1, 1, 1), dt.date(9999, 12, 31))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # building 3.6 million dates first took hundreds of megabytes
    assert trend_view.point_count("week", dt.date(2026, 11, 29), dt.date(2026, 12, 7)) == 3  # Sun; Mon-Sun; Mon
    assert len(trend_view.bucket_ends("week", dt.date(2026, 11, 29), dt.date(2026, 12, 7))) == 3
    assert trend_view.point_count("month", dt.date(2026, 1, 31), dt.date(2027, 3, 1)) == 15
    assert len(trend_view.bucket_ends("month", dt.date(2026, 1, 31), dt.date(2027, 3, 1))) == 15
