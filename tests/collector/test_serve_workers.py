"""`serve` with several worker processes: /metrics counts the whole collector, whichever worker answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from collector.api.metrics import METRICS_DIR_VARIABLE
from tests.support.collector import RunningCollector, collector_process

HEALTHZ = 'rampart_http_requests_total{method="GET",route="/healthz",status="200"}'


def _get(collector: RunningCollector, path: str) -> str:
    with collector.session() as session:
        # A new connection each time, so that requests are spread over the workers.
        response = session.get(collector.url + path, headers={"Connection": "close"}, timeout=30)
        response.raise_for_status()
        return response.text


def _request_pids(collector: RunningCollector) -> set[int]:
    pids = set()
    for line in collector.log().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == "request" and entry.get("path") == "/healthz":
                pids.add(entry["pid"])
    return pids


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not in /metrics:\n{text}")


def test_metrics_add_up_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where serve keeps the workers' metric files
    sent = 0
    with collector_process(tmp_path / "c", config={"workers": 2}) as collector:
        shared = list(tmp_path.glob("rampart-metrics-*"))
        assert len(shared) == 1 and shared[0].stat().st_mode & 0o077 == 0
        with ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(20):  # until both workers have answered some (bounded)
                list(pool.map(lambda _: _get(collector, "/healthz"), range(32)))
                sent += 32
                if len(_request_pids(collector)) == 2:
                    break
        assert len(_request_pids(collector)) == 2, "the requests never reached the second worker"
        scrapes = [_get(collector, "/metrics") for _ in range(6)]
        assert [_sample(text, HEALTHZ) for text in scrapes] == [sent] * 6
    assert not list(tmp_path.glob("rampart-metrics-*"))  # removed when serve stops


def test_a_dead_workers_pending_reports_stop_counting_and_its_counts_stay(tmp_path: Path) -> None:
    """A worker killed mid-ingest (uvicorn starts another) leaves its gauge file behind; the next scrape
    drops its pending reports but keeps what it counted."""
    env = {**os.environ, METRICS_DIR_VARIABLE: str(tmp_path)}
    dying = (
        "import os\n"
        "from collector.api.metrics import Metrics\n"
        "m = Metrics(); m.ingest_pending.inc(3); m.reports.labels('stored').inc(2)\n"
        "os._exit(0)  # no shutdown: as if killed\n"
    )
    scraping = (
        "from collector.api.metrics import Metrics\n"
        "m = Metrics(); m.ingest_pending.inc(); m.reports.labels('stored').inc()\n"
        "print(m.exposition().decode())\n"
    )
    subprocess.run([sys.executable, "-c", dying], env=env, check=True, timeout=60)
    text = subprocess.run(
        [sys.executable, "-c", scraping], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert _sample(text, "rampart_ingest_pending") == 1
    assert _sample(text, 'rampart_reports_total{outcome="stored"}') == 3
