"""A bound on the time a policy's regular expressions may take: a pushed policy must not be able to pin an
agent's CPU with a pattern that backtracks exponentially (`(a|aa)+$` against a line of sixty `a`s and a
`!` takes longer than the age of the universe).

Python's `re` engine checks for signals while it backtracks, so an interval timer (SIGALRM) stops a
search that has run past its budget; the `regex` package's own timeout was measured here to fire 6.5 s
late on a 1 s budget, and a static "nested quantifier" rule refuses common safe patterns such as
`(\\d+\\.)+\\d+`. Signals reach only the main thread of a process on a POSIX system: the agent's worker and
`rampart-agent check` evaluate there. Elsewhere (a collector's job thread running cloud checks, whose
policies only the collector's administrators write; Windows, which has no interval timer) the search runs
unbounded, and the agent's per-run timeout still stops the worker.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

BUDGET_S = 2.0


class RegexTooSlow(Exception):
    """A regular expression ran past its budget and was stopped."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"stopped after {seconds:g} s")
        self.seconds = seconds
        self.reason = reason  # set where the pattern and what it ran over are known (too_slow_reason)


def _can_interrupt() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float = BUDGET_S) -> Iterator[None]:
    """Raise RegexTooSlow in the block once `seconds` have passed (see the module's note on where).

    An interval timer already armed (a test runner's timeout, an outer budget) is kept: when it would fire
    first it is left alone; otherwise it is suspended for the block and re-armed after with what it had
    left, its own handler back in place.
    """
    if not _can_interrupt():
        yield
        return
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise RegexTooSlow(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


def too_slow_reason(pattern: str, over: str, error: RegexTooSlow) -> str:
    """The words of the error result: what was stopped, over what, and what to do."""
    return (
        f"the regular expression {pattern!r} took more than {error.seconds:g} s over {over} and was stopped: "
        "it backtracks too much (a repetition inside a repetition, or alternatives that match the same text); "
        "simplify it"
    )
