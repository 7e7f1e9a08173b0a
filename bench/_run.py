"""Run every benchmark in bench/, one process each: `make bench` and `make bench-quick`.

    python bench/_run.py --write-docs          # make bench: full sizes, figures rewritten in docs/benchmarks.md
    python bench/_run.py --quick               # make bench-quick: small counts, the ratios in a few minutes
    python bench/_run.py --quick --only scale_out --only ingest_http

A benchmark is a file bench/<name>.py whose name does not start with `_` and which holds the line
`BENCHMARK = True` at the top level (bench/README.md): it takes --quick and --write-docs, and with
--write-docs rewrites its section of docs/benchmarks.md (between `<!-- bench:<name> -->` and
`<!-- /bench:<name> -->`). Support modules (`_*.py`, and any file without the line, such as loadgen.py) are
not run. Each benchmark's wall time is printed; the run fails if one fails, and says so when the whole
took longer than its budget (30 minutes, 5 with --quick).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MARK = re.compile(r"^BENCHMARK\s*=\s*True\s*$", re.M)


def discover() -> list[str]:
    """The names of the benchmarks in bench/, in alphabetical order."""
    return sorted(
        path.stem
        for path in BENCH.glob("*.py")
        if not path.name.startswith("_") and MARK.search(path.read_text(encoding="utf-8"))
    )


def main() -> int:
    parsed = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parsed.add_argument("--quick", action="store_true", help="small counts (make bench-quick)")
    parsed.add_argument("--write-docs", action="store_true", help="each benchmark rewrites its docs section")
    parsed.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these benchmarks")
    parsed.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave these out")
    parsed.add_argument("--list", action="store_true", help="print the benchmarks found and stop")
    args = parsed.parse_args()
    found = discover()
    unknown = sorted(set(args.only + args.skip) - set(found))
    if unknown:
        print(f"no such benchmark: {', '.join(unknown)} (found: {', '.join(found)})", file=sys.stderr)
        return 2
    names = [name for name in found if (not args.only or name in args.only) and name not in args.skip]
    if args.list:
        print("\n".join(names))
        return 0
    flags = (["--quick"] if args.quick else []) + (["--write-docs"] if args.write_docs else [])
    budget = 5 * 60 if args.quick else 30 * 60
    outcomes: list[tuple[str, int, float]] = []
    began = time.perf_counter()
    for name in names:
        print(f"== bench/{name}.py {' '.join(flags)}", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *flags], check=False).returncode
        outcomes.append((name, code, time.perf_counter() - start))
        print(f"== bench/{name}.py: {'ok' if code == 0 else f'failed ({code})'} in {outcomes[-1][2]:.0f} s", flush=True)
    total = time.perf_counter() - began
    print("\n| benchmark | outcome | seconds |\n|---|---|---:|")
    for name, code, seconds in outcomes:
        print(f"| {name} | {'ok' if code == 0 else f'failed ({code})'} | {seconds:.0f} |")
    print(f"| **all** | | **{total:.0f}** |")
    if total > budget:
        print(f"over budget: {total / 60:.1f} minutes for {budget / 60:.0f}", file=sys.stderr)
    return 1 if any(code for _, code, _ in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
