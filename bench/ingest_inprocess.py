"""Ingest in-process: reports stored with the collector's store, from several threads, without HTTP or TLS.

    python bench/ingest_inprocess.py             # both databases (make bench)
    python bench/ingest_inprocess.py --quick
    python bench/ingest_inprocess.py --db postgresql --agents 2000 --reports-per-agent 10 --threads 4

Each database fresh; the fleet (bench/_fleet.py) enrolled and given its first report through the collector's
code, then every host's next reports (each changing one of its 40 results) through `parse_report` and
`store_agent_report` (collector/storage/ingest.py), one report per transaction as the collector commits
them, from --threads threads of one process: the cost of storing, without HTTP, TLS or the signature check.
"Python CPU per report" is this process's CPU time over the reports; PostgreSQL's is its backends'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _fleet import Fleet, Store, enrol, prime
from _measure import Sampler
from _support import database, finish, kinds, machine, parser, pg_url_option, run_line, utc_stamp

from collector.storage import migrate
from collector.storage.engine import make_engine
from tests.support.policies import store_fleet_policy

BENCHMARK = True
NAME = "ingest_inprocess"


def run(args: argparse.Namespace, kind: str, url: str) -> dict[str, Any]:
    engine = make_engine(url, args.threads + 2)
    migrate.upgrade(engine)
    store_fleet_policy(engine)
    fleet = Fleet.generate(args.agents)
    enrol(engine, fleet)
    prime(url, fleet)
    # Bodies made before the clock runs: what is measured is the store.
    work: list[list[tuple[Any, str, bytes, Any]]] = [[] for _ in range(args.threads)]
    for host in range(len(fleet)):
        for step in range(args.reports_per_agent):
            sequence = fleet.sent[host] + 1
            moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=step + 1)
            body = fleet.body(host, sequence, utc_stamp(moment))
            fleet.acknowledged(host, sequence)
            work[host % args.threads].append((fleet.keys[host], fleet.agent_ids[host], body, moment))
    store = Store(engine)
    sampler = Sampler(url) if kind == "postgresql" else None
    if sampler is not None:
        sampler.start()
        time.sleep(0.5)
        sampler.mark()
    threads = [threading.Thread(target=store.store, args=(share, 1)) for share in work]
    began, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    seen = sampler.finish() if sampler is not None else {}
    with engine.connect() as connection:
        failing = connection.exec_driver_sql("SELECT count(*) FROM latest_results WHERE status = 'fail'").scalar()
        counted = connection.execute(sa.text("SELECT sum(count) FROM status_counts")).scalar()
    engine.dispose()
    assert failing == fleet.failing() and counted == len(fleet) * 40, (failing, fleet.failing(), counted)
    total = args.agents * args.reports_per_agent
    figures = {
        "reports": total,
        "seconds": elapsed,
        "reports_per_s": total / elapsed,
        "python_cpu_ms_per_report": cpu / total * 1000,
        "postgres_cpu_ms_per_report": seen["backend_cpu_s"] / total * 1000 if seen else None,
        "lock_wait_sample_share": seen.get("lock_wait_sample_share"),
    }
    print(NAME, kind, figures, flush=True)
    return figures


def markdown(figures: dict[str, Any], command: str) -> str:
    present = [k for k in ("sqlite", "postgresql") if k in figures]

    def cell(kind: str, key: str, unit: str, digits: int) -> str:
        value = figures[kind].get(key)
        return "–" if value is None else f"{value:,.{digits}f}{unit}"

    lines = [
        run_line(figures["meta"], command),
        f"{figures['agents']:,} hosts x {figures['reports_per_agent']} reports each after their first, "
        f"{figures['threads']} threads, one report per transaction.",
        "",
        "| | " + " | ".join({"sqlite": "SQLite", "postgresql": "PostgreSQL"}[k] for k in present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for label, key, unit, digits in (
        ("reports/s stored in-process", "reports_per_s", "", 0),
        ("Python CPU per report", "python_cpu_ms_per_report", " ms", 2),
        ("PostgreSQL backends, CPU per report", "postgres_cpu_ms_per_report", " ms", 2),
    ):
        lines.append(f"| {label} | " + " | ".join(cell(k, key, unit, digits) for k in present) + " |")
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parsed.add_argument("--agents", type=int, help="hosts (1,000; quick 200)")
    parsed.add_argument("--reports-per-agent", type=int, help="reports per host after its first (5; quick 3)")
    parsed.add_argument("--threads", type=int, default=4)
    args = parsed.parse_args()
    args.agents = args.agents or (200 if args.quick else 1_000)
    args.reports_per_agent = args.reports_per_agent or (3 if args.quick else 5)
    figures: dict[str, Any] = {
        "meta": machine(),
        "agents": args.agents,
        "reports_per_agent": args.reports_per_agent,
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory(prefix="rampart-inproc-") as scratch:
        for kind in kinds(args.db, args.pg_url):
            with database(kind, args.pg_url, Path(scratch), kind) as url:
                figures[kind] = run(args, kind, url)
    figures["meta"]["load_average_at_end"] = machine()["load_average"]
    command = "python bench/ingest_inprocess.py" + (" --quick" if args.quick else "")
    finish(args, NAME, figures, markdown(figures, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
