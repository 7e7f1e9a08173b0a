"""A policy's regular expressions are held to a time budget (checks/regex_budget.py).

`(a|aa)+$` against sixty-four `a`s and a `!` backtracks for longer than any test run: without the budget
each test below hangs until pytest-timeout stops it. With it, the check that carries the pattern is an
`error` that names the pattern and what it ran over, and the policy's other checks still run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from checks.probes.host import ProbeError
from checks.regex_budget import RegexTooSlow, time_limit
from tests.checks.probes.live import probe
from tests.conftest import run_cli

Write = Callable[[str, str], Path]
SLOW = "(a|aa)+$"
LINE = "a" * 64 + "!"
CHECK = """\
  - id: {id}
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {{name: file_content, params: {params}}}
    expect: {expect}
"""


def test_a_backtracking_pattern_is_stopped_and_the_other_checks_still_run(write: Write, tmp_path: Path) -> None:
    target = tmp_path / "target.conf"
    target.write_text(f"{LINE}\nok\n", encoding="utf-8")
    checks = [
        ("slow-expect", f"{{path: {target}}}", f'{{fact: lines, any_item: {{fact: ., matches: "{SLOW}"}}}}'),
        ("slow-probe-pattern", f'{{path: {target}, pattern: "{SLOW}"}}', "{fact: match_count, eq: 0}"),
        ("quick", f'{{path: {target}, pattern: "^ok$"}}', "{fact: match_count, eq: 1}"),
    ]
    body = "".join(CHECK.format(id=i, params=p, expect=e) for i, p, e in checks)
    policy = write("p.yaml", f'id: p\nversion: "1"\ntitle: t\nchecks:\n{body}')

    done = run_cli("rampart-agent", "check", "--policy", str(policy), "--format", "json")

    results = {r["check_id"]: r for r in json.loads(done.stdout)["results"]}
    assert results["quick"]["status"] == "pass"
    expect_error = results["slow-expect"]
    assert expect_error["status"] == "error"
    assert f"the regular expression '{SLOW}' took more than 2 s over" in expect_error["reason"]
    assert "(65 characters) and was stopped" in expect_error["reason"]
    assert "simplify it" in expect_error["reason"]
    probe_error = results["slow-probe-pattern"]
    assert probe_error["status"] == "error"
    assert f"'{SLOW}' took more than 2 s over the lines of {target} and was stopped" in probe_error["reason"]


def test_a_backtracking_command_line_pattern_is_stopped() -> None:
    # A process of ours whose command line ends in the pattern's worst case.
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", LINE], stdin=subprocess.PIPE)
    try:
        with pytest.raises(ProbeError) as raised:
            probe("process", cmdline_pattern=SLOW)
    finally:
        sleeper.communicate(b"")
    assert "took more than 2 s over the command lines of" in raised.value.reason


def test_the_budget_keeps_a_timer_already_armed_and_is_not_set_outside_the_main_thread() -> None:
    armed_before = signal.getitimer(signal.ITIMER_REAL)[0] > 0  # pytest-timeout's, with its "signal" method
    outcomes: list[str] = []

    def in_a_thread() -> None:
        with time_limit(0.01):  # no interval timer here: the block runs, unbounded
            outcomes.append("ran")

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(timeout=30)
    assert outcomes == ["ran"]
    with pytest.raises(RegexTooSlow), time_limit(0.05):
        with time_limit(30):  # nested: the outer budget, due first, stays in force
            subprocess.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=60)
    assert (signal.getitimer(signal.ITIMER_REAL)[0] > 0) == armed_before  # an outer timer is back after
