"""Collector benchmark: ingest rate and summary latency, on SQLite and PostgreSQL.

    python bench/collector_ingest.py                     # both databases, default sizes (make bench)
    python bench/collector_ingest.py --db postgresql --agents 2000 --reports-per-agent 10 --hosts 100000

What it measures, each on a fresh database:
1. Ingest over HTTPS: a real `rampart-collector serve` (2 workers) receives signed reports of 40 results
   from many simulated agents (client processes with keep-alive HTTPS connections, each request signed
   when it is sent). Each agent's first report creates its 40 results; the following ones change the
   status of one result (a realistic steady state: most checks do not flip between runs).
2. Ingest in-process: the same kind of reports through what the collector stores them with (on
   PostgreSQL the typed decoder and its psycopg store, on SQLite parse_report and one transaction),
   from several threads: the storage cost without HTTP, TLS and signature checks.
3. PostgreSQL COPY of the same rows (one report row and 40 result rows per report) into unindexed copies
   of the tables: the ceiling that the database itself sets on this machine.
4. Query latency on a fleet of --hosts hosts x 40 checks (bulk-loaded with the invariants ingest keeps):
   the summary (now and as at a date), a page of hosts, one host, a check's failing hosts, a trend;
   in-process and over HTTPS.

PostgreSQL: the server named by --pg-url (default $RAMPART_TEST_PG_URL); the benchmark creates its own
database and drops it at the end. Figures are printed as Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import random
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from checks import wire  # noqa: E402
from collector.config import CollectorConfig  # noqa: E402
from collector.storage import migrate, models, queries, registry  # noqa: E402
from collector.storage.assignments import AssignmentCache  # noqa: E402
from collector.storage.engine import make_engine, normalise_url, read_tx, run_write, write_tx  # noqa: E402
from collector.storage.fast_ingest import FastReportStore, available  # noqa: E402
from collector.storage.ingest import SignedEvidence, parse_report, store_agent_report  # noqa: E402
from collector.storage.report_codec import decode_report  # noqa: E402
from collector.storage.waivers import WaiverCache  # noqa: E402
from tests.support.agents import make_results  # noqa: E402
from tests.support.collector import RunningCollector, init_collector  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402
from tests.support.policies import store_fleet_policy  # noqa: E402

CHECKS = 40
OPEN_INTERVALS = (
    "INSERT INTO result_intervals (subject_id, policy_id, check_id, status, policy_hash, valid_from, report_id) "
    "SELECT subject_id, policy_id, check_id, status, policy_hash, since, report_id FROM latest_results"
)
FRAMEWORKS = {"cyber_essentials": ["secure_configuration"], "cis_controls_v8": ["4.1"]}


# --- databases -----------------------------------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str, directory: Path, label: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{label}.db'}"
    else:
        with temporary_database(pg_url, "rampart_bench") as url:
            yield url


# --- reports -------------------------------------------------------------------------------------------


def report_bodies(agent_id: str, count: int, rng: random.Random) -> list[bytes]:
    """`count` report bodies: the first creates 40 results; each later one flips one result's status. The
    results are judged against the tests' fleet policy, which the benchmark's collectors store and assign."""
    results = make_results(CHECKS, fail_every=5, frameworks=FRAMEWORKS)
    bodies = []
    for index in range(count):
        if index:
            flip = results[rng.randrange(CHECKS)]
            flip["status"] = "pass" if flip["status"] == "fail" else "fail"
        stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=count - index)).isoformat(timespec="seconds")
        for result in results:
            result["evaluated_at"] = stamp
        report = wire.make_report(agent_id=agent_id, results=results, report_id=str(uuid.uuid4()))
        bodies.append(json.dumps(report).encode())
    return bodies


# --- 1. ingest over HTTPS ------------------------------------------------------------------------------


def _client_process(
    url: str, ca_file: str, agents: list[tuple[bytes, list[bytes]]], threads: int, start: Any, out: Any
) -> None:
    """Send each agent's reports in order; agents spread over `threads` keep-alive HTTPS connections."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    keys = [(wire.load_private_key_pem(pem), bodies) for pem, bodies in agents]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker(share: list[tuple[Any, list[bytes]]]) -> None:
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=60)
        local: list[float] = []
        counts: dict[int, int] = {}
        for key, bodies in share:
            agent_id = wire.agent_id_for(key)
            for body in bodies:
                while True:
                    headers = wire.sign_request(key, agent_id, "POST", "/api/v1/reports", body)
                    headers["Content-Type"] = "application/json"
                    began = time.perf_counter()
                    connection.request("POST", "/api/v1/reports", body=body, headers=headers)
                    response = response_of(connection)
                    local.append(time.perf_counter() - began)
                    counts[response.status] = counts.get(response.status, 0) + 1
                    if response.status != 503:
                        break
                    time.sleep(float(response.getheader("Retry-After") or 1))
        connection.close()
        with lock:
            latencies.extend(local)
            for status, n in counts.items():
                statuses[status] = statuses.get(status, 0) + n

    def response_of(connection: http.client.HTTPSConnection) -> http.client.HTTPResponse:
        response = connection.getresponse()
        response.read()
        return response

    shares = [keys[i::threads] for i in range(threads)]
    start.wait()
    pool = [threading.Thread(target=worker, args=(share,)) for share in shares if share]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put({"latencies": latencies, "statuses": statuses, "cpu": time.process_time()})


