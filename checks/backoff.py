"""Waiting between attempts: exponential backoff with jitter, and a service's Retry-After.

One piece for the agent (towards the collector) and the collector's cloud client (towards Graph and
Resource Manager). Pure functions over an injected random source and clock, so the schedule is tested
exactly. The agent's daemon imports this module, so it uses the standard library only.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before retry number `attempt` (0-based): min(cap, initial * 2**attempt), of which the upper
    half is random ("equal jitter"): never zero, so a fleet does not retry in lock step, and never more
    than the cap."""

    initial_s: float
    cap_s: float
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        # 2**attempt grows without bound: stop doubling once the cap is reached.
        return min(self.cap_s, self.initial_s * float(2 ** min(attempt, 60)))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: float, limit_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), at most `limit_s`.

    None when the header is absent or unreadable: the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # not "²", which int() refuses
        seconds = float(int(text))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, min(seconds, limit_s))
