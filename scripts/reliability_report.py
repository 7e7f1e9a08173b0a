#!/usr/bin/env python3
"""Turn the figures the reliability, fuzz, security and soak suites wrote into Markdown tables.

    python scripts/reliability_report.py                  # docs/reliability.md, and every docs/*.md with markers
    python scripts/reliability_report.py --results DIR --into docs/security.md --print

The suites write one JSON file per scenario under build/reliability/ (tests/reliability/figures.py). The
tables replace what stands between marker comments in a Markdown file:

    <!-- reliability:begin -->            every table
    <!-- reliability:begin security -->   one section: summary, faults, fuzz, security, soak
    <!-- reliability:end -->

so docs/security.md can hold the security table and docs/benchmarks.md the fault and soak tables, all
from the suites' own output, never typed by hand. docs/reliability.md is created if it is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "build" / "reliability"
DEFAULT_DOC = ROOT / "docs" / "reliability.md"
SECTIONS = ("summary", "faults", "fuzz", "security", "soak")
MARKER = re.compile(
    r"(?P<begin><!-- reliability:begin(?: (?P<section>[a-z]+))? -->\n)(?P<body>.*?)(?P<end><!-- reliability:end -->)",
    re.DOTALL,
)
SUITE_OF_SECTION = {"faults": "reliability", "fuzz": "fuzz", "security": "security", "soak": "soak"}

DOC_TEMPLATE = """# Reliability and security: what the suites showed

The fault, fuzz, security and soak suites (tests/reliability, tests/fuzz, tests/security) write what they
measured as they run; `make reliability` runs them and regenerates the tables below from their output
(scripts/reliability_report.py). Nothing here is typed by hand.

