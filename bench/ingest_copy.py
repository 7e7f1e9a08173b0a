"""PostgreSQL's own ceiling: COPY of the rows that ingest writes for the same reports, on this machine.

    python bench/ingest_copy.py                  # 5,000 reports (make bench)
    python bench/ingest_copy.py --quick          # 1,000

Per report one `reports` row (its compressed body, as kept) and 40 result rows, with `COPY ... FROM STDIN`
into unindexed copies of the tables of a fresh database: what PostgreSQL itself takes here, to read the
ingest figures against (the machine's speed varies during the day).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
import zlib
from typing import Any

import psycopg
import sqlalchemy as sa
from _support import CHECKS, ReportTemplate, finish, machine, parser, pg_reachable, pg_url_option, run_line, utc_stamp

from collector.storage import migrate
from collector.storage.engine import make_engine
from tests.support.databases import temporary_database

BENCHMARK = True
NAME = "ingest_copy"
REPORT_COLUMNS = (
    "report_id, agent_id, subject_id, received_at, created_at, created_on, result_count, dropped, signed_method, "
    "signed_path, signed_timestamp, content_sha256, signature, body_zlib"
)
RESULT_COLUMNS = (
    "subject_id, policy_id, check_id, status, waived_status, waiver_id, severity, title, reason, observed, "
    "expectation, policy_version, policy_hash, evaluated_at, since, report_id"
)


def copy(url: str, total: int, agents: int) -> dict[str, Any]:
    template = ReportTemplate()
    report_rows: list[tuple[Any, ...]] = []
    result_rows: list[tuple[Any, ...]] = []
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for index in range(total):
        agent_id = f"ag-{index % agents:032x}"
        report_id = str(uuid.uuid4())
        statuses = [(index + i) % 5 == 0 for i in range(CHECKS)]
        body = template.body(agent_id, report_id, f"host-{index % agents:06d}", [int(s) for s in statuses], utc_stamp())
        report = json.loads(body)
        report_rows.append(
            (report_id, agent_id, index % agents, now, report["created_at"], now[:10], CHECKS, 0, "POST",
             "/api/v1/reports", int(time.time()), hashlib.sha256(body).hexdigest(), "-" * 86, zlib.compress(body, 1))
        )  # fmt: skip
        for result in report["results"]:
            result_rows.append(
                (index % agents, result["policy"]["id"], result["check_id"], result["status"], None, None,
                 result["severity"], result["title"], result["reason"], json.dumps(result["observed"]),
                 json.dumps(result["expectation"]), result["policy"]["version"], result["policy"]["hash"], now, now,
                 report_id)
            )  # fmt: skip
    plain = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as connection:
        connection.execute("CREATE TABLE copy_reports (LIKE reports INCLUDING DEFAULTS)")
        connection.execute("CREATE TABLE copy_results (LIKE latest_results INCLUDING DEFAULTS)")
        connection.commit()
        began = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY copy_reports ({REPORT_COLUMNS}) FROM STDIN") as stream:
                for row in report_rows:
                    stream.write_row(row)
            with cursor.copy(f"COPY copy_results ({RESULT_COLUMNS}) FROM STDIN") as stream:
                for row in result_rows:
                    stream.write_row(row)
        connection.commit()
        elapsed = time.perf_counter() - began
    return {"reports": total, "rows": total * (CHECKS + 1), "seconds": elapsed, "reports_per_s": total / elapsed}


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--reports", type=int, help="reports (5,000; quick 1,000)")
    parsed.add_argument("--agents", type=int, default=1000)
    args = parsed.parse_args()
    total = args.reports or (1_000 if args.quick else 5_000)
    if not pg_reachable(args.pg_url):
        print(f"{NAME}: PostgreSQL is not reachable at {args.pg_url}", file=sys.stderr)
        return 1
    meta = machine()
    with temporary_database(args.pg_url, "rampart_bench_copy") as url:
        engine = make_engine(url, 1)
        migrate.upgrade(engine)
        engine.dispose()
        figures = {"meta": meta, **copy(url, total, args.agents)}
    meta["load_average_at_end"] = machine()["load_average"]
    text = "\n".join(
        [
            run_line(meta, "python bench/ingest_copy.py" + (" --quick" if args.quick else "")),
            "",
            "| PostgreSQL COPY of the rows of | reports/s | rows/s |",
            "|---|---:|---:|",
            f"| {figures['reports']:,} reports (41 rows each) | {figures['reports_per_s']:,.0f} "
            f"| {figures['rows'] / figures['seconds']:,.0f} |",
        ]
    )
    finish(args, NAME, figures, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