def _cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # ended meanwhile
        total += times.user + times.system
    return total


def collector_cpu_s(collector: RunningCollector) -> float:
    """User + system seconds of the `serve` processes and their workers so far."""
    tree = []
    for popen in collector.processes:
        parent = psutil.Process(popen.pid)
        tree += [parent, *parent.children(recursive=True)]
    return _cpu_s(tree)


def postgres_cpu_s() -> float:
    """User + system seconds of this machine's PostgreSQL processes so far (backends come and go: the
    pools of the collector keep theirs open while the clock runs)."""
    return _cpu_s([p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")])


def enrol_agents(collector: RunningCollector, url: str, count: int) -> list[Any]:
    token = json.loads(collector.cli("enroll-token", "create", "--uses", str(count), "--format", "json").stdout)[
        "token"
    ]
    session = collector.session()
    keys = []
    for index in range(count):
        key = wire.generate_key()
        body = json.dumps(
            {"token": token, "public_key": wire.public_key_text(key), "host": {"hostname": f"bench-{index:05d}"}}
        ).encode()
        headers = wire.sign_request(key, wire.agent_id_for(key), "POST", "/api/v1/enroll", body)
        response = session.post(url + "/api/v1/enroll", data=body, headers=headers)
        assert response.status_code == 201, response.text
        keys.append(key)
    session.close()
    return keys


def bench_http_ingest(args: argparse.Namespace, kind: str, database_url: str, directory: Path) -> dict[str, Any]:
    """Signed reports over HTTPS into a served collector."""
    label = "http"
    collector = init_collector(
        directory / f"{label}-{kind}",
        database_url=database_url,
        config={"workers": args.workers, "max_pending_ingest": 256, "max_concurrent_ingest": args.ingest_threads},
    )
    engine = make_engine(database_url, 1)
    store_fleet_policy(engine)  # what the simulated agents' results are judged against
    engine.dispose()
    try:
        url = collector.start()
        keys = enrol_agents(collector, url, args.agents)
        rng = random.Random(1)
        payload = [
            (wire.private_key_pem(key), report_bodies(wire.agent_id_for(key), args.reports_per_agent, rng))
            for key in keys
        ]
        context = multiprocessing.get_context("fork")
        start = context.Event()
        out: Any = context.Queue()
        slices = [payload[i :: args.client_processes] for i in range(args.client_processes)]
        processes = [
            context.Process(
                target=_client_process, args=(url, collector.ca_file, share, args.client_threads, start, out)
            )
            for share in slices
        ]
        for process in processes:
            process.start()
        time.sleep(1)
        server_cpu, database_cpu = collector_cpu_s(collector), postgres_cpu_s()
        began = time.perf_counter()
        start.set()
        outcomes = [out.get(timeout=3600) for _ in processes]
        elapsed = time.perf_counter() - began
        server_cpu, database_cpu = collector_cpu_s(collector) - server_cpu, postgres_cpu_s() - database_cpu
        for process in processes:
            process.join()
        latencies = sorted(x for o in outcomes for x in o["latencies"])
        statuses: dict[int, int] = {}
        for outcome in outcomes:
            for status, n in outcome["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        total = args.agents * args.reports_per_agent
        engine = make_engine(database_url, 1)
        with read_tx(engine) as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(models.reports)).scalar_one()
            results = connection.execute(sa.select(sa.func.sum(models.status_counts.c.count))).scalar_one()
        engine.dispose()
        assert stored == total, f"{stored} reports stored, {total} sent"
        assert results == args.agents * CHECKS
        return {
            "reports": total,
            "seconds": elapsed,
            "reports_per_s": total / elapsed,
            "results_per_s": total * CHECKS / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
            "statuses": statuses,
            "client_cpu_s": sum(o["cpu"] for o in outcomes),
            # CPU per report, while the clock ran: the collector's processes, PostgreSQL's (on this machine)
            "collector_cpu_ms_per_report": server_cpu / total * 1000,
            "postgres_cpu_ms_per_report": database_cpu / total * 1000 if kind == "postgresql" else None,
        }
    finally:
        collector.stop()


# --- 2. ingest in-process ------------------------------------------------------------------------------


def bench_inprocess_ingest(args: argparse.Namespace, database_url: str, directory: Path) -> dict[str, Any]:
    config = CollectorConfig(data_dir=str(directory / "inproc"), database_url=database_url)
    engine = make_engine(database_url, args.ingest_threads + 2)
    migrate.upgrade(engine)
    now = models.utcnow()
    with write_tx(engine) as connection:
        token, _ = registry.create_token(
            connection,
            group="default",
            max_uses=args.agents,
            valid_for=dt.timedelta(hours=1),
            created_by="bench",
            now=now,
        )
    agents = []
    for index in range(args.agents):
        key = wire.generate_key()
        agent_id = wire.agent_id_for(key)
        with write_tx(engine) as connection:
            registry.enroll(
                connection, agent_id=agent_id, public_key=wire.public_key_text(key), token=token,
                host={"hostname": f"bench-{index:05d}"}, now=now,
            )  # fmt: skip
        agents.append(agent_id)
    store_fleet_policy(engine)
    rng = random.Random(2)
    work = [(agent_id, report_bodies(agent_id, args.reports_per_agent, rng)) for agent_id in agents]
    waivers, assignments = WaiverCache(), AssignmentCache(config.default_group, dt.timedelta(hours=24))
    evidence = SignedEvidence("POST", "/api/v1/reports", int(time.time()), "0" * 64, "-" * 86)
    del config
    # What the collector does: on PostgreSQL the typed decoder and its psycopg store, else the Python path.
    fast = FastReportStore(database_url, args.ingest_threads, waivers, assignments) if available(engine) else None

    def worker(share: list[tuple[str, list[bytes]]]) -> None:
        for agent_id, bodies in share:
            for body in bodies:
                moment = models.utcnow()
                if fast is not None:
                    typed = decode_report(body, agent_id)
                    assert typed is not None
                    fast.store(typed, body, evidence, moment)
                    continue
                parsed = parse_report(json.loads(body), agent_id)
                outcome = run_write(
                    engine,
                    lambda c, parsed=parsed, body=body, moment=moment: store_agent_report(
                        c, parsed, body, evidence, now=moment, waivers=waivers.current, assignments=assignments.current
                    ),
                )
                assert not outcome.not_counted

    threads = [
        threading.Thread(target=worker, args=(work[i :: args.ingest_threads],)) for i in range(args.ingest_threads)
    ]
    began = time.perf_counter()
    cpu_began = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    if fast is not None:
        fast.dispose()
    engine.dispose()
    total = args.agents * args.reports_per_agent
    return {
        "reports": total,
        "seconds": elapsed,
        "reports_per_s": total / elapsed,
        "python_cpu_ms_per_report": cpu / total * 1000,
    }


# --- 3. PostgreSQL COPY of the same rows ---------------------------------------------------------------


def bench_copy(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    import psycopg

    rng = random.Random(3)
    total = args.agents * args.reports_per_agent
    url = sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    report_rows = []
    result_rows = []
    agents = [f"ag-{index:032x}" for index in range(args.agents)]
    for index in range(total):
        agent_id = agents[index % args.agents]
        body = report_bodies(agent_id, 1, rng)[0]
        report = json.loads(body)
        report_id = report["report_id"]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        report_rows.append(
            (report_id, agent_id, index % args.agents, now, report["created_at"], CHECKS, 0, "POST", "/api/v1/reports",
             int(time.time()), hashlib.sha256(body).hexdigest(), "-" * 86, zlib.compress(body, 1))
        )  # fmt: skip
        for result in report["results"]:
            result_rows.append(
                (index % args.agents, "baseline", result["check_id"], result["status"], None, None, result["severity"],
                 result["title"], result["reason"], json.dumps(result["observed"]), json.dumps(result["expectation"]),
                 "1.0.0", result["policy"]["hash"], now, now, report_id)
            )  # fmt: skip
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE copy_reports (LIKE reports INCLUDING DEFAULTS)")
        connection.execute("CREATE TABLE copy_results (LIKE latest_results INCLUDING DEFAULTS)")
        connection.commit()
        began = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY copy_reports (report_id, agent_id, subject_id, received_at, created_at, result_count, dropped, "
                "signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib) FROM STDIN"
            ) as copy:
                for row in report_rows:
                    copy.write_row(row)
            with cursor.copy(
                "COPY copy_results (subject_id, policy_id, check_id, status, waived_status, waiver_id, severity, "
                "title, "
                "reason, observed, expectation, policy_version, policy_hash, evaluated_at, since, report_id) FROM STDIN"
            ) as copy:
                for row in result_rows:
                    copy.write_row(row)
        connection.commit()
        elapsed = time.perf_counter() - began
    return {"reports": total, "rows": total * (CHECKS + 1), "seconds": elapsed, "reports_per_s": total / elapsed}


# --- 4. queries on a large fleet -----------------------------------------------------------------------


def load_fleet(database_url: str, hosts: int) -> dict[str, Any]:
    """Bulk-load hosts x 40 checks with what ingest would have written (counters and history included)."""
    engine = make_engine(database_url, 2)
    migrate.upgrade(engine)
    rng = random.Random(4)
    now = models.utcnow()
    groups = ["default", "servers", "laptops", "finance", "schools"]
    fail_rate = [0.02 + 0.4 * (i % 7) / 7 for i in range(CHECKS)]
    severities = ["critical", "high", "medium", "low"]
    counts: dict[tuple[int, str, str, str, str], int] = {}
    daily: dict[tuple[dt.date, int, str, str, str, str], int] = {}
    began = time.perf_counter()
    is_pg = engine.dialect.name == "postgresql"
    with write_tx(engine) as connection:
        connection.execute(
            models.check_catalog.insert(),
            [
                {"policy_id": "baseline", "check_id": f"c{i:02d}", "title": f"Check {i}", "severity": severities[i % 4],
                 "weight": None, "frameworks": {"cis_controls_v8": [f"{i % 18 + 1}.1"]}, "policy_version": "1.0.0",
                 "policy_hash": "a" * 64, "updated_at": now}
                for i in range(CHECKS)
            ],
        )  # fmt: skip

    def subject_rows() -> Iterator[tuple[Any, ...]]:
        for index in range(hosts):
            seen = now - dt.timedelta(hours=rng.choice([1, 2, 5, 12, 30]) if rng.random() > 0.05 else 24 * 5)
            yield (
                index + 1,
                "host",
                f"ag-{index:032x}",
                f"host-{index:06d}",
                groups[index % 5],
                now - dt.timedelta(days=90),
                seen,
                seen,
            )

    def agent_rows() -> Iterator[tuple[Any, ...]]:
        for index in range(hosts):
            yield (f"ag-{index:032x}", index + 1, "k" * 43, f"host-{index:06d}", "linux", "12", "0.1.0", "{}",
                   groups[index % 5], now - dt.timedelta(days=90))  # fmt: skip

    def result_rows() -> Iterator[tuple[Any, ...]]:
        for index in range(hosts):
            subject_id = index + 1
            group = groups[index % 5]
            for check in range(CHECKS):
                roll = rng.random()
                status = "fail" if roll < fail_rate[check] else "error" if roll < fail_rate[check] + 0.01 else "pass"
                since = now - dt.timedelta(days=rng.randrange(60), hours=rng.randrange(24))
                key = (subject_id % models.COUNTER_SHARDS, group, "baseline", f"c{check:02d}", status)
                counts[key] = counts.get(key, 0) + 1
                # Past days as the retention job leaves them: one stripe (shard 0); today striped.
                day_key = (since.date(), key[0] if since.date() == now.date() else 0) + key[1:]
                daily[day_key] = daily.get(day_key, 0) + 1
                yield (subject_id, "baseline", f"c{check:02d}", status, severities[check % 4], f"Check {check}",
                       "" if status == "pass" else "value is wrong",
                       json.dumps({"value": check, "ok": status == "pass"}),
                       "1.0.0", "a" * 64, now - dt.timedelta(hours=1), since, f"r-{index}")  # fmt: skip

    subject_cols = "id, kind, ext_id, name, group_name, first_seen, last_seen, last_report_at"
    agent_cols = (
        "agent_id, subject_id, public_key, hostname, os, os_version, agent_version, host_facts, group_name, enrolled_at"
    )
    result_cols = ("subject_id, policy_id, check_id, status, severity, title, reason, observed, policy_version, "
                   "policy_hash, evaluated_at, since, report_id")  # fmt: skip
    if is_pg:
        import psycopg

        url = sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as pg:
            with pg.cursor() as cursor:
                for table, columns, rows in (
                    ("subjects", subject_cols, subject_rows()),
                    ("agents", agent_cols, agent_rows()),
                    ("latest_results", result_cols, result_rows()),
                ):
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                cursor.execute(OPEN_INTERVALS)
                cursor.execute("SELECT setval(pg_get_serial_sequence('subjects', 'id'), %s)", (hosts,))
            pg.commit()
            pg.autocommit = True
            pg.execute("VACUUM ANALYZE")
    else:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            cursor.executemany(f"INSERT INTO subjects ({subject_cols}) VALUES ({','.join('?' * 8)})", subject_rows())
            cursor.executemany(f"INSERT INTO agents ({agent_cols}) VALUES ({','.join('?' * 10)})", agent_rows())
            cursor.executemany(
                f"INSERT INTO latest_results ({result_cols}) VALUES ({','.join('?' * 13)})", result_rows()
            )
            cursor.execute(OPEN_INTERVALS)
            cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
        finally:
            raw.close()
    with write_tx(engine) as connection:
        connection.execute(
            models.status_counts.insert(),
            [{"shard": k[0], "group_name": k[1], "policy_id": k[2], "check_id": k[3], "status": k[4], "count": v}
             for k, v in sorted(counts.items())],
        )  # fmt: skip
        connection.execute(
            models.daily_changes.insert(),
            [{"day": k[0], "shard": k[1], "group_name": k[2], "policy_id": k[3], "check_id": k[4], "status": k[5],
              "delta": v} for k, v in sorted(daily.items())],
        )  # fmt: skip
    loaded = time.perf_counter() - began
    engine.dispose()
    return {"hosts": hosts, "results": hosts * CHECKS, "load_seconds": loaded}


def timed(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    work()  # warm caches
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))]}


