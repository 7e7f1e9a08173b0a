"""Briefing benchmark: the audit-committee briefing of 100,000 hosts x 40 checks, target under 10 s.

    python bench/briefing.py                      # SQLite, 20,000 hosts, 90 days of history (make bench)
    python bench/briefing.py --hosts 100000       # the target's size (loading takes most of an hour here)
    python bench/briefing.py --quick              # 2,000 hosts (make bench-quick)
    python bench/briefing.py --db both            # SQLite and PostgreSQL
    python bench/briefing.py --db sqlite --hosts 20000

A fleet with history (bench/fleet_history.py) is bulk-loaded; then `rampart-collector briefing` runs as a
process, as an operator runs it: the quarter today is in (compared with the previous quarter, whose end is
read from the history and the kept reports), written as PDF and as HTML. Its wall time is the figure to
hold against the target; the parts (reading the figures, drawing the HTML with its charts, WeasyPrint's
PDF) are timed in-process too. PostgreSQL: a database of its own on --pg-url, dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml  # noqa: E402
from _support import finish, machine, parser, pg_url_option, run_line  # noqa: E402
from fleet_history import load  # noqa: E402

from checks import wire  # noqa: E402
from collector.config import CollectorConfig  # noqa: E402
from collector.reports import briefing, figures, periods  # noqa: E402
from collector.storage.engine import make_engine, read_tx  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402

BIN = Path(sys.executable).parent
BENCHMARK = True
NAME = "briefing"


def collector_config(directory: Path, url: str) -> Path:
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "signing-key.pem").write_bytes(wire.private_key_pem(wire.generate_key()))
    path = directory / "collector.yaml"
    path.write_text(yaml.safe_dump({"collector": {"data_dir": str(data), "database_url": url}}))
    return path


def run(config: Path, *args: str) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS (MB), output and CPU seconds (user + system) of one rampart-collector process.
    On a shared machine the CPU time is the steadier figure: the wall time includes waiting for a core."""
    began = time.perf_counter()
    process = subprocess.Popen([str(BIN / "rampart-collector"), "--config", str(config), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    output = process.stdout.read().decode() if process.stdout else ""
    if status != 0:
        raise RuntimeError(f"rampart-collector {' '.join(args)} failed:\n{output}")
    return elapsed, usage.ru_maxrss // 1024, output, usage.ru_utime + usage.ru_stime


def bench(kind: str, url: str, args: argparse.Namespace, directory: Path, loaded: bool = False) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    period = periods.quarter_containing(now.date())
    previous_end = dt.datetime.combine(period.previous().end, dt.time(23))
    began = time.perf_counter()
    fleet = {"hosts": args.hosts, "reused": url} if loaded else load(url, args.hosts, args.days, now, previous_end)
    fleet["load_seconds"] = round(time.perf_counter() - began, 1)
    print(kind, "loaded", json.dumps(fleet), flush=True)
    config = collector_config(directory / kind, url)
    pdf_s, pdf_mb, _, pdf_cpu = run(config, "briefing", "--out", str(directory / kind / "briefing.pdf"))
    html_s, html_mb, _, html_cpu = run(config, "briefing", "--out", str(directory / kind / "briefing.html"))
    engine = make_engine(url, 2)
    parts = {}
    began = time.perf_counter()
    with read_tx(engine) as connection:
        data = figures.gather(connection, period=period, group=None, config=CollectorConfig(), now=now)
    parts["figures_s"] = time.perf_counter() - began
    began = time.perf_counter()
    html = briefing.render_html(data)
    parts["html_with_charts_s"] = time.perf_counter() - began
    began = time.perf_counter()
    pdf = briefing.render_pdf(html)
    parts["pdf_s"] = time.perf_counter() - began
    engine.dispose()
    assert data["totals"]["total"] == args.hosts * 40
    return {
        "fleet": fleet,
        "cli_pdf_s": round(pdf_s, 2),
        "cli_pdf_cpu_s": round(pdf_cpu, 2),
        "cli_pdf_peak_mb": pdf_mb,
        "cli_html_s": round(html_s, 2),
        "cli_html_cpu_s": round(html_cpu, 2),
        "cli_html_peak_mb": html_mb,
        "pdf_bytes": len(pdf),
        **{k: round(v, 2) for k, v in parts.items()},
    }


def markdown(out: dict[str, Any], command: str) -> str:
    lines = [run_line(out["meta"], command), ""]
    for kind in ("sqlite", "postgresql"):
        if kind not in out:
            continue
        f = out[kind]
        lines += [
            f"| briefing of {f['fleet']['hosts']:,} hosts x 40 checks ({kind}) "
            "| wall | CPU (user + system) | peak RSS |",
            "|---|---:|---:|---:|",
            f"| `rampart-collector briefing --out briefing.pdf` (whole process) | {f['cli_pdf_s']} s "
            f"| {f['cli_pdf_cpu_s']} s | {f['cli_pdf_peak_mb']} MB |",
            f"| `rampart-collector briefing --out briefing.html` (whole process) | {f['cli_html_s']} s "
            f"| {f['cli_html_cpu_s']} s | {f['cli_html_peak_mb']} MB |",
            f"| in-process: every figure, now and last quarter | {f['figures_s']} s | | |",
            f"| in-process: the HTML with its charts | {f['html_with_charts_s']} s | | |",
            f"| in-process: WeasyPrint's PDF | {f['pdf_s']} s | | |",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parsed.add_argument("--hosts", type=int, help="hosts (20,000; quick 2,000)")
    parsed.add_argument("--days", type=int, default=90)
    parsed.add_argument(
        "--fleet", metavar="DIR", help="use the SQLite fleet bench/evidence_export.py --keep DIR loaded today"
    )
    args = parsed.parse_args()
    args.hosts = args.hosts or (2_000 if args.quick else 20_000)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {"meta": machine()}
    with tempfile.TemporaryDirectory(prefix="rampart-bench-briefing-") as tmp:
        directory = Path(tmp)
        for kind in kinds:
            if kind == "sqlite" and args.fleet:
                out[kind] = bench(kind, f"sqlite:///{Path(args.fleet) / 'fleet.db'}", args, directory, loaded=True)
            elif kind == "sqlite":
                out[kind] = bench(kind, f"sqlite:///{directory / 'fleet.db'}", args, directory)
            else:
                with temporary_database(args.pg_url, "rampart_bench") as url:
                    out[kind] = bench(kind, url, args, directory)
            print(kind, json.dumps(out[kind]), flush=True)
    out["meta"]["load_average_at_end"] = machine()["load_average"]
    command = "python bench/briefing.py" + (" --quick" if args.quick else "")
    finish(args, NAME, out, markdown(out, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
