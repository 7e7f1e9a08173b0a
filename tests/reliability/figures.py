"""What each reliability, fuzz, security and soak scenario measured, written as JSON for the report.

A test asks for the `figures` fixture and records what it counted as it goes:

    def test_something(figures: Figures) -> None:
        figures.set(reports_sent=120, faults_injected=3)
        figures.add("inputs_tried", 1)

At teardown the figures are written, with the test's outcome, to
`$RAMPART_RELIABILITY_DIR/<suite>/<scenario>.json` (default `build/reliability/`), one file per scenario,
replaced by each run. `scripts/reliability_report.py` turns the files into the tables of docs/reliability.md
(and of any file with the marker comments), so the figures in the docs are the suites' own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITES = ("reliability", "fuzz", "security")


def results_dir() -> Path:
    return Path(os.environ.get("RAMPART_RELIABILITY_DIR") or ROOT / "build" / "reliability")


class Figures:
    """Counts and measurements of one scenario; JSON-serialisable values only."""

    def __init__(self, suite: str, scenario: str, title: str) -> None:
        self.suite = suite
        self.scenario = scenario
        self.title = title
        self.values: dict[str, Any] = {}
        self.started = time.monotonic()

    def set(self, **values: Any) -> None:
        self.values.update(values)

    def add(self, name: str, amount: int | float = 1) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    def merge(self, prefix: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            self.values[f"{prefix}{name}"] = value

    def write(self, outcome: str) -> Path:
        directory = results_dir() / self.suite
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.scenario}.json"
        document = {
            "suite": self.suite,
            "scenario": self.scenario,
            "title": self.title,
            "outcome": outcome,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 1),
            "figures": self.values,
        }
        path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        return path


def _suite_of(item: pytest.Item) -> str:
    parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
    if parts and parts[0] == "reliability" and "soak" in item.name:
        return "soak"
    return parts[0] if parts and parts[0] in SUITES else "other"


def _scenario_of(item: pytest.Item) -> str:
    name = item.name.removeprefix("test_")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120]


def _title_of(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    doc = (getattr(function, "__doc__", None) or "").strip()
    title = " ".join(doc.split("\n\n")[0].split()) if doc else item.name.removeprefix("test_").replace("_", " ")
    callspec = getattr(item, "callspec", None)
    return f"{title} [{callspec.id}]" if callspec is not None else title


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.stash[_OUTCOME] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    return report


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    item = request.node
    recorded = Figures(_suite_of(item), _scenario_of(item), _title_of(item))
    yield recorded
    recorded.write(item.stash.get(_OUTCOME, "error"))
