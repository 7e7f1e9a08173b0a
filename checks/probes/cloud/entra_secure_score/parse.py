"""Secure Score snapshots -> the latest percentage and its change over a period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from checks.probes.host import ProbeError
from checks.probes.registry import Facts


def _percent(snapshot: dict[str, Any]) -> float | None:
    current, maximum = snapshot.get("currentScore"), snapshot.get("maxScore")
    if not isinstance(current, int | float) or not isinstance(maximum, int | float) or maximum <= 0:
        return None
    return round(100.0 * current / maximum, 2)


def _when(snapshot: dict[str, Any]) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(snapshot["createdDateTime"]))
    except ValueError as exc:
        raise ProbeError(f"Secure Score snapshot has an unreadable date {snapshot['createdDateTime']!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def score_trend(snapshots: list[dict[str, Any]], trend_days: int) -> Facts:
    """Facts from daily snapshots in any order: the newest, and the one `trend_days` earlier."""
    dated = sorted(
        (s for s in snapshots if isinstance(s.get("createdDateTime"), str) and _percent(s) is not None),
        key=lambda s: str(s["createdDateTime"]),
        reverse=True,
    )
    if not dated:
        raise ProbeError("the tenant has no Secure Score snapshot yet (Microsoft computes it daily)")
    latest = dated[0]
    percent = _percent(latest)
    assert percent is not None
    earlier = None
    if len(dated) > 1:
        cutoff = _when(latest) - dt.timedelta(days=trend_days)
        # The newest snapshot at least `trend_days` older than the latest, else the oldest there is.
        earlier = next((s for s in dated[1:] if _when(s) <= cutoff), dated[-1])
    previous = _percent(earlier) if earlier else None
    change = None if previous is None else round(percent - previous, 2)
    trend = None if change is None else "up" if change > 0 else "down" if change < 0 else "flat"
    return {
        "current_score": float(latest["currentScore"]),
        "max_score": float(latest["maxScore"]),
        "percent": percent,
        "measured_at": str(latest["createdDateTime"]),
        "previous_percent": previous,
        "previous_measured_at": str(earlier["createdDateTime"]) if earlier else None,
        "change_points": change,
        "trend": trend,
    }
