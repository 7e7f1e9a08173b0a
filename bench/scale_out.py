"""Scale-out: one collector process, then two behind HAProxy, on one PostgreSQL, driven by simulated agents.

    python bench/scale_out.py                  # 100,000 hosts, 3 interleaved rounds (make bench)
    python bench/scale_out.py --quick          # 2,000 hosts, 2 short rounds (make bench-quick)
    python bench/scale_out.py --hosts 20000 --rounds 5 --seconds 60 --json out.json

A database of its own on the PostgreSQL server (--pg-url), `rampart-collector init` on it, the tests' fleet
policy stored; the load generator's fleet (bench/loadgen.py: each host its own key) enrolled and given its
first report through the collector's own code. Then, in interleaved rounds, `rampart-collector serve`
(one process, one worker) behind HAProxy (Debian's haproxy, a generated config, TCP with TLS passed
through, each backend health-checked on /readyz), and two such processes behind it: the load generator
sends signed reports over keep-alive HTTPS, each changing one of its host's 40 results, for --seconds or
--reports. Measured while the clock runs: reports acknowledged per second; CPU per report (user + system,
psutil) of the collector processes, of PostgreSQL's backends serving this database, of PostgreSQL's
background processes (the whole server's), of HAProxy and, apart, of the load generator; lock waits
sampled from pg_stat_activity and pg_locks every 0.2 s. After each run: every acknowledged report stored
once, the counters, open history intervals and latest rows exactly the fleet's (nothing lost, nothing
counted twice), or the benchmark fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _fleet import Fleet, enrol, prime
from _measure import books, check_books, measured
from _support import (
    ROOT,
    finish,
    machine,
    parser,
    pg_reachable,
    pg_url_option,
    run_line,
    write_docs,
)
from loadgen import Drive

from collector.storage.engine import make_engine
from tests.support.collector import RunningCollector, init_collector
from tests.support.databases import temporary_database
from tests.support.haproxy import HAPROXY, HAProxy
from tests.support.policies import store_fleet_policy

BENCHMARK = True
NAME = "scale_out"
SCALING = ROOT / "docs" / "scaling.md"


def one_run(
    args: argparse.Namespace, collector: RunningCollector, engine: sa.Engine, fleet: Fleet, replicas: int, index: int
) -> dict[str, Any]:
    ports = [int(collector.start().rsplit(":", 1)[1]) for _ in range(replicas)]
    haproxy = HAProxy(ports, collector.ca_file, Path(args.directory) / f"haproxy-{index}").start()
    try:
        deadline = time.monotonic() + 30
        while len(haproxy.servers_up()) < replicas:  # both replicas healthy on /readyz before the clock runs
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy sees {haproxy.servers_up()} up, not {replicas} replicas")
            time.sleep(0.1)
        before = books(engine)
        drive = Drive(
            haproxy.url,
            collector.ca_file,
            fleet,
            reports=args.reports,
            seconds=args.seconds,
            processes=args.processes,
            connections=args.connections,
            seed=index,
        )
        proxy = [haproxy.process.pid] if haproxy.process else []
        outcome, measures = measured(drive, [p.pid for p in collector.processes], args.database_url, proxy)
        measures["connections_per_backend"] = backend_sessions(haproxy)
    finally:
        haproxy.stop()
        collector.stop()
    after = books(engine)
    accounting = check_books(before, after, outcome, fleet)
    run = {"replicas": replicas, "round": index // 2 + 1, **measures, "books": accounting}
    print(NAME, {k: v for k, v in run.items() if k not in ("postgres", "statuses")}, flush=True)
    return run


def backend_sessions(haproxy: HAProxy) -> dict[str, int]:
    """Connections HAProxy handed each backend so far (its `stot` counter): the load was shared."""
    lines = haproxy.command("show stat").lstrip("# ").splitlines()
    header = lines[0].split(",")
    sessions = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "collectors" and row.get("svname", "").startswith("c"):
            sessions[row["svname"]] = int(row.get("stot") or 0)
    return sessions


MEDIANS = (
    "reports_per_s",
    "collector_cpu_ms_per_report",
    "postgres_cpu_ms_per_report",
    "collector_and_postgres_cpu_ms_per_report",
    "postgres_background_cpu_ms_per_report",
    "haproxy_cpu_ms_per_report",
    "loadgen_cpu_ms_per_report",
    "p50_ms",
    "p95_ms",
)


def medians(runs: list[dict[str, Any]], replicas: int) -> dict[str, Any]:
    chosen = [run for run in runs if run["replicas"] == replicas]
    summary: dict[str, Any] = {
        key: statistics.median(run[key] for run in chosen if run[key] is not None) for key in MEDIANS
    }
    for key in ("lock_wait_sample_share", "mean_backends_waiting_on_locks", "mean_active_backends"):
        summary[key] = statistics.median(run["postgres"][key] for run in chosen)
    summary["reports"] = sum(run["acknowledged"] for run in chosen)
    summary["lost"] = sum(run["books"]["lost"] for run in chosen)
    summary["duplicates_acknowledged"] = sum(run["acknowledged_as_duplicates"] for run in chosen)
    waits: dict[str, int] = {}
    for run in chosen:
        for key, count in run["postgres"]["active_backend_waits"].items():
            waits[key] = waits.get(key, 0) + count
    total = sum(waits.values()) or 1
    summary["active_backend_waits_share"] = {k: v / total for k, v in sorted(waits.items(), key=lambda kv: -kv[1])}
    return summary


def markdown(figures: dict[str, Any], command: str) -> str:
    one, two = figures["one"], figures["two"]

    def ms(key: str) -> tuple[str, str, str]:
        a, b = one[key], two[key]
        return f"{a:.2f} ms", f"{b:.2f} ms", f"{b / a:.2f}" if a else "–"

    rate = (f"{one['reports_per_s']:,.0f}", f"{two['reports_per_s']:,.0f}",
            f"{two['reports_per_s'] / one['reports_per_s']:.2f}")  # fmt: skip
    rows = [
        ("**reports/s acknowledged**", rate),
        ("**collector + PostgreSQL CPU per report**", ms("collector_and_postgres_cpu_ms_per_report")),
        ("collector processes, CPU per report", ms("collector_cpu_ms_per_report")),
        ("PostgreSQL backends of this database, CPU per report", ms("postgres_cpu_ms_per_report")),
        ("PostgreSQL background processes (whole server, shared)", ms("postgres_background_cpu_ms_per_report")),
        ("HAProxy, CPU per report", ms("haproxy_cpu_ms_per_report")),
        ("load generator, CPU per report (apart)", ms("loadgen_cpu_ms_per_report")),
        (
            "request p50 / p95",
            (f"{one['p50_ms']:.0f} / {one['p95_ms']:.0f} ms", f"{two['p50_ms']:.0f} / {two['p95_ms']:.0f} ms", ""),
        ),  # fmt: skip
        (
            "samples with a backend waiting on a lock",
            (f"{one['lock_wait_sample_share']:.1%}", f"{two['lock_wait_sample_share']:.1%}", ""),
        ),  # fmt: skip
        (
            "backends waiting on a lock / running, mean",
            (
                f"{one['mean_backends_waiting_on_locks']:.2f} / {one['mean_active_backends']:.2f}",
                f"{two['mean_backends_waiting_on_locks']:.2f} / {two['mean_active_backends']:.2f}",
                "",
            ),
        ),  # fmt: skip
        (
            "reports acknowledged / lost / counted twice",
            (f"{one['reports']:,} / {one['lost']} / 0", f"{two['reports']:,} / {two['lost']} / 0", ""),
        ),  # fmt: skip
    ]
    meta = figures["meta"]
    lines = [
        run_line(meta, command),
        f"{figures['hosts']:,} simulated hosts (enrolled in {figures['enrol_seconds']:.0f} s, first reports "
        f"stored in {figures['prime_seconds']:.0f} s), {figures['rounds']} interleaved rounds of at most "
        f"{figures['seconds']:.0f} s or {figures['reports']:,} reports per run, {figures['processes']} load "
        f"generator processes x {figures['connections']} keep-alive connections; medians over the rounds.",
        "",
        "| | one collector | two collectors | two / one |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {a} | {b} | {c} |" for label, (a, b, c) in rows),
        "",
        "What PostgreSQL's running backends waited on (share of samples, two collectors): "
        + ", ".join(f"{k} {v:.0%}" for k, v in list(two["active_backend_waits_share"].items())[:5])
        + ".",
        "",
    ]
    for label, replicas in (("one collector", 1), ("two collectors", 2)):
        locks: dict[str, int] = {}
        for run in figures["runs"]:
            if run["replicas"] == replicas:
                for key, count in run["postgres"]["locks_not_granted"].items():
                    locks[key] = locks.get(key, 0) + count
        found = ", ".join(f"{k} in {v} samples" for k, v in sorted(locks.items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"Locks waited for ({label}, all rounds): {found or 'none'}.")
    return "\n".join(lines)


INTERVALS = ((15, "every 15 minutes"), (60, "every hour"), (360, "every 6 hours"))
BUSY = 0.6  # plan for cores at most this busy on average: room for a backlog drained after an outage


def arithmetic(figures: dict[str, Any]) -> str:
    """Replicas and cores for 100,000 and 1,000,000 endpoints from the CPU per report measured with two
    collectors (docs/scaling.md)."""
    two = figures["two"]
    collector = two["collector_cpu_ms_per_report"]
    database = two["postgres_cpu_ms_per_report"] + (two["postgres_background_cpu_ms_per_report"] or 0.0)
    lines = [
        f"From this run: collector {collector:.2f} ms and PostgreSQL {database:.2f} ms (backends and background "
        f"processes) of CPU per report, two collectors behind HAProxy; cores at most {BUSY:.0%} busy.",
        "",
        "| endpoints | a report | reports/s | collector cores | collector replicas (1 worker each) "
        "| PostgreSQL cores |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for endpoints in (100_000, 1_000_000):
        for minutes, label in INTERVALS:
            rate = endpoints / (60 * minutes)
            cores = rate * collector / 1000 / BUSY
            pg = rate * database / 1000 / BUSY
            lines.append(
                f"| {endpoints:,} | {label} | {rate:,.0f} | {cores:.1f} | {max(2, math.ceil(cores))} | {pg:.1f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--hosts", type=int, help="simulated hosts (default 100,000; --quick 2,000)")
    parsed.add_argument("--rounds", type=int, help="interleaved rounds of one and two collectors (3; quick 2)")
    parsed.add_argument("--seconds", type=float, help="length of each run at most (30; quick 12)")
    parsed.add_argument("--reports", type=int, help="reports per run at most (40,000; quick 4,000)")
    parsed.add_argument("--processes", type=int, default=2, help="load generator processes")
    parsed.add_argument("--connections", type=int, default=8, help="keep-alive connections per process")
    parsed.add_argument("--render", metavar="FILE", help="print (and --write-docs) the figures of an earlier --json")
    args = parsed.parse_args()
    if args.render:
        figures = json.loads(Path(args.render).read_text(encoding="utf-8"))
        finish(args, NAME, figures, markdown(figures, figures.get("command", "python bench/scale_out.py")))
        if args.write_docs:
            write_docs(NAME, markdown(figures, figures.get("command", "python bench/scale_out.py")), SCALING)
            write_docs(f"{NAME}:arithmetic", arithmetic(figures), SCALING)
        return 0
    quick = args.quick
    args.hosts = args.hosts or (2_000 if quick else 100_000)
    args.rounds = args.rounds or (2 if quick else 3)
    args.seconds = args.seconds or (12 if quick else 30)
    args.reports = args.reports or (4_000 if quick else 40_000)
    if not pg_reachable(args.pg_url):
        print(f"{NAME}: PostgreSQL is not reachable at {args.pg_url}", file=sys.stderr)
        return 1
    if not os.path.exists(HAPROXY):
        print(f"{NAME}: {HAPROXY} is missing (Debian's haproxy: scripts/system-packages.sh bench)", file=sys.stderr)
        return 1
    meta = machine()
    with (
        tempfile.TemporaryDirectory(prefix="rampart-scale-") as directory,
        temporary_database(args.pg_url, "rampart_bench_scale") as url,
    ):
        args.directory, args.database_url = directory, url
        collector = init_collector(
            Path(directory) / "collector",
            database_url=url,
            config={"workers": 1, "max_pending_ingest": 256, "job_poll_s": 30},
        )
        engine = make_engine(url, 1)
        store_fleet_policy(engine)
        began = time.perf_counter()
        fleet = Fleet.generate(args.hosts)
        print(f"{NAME}: {args.hosts:,} keys in {time.perf_counter() - began:.1f} s", flush=True)
        enrolled = enrol(engine, fleet)
        print(f"{NAME}: enrolled in {enrolled:.1f} s", flush=True)
        primed = prime(url, fleet, processes=2, at=dt.datetime.now(dt.UTC).replace(microsecond=0))
        print(f"{NAME}: first reports stored in {primed:.1f} s", flush=True)
        runs = []
        for round_ in range(args.rounds):
            for replicas in (1, 2):
                runs.append(one_run(args, collector, engine, fleet, replicas, 2 * round_ + replicas - 1))
        engine.dispose()
    meta["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    figures = {
        "meta": meta,
        "hosts": args.hosts,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "reports": args.reports,
        "processes": args.processes,
        "connections": args.connections,
        "enrol_seconds": enrolled,
        "prime_seconds": primed,
        "one": medians(runs, 1),
        "two": medians(runs, 2),
        "runs": runs,
    }
    command = "python bench/scale_out.py" + (" --quick" if quick else "")
    figures["command"] = command
    finish(args, NAME, figures, markdown(figures, command))
    print()
    print(arithmetic(figures))
    if args.write_docs:
        write_docs(NAME, markdown(figures, command), SCALING)
        write_docs(f"{NAME}:arithmetic", arithmetic(figures), SCALING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
