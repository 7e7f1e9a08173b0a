"""Ingest over HTTPS into one served collector, on SQLite and on PostgreSQL: rate and CPU per report.

    python bench/ingest_http.py                  # both databases (make bench)
    python bench/ingest_http.py --quick          # small counts (make bench-quick)
    python bench/ingest_http.py --db postgresql --agents 2000 --reports 20000

Each database fresh (a SQLite file, or a PostgreSQL database of the benchmark's own). `rampart-collector
init` and `serve` as real processes (--workers uvicorn workers, TLS with the collector's own CA); the load
generator's fleet (bench/loadgen.py) enrolled and given its first report through the collector's code,
then signed reports over keep-alive HTTPS, each changing one of its host's 40 results (the steady state).
CPU per report, while the clock runs: the collector's processes, PostgreSQL's backends of this database,
and apart the load generator. After each run every acknowledged report is checked stored once and the
counters exact.

The ceiling: the same once more into a collector that stores no policy, so that every result is kept in
the signed report only (not counted: collector/storage/assignments.py), which is everything the collector
does for a report except storing its results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _fleet import Fleet, enrol, prime
from _measure import books, check_books, measured
from _support import database, finish, kinds, machine, parser, pg_url_option, run_line
from loadgen import Drive

from collector.storage import migrate
from collector.storage.engine import make_engine
from tests.support.collector import init_collector
from tests.support.policies import store_fleet_policy

BENCHMARK = True
NAME = "ingest_http"


def run(args: argparse.Namespace, kind: str, url: str, directory: Path, *, ceiling: bool) -> dict[str, Any]:
    label = f"{'ceiling' if ceiling else 'http'}-{kind}"
    collector = init_collector(
        directory / label,
        database_url=url,
        config={"workers": args.workers, "max_pending_ingest": 256, "job_poll_s": 30},
    )
    engine = make_engine(url, 1)
    migrate.upgrade(engine)
    fleet = Fleet.generate(args.agents)
    enrol(engine, fleet)
    if not ceiling:
        store_fleet_policy(engine)  # what the simulated agents' results are judged against
        prime(url, fleet)
    try:
        served = collector.start()
        before = books(engine)
        drive = Drive(
            served,
            collector.ca_file,
            fleet,
            reports=args.reports,
            seconds=args.seconds,
            processes=args.processes,
            connections=args.connections,
        )
        outcome, figures = measured(drive, [p.pid for p in collector.processes], url if kind == "postgresql" else None)
    finally:
        collector.stop()
    after = books(engine)
    engine.dispose()
    if ceiling:
        kept = after["reports"] - before["reports"]
        assert kept == outcome.stored and after["counted"] == 0, (kept, outcome.stored, after)
        figures["books"] = {"kept": kept}
    else:
        figures["books"] = check_books(before, after, outcome, fleet)
    print(NAME, kind, label, {k: v for k, v in figures.items() if k != "postgres"}, flush=True)
    return figures


def markdown(figures: dict[str, Any], command: str) -> str:
    present = [k for k in ("sqlite", "postgresql") if k in figures]

    def cell(kind: str, part: str, key: str, unit: str = "", digits: int = 0) -> str:
        value = figures.get(kind, {}).get(part, {}).get(key)
        return "–" if value is None else f"{value:,.{digits}f}{unit}"

    rows = [
        ("**reports/s** (40 results each, one changing)", "http", "reports_per_s", "", 0),
        ("request p50", "http", "p50_ms", " ms", 1),
        ("request p95", "http", "p95_ms", " ms", 1),
        ("**collector + PostgreSQL CPU per report**", "http", "collector_and_postgres_cpu_ms_per_report", " ms", 2),
        ("collector processes, CPU per report", "http", "collector_cpu_ms_per_report", " ms", 2),
        ("PostgreSQL backends, CPU per report", "http", "postgres_cpu_ms_per_report", " ms", 2),
        ("load generator, CPU per report (apart)", "http", "loadgen_cpu_ms_per_report", " ms", 2),
        ("ceiling (results not stored): reports/s", "ceiling", "reports_per_s", "", 0),
        ("ceiling: collector CPU per report", "ceiling", "collector_cpu_ms_per_report", " ms", 2),
        ("ceiling: PostgreSQL CPU per report", "ceiling", "postgres_cpu_ms_per_report", " ms", 2),
    ]
    meta = figures["meta"]
    lines = [
        run_line(meta, command),
        f"{figures['agents']:,} simulated hosts, at most {figures['reports']:,} reports or {figures['seconds']:.0f} s "
        f"per run, {figures['workers']} collector worker(s), {figures['processes']} load generator processes x "
        f"{figures['connections']} keep-alive connections.",
        "",
        "| | " + " | ".join({"sqlite": "SQLite", "postgresql": "PostgreSQL"}[k] for k in present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for label, part, key, unit, digits in rows:
        lines.append(f"| {label} | " + " | ".join(cell(k, part, key, unit, digits) for k in present) + " |")
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parsed.add_argument("--agents", type=int, help="simulated hosts (1,000; quick 200)")
    parsed.add_argument("--reports", type=int, help="reports per run at most (10,000; quick 1,500)")
    parsed.add_argument("--seconds", type=float, help="length of a run at most (60; quick 12)")
    parsed.add_argument("--workers", type=int, default=2, help="the collector's worker processes")
    parsed.add_argument("--processes", type=int, default=2, help="load generator processes")
    parsed.add_argument("--connections", type=int, default=8, help="keep-alive connections per process")
    parsed.add_argument("--no-ceiling", action="store_true", help="leave out the run with the results not stored")
    args = parsed.parse_args()
    args.agents = args.agents or (200 if args.quick else 1_000)
    args.reports = args.reports or (1_500 if args.quick else 10_000)
    args.seconds = args.seconds or (12 if args.quick else 60)
    figures: dict[str, Any] = {"meta": machine()}
    for key in ("agents", "reports", "seconds", "workers", "processes", "connections"):
        figures[key] = getattr(args, key)
    with tempfile.TemporaryDirectory(prefix="rampart-ingest-") as scratch:
        directory = Path(scratch)
        for kind in kinds(args.db, args.pg_url):
            figures[kind] = {}
            for ceiling in (False,) if args.no_ceiling else (False, True):
                with database(kind, args.pg_url, directory, f"{kind}-{ceiling}") as url:
                    figures[kind]["ceiling" if ceiling else "http"] = run(args, kind, url, directory, ceiling=ceiling)
    figures["meta"]["load_average_at_end"] = machine()["load_average"]
    finish(args, NAME, figures, markdown(figures, "python bench/ingest_http.py" + (" --quick" if args.quick else "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
