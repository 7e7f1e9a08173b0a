"""`python -m tests.reliability.herd_driver SPEC.json OUT.json`: hundreds of agents draining their backlogs.

Hundreds of agent processes do not fit a 2-core machine, so one process hosts them: each agent is a thread
running the agent's own delivery (agent.worker.Worker.deliver: its spool, transport, drain and backoff,
nothing replaced) again and again, each time at the moment the last outcome asked for (next_attempt_at), as
the daemon schedules its delivery workers. Every HTTP answer an agent gets is recorded (time, status,
Retry-After) by observing its requests session, for the pacing checks. Writes OUT.json when every spool
is empty or the deadline passes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from agent.config import load_agent_config
from agent.worker import Worker


def observe(session: requests.Session, log: list[tuple[float, int, str | None]]) -> None:
    original = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        sent = time.time()
        try:
            response = original(method, url, *args, **kwargs)
        except requests.RequestException:
            log.append((sent, 0, None))
            raise
        if url.endswith("/api/v1/reports"):
            log.append((sent, response.status_code, response.headers.get("Retry-After")))
        return response

    session.request = request  # type: ignore[method-assign, assignment]


def agent_loop(config_path: str, deadline: float, record: dict[str, Any]) -> None:
    config = load_agent_config(config_path, environ={})
    log: list[tuple[float, int, str | None]] = []
    record["attempts"] = log
    while time.time() < deadline:
        worker = Worker(config)
        try:
            observe(worker.transport.session, log)
            outcome = worker.deliver()
        finally:
            worker.close()
        if outcome.pending == 0 and not outcome.error:
            record["drained_at"] = time.time()
            return
        wait = (outcome.next_attempt_at or 0) - time.time()
        time.sleep(max(wait, 0.2))
    record["timed_out"] = True


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    deadline = time.time() + float(spec["deadline_s"])
    records: list[dict[str, Any]] = [{"config": path} for path in spec["configs"]]
    threads = [
        threading.Thread(target=agent_loop, args=(r["config"], deadline, r), daemon=True, name=f"agent-{i}")
        for i, r in enumerate(records)
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    print(json.dumps({"started": len(threads)}), flush=True)
    for thread in threads:
        thread.join(max(0.0, deadline - time.time()) + 5)
    Path(sys.argv[2]).write_text(json.dumps({"started_at": started, "agents": records}))
    return 0 if all("drained_at" in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
