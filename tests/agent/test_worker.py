"""The worker run as a process, with the collector away (a closed port: a real outage).

Results are committed to the spool whether or not they can be delivered; the plan follows the verified
bundle and the local overrides; policies from the collector cannot run commands unless the admin allows it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.helpers import command_check, make_state, run_worker, small_policy, write_config
from tests.conftest import run_cli


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def agent_config(tmp_path: Path, state_root: Path, **extra: object) -> Path:
    settings: dict[str, object] = {
        "state_dir": str(state_root),
        "request_attempts": 1,
        "backoff_initial": "1s",
        "backoff_max": "2s",
        "min_interval": "1s",
    }
    settings.update(extra)
    return write_config(tmp_path / "config.yaml", **settings)


def spooled_results(state_root: Path) -> list[dict[str, Any]]:
    with Spool(StatePaths(state_root).spool, 1 << 30) as spool:
        return [result for report in spool.pending(1000) for result in json.loads(report.body)["results"]]


def test_plan_groups_checks_by_interval_with_overrides_and_floor(tmp_path: Path) -> None:
    root = tmp_path / "state"
    policy = small_policy(interval="6h")
    policy["checks"].append(dict(command_check(), interval="10s"))
    make_state(root, policies=[policy])
    config = agent_config(
        tmp_path, root, min_interval="1m", check_intervals={"small/passwd-exists": "30m"}, splay="0", jitter="7s"
    )
    run = run_worker(config, "plan")
    assert run.returncode == 0, run.stderr
    assert run.summary["enrolled"] is True and run.summary["policy_etag"] == "etag-1"
    assert run.summary["jobs"] == [
        {"interval_s": 60.0, "checks": ["small/echo-hello"]},  # 10s raised to the 1m floor
        {"interval_s": 1800.0, "checks": ["small/passwd-exists"]},
        {"interval_s": 21600.0, "checks": ["small/no-such-file"]},
    ]
    assert run.summary["splay_s"] == 0 and run.summary["jitter_s"] == 7


def test_results_are_spooled_while_the_collector_is_away(tmp_path: Path) -> None:
    root = tmp_path / "state"
    state = make_state(root, collector_url=closed_port_url(), policies=[small_policy()])
    # A backoff window far longer than a run takes, so the second run falls inside it on any machine.
    config = agent_config(tmp_path, root, backoff_initial="10m", backoff_max="20m")
    run = run_worker(config, "run")
    assert run.returncode == 1  # not delivered
    assert run.summary["results"] == 2 and run.summary["spooled"] == 1 and run.summary["pending"] == 1
    assert "Connection refused" in run.summary["delivery_error"]
    results = spooled_results(root)
    assert {(r["check_id"], r["status"]) for r in results} == {("passwd-exists", "pass"), ("no-such-file", "fail")}
    assert all(r["subject"] == {"kind": "host", "id": state.agent_id, "name": r["subject"]["name"]} for r in results)
    # a second run only for one check adds one more report; nothing already spooled is lost
    again = run_worker(config, "run", "--checks", "small/passwd-exists")
    assert again.summary["results"] == 1 and again.summary["pending"] == 2
    assert "delivery_skipped" in again.summary  # within the backoff window no request is even tried
    status = run_cli("rampart-agent", "--config", str(config), "status", "--format", "json")
    shown = json.loads(status.stdout)
    assert status.returncode == 1  # results stuck: reports wait and the last delivery failed
    assert any("2 report(s) wait in the spool" in problem for problem in shown["problems"])
    assert shown["spool"]["reports"] == 2 and shown["spool"]["results"] == 3
    assert shown["last_run"]["results"] == 1 and shown["last_delivery"]["failures_in_a_row"] == 1
    assert "Connection refused" in shown["last_delivery"]["error"]


def test_command_probe_from_the_collector_is_refused_unless_the_admin_allows_it(tmp_path: Path) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy(checks=[command_check()])])
    refused = run_worker(agent_config(tmp_path, root), "run")
    assert refused.summary["counts"] == {"error": 1}
    (result,) = spooled_results(root)
    assert result["status"] == "error"
    assert "command probe is not allowed in policies from the collector" in str(result["reason"])
    assert "allow_command_probe: true" in str(result["reason"])

    allowed = run_worker(agent_config(tmp_path, root, allow_command_probe=True), "run")
    assert allowed.summary["counts"] == {"pass": 1}


def test_not_enrolled_is_a_usage_error(tmp_path: Path) -> None:
    config = agent_config(tmp_path, tmp_path / "empty")
    run = run_worker(config, "run")
    assert run.returncode == 2 and "not enrolled" in run.stderr and "rampart-agent enroll" in run.stderr
    plan = run_worker(config, "plan")
    assert plan.returncode == 0 and plan.summary["enrolled"] is False and plan.summary["jobs"] == []
    status = run_cli("rampart-agent", "--config", str(config), "status")
    assert status.returncode == 1 and "NOT ENROLLED" in status.stdout


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "state"
    make_state(root, policies=[small_policy()])
    os.chmod(root / "agent.key", 0o644)
    run = run_worker(agent_config(tmp_path, root), "deliver")
    assert run.returncode == 2 and "readable by others (mode 0644); it must be 0600" in run.stderr


def test_a_bundle_altered_on_disk_stops_checks_and_says_why(tmp_path: Path) -> None:
    root = tmp_path / "state"
    make_state(root, policies=[small_policy()])
    bundle = json.loads((root / "policy-bundle.json").read_text())
    bundle["payload"]["policies"][0]["checks"][1]["expect"]["eq"] = False  # make the failing check pass
    (root / "policy-bundle.json").write_text(json.dumps(bundle))
    config = agent_config(tmp_path, root)
    plan = run_worker(config, "plan")
    assert plan.summary["jobs"] == [] and "altered" in plan.summary["policy_error"]
    run = run_worker(config, "run")
    assert run.summary["results"] == 0 and "altered" in run.stderr


def test_config_may_follow_the_command(tmp_path: Path) -> None:
    root = tmp_path / "state"
    make_state(root, policies=[small_policy()])
    config = agent_config(tmp_path, root)
    after = run_cli("rampart-agent", "status", "--config", str(config), "--format", "json")
    assert after.returncode == 0 and json.loads(after.stdout)["state_dir"] == str(root)
