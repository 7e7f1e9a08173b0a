"""A load generator of simulated agents: real keys, signed reports in the wire format, results that change.

    from loadgen import Drive
    drive = Drive(url, ca_file, fleet, reports=20_000, seconds=30, processes=2, connections=8)
    drive.prepare()          # fork the senders, open their keep-alive HTTPS connections
    drive.release()          # the clock starts
    outcome = drive.wait()   # acknowledgements, latencies, the senders' CPU

    python bench/loadgen.py --database-url URL --url https://host:port --ca-file ca.pem --hosts 100000

The fleet (bench/_fleet.py) gives each simulated host its own Ed25519 key and the statuses of its 40
results; it is enrolled and given its first report through the collector's own code. Each report sent here
changes one result of its host (about one in 40: most checks do not flip between runs), is assembled in
the wire format (checks.wire.make_report) and signed at the moment it is sent (checks.wire.sign_request,
what the agent's transport calls). Reports go from `processes` forked processes over `connections` keep-alive
HTTPS connections each, every host's reports in order on one connection; a run stops at `reports` reports
or `seconds`, whichever comes first. A report is acknowledged by a 200; a 503 is retried after its
Retry-After, a broken connection on a new one, with the same body (the collector stores it once).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import random
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any
from urllib.parse import urlsplit

from _fleet import REPORT_PATH, Fleet, enrol, prime
from _support import percentile, utc_stamp

from checks import wire
from collector.storage.engine import make_engine
from tests.support.policies import store_fleet_policy

ATTEMPTS = 20  # per report: enough to ride out a replica's restart, not a dead collector


@dataclass
class Outcome:
    """What a run sent and what the collector acknowledged."""

    seconds: float = 0.0
    planned: int = 0
    acknowledged: list[tuple[int, int, bool]] = field(default_factory=list)  # (host, sequence, duplicate)
    failed: list[tuple[int, int, str]] = field(default_factory=list)  # (host, sequence, last error)
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> answers (retries included)
    latencies: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the senders' user + system seconds

    @property
    def stored(self) -> int:
        return sum(1 for _, _, duplicate in self.acknowledged if not duplicate)

    @property
    def duplicates(self) -> int:
        return sum(1 for _, _, duplicate in self.acknowledged if duplicate)

    def summary(self) -> dict[str, Any]:
        reports = len(self.acknowledged)
        return {
            "seconds": self.seconds,
            "planned": self.planned,
            "acknowledged": reports,
            "acknowledged_as_duplicates": self.duplicates,
            "failed": len(self.failed),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "reports_per_s": reports / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(self.latencies, 0.5) * 1000 if self.latencies else None,
            "p95_ms": percentile(self.latencies, 0.95) * 1000 if self.latencies else None,
            "loadgen_cpu_ms_per_report": self.cpu_s / reports * 1000 if reports else None,
        }


class Drive:
    """One run of the load generator against one URL (a collector, or a load balancer in front of several)."""

    def __init__(
        self,
        url: str,
        ca_file: str,
        fleet: Fleet,
        *,
        reports: int,
        seconds: float,
        processes: int = 2,
        connections: int = 8,
        seed: int = 1,
    ) -> None:
        self.url, self.ca_file, self.fleet = url, ca_file, fleet
        self.seconds = seconds
        self.processes, self.connections = processes, connections
        # Which hosts report, in which order: every host once before any twice.
        order = list(range(len(fleet)))
        random.Random(seed).shuffle(order)
        lanes = processes * connections
        self.plan: list[list[list[tuple[int, int]]]] = [[[] for _ in range(connections)] for _ in range(processes)]
        for index in range(reports):
            host = order[index % len(order)]
            sequence = fleet.sent[host] + 1 + index // len(order)
            lane = host % lanes  # all of a host's reports on one connection, in order
            self.plan[lane % processes][lane // processes].append((host, sequence))
        self.planned = reports
        context = multiprocessing.get_context("fork")
        self._ready = context.Semaphore(0)
        self._go: Event = context.Event()
        self._out: Any = context.Queue()
        self._children: list[Any] = []
        self._released = 0.0

    def prepare(self) -> None:
        context = multiprocessing.get_context("fork")
        self._children = [
            context.Process(target=self._sender, args=(index,), daemon=True) for index in range(self.processes)
        ]
        for child in self._children:
            child.start()
        for _ in range(self.processes * self.connections):
            if not self._ready.acquire(timeout=120):
                raise RuntimeError("the load generator's connections did not open")

    def pids(self) -> list[int]:
        return [child.pid for child in self._children if child.pid is not None]

    def release(self) -> None:
        self._released = time.monotonic()
        self._go.set()

    def wait(self) -> Outcome:
        outcome = Outcome(planned=self.planned)
        for _ in self._children:
            part = self._out.get(timeout=3600)
            outcome.acknowledged += [tuple(x) for x in part["acknowledged"]]
            outcome.failed += [tuple(x) for x in part["failed"]]
            outcome.latencies += part["latencies"]
            outcome.cpu_s += part["cpu_s"]
            for status, count in part["statuses"].items():
                outcome.statuses[status] = outcome.statuses.get(status, 0) + count
            outcome.seconds = max(outcome.seconds, part["finished"] - self._released)
        for child in self._children:
            child.join(timeout=60)
        # The next run builds on what was acknowledged, host by host in order.
        for host, sequence, _ in sorted(outcome.acknowledged):
            self.fleet.acknowledged(host, sequence)
        return outcome

    # --- in each sender process --------------------------------------------------------------------------

    def _sender(self, index: int) -> None:
        parts = urlsplit(self.url)
        context = ssl.create_default_context(cafile=self.ca_file)
        lock = threading.Lock()
        merged: dict[str, Any] = {"acknowledged": [], "failed": [], "latencies": [], "statuses": {}}

        def connect() -> http.client.HTTPSConnection:
            connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=60)
            connection.connect()
            return connection

        def lane(work: list[tuple[int, int]]) -> None:
            connection = connect()
            self._ready.release()
            self._go.wait()
            deadline = time.monotonic() + self.seconds
            acknowledged: list[tuple[int, int, bool]] = []
            failed: list[tuple[int, int, str]] = []
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            stopped: set[int] = set()  # hosts whose earlier report failed: their later ones would be out of order
            for host, sequence in work:
                if time.monotonic() > deadline:
                    break
                if host in stopped:
                    continue
                body = self.fleet.body(host, sequence, utc_stamp())
                error = ""
                for _ in range(ATTEMPTS):
                    headers = wire.sign_request(
                        self.fleet.keys[host], self.fleet.agent_ids[host], "POST", REPORT_PATH, body
                    )
                    headers["Content-Type"] = "application/json"
                    began = time.perf_counter()
                    try:
                        connection.request("POST", REPORT_PATH, body=body, headers=headers)
                        response = connection.getresponse()
                        answer = response.read()
                    except (OSError, http.client.HTTPException) as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        connection.close()
                        time.sleep(0.2)
                        connection = connect()
                        continue
                    latencies.append(time.perf_counter() - began)
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 200:
                        acknowledged.append((host, sequence, bool(json.loads(answer).get("duplicate"))))
                        self.fleet.acknowledged(host, sequence)  # this process's copy: the next builds on it
                        error = ""
                        break
                    error = f"HTTP {response.status}: {answer[:200]!r}"
                    if response.status not in (429, 502, 503, 504):
                        break
                    time.sleep(min(float(response.getheader("Retry-After") or 1), 5))
                if error:
                    failed.append((host, sequence, error))
                    stopped.add(host)
            connection.close()
            with lock:
                merged["acknowledged"] += acknowledged
                merged["failed"] += failed
                merged["latencies"] += latencies
                for status, count in statuses.items():
                    merged["statuses"][status] = merged["statuses"].get(status, 0) + count

        threads = [threading.Thread(target=lane, args=(work,)) for work in self.plan[index]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        merged["finished"] = time.monotonic()
        merged["cpu_s"] = time.process_time()
        self._out.put(merged)


def main() -> int:
    parsed = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parsed.add_argument("--database-url", required=True, help="the collector's database (hosts are enrolled in it)")
    parsed.add_argument("--url", required=True, help="the collector, or its load balancer")
    parsed.add_argument("--ca-file", required=True, help="the collector's CA certificate")
    parsed.add_argument("--hosts", type=int, default=100_000)
    parsed.add_argument("--reports", type=int, default=100_000, help="stop after this many reports")
    parsed.add_argument("--seconds", type=float, default=60, help="or after this long")
    parsed.add_argument("--processes", type=int, default=2)
    parsed.add_argument("--connections", type=int, default=8, help="keep-alive connections per process")
    args = parsed.parse_args()
    engine = make_engine(args.database_url, 1)
    store_fleet_policy(engine)
    fleet = Fleet.generate(args.hosts)
    print(f"enrolled {args.hosts} hosts in {enrol(engine, fleet):.1f} s", flush=True)
    engine.dispose()
    print(f"first reports stored in {prime(args.database_url, fleet, processes=2):.1f} s", flush=True)
    drive = Drive(
        args.url,
        args.ca_file,
        fleet,
        reports=args.reports,
        seconds=args.seconds,
        processes=args.processes,
        connections=args.connections,
    )
    drive.prepare()
    drive.release()
    print(json.dumps(drive.wait().summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