def bench_queries(args: argparse.Namespace, kind: str, database_url: str, directory: Path) -> dict[str, Any]:
    fleet = load_fleet(database_url, args.hosts)
    engine = make_engine(database_url, 2)
    now = models.utcnow()
    stale = dt.timedelta(hours=48)
    as_of = (now - dt.timedelta(days=20)).date()

    def in_process(work: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with read_tx(engine) as connection:
                return work(connection)

        return run

    checks = {
        "summary": lambda c: queries.summary(c, now=now, stale_after=stale),
        "summary as at a date": lambda c: queries.summary(c, now=now, stale_after=stale, as_of=as_of),
        "hosts, first page of 100": lambda c: queries.hosts(c, now=now, stale_after=stale),
        "one host (40 results)": lambda c: queries.host(c, f"ag-{args.hosts // 2:032x}", now=now, stale_after=stale),
        "a check's failing hosts (100)": lambda c: queries.check(c, "c06"),
        "a check's failing hosts as at a date": lambda c: queries.check(c, "c06", as_of=as_of),
        "trend, 30 days": lambda c: queries.trends(
            c, period="day", start=now.date() - dt.timedelta(days=29), end=now.date()
        ),
    }
    measured = {name: timed(in_process(work), args.repeat) for name, work in checks.items()}
    summary = in_process(checks["summary"])()
    assert summary["totals"]["total"] == args.hosts * CHECKS
    engine.dispose()

    collector = init_collector(directory / f"query-{kind}", database_url=database_url)
    try:
        url = collector.start()
        session = collector.session(collector.admin_token)
        over_http = {
            "summary": timed(lambda: session.get(url + "/api/v1/summary").raise_for_status(), args.repeat),
            "summary as at a date": timed(
                lambda: session.get(url + "/api/v1/summary", params={"as_of": as_of.isoformat()}).raise_for_status(),
                args.repeat,
            ),
        }
        session.close()
    finally:
        collector.stop()
    return {"fleet": fleet, "in_process": measured, "http": over_http}


# --- report --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("RAMPART_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--reports-per-agent", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=100_000, help="fleet size for the query benchmark")
    parser.add_argument("--workers", type=int, default=2, help="collector worker processes")
    parser.add_argument("--ingest-threads", type=int, default=4, help="concurrent stores per worker / in-process")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--client-threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip", action="append", default=[], choices=("http", "inprocess", "copy", "queries"))
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    directory = Path(tempfile.mkdtemp(prefix="rampart-bench-"))
    figures: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_at_start": os.getloadavg(),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("json", "pg_url")},
    }
    if "postgresql" in kinds and not pg_reachable(args.pg_url):
        print(f"PostgreSQL is not reachable at {args.pg_url}: its half is skipped", flush=True)
        kinds.remove("postgresql")
    try:
        for kind in kinds:
            result: dict[str, Any] = {}
            if "http" not in args.skip:
                with database(kind, args.pg_url, directory, "http") as url:
                    result["http_ingest"] = bench_http_ingest(args, kind, url, directory)
                    print(kind, "http ingest", json.dumps(result["http_ingest"]), flush=True)
            if "inprocess" not in args.skip:
                with database(kind, args.pg_url, directory, "inproc") as url:
                    result["inprocess_ingest"] = bench_inprocess_ingest(args, url, directory)
                    print(kind, "in-process ingest", json.dumps(result["inprocess_ingest"]), flush=True)
            if kind == "postgresql" and "copy" not in args.skip:
                with database(kind, args.pg_url, directory, "copy") as url:
                    engine = make_engine(url, 1)
                    migrate.upgrade(engine)
                    engine.dispose()
                    result["copy"] = bench_copy(args, url)
                    print(kind, "COPY", json.dumps(result["copy"]), flush=True)
            if "queries" not in args.skip:
                with database(kind, args.pg_url, directory, "fleet") as url:
                    result["queries"] = bench_queries(args, kind, url, directory)
                    print(kind, "queries", json.dumps(result["queries"]), flush=True)
            figures[kind] = result
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    figures["load_average_at_end"] = os.getloadavg()
    print()
    print(markdown(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def pg_reachable(url: str) -> bool:
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        f"Run {figures['when']} on {figures['machine']}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in figures['load_average_at_start'])}, at end "
        f"{', '.join(f'{x:.1f}' for x in figures['load_average_at_end'])}.",
        "",
        "| | SQLite | PostgreSQL |",
        "|---|---|---|",
    ]

    def cell(kind: str, *path: str, unit: str = "", digits: int = 0) -> str:
        value: Any = figures.get(kind, {})
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return "–"
            value = value[key]
        if value is None:
            return "–"
        return f"{value:,.{digits}f}{unit}"

    rows = [
        ("Ingest over HTTPS, reports/s (40 results each)", ("http_ingest", "reports_per_s"), "", 0),
        ("Ingest over HTTPS, results/s", ("http_ingest", "results_per_s"), "", 0),
        ("Ingest over HTTPS, request p50", ("http_ingest", "p50_ms"), " ms", 1),
        ("Ingest over HTTPS, request p95", ("http_ingest", "p95_ms"), " ms", 1),
        ("Ingest over HTTPS, collector CPU per report", ("http_ingest", "collector_cpu_ms_per_report"), " ms", 2),
        ("Ingest over HTTPS, PostgreSQL CPU per report", ("http_ingest", "postgres_cpu_ms_per_report"), " ms", 2),
        ("Ingest in-process, reports/s", ("inprocess_ingest", "reports_per_s"), "", 0),
        ("Ingest in-process, Python CPU per report", ("inprocess_ingest", "python_cpu_ms_per_report"), " ms", 2),
        ("COPY of the same rows, reports/s", ("copy", "reports_per_s"), "", 0),
    ]
    for label, path, unit, digits in rows:
        lines.append(
            f"| {label} | {cell('sqlite', *path, unit=unit, digits=digits)} "
            f"| {cell('postgresql', *path, unit=unit, digits=digits)} |"
        )
    copy = figures.get("postgresql", {}).get("copy")
    http = figures.get("postgresql", {}).get("http_ingest")
    if copy and http:
        lines.append(f"| HTTPS ingest / COPY | | {http['reports_per_s'] / copy['reports_per_s']:.1%} |")
    fleet = figures.get("sqlite", figures.get("postgresql", {})).get("queries", {}).get("fleet")
    if fleet:
        lines += [
            "",
            f"Queries on {fleet['hosts']:,} hosts x {CHECKS} checks ({fleet['results']:,} results), median / p95:",
            "",
        ]
        lines += ["| query | SQLite | PostgreSQL |", "|---|---|---|"]
        names = figures.get("sqlite", figures.get("postgresql", {}))["queries"]["in_process"]
        for name in names:
            cells = []
            for kind in ("sqlite", "postgresql"):
                sample = figures.get(kind, {}).get("queries", {}).get("in_process", {}).get(name)
                cells.append(f"{sample['median_ms']:.1f} / {sample['p95_ms']:.1f} ms" if sample else "–")
            lines.append(f"| {name} (in-process) | {cells[0]} | {cells[1]} |")
        for name in ("summary", "summary as at a date"):
            cells = []
            for kind in ("sqlite", "postgresql"):
                sample = figures.get(kind, {}).get("queries", {}).get("http", {}).get(name)
                cells.append(f"{sample['median_ms']:.1f} / {sample['p95_ms']:.1f} ms" if sample else "–")
            label = "GET /api/v1/summary" + (" ?as_of=" if "date" in name else "")
            lines.append(f"| {label} over HTTPS | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