- **Faults**: real processes (collector, agents' workers, PostgreSQL, HAProxy); each scenario ends with
  the same accounting (tests/reliability/accounting.py): every acknowledged report stored exactly once,
  every collected result delivered or counted as dropped, counters equal to the latest results.
- **Fuzz**: Hypothesis property tests (a fixed profile: `RAMPART_HYPOTHESIS_PROFILE=ci|deep`) and
  Schemathesis against the API as each role.
- **Security**: every route with every kind of bad token and each role, tampered reports, hostile text
  through every output, traversal and SQL metacharacters, secrets and file modes.
- **Soak**: agents reporting through faults with memory and descriptors sampled (`RAMPART_SOAK_S`).

`lost` and `twice` must be 0 everywhere; an `xfailed` row is a known defect, named in its test.

<!-- reliability:begin -->
<!-- reliability:end -->
"""


def load(results: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(results.glob("*/*.json")):
        try:
            documents.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            print(f"reliability_report: {path}: not JSON ({exc}); skipped", file=sys.stderr)
    return documents


def cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def of(documents: list[dict[str, Any]], suite: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["suite"] == suite]


def total(documents: list[dict[str, Any]], *names: str) -> int:
    return sum(
        int(d["figures"].get(name) or 0)
        for d in documents
        for name in names
        if isinstance(d["figures"].get(name), int | float)
    )


def summary_section(documents: list[dict[str, Any]]) -> str:
    rows = []
    for suite in ("reliability", "fuzz", "security", "soak"):
        docs = of(documents, suite)
        if not docs:
            continue
        outcomes = [d["outcome"] for d in docs]
        rows.append(
            [
                {"reliability": "faults"}.get(suite, suite),
                len(docs),
                outcomes.count("passed"),
                outcomes.count("xfailed"),
                len(docs) - outcomes.count("passed") - outcomes.count("xfailed") - outcomes.count("skipped"),
                total(docs, "faults_injected"),
                total(docs, "inputs_tried", "examples"),
                total(docs, "reports_stored"),
                total(docs, "lost"),
                total(docs, "stored_twice"),
                round(sum(float(d.get("duration_s") or 0) for d in docs), 1),
            ]
        )
    headers = ["suite", "scenarios", "passed", "xfailed (known defect)", "failed", "faults injected",
               "inputs tried", "reports stored", "lost", "twice", "seconds"]  # fmt: skip
    return table(headers, rows)


KEY_FIGURES = (
    "peak_requests_per_s",
    "peak_stored_per_s",
    "turned_away_503",
    "requests_per_report",
    "drain_s",
    "duplicates_acknowledged",
    "connections_terminated",
    "stale_timestamp_refusals",
    "pages_served_before_kill",
    "retries",
    "worker_failures",
)


def faults_section(documents: list[dict[str, Any]]) -> str:
    rows = []
    for d in of(documents, "reliability"):
        f = d["figures"]
        notes = "; ".join(f"{name.replace('_', ' ')} {cell(f[name])}" for name in KEY_FIGURES if name in f)
        rows.append(
            [d["title"], d["outcome"], f.get("agents"), f.get("faults_injected"), f.get("reports_stored"),
             f.get("lost"), f.get("stored_twice"), notes, d.get("duration_s")]
        )  # fmt: skip
    headers = ["scenario", "outcome", "agents", "faults", "reports stored", "lost", "twice", "measured", "seconds"]
    return table(headers, rows)


def inputs_section(documents: list[dict[str, Any]], suite: str) -> str:
    rows = []
    for d in of(documents, suite):
        f = d["figures"]
        tried = f.get("inputs_tried", f.get("examples"))
        detail = "; ".join(
            f"{k.replace('_', ' ')} {cell(v)}" for k, v in sorted(f.items()) if k not in ("inputs_tried", "examples")
        )
        rows.append([d["title"], d["outcome"], tried, detail, d.get("duration_s")])
    return table(["what", "outcome", "inputs tried", "detail", "seconds"], rows)


def soak_section(documents: list[dict[str, Any]]) -> str:
    rows = []
    for d in of(documents, "soak"):
        f = d["figures"]
        rows.append(
            [d["title"], d["outcome"], f.get("soak_s"), f.get("samples"), f.get("faults_injected"),
             f.get("reports_stored"), f.get("lost"), f.get("collector_rss_mb"), f.get("agent_rss_mb"),
             f.get("collector_fds"), f.get("agent_fds")]
        )  # fmt: skip
    headers = ["run", "outcome", "seconds", "samples", "faults", "reports stored", "lost",
               "collector RSS MB (first → last)", "agent daemon RSS MB", "collector fds", "agent fds"]  # fmt: skip
    return table(headers, rows)


RENDER: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "summary": summary_section,
    "faults": faults_section,
    "fuzz": lambda docs: inputs_section(docs, "fuzz"),
    "security": lambda docs: inputs_section(docs, "security"),
    "soak": soak_section,
}
TITLES = {
    "summary": "Summary",
    "faults": "Faults survived",
    "fuzz": "Bad input tried (fuzzing)",
    "security": "Security checks",
    "soak": "Soak",
}


def provenance() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        commit = ""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"_Generated {stamp}" + (f" at commit {commit}" if commit else "") + " by scripts/reliability_report.py._"


def render(documents: list[dict[str, Any]], section: str | None) -> str:
    if not documents:
        return "_No results yet: run `make reliability`._\n"
    wanted = [section] if section else list(SECTIONS)
    parts = []
    for name in wanted:
        if name != "summary" and name in SUITE_OF_SECTION and not of(documents, SUITE_OF_SECTION[name]):
            continue
        heading = "" if section else f"### {TITLES[name]}\n\n"
        parts.append(heading + RENDER[name](documents))
    return "\n\n".join(parts) + "\n\n" + provenance() + "\n"


def fill(text: str, documents: list[dict[str, Any]]) -> str:
    def replace(match: re.Match[str]) -> str:
        section = match.group("section")
        if section and section not in SECTIONS:
            raise SystemExit(f"reliability_report: unknown section {section!r} (one of {', '.join(SECTIONS)})")
        return match.group("begin") + render(documents, section) + match.group("end")

    return MARKER.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="where the suites wrote their JSON")
    parser.add_argument("--into", type=Path, action="append", help="Markdown file(s) with markers (repeatable)")
    parser.add_argument("--print", action="store_true", help="print every table instead of writing files")
    args = parser.parse_args(argv)
    documents = load(args.results)
    if args.print:
        print(render(documents, None))
        return 0
    targets = args.into or [DEFAULT_DOC, *(p for p in sorted((ROOT / "docs").glob("*.md")) if p != DEFAULT_DOC)]
    for path in targets:
        if not path.exists():
            if path != DEFAULT_DOC:
                print(f"reliability_report: {path} does not exist", file=sys.stderr)
                return 2
            path.write_text(DOC_TEMPLATE, encoding="utf-8")
        text = path.read_text(encoding="utf-8")
        if not MARKER.search(text):
            continue
        path.write_text(fill(text, documents), encoding="utf-8")
        print(f"reliability_report: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{len(documents)} scenario(s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
