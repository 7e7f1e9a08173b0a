"""Durations as people write them: `90` (seconds), `90s`, `15m`, `6h`, `1d`, `1.5h`.

One grammar for every place that reads one: the agent's and the collector's config, policy intervals (whose
schema further asks for a unit), the cloud section, and the collector's `--expires` options. Callers name
the key or option in their own errors; the message here says what is wrong with the text. Standard library
only: the agent's daemon imports it.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*([0-9]+)(?:\.([0-9]+))?\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
FORMS = "a number of seconds or a number and s, m, h or d, e.g. 6h"


def _parse(text: object) -> int | float:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"invalid duration {text!r}: use {FORMS}")
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"invalid duration {text!r}: use {FORMS}")
    whole, fraction, unit = match.groups()
    if fraction is None:  # exact, however long: a whole number never passes through a float
        return int(whole) * _UNIT_SECONDS[unit]
    value = float(f"{whole}.{fraction}") * _UNIT_SECONDS[unit]
    if not math.isfinite(value):
        raise ValueError(f"invalid duration {text!r}: too long")
    return value


def parse_seconds(text: object) -> float:
    """Seconds, fractions kept (`1.5s` is 1.5)."""
    return float(_parse(text))


def parse_duration(text: object) -> int:
    """Whole seconds (`1.5m` is 90; a fraction of a second is rounded)."""
    value = _parse(text)
    return value if isinstance(value, int) else round(value)
