"""The waiting schedule: exponential with jitter up to a cap, and Retry-After read as the collector meant it."""

from __future__ import annotations

import ast
import email.utils
import random
import subprocess
import sys

from checks.backoff import Backoff, parse_retry_after


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff(initial_s=2, cap_s=60, rng=random.Random(1))
    assert [backoff.ceiling(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    for attempt in range(12):
        ceiling = backoff.ceiling(attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really random, so a fleet spreads out
    assert backoff.ceiling(10_000) == 60  # no overflow after a very long outage


def test_two_agents_do_not_retry_in_lock_step() -> None:
    a, b = Backoff(2, 900, rng=random.Random(1)), Backoff(2, 900, rng=random.Random(2))
    assert [round(a.delay(n), 3) for n in range(5)] != [round(b.delay(n), 3) for n in range(5)]


def test_retry_after_in_seconds_and_as_a_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("120", now, 3600) == 120
    assert parse_retry_after(" 0 ", now, 3600) == 0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(date, now, 3600) == 90
    assert parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now, 3600) == 0  # already past


def test_retry_after_is_capped_and_nonsense_is_ignored() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("86400", now, 3600) == 3600
    for nonsense in (None, "", "soon", "-5", "1.5e3", "Mon, 99 Foo 2020"):
        assert parse_retry_after(nonsense, now, 3600) is None


def test_one_backoff_for_the_agent_and_the_cloud_client_with_standard_library_imports_only() -> None:
    """The agent's daemon imports this module: it must not bring the collector's libraries with it, and the
    cloud client must wait by the same schedule rather than a copy of it."""
    code = (
        "import sys; before = set(sys.modules); import checks.backoff, agent.transport, collector.cloud.client; "
        "import checks.backoff as b; from collector.cloud.client import MicrosoftCloud, parse_retry_after; "
        "assert parse_retry_after is b.parse_retry_after; "
        "import inspect; source = inspect.getsource(sys.modules['collector.cloud.client']); "
        "print('email.utils' in source, 'random' in source)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    lean = subprocess.run(
        [sys.executable, "-c", "import sys, checks.backoff; print(sorted(m.split('.')[0] for m in sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not {"requests", "urllib3", "cryptography", "yaml", "sqlalchemy"} & set(ast.literal_eval(lean.stdout))


def test_a_unicode_digit_in_retry_after_is_unreadable_not_a_crash() -> None:
    # '²'.isdigit() is True but int() refuses it: the header is unreadable, the caller's own backoff applies.
    assert parse_retry_after("²", 0.0, 60.0) is None
