"""The agent against a real collector process: enrolment, delivery, the pinned CA, revocation, a tampered
policy bundle, throttling and clock skew. Faults are injected by a proxy in front of the real collector."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.e2e import BASELINE_CHECKS, EnrolledAgent, enrol, new_token, stored_reports
from tests.agent.faultproxy import Fault, FaultProxy
from tests.agent.helpers import clean_env, command_check, run_worker, small_policy
from tests.support.collector import RunningCollector, collector_process


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """One collector for the module (starting and stopping one takes seconds); each test enrols its own agent
    and looks only at that agent's reports."""
    with collector_process(tmp_path_factory.mktemp("collector")) as running:
        yield running


@pytest.fixture
def own_collector(tmp_path: Path) -> Iterator[RunningCollector]:
    """A collector for a test that stops and starts it."""
    with collector_process(tmp_path / "collector") as running:
        yield running


@pytest.fixture
def proxy(tmp_path: Path, collector: RunningCollector) -> Iterator[FaultProxy]:
    running = FaultProxy(collector.url, collector.ca_file, tmp_path / "proxy").start()
    yield running
    running.stop()


def through_proxy(agent: EnrolledAgent, proxy: FaultProxy, **extra: object) -> None:
    """Point the agent at the proxy; the config's CA (the proxy's) wins over the one pinned at enrolment."""
    agent.reconfigure(collector_url=proxy.url, ca_cert=str(proxy.ca), **extra)


