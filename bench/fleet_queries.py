"""Query latency on a fleet loaded through the collector's store: the summary, hosts, a host, a check.

    python bench/fleet_queries.py                # 10,000 hosts, both databases (make bench)
    python bench/fleet_queries.py --quick        # 1,000 hosts
    python bench/fleet_queries.py --db postgresql --hosts 100000 --repeat 20

The fleet (bench/_fleet.py): --hosts hosts in five groups x 40 checks, each its own key, enrolled with the
registry and reporting through the store in bulk (`batch_ingest.store_agent_reports`, 500 reports per
transaction): a first report 60
days ago and one more at a random day since, so the counters, daily changes and history intervals are
exactly what ingest writes (no other writer). Then each query --repeat times after a warm-up, in-process,
and the summary over HTTPS from a served collector. Median and p95.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _fleet import load_fleet
from _support import CHECKS, database, finish, kinds, machine, parser, pg_url_option, run_line, timed

from collector.storage import models
from collector.storage.engine import make_engine, read_tx
from collector.storage.queries import checks as check_view
from collector.storage.queries import host as host_view
from collector.storage.queries import hosts as hosts_view
from collector.storage.queries import summary as summary_view
from collector.storage.queries import trends as trend_view
from tests.support.collector import init_collector
from tests.support.policies import FLEET_POLICY_ID

BENCHMARK = True
NAME = "fleet_queries"


def bench(args: argparse.Namespace, kind: str, url: str, directory: Path) -> dict[str, Any]:
    fleet = load_fleet(url, args.hosts)
    print(NAME, kind, "fleet", fleet, flush=True)
    engine = make_engine(url, 2)
    now = models.utcnow()
    stale = dt.timedelta(hours=48)
    as_of = (now - dt.timedelta(days=20)).date()

    def in_process(work: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with read_tx(engine) as connection:
                return work(connection)

        return run

    checks: dict[str, Callable[[Any], Any]] = {
        "summary": lambda c: summary_view.summary(c, now=now, stale_after=stale),
        "summary as at a date 20 days ago": lambda c: summary_view.summary(c, now=now, stale_after=stale, as_of=as_of),
        "hosts, first page of 100": lambda c: hosts_view.hosts(c, now=now, stale_after=stale),
        "one host (40 results)": lambda c: host_view.host(c, fleet["middle_agent"], now=now, stale_after=stale),
        "a check's failing hosts (100)": lambda c: check_view.check(c, "c06", policy_id=FLEET_POLICY_ID),
        "a check's failing hosts as at a date": lambda c: check_view.check(
            c, "c06", policy_id=FLEET_POLICY_ID, as_of=as_of
        ),
        "trend by day, 30 days": lambda c: trend_view.trends(
            c, period="day", start=now.date() - dt.timedelta(days=29), end=now.date()
        ),
    }
    measured = {name: timed(in_process(work), args.repeat) for name, work in checks.items()}
    summary = in_process(checks["summary"])()
    assert summary["totals"]["total"] == args.hosts * CHECKS, summary["totals"]
    engine.dispose()
    collector = init_collector(directory / f"query-{kind}", database_url=url)
    try:
        served = collector.start()
        session = collector.session(collector.admin_token)
        summary_url, past = served + "/api/v1/summary", {"as_of": as_of.isoformat()}
        over_http = {
            "GET /api/v1/summary": timed(lambda: session.get(summary_url).raise_for_status(), args.repeat),
            "GET /api/v1/summary?as_of=": timed(
                lambda: session.get(summary_url, params=past).raise_for_status(), args.repeat
            ),
        }
        session.close()
    finally:
        collector.stop()
    return {"fleet": fleet, "in_process": measured, "http": over_http}


def markdown(figures: dict[str, Any], command: str) -> str:
    present = [k for k in ("sqlite", "postgresql") if k in figures]
    first = figures[present[0]]
    fleet = first["fleet"]
    lines = [
        run_line(figures["meta"], command),
        f"{fleet['hosts']:,} hosts x {CHECKS} checks ({fleet['results']:,} results, {fleet['reports']:,} reports "
        f"stored through the collector's store in "
        + ", ".join(f"{figures[k]['fleet']['load_seconds']:.0f} s on {k}" for k in present)
        + f"); each query {figures['repeat']} times after a warm-up, median / p95.",
        "",
        "| query | " + " | ".join({"sqlite": "SQLite", "postgresql": "PostgreSQL"}[k] for k in present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for part, suffix in (("in_process", " (in-process)"), ("http", " over HTTPS")):
        for name in first[part]:
            cells = []
            for kind in present:
                sample = figures[kind][part].get(name)
                cells.append(f"{sample['median_ms']:.1f} / {sample['p95_ms']:.1f} ms" if sample else "–")
            lines.append(f"| {name}{suffix} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parsed.add_argument("--hosts", type=int, help="fleet size (10,000; quick 1,000)")
    parsed.add_argument("--repeat", type=int, help="runs of each query (20; quick 5)")
    args = parsed.parse_args()
    args.hosts = args.hosts or (1_000 if args.quick else 10_000)
    args.repeat = args.repeat or (5 if args.quick else 20)
    figures: dict[str, Any] = {"meta": machine(), "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="rampart-queries-") as scratch:
        for kind in kinds(args.db, args.pg_url):
            with database(kind, args.pg_url, Path(scratch), kind) as url:
                figures[kind] = bench(args, kind, url, Path(scratch))
    figures["meta"]["load_average_at_end"] = machine()["load_average"]
    finish(args, NAME, figures, markdown(figures, "python bench/fleet_queries.py" + (" --quick" if args.quick else "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
