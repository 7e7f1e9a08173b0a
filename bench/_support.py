"""What the benchmarks share: databases, simulated reports, CPU accounting, and their sections of the docs.

A module whose name starts with `_` is support, not a benchmark (bench/README.md: the convention).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from checks import wire  # noqa: E402
from collector.storage.engine import normalise_url  # noqa: E402
from tests.support.agents import make_result  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402

CHECKS = 40
FRAMEWORKS = {"cyber_essentials": ["secure_configuration"], "cis_controls_v8": ["4.1"]}
DOCS = ROOT / "docs" / "benchmarks.md"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


# --- the command line every benchmark takes ------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options the runner (bench/_run.py) passes to every benchmark."""
    text = doc or ""
    parsed = argparse.ArgumentParser(
        description=text.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parsed.add_argument("--quick", action="store_true", help="small counts: the ratios in a few minutes")
    parsed.add_argument(
        "--write-docs", action="store_true", help="rewrite this benchmark's figures in docs/benchmarks.md"
    )
    parsed.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parsed


def pg_url_option(parsed: argparse.ArgumentParser) -> None:
    parsed.add_argument(
        "--pg-url",
        default=os.environ.get("RAMPART_TEST_PG_URL") or DEFAULT_PG_URL,
        help="the PostgreSQL server (a database of the benchmark's own is created on it and dropped)",
    )


def machine() -> dict[str, Any]:
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def run_line(meta: dict[str, Any], command: str) -> str:
    """The sentence that opens a generated section: what ran, when, where, how loaded the machine was."""
    start = ", ".join(f"{x:.1f}" for x in meta["load_average"])
    end = ", ".join(f"{x:.1f}" for x in meta.get("load_average_at_end", meta["load_average"]))
    return f"`{command}` on {meta['when']}, {meta['machine']}; load average {start} at the start, {end} at the end."


def finish(args: argparse.Namespace, name: str, figures: dict[str, Any], text: str) -> None:
    """Print the figures (JSON, then Markdown); write them to --json and, with --write-docs, to the docs."""
    print(json.dumps(figures, indent=2, default=str))
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    if args.write_docs:
        write_docs(name, text)


# --- docs/benchmarks.md --------------------------------------------------------------------------------


def section_markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def write_docs(name: str, text: str, path: Path = DOCS) -> None:
    """Put `text` between this benchmark's markers in docs/benchmarks.md (appended, with its markers, at the
    end when it has none yet). Everything outside the markers is left as written by hand."""
    begin, end = section_markers(name)
    document = path.read_text(encoding="utf-8")
    block = f"{begin}\n{text.strip()}\n{end}"
    found = re.search(re.escape(begin) + r".*?" + re.escape(end), document, flags=re.S)
    if found:
        document = document[: found.start()] + block + document[found.end() :]
    else:
        document = document.rstrip("\n") + f"\n\n## `bench/{name}.py`\n\n{block}\n"
    path.write_text(document, encoding="utf-8")
    print(f"docs: {path.relative_to(ROOT)} section {name} rewritten", flush=True)


# --- databases -----------------------------------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str, directory: Path, label: str) -> Iterator[str]:
    """A fresh database: a SQLite file in `directory`, or a PostgreSQL database created for the benchmark
    and dropped after it."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{label}.db'}"
    else:
        with temporary_database(pg_url, "rampart_bench") as url:
            yield url


def pg_reachable(url: str) -> bool:
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def kinds(choice: str, pg_url: str) -> list[str]:
    """The databases asked for (`sqlite`, `postgresql`, `both`), less PostgreSQL when it is not reachable."""
    wanted = ["sqlite", "postgresql"] if choice == "both" else [choice]
    if "postgresql" in wanted and not pg_reachable(pg_url):
        print(f"PostgreSQL is not reachable at {pg_url}: its half is skipped", flush=True)
        wanted.remove("postgresql")
    return wanted


# --- reports in the wire format ------------------------------------------------------------------------

_STAMP = "@@evaluated_at@@"
_RESULTS = "@@results@@"


class ReportTemplate:
    """Report bodies in the wire format (checks.wire.make_report, as the agent sends them) of CHECKS results
    judged against the tests' fleet policy (tests/support/policies.py), assembled from each result encoded
    once per status: a simulated agent's body costs a join, not 40 encodings.

    `statuses[i]` is 0 for a passing result of check c<i>, 1 for a failing one; the facts observed follow
    the status, as a real probe's would."""

    def __init__(self, checks: int = CHECKS) -> None:
        self.checks = checks
        self._encoded = [
            [
                json.dumps(make_result(f"c{i:02d}", status, frameworks=FRAMEWORKS, evaluated_at=_STAMP))
                for status in ("pass", "fail")
            ]
            for i in range(checks)
        ]
        self._check()

    def results_json(self, statuses: Sequence[int], evaluated_at: str) -> str:
        joined = ",".join(self._encoded[i][s] for i, s in enumerate(statuses))
        return "[" + joined.replace(_STAMP, evaluated_at) + "]"

    def body(self, agent_id: str, report_id: str, hostname: str, statuses: Sequence[int], evaluated_at: str) -> bytes:
        report = wire.make_report(
            agent_id=agent_id, results=[], report_id=report_id, created_at=evaluated_at, host={"hostname": hostname}
        )
        report["results"] = _RESULTS
        text = json.dumps(report).replace(json.dumps(_RESULTS), self.results_json(statuses, evaluated_at), 1)
        return text.encode()

    def _check(self) -> None:
        """The assembled body is exactly what checks.wire and the result model give (once, at start-up)."""
        statuses = [i % 2 for i in range(self.checks)]
        stamp = "2026-01-01T00:00:00Z"
        results = [
            make_result(f"c{i:02d}", ("pass", "fail")[s], frameworks=FRAMEWORKS, evaluated_at=stamp)
            for i, s in enumerate(statuses)
        ]
        expected = wire.make_report(
            agent_id="ag-x", results=results, report_id="r-00000001", created_at=stamp, host={"hostname": "h"}
        )
        assert json.loads(self.body("ag-x", "r-00000001", "h", statuses, stamp)) == expected


def utc_stamp(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CPU accounting ------------------------------------------------------------------------------------


def cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    """User + system seconds so far of the processes still there."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # ended meanwhile
        total += times.user + times.system
    return total


def process_tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes and all their children (a `serve` and its uvicorn workers)."""
    tree: list[psutil.Process] = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            tree += [parent, *parent.children(recursive=True)]
        except psutil.Error:
            continue
    return tree


# --- timing --------------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def timed(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Median and p95 in ms of `repeat` runs after one warm-up."""
    work()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        samples.append((time.perf_counter() - began) * 1000)
    return {"median_ms": statistics.median(samples), "p95_ms": percentile(samples, 0.95)}