def test_enrol_run_once_deliver_and_status(tmp_path: Path, collector: RunningCollector) -> None:
    agent = enrol(collector, tmp_path / "agent")
    # owner-only state; the token is kept nowhere
    assert stat.S_IMODE(agent.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((agent.state / "agent.key").stat().st_mode) == 0o600
    identity = json.loads((agent.state / "agent.json").read_text())
    assert identity["agent_id"] == agent.agent_id and identity["group"] == "default"
    assert "token" not in json.dumps(identity)
    assert (agent.state / "policy-bundle.json").exists()  # fetched at enrolment

    # The environment names a CA that did not sign the collector's certificate: the pinned CA still wins.
    hostile = clean_env(
        REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
        CURL_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
        HTTPS_PROXY="http://127.0.0.1:9",
    )
    once = agent.cli("run", "--once", env=hostile)
    assert once.returncode == 0, once.stderr
    (report,) = stored_reports(collector, agent.agent_id)
    assert report.agent_id == agent.agent_id and report.result_count == BASELINE_CHECKS and report.dropped == 0

    status = agent.status()
    assert status["enrolled"] and status["agent_id"] == agent.agent_id
    assert status["policy"]["policies"][0]["id"] == "baseline"
    assert status["spool"]["reports"] == 0 and status["delivered"] == {"reports": 1, "results": BASELINE_CHECKS}
    assert status["last_run"]["results"] == BASELINE_CHECKS and status["last_delivery"]["error"] is None
    listed = json.loads(collector.cli("agents", "list", "--format", "json").stdout)
    (mine,) = [a for a in listed if a["agent_id"] == agent.agent_id]
    assert mine["last_seen"] and mine["group"] == "default"

    assert agent.cli("run", "--once").returncode == 0
    assert len({r.report_id for r in stored_reports(collector, agent.agent_id)}) == 2


def test_enrolment_failures_leave_nothing_behind(tmp_path: Path, collector: RunningCollector) -> None:
    state = tmp_path / "agent" / "state"
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  state_dir: {state}\n", encoding="utf-8")
    base = ["--config", str(config), "enroll", "--collector", collector.url]
    from tests.conftest import run_cli

    bad = run_cli("rampart-agent", *base, "--token", "rpe_not-a-token", "--ca-cert", collector.ca_file)
    assert bad.returncode == 1 and "refused the enrolment token" in bad.stderr
    assert "rpe_not-a-token" not in bad.stderr + bad.stdout
    assert not (state / "agent.json").exists() and not (state / "agent.key").exists()

    # without --ca-cert the system trust store does not know the collector's private CA
    untrusted = run_cli("rampart-agent", *base, "--token", new_token(collector))
    assert untrusted.returncode == 1 and "TLS failure" in untrusted.stderr

    plain = run_cli("rampart-agent", *base[:-1], collector.url.replace("https", "http"), "--token", "x")
    assert plain.returncode == 2 and "https://" in plain.stderr

    token = new_token(collector)
    first = run_cli("rampart-agent", *base, "--token", token, "--ca-cert", collector.ca_file, "--format", "json")
    assert first.returncode == 0, first.stderr
    reused = run_cli("rampart-agent", *base, "--token", token, "--ca-cert", collector.ca_file, "--force")
    assert reused.returncode == 1  # a one-time token works once
    again = run_cli("rampart-agent", *base, "--token", new_token(collector), "--ca-cert", collector.ca_file)
    assert again.returncode == 2 and "already enrolled" in again.stderr


@pytest.mark.slow
def test_re_enrolment_gets_a_new_identity_and_keeps_the_old_results_aside(
    tmp_path: Path, own_collector: RunningCollector
) -> None:
    collector = own_collector
    agent = enrol(collector, tmp_path / "agent")
    collector.stop()
    assert agent.cli("run", "--once").returncode == 1  # results spooled, not delivered
    collector.start(port=int(collector.url.rsplit(":", 1)[1]))
    token_file = tmp_path / "token"
    token_file.write_text(new_token(collector) + "\n")
    again = agent.cli(
        "enroll", "--collector", collector.url, "--token-file", str(token_file), "--force", "--format", "json"
    )
    assert again.returncode == 0, again.stderr
    renewed = json.loads(again.stdout)
    assert renewed["agent_id"] != agent.agent_id and renewed["replaced"] == agent.agent_id
    assert (agent.state / f"spool-{agent.agent_id}.sqlite").exists()
    assert agent.status()["spool"]["reports"] == 0
    assert agent.cli("run", "--once").returncode == 0  # the CA pinned at first enrolment still applies
    assert {r.agent_id for r in stored_reports(collector)} == {renewed["agent_id"]}


def test_a_revoked_agent_is_no_longer_accepted(tmp_path: Path, collector: RunningCollector) -> None:
    agent = enrol(collector, tmp_path / "agent")
    assert agent.cli("run", "--once").returncode == 0
    revoked = collector.cli("agents", "revoke", agent.agent_id)
    assert revoked.returncode == 0, revoked.stderr
    once = agent.cli("run", "--once")
    assert once.returncode == 1 and "revoked" in once.stderr
    assert len(stored_reports(collector, agent.agent_id)) == 1
    status = agent.cli("status")
    assert status.returncode == 1 and "REFUSED" in status.stdout
    # refused at check-in: no checks are run for a collector that will not take them
    assert agent.status()["spool"]["reports"] == 0 and agent.status()["refused_by_collector"] == "agent_revoked"
    # the daemon's scheduled runs still check and spool, but send nothing to a collector that refuses them
    run = run_worker(agent.config, "run")
    assert run.returncode == 1 and "refuses this agent (agent_revoked)" in run.summary["delivery_skipped"]
    assert run.summary["results"] == BASELINE_CHECKS and run.summary["pending"] == 1
    assert len(stored_reports(collector, agent.agent_id)) == 1


def test_a_tampered_policy_bundle_is_refused_and_the_last_good_one_kept(
    tmp_path: Path, collector: RunningCollector, proxy: FaultProxy
) -> None:
    agent = enrol(collector, tmp_path / "agent")
    through_proxy(agent, proxy)
    good = (agent.state / "policy-bundle.json").read_bytes()

    def tamper(method: str, path: str, body: bytes) -> bytes:
        if path == "/api/v1/checkin":  # make the agent believe its policy changed
            data = json.loads(body)
            data["policy_etag"] = "changed"
            return json.dumps(data).encode()
        if path == "/api/v1/policy" and body:  # loosen a check on the way
            document = json.loads(body)
            document["payload"]["policies"][0]["checks"][0]["expect"] = {"fact": "exists", "eq": False}
            return json.dumps(document).encode()
        return body

    proxy.tamper = tamper
    proxy.strip_if_none_match = True
    once = agent.cli("run", "--once")
    assert once.returncode == 0, once.stderr  # checks still ran and were delivered, with the good policy
    assert "policy bundle refused" in once.stderr and "altered" in once.stderr
    assert (agent.state / "policy-bundle.json").read_bytes() == good
    status = agent.status()
    assert "altered" in status["policy_error"] and status["policy"]["policies"][0]["id"] == "baseline"
    (report,) = stored_reports(collector, agent.agent_id)
    assert report.result_count == BASELINE_CHECKS


def test_throttling_is_honoured_then_delivered(tmp_path: Path, collector: RunningCollector, proxy: FaultProxy) -> None:
    agent = enrol(collector, tmp_path / "agent")
    through_proxy(agent, proxy, request_attempts=4)
    proxy.faults += [
        Fault("POST", "/api/v1/reports", 503, {"Retry-After": "2"}),
        Fault("POST", "/api/v1/reports", 429, {"Retry-After": "1"}),
    ]
    once = agent.cli("run", "--once")
    assert once.returncode == 0, once.stderr
    posts = proxy.requests("POST", "/api/v1/reports")
    assert [p.status for p in posts] == [503, 429, 200]
    assert posts[1].at - posts[0].at >= 2.0 - 0.05
    assert posts[2].at - posts[1].at >= 1.0 - 0.05
    assert (
        posts[0].body == posts[2].body
        or json.loads(posts[0].body)["report_id"] == json.loads(posts[2].body)["report_id"]
    )
    assert len(stored_reports(collector, agent.agent_id)) == 1


def test_a_long_retry_after_is_left_to_the_next_attempt(
    tmp_path: Path, collector: RunningCollector, proxy: FaultProxy
) -> None:
    agent = enrol(collector, tmp_path / "agent")
    through_proxy(agent, proxy, delivery_budget="3s")
    proxy.faults.append(Fault("POST", "/api/v1/reports", 503, {"Retry-After": "120"}))
    once = agent.cli("run", "--once")
    assert once.returncode == 1
    status = agent.status()
    assert status["spool"]["reports"] == 1 and status["last_delivery"]["next_attempt_at"]
    deliver = agent.cli("run", "--once")  # --once delivers regardless of the wait, and the fault is spent
    assert deliver.returncode == 0, deliver.stderr
    assert len(stored_reports(collector, agent.agent_id)) == 2


def test_clock_skew_is_corrected_from_the_collectors_answer(
    tmp_path: Path, collector: RunningCollector, proxy: FaultProxy
) -> None:
    agent = enrol(collector, tmp_path / "agent")
    through_proxy(agent, proxy)
    with Spool(StatePaths(agent.state).spool, 1 << 30) as spool:
        spool.set(clock_offset_s=-1000.0)  # the agent believes it is 1000 s earlier than it is
    once = agent.cli("run", "--once")
    assert once.returncode == 0, once.stderr
    checkins = proxy.requests("POST", "/api/v1/checkin")
    assert [c.status for c in checkins[:2]] == [401, 200]  # stale_timestamp, corrected, re-signed
    assert abs(agent.status()["clock_offset_s"]) < 5
    assert len(stored_reports(collector, agent.agent_id)) == 1


def test_policies_assigned_on_the_collector_reach_the_agent_and_command_probes_stay_off(
    tmp_path: Path, collector: RunningCollector, write: Callable[[str, str], Path]
) -> None:
    agent = enrol(collector, tmp_path / "agent", group="command-ops")
    assert agent.status()["policy"]["policies"][0]["id"] == "baseline"  # the default group's, until assigned
    policy = write("ops.yaml", yaml.safe_dump(small_policy(checks=[command_check("echo-hello")]) | {"id": "ops"}))
    added = collector.cli("policy", "add", str(policy), "--group", "command-ops")
    assert added.returncode == 0, added.stderr
    once = agent.cli("run", "--once")  # the check-in sees a new ETag and fetches the signed bundle
    assert once.returncode == 0, once.stderr
    assert [p["id"] for p in agent.status()["policy"]["policies"]] == ["ops"]
    host = json.loads(collector.cli("host", agent.agent_id, "--format", "json").stdout)
    (result,) = [r for r in host["results"] if r["check"] == "echo-hello"]
    assert result["status"] == "error" and "allow_command_probe: true" in result["reason"]

    agent.reconfigure(allow_command_probe=True)  # a local administrator's decision, not the collector's
    assert agent.cli("run", "--once").returncode == 0
    host = json.loads(collector.cli("host", agent.agent_id, "--format", "json").stdout)
    (result,) = [r for r in host["results"] if r["check"] == "echo-hello"]
    assert result["status"] == "pass"
