"""Evidence export benchmark: 100,000 hosts x 40 checks x 90 days of history; time, and peak memory (target:
under 300 MB).

    python bench/evidence_export.py                 # SQLite, 10,000 hosts (make bench)
    python bench/evidence_export.py --quick         # 1,000 hosts (make bench-quick)
    python bench/evidence_export.py --db both --hosts 100000
    python bench/evidence_export.py --db sqlite --hosts 20000

A fleet with history (bench/fleet_history.py: 1-3 status intervals per result over the days, a signed
report per host whose body the export reads the facts from) is bulk-loaded; then `rampart-collector
evidence export --from <90 days ago> --to <today>` runs as a process, and `evidence verify` on its pack.
Peak memory is each process's maximum resident set (getrusage of the child), wall time its whole run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _support import finish, machine, parser, pg_url_option, run_line  # noqa: E402
from briefing import collector_config, run  # noqa: E402
from fleet_history import load  # noqa: E402

from collector.reports import periods  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402

BENCHMARK = True
NAME = "evidence_export"


def bench(kind: str, url: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    previous_end = dt.datetime.combine(periods.quarter_containing(now.date()).previous().end, dt.time(23))
    began = time.perf_counter()
    fleet = load(url, args.hosts, args.days, now, previous_end)
    fleet["load_seconds"] = round(time.perf_counter() - began, 1)
    print(kind, "loaded", json.dumps(fleet), flush=True)
    config = collector_config(directory / kind, url)
    pack = directory / kind / "pack.zip"
    start = (now.date() - dt.timedelta(days=args.days - 1)).isoformat()
    export_s, export_mb, output, export_cpu = run(
        config, "evidence", "export", "--from", start, "--to", now.date().isoformat(), "--out", str(pack),
        "--format", "json",
    )  # fmt: skip
    answer = json.loads(output[output.index("{") :])
    verify_s, verify_mb, _, verify_cpu = run(config, "evidence", "verify", str(pack))
    return {
        "fleet": fleet,
        "export_s": round(export_s, 1),
        "export_cpu_s": round(export_cpu, 1),
        "export_peak_mb": export_mb,
        "pack_mb": round(pack.stat().st_size / 1e6, 1),
        "counts": answer["counts"],
        "verify_s": round(verify_s, 1),
        "verify_cpu_s": round(verify_cpu, 1),
        "verify_peak_mb": verify_mb,
    }


def markdown(out: dict[str, Any], command: str) -> str:
    lines = [run_line(out["meta"], command), ""]
    for kind in ("sqlite", "postgresql"):
        if kind not in out:
            continue
        f = out[kind]
        counts = f["counts"]
        lines += [
            f"| evidence export, {f['fleet']['hosts']:,} hosts x 40 checks x {out['days']} days ({kind}) | figure |",
            "|---|---:|",
            f"| fleet loaded (bench/fleet_history.py) | {f['fleet']['load_seconds']} s |",
            f"| counts in the pack | {', '.join(f'{k} {v:,}' for k, v in counts.items() if isinstance(v, int))} |",
            f"| `rampart-collector evidence export` (whole process): wall / CPU | {f['export_s']} s / "
            f"{f['export_cpu_s']} s |",
            f"| **peak RSS of the export** (target: under 300 MB) | **{f['export_peak_mb']} MB** |",
            f"| the pack (zip) | {f['pack_mb']} MB |",
            f"| `rampart-collector evidence verify`: wall / CPU / peak RSS | {f['verify_s']} s / {f['verify_cpu_s']} s "
            f"/ {f['verify_peak_mb']} MB |",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    pg_url_option(parsed)
    parsed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parsed.add_argument("--hosts", type=int, help="hosts (10,000; quick 1,000)")
    parsed.add_argument("--days", type=int, default=90)
    parsed.add_argument("--keep", metavar="DIR", help="load into DIR and keep it (bench/briefing.py --fleet DIR)")
    args = parsed.parse_args()
    args.hosts = args.hosts or (1_000 if args.quick else 10_000)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {"meta": machine(), "days": args.days}
    with tempfile.TemporaryDirectory(prefix="rampart-bench-evidence-") as tmp:
        directory = Path(args.keep) if args.keep else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            if kind == "sqlite":
                out[kind] = bench(kind, f"sqlite:///{directory / 'fleet.db'}", args, directory)
            else:
                with temporary_database(args.pg_url, "rampart_bench") as url:
                    out[kind] = bench(kind, url, args, directory)
            print(kind, json.dumps(out[kind]), flush=True)
    out["meta"]["load_average_at_end"] = machine()["load_average"]
    command = "python bench/evidence_export.py" + (" --quick" if args.quick else "")
    finish(args, NAME, out, markdown(out, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
