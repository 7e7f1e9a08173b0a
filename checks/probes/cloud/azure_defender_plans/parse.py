"""A subscription's pricings -> its plans, and the required ones not on the Standard tier."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import lower_all, properties_of
from checks.probes.registry import Facts


def defender_facts(pricings: list[dict[str, Any]], required: list[str]) -> Facts:
    plans = [
        {"name": str(p.get("name") or ""), "tier": str(properties_of(p).get("pricingTier") or "")} for p in pricings
    ]
    standard = sorted(p["name"] for p in plans if p["tier"].lower() == "standard")
    standard_lower = set(lower_all(standard))
    return {
        "plans": plans,
        "standard_plans": standard,
        "missing_plans": [name for name in required if name.lower() not in standard_lower],
    }
