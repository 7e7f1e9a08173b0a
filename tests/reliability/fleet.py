"""Fleets of real agents for the fault scenarios: enrolled with `rampart-agent enroll`, judged on a cheap
policy, their backlogs in their own spools, delivering through `python -m agent.worker` or the daemon.

- `enrol_fleet` enrols N agents in a group of their own (one N-use token, enrolments run a few at a
  time) and, once, stores and assigns that group a small policy of two file checks, so that a run costs
  little on a 2-core machine; the agents are real, with their own keys, state and spools.
- `spool_backlog` leaves in an agent's spool what runs during an outage would have left there: reports
  cloned from a real run of the agent (same policy, hash and checks) with new ids and earlier times,
  committed through the agent's own Spool, so a test can have days of backlog without waiting days.
- `Deliveries` runs every agent's `deliver` worker as a process, again and again, each at the time its
  last summary asked (next_attempt_at, as the daemon schedules it), until every spool is empty or the
  deadline passes: what a fleet of daemons does after an outage, without their check runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.e2e import FAST_AGENT, EnrolledAgent, new_token
from tests.agent.helpers import ROOT, clean_env, small_policy, write_config
from tests.support.collector import RunningCollector, free_port

GROUP = "fleet"
SMALL_CHECKS = 2  # small_policy(): /etc/passwd exists (pass), a missing file (fail)


def assign_small_policy(collector: RunningCollector, directory: Path, group: str = GROUP) -> None:
    path = directory / "small-policy.yaml"
    path.write_text(yaml.safe_dump(small_policy()), encoding="utf-8")
    added = collector.cli("policy", "add", str(path), "--group", group)
    assert added.returncode == 0, added.stderr


def enrol_one(
    directory: Path, token: str, url: str, ca: str, first_checkin: bool = True, **agent: Any
) -> EnrolledAgent:
    """What `rampart-agent enroll` does (the agent's own enrol and first check-in), in this process: a
    fleet enrols in seconds instead of a process start each."""
    from agent.commands import _first_checkin
    from agent.config import load_agent_config
    from agent.enroll import enroll
    from agent.hostinfo import host_facts

    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    path = write_config(directory / "agent.yaml", **{**FAST_AGENT, "state_dir": str(state), **agent})
    config = load_agent_config(str(path), environ={})
    enrolled = enroll(config, collector_url=url, token=token, ca_cert=ca, host=host_facts())
    if first_checkin:
        policy = _first_checkin(config)
        assert "small" in policy, policy
    return EnrolledAgent(path, state, enrolled.identity.agent_id)


def enrol_fleet(
    collector: RunningCollector,
    directory: Path,
    count: int,
    *,
    group: str = GROUP,
    url: str | None = None,
    parallel: int = 4,
    first_checkin: bool = True,
    **agent: Any,
) -> list[EnrolledAgent]:
    """`count` agents enrolled with `collector` (through `url`, e.g. a load balancer), in `group`."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "small-policy.yaml").exists():
        assign_small_policy(collector, directory, group)
    token = new_token(collector, "--group", group, "--uses", str(count))
    with ThreadPoolExecutor(parallel) as pool:
        futures = [
            pool.submit(
                enrol_one, directory / f"agent-{i:03d}", token, url or collector.url, collector.ca_file,
                first_checkin, **agent,
            )
            for i in range(count)
        ]  # fmt: skip
        return [f.result() for f in futures]


WORKER = (sys.executable, "-P", "-m", "agent.worker")


def worker(config: Path, task: str, *extra: str, launcher: Sequence[str] = WORKER) -> subprocess.Popen[str]:
    """The agent's worker as a process; `launcher` runs it another way (in a namespace, on a skewed clock)."""
    return subprocess.Popen(
        [*launcher, task, "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )


def run_worker(
    config: Path,
    task: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = WORKER,
) -> dict[str, Any]:
    process = subprocess.Popen(
        [*launcher, task, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or clean_env(),
        cwd=ROOT,
    )
    out, err = process.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {"exit_code": process.returncode}
    summary["stderr"] = err
    return summary


def spool_backlog(agent: EnrolledAgent, count: int, *, span: dt.timedelta, template: dict[str, Any]) -> list[str]:
    """Commit `count` reports like `template` (a real report of this agent) to its spool, created over
    `span` up to now, oldest first; returns their ids."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    step = span / max(count, 1)
    reports = []
    for index in range(count):
        moment = (now - span + step * index).strftime("%Y-%m-%dT%H:%M:%SZ")
        report = copy.deepcopy(template)
        report.update(report_id=str(uuid.uuid4()), created_at=moment)
        for result in report["results"]:
            result["evaluated_at"] = moment
        reports.append(report)
    with Spool(StatePaths(agent.state).spool, 1 << 40) as spool:
        spool.add(reports)
    return [r["report_id"] for r in reports]


def template_report(agent: EnrolledAgent) -> dict[str, Any]:
    """One real run of the agent's checks, taken out of its spool before any delivery: the run is made
    with the collector's address pointed at a closed port (the environment overrides the config)."""
    closed = f"https://127.0.0.1:{free_port()}"
    summary = run_worker(agent.config, "run", env=clean_env(RAMPART_AGENT__COLLECTOR_URL=closed))
    assert summary.get("results") and summary.get("pending"), summary
    with Spool(StatePaths(agent.state).spool, 1 << 40) as spool:
        # One run is one report, or several when its results exceed report_max_bytes (the process probe's
        # facts grow with the processes of a busy machine): the template is the first with the others' results.
        pending = spool.pending(100)
        assert pending, "the run spooled nothing"
        data: dict[str, Any] = json.loads(pending[0].body)
        for more in pending[1:]:
            data["results"].extend(json.loads(more.body)["results"])
        # the run is now the template, not a report to deliver: out of the spool with its counts
        for report in pending:
            spool.db.execute("DELETE FROM reports WHERE seq = ?", (report.seq,))
            spool.db.execute("UPDATE meta SET value = value - ? WHERE key = 'collected_results'", (report.results,))
        spool.set(next_attempt_at=None, delivery_failures=0)
    return data


def templated(template: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """The template as another agent's run: its id in the envelope and as every result's subject."""
    report = copy.deepcopy(template)
    report["agent_id"] = agent_id
    for result in report["results"]:
        if isinstance(result.get("subject"), dict):
            result["subject"]["id"] = agent_id
    return report


def spool_depth(agent: EnrolledAgent) -> int:
    with Spool(StatePaths(agent.state).spool, 1 << 40) as spool:
        return spool.stats().reports


@dataclass
class Deliveries:
    """Every agent's deliver worker, run as the daemon would: again at the time its summary asks."""

    agents: Sequence[EnrolledAgent]
    parallel: int = 4
    summaries: list[dict[str, Any]] = field(default_factory=list)
    running: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    launchers: dict[str, Sequence[str]] = field(default_factory=dict)  # by agent id; default: WORKER

    def run(self, deadline_s: float, *, between: Callable[[], None] | None = None) -> None:
        """Until every spool is empty (checked after each worker) or `deadline_s` passes."""
        deadline = time.monotonic() + deadline_s
        due = {a.agent_id: 0.0 for a in self.agents}
        empty: set[str] = set()
        by_id = {a.agent_id: a for a in self.agents}
        while len(empty) < len(self.agents):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"backlog not drained in {deadline_s:.0f}s: {len(self.agents) - len(empty)} agent(s) still "
                    f"have reports; last summaries: {self.summaries[-3:]}"
                )
            for agent_id, process in list(self.running.items()):
                if process.poll() is None:
                    continue
                out, err = process.communicate()
                del self.running[agent_id]
                lines = out.strip().splitlines()
                summary = json.loads(lines[-1]) if lines else {"exit_code": process.returncode, "stderr": err[-2000:]}
                summary["agent_id"] = agent_id
                self.summaries.append(summary)
                assert "internal error" not in str(summary.get("error", "")), summary
                if summary.get("exit_code") == 0 and not summary.get("pending"):
                    empty.add(agent_id)
                else:
                    # what the daemon does with a worker's summary (agent/daemon.py, Daemon._after)
                    due[agent_id] = max(float(summary.get("next_attempt_at") or 0), time.time() + 0.2)
            now = time.time()
            for agent_id, when in due.items():
                if agent_id in empty or agent_id in self.running or when > now:
                    continue
                if len(self.running) >= self.parallel:
                    break
                launcher = self.launchers.get(agent_id, WORKER)
                self.running[agent_id] = worker(by_id[agent_id].config, "deliver", launcher=launcher)
            if between is not None:
                between()
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
            process.communicate()
        self.running.clear()

    def figures(self) -> dict[str, Any]:
        return {
            "worker_runs": len(self.summaries),
            "worker_failures": sum(1 for s in self.summaries if s.get("delivery_error") or s.get("error")),
            "duplicates_acknowledged": sum(int(s.get("duplicates") or 0) for s in self.summaries),
        }
