"""Dashboard benchmark: the server time of every page on a fleet of hosts x 40 checks.

    python bench/dashboard_pages.py                       # SQLite, 10,000 hosts (make bench)
    python bench/dashboard_pages.py --quick               # 1,000 hosts (make bench-quick)
    python bench/dashboard_pages.py --db postgresql --hosts 100000 --repeat 15

The fleet is loaded through the collector's own store (bench/_fleet.py: each host enrolled with the
registry and reporting through the store in bulk, batch_ingest.store_agent_reports, so the latest results,
history intervals, striped counters and daily changes are what ingest writes). A real `rampart-collector
serve` (one worker, HTTPS) then answers each page `--repeat` times after one warm-up, signed in as an
admin through the sign-in form. The figure is the server's own time for the page (the `Server-Timing`
header the dashboard sets: from the request reaching the dashboard to the response starting), beside the
time the client waited (adds TLS, HTTP and the transfer). Target (issue 12): every page under 200 ms at
the median. Figures are printed as Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _fleet import load_fleet
from _support import database, finish, kinds, parser, pg_url_option

from tests.support.collector import init_collector
from tests.support.policies import FLEET_POLICY_ID

BENCHMARK = True
NAME = "dashboard_pages"

PASSWORD = "benchmark password, long enough"
TIMING = re.compile(r"app;dur=([0-9.]+)")


def pages(fleet: dict[str, Any]) -> dict[str, str]:
    middle, check = fleet["middle_agent"], f"/checks/{FLEET_POLICY_ID}/c06"
    return {
        "overview": "/",
        "hosts, first page": "/hosts",
        "hosts, a page in the middle": f"/hosts?page={max(1, fleet['hosts'] // 200)}",
        "hosts failing, first page": "/hosts?status=failing",
        "hosts with errors, by last contact": "/hosts?status=errors&sort=-seen",
        "hosts in a group and OS, stale": "/hosts?group=servers&os=linux&stale=yes",
        "hosts, search": f"/hosts?q={fleet['search']}",
        "one host (40 results, history)": f"/hosts/{middle}",
        "checks": "/checks",
        "one check's failing hosts": check,
        "one check, a later page": f"{check}?page={max(1, fleet['hosts'] // 1000)}",
        "Microsoft 365 tenant": "/tenant",
        "Azure resources": "/cloud",
        "waivers": "/waivers",
        "audit log": "/audit",
        "agents and enrolment tokens": "/agents",
        "users and API tokens": "/users",
        "downloads": "/downloads",
    }


def measure(args: argparse.Namespace, kind: str, database_url: str, directory: Path) -> dict[str, Any]:
    fleet = load_fleet(database_url, args.hosts)
    collector = init_collector(directory / f"dashboard-{kind}", database_url=database_url)
    password_file = directory / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    done = collector.cli("users", "set-password", "admin", "--password-file", str(password_file))
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = {"fleet": fleet, "pages": {}}
    try:
        url = collector.start()
        session = collector.session()
        form = session.get(url + "/sign-in").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        signed = session.post(
            url + "/sign-in", data={"csrf_token": token, "name": "admin", "password": PASSWORD}, allow_redirects=False
        )
        assert signed.status_code == 303, signed.text[:500]
        for name, path in pages(fleet).items():
            server: list[float] = []
            client: list[float] = []
            for attempt in range(args.repeat + 1):
                began = time.perf_counter()
                response = session.get(url + path)
                waited = (time.perf_counter() - began) * 1000
                assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
                found = TIMING.search(response.headers.get("server-timing", ""))
                assert found, f"{path}: no Server-Timing"
                if attempt:  # the first is a warm-up
                    server.append(float(found.group(1)))
                    client.append(waited)
            server.sort()
            figures["pages"][name] = {
                "path": path,
                "server_median_ms": statistics.median(server),
                "server_p95_ms": server[min(len(server) - 1, int(len(server) * 0.95))],
                "client_median_ms": statistics.median(client),
                "bytes": len(response.content),
            }
            print(kind, name, figures["pages"][name], flush=True)
        session.close()
    finally:
        collector.stop()
    return figures


def markdown(results: dict[str, Any], meta: dict[str, Any]) -> str:
    kinds = [k for k in ("sqlite", "postgresql") if k in results]
    fleet = results[kinds[0]]["fleet"]
    start = ", ".join(f"{x:.1f}" for x in meta["load_start"])
    end = ", ".join(f"{x:.1f}" for x in meta["load_end"])
    lines = [
        f"Run {meta['when']} on {meta['machine']}; load average at start {start}, at end {end}. "
        f"{fleet['hosts']:,} hosts x 40 checks ({fleet['results']:,} results); each page {meta['repeat']} times "
        "after a warm-up; server time (Server-Timing) median / p95, and the client's median wait over HTTPS.",
        "",
        "| page | " + " | ".join(f"{k}: server median / p95 | {k}: client median" for k in kinds) + " |",
        "|---|" + "---|---|" * len(kinds),
    ]
    for name in results[kinds[0]]["pages"]:
        cells = []
        for kind in kinds:
            page = results[kind]["pages"].get(name)
            if page is None:
                cells += ["–", "–"]
                continue
            median = page["server_median_ms"]
            mark = "**" if median >= 200 else ""
            cells.append(f"{mark}{median:.1f}{mark} / {page['server_p95_ms']:.1f} ms")
            cells.append(f"{page['client_median_ms']:.1f} ms")
        lines.append(f"| {name} (`{results[kinds[0]]['pages'][name]['path']}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parsed.add_argument("--hosts", type=int, help="fleet size (10,000; quick 1,000)")
    parsed.add_argument("--repeat", type=int, help="requests of each page (15; quick 3)")
    args = parsed.parse_args()
    args.hosts = args.hosts or (1_000 if args.quick else 10_000)
    args.repeat = args.repeat or (3 if args.quick else 15)
    meta: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_start": os.getloadavg(),
        "repeat": args.repeat,
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rampart-bench-dashboard-") as temporary:
        directory = Path(temporary)
        for kind in kinds(args.db, args.pg_url):
            with database(kind, args.pg_url, directory, "dashboard") as url:
                results[kind] = measure(args, kind, url, directory)
    meta["load_end"] = os.getloadavg()
    finish(args, NAME, {"meta": meta, **results}, markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
