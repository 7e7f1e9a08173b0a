"""Helpers shared by the cloud probes: registering a collector that turns 403s into what to grant."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from checks.probes.cloud.context import CloudContext, CloudError, LicenceMissing, PermissionMissing
from checks.probes.host import ProbeError
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

CloudCollector = Callable[[CloudContext, Params], Any]

PREMIUM_LICENCE = "a Microsoft Entra ID P1 or P2 licence in the tenant"


def grant_hint(spec: ProbeSpec) -> str:
    return f"grant the app registration {' and '.join(spec.permissions)} (see docs/cloud.md)"


def explain(spec: ProbeSpec, exc: CloudError) -> str:
    """The reason of an error result: what failed and, for a 403, what to grant or license."""
    if isinstance(exc, LicenceMissing):
        return f"{exc.reason}; this needs {PREMIUM_LICENCE}"
    if isinstance(exc, PermissionMissing):
        return f"{exc.reason}; {grant_hint(spec)}"
    return exc.reason


def cloud_collector(spec: ProbeSpec, platform: str) -> Callable[[CloudCollector], CloudCollector]:
    """Register a collector for a cloud platform; a permission or licence error names what is missing."""

    def register(function: CloudCollector) -> CloudCollector:
        @functools.wraps(function)
        def run(context: CloudContext, params: Params) -> Any:
            try:
                return function(context, params)
            except CloudError as exc:
                raise ProbeError(explain(spec, exc)) from exc

        spec.collector(platform)(run)
        return function

    return register


def graph_items(context: CloudContext, path: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    for page in context.graph_pages(path, params):
        yield from page


def subscription_error(spec: ProbeSpec, subscription: str, exc: CloudError) -> ResourceFacts:
    """An unreadable subscription becomes an error result of its own; the others are still judged."""
    return ResourceFacts(
        f"/subscriptions/{subscription}", f"subscription {subscription}", {}, explain(spec, exc), listing_failed=True
    )


def lower_all(values: Any) -> list[str]:
    """A list of strings, lower-cased; a single string or null is tolerated."""
    if values is None:
        return []
    if isinstance(values, str):
        return [values.lower()]
    return [str(v).lower() for v in values]
