"""Benchmark: MFA coverage over large tenants, streamed from a local fake of Microsoft Graph over HTTPS.

For each tenant size a fresh process signs in with msal, runs the shipped cloud policies (the MFA probe
reads the whole registration report) and reports wall time, throughput, the tracemalloc peak and the
peak RSS of that process. The fake tenant runs in its own process, so neither figure includes it.

    .venv/bin/python bench/cloud_mfa.py            # 10k, 100k and 1M users
    .venv/bin/python bench/cloud_mfa.py --quick    # 10k and 100k
    .venv/bin/python bench/cloud_mfa.py 250000     # chosen sizes
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _support import ROOT, write_docs

BENCHMARK = True
NAME = "cloud_mfa"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


def one(users: int) -> dict[str, object]:
    from collector.cloud.config import CloudConfig
    from collector.cloud.run import run_cloud_checks
    from tests.fakes.microsoft import SpawnedFake

    with tempfile.TemporaryDirectory() as directory, SpawnedFake(users, Path(directory)) as fake:
        config = CloudConfig(**fake.config())
        tracemalloc.start()
        started = time.perf_counter()
        run = run_cloud_checks(config)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        fake.stop()
        facts = next(r.observed for r in run.results if r.check_id == "mfa-coverage")
        assert facts["members"] == fake.expected["members"], "counts differ from the generated tenant"
        return {
            "users": users,
            "pages": facts["pages"],
            "seconds": round(elapsed, 2),
            "users_per_s": round(users / elapsed),
            "tracemalloc_peak_mib": round(peak / 2**20, 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(int(argv[1]))))
        return 0
    flags = {a for a in argv if a.startswith("--")}
    unknown = flags - {"--quick", "--write-docs"}
    if unknown:
        print(f"cloud_mfa: unknown option(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    sizes = [int(a) for a in argv if not a.startswith("--")] or list(
        DEFAULT_SIZES[:2] if "--quick" in flags else DEFAULT_SIZES
    )
    lines = [
        "| users | pages | seconds | users/s | tracemalloc peak (MiB) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines))
    for size in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True, cwd=ROOT
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(
            f"| {row['users']:,} | {row['pages']} | {row['seconds']} | {row['users_per_s']:,} "
            f"| {row['tracemalloc_peak_mib']} | {row['max_rss_mib']} |"
        )
        print(lines[-1], flush=True)
    if "--write-docs" in flags:
        write_docs(NAME, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
