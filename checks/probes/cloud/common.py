"""Helpers shared by the cloud probes: registering a collector that turns 403s into what to grant, and
walking Azure subscriptions so that one unreadable subscription does not hide the others."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from checks.probes.cloud.context import CloudContext, CloudError, LicenceMissing, PermissionMissing, RequestFailed
from checks.probes.host import ProbeError
from checks.probes.registry import Facts, Params, ProbeSpec, ResourceFacts

CloudCollector = Callable[[CloudContext, Params], Any]
# Lists one subscription's resources; the spec names what to grant in a per-resource error.
ResourceLister = Callable[[ProbeSpec, CloudContext, str, Params], Iterator[ResourceFacts]]

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


# --- Azure Resource Manager ------------------------------------------------------------------------------

# What every Azure probe needs granted.
READER = ("the Reader role on each subscription (Azure RBAC)",)


def properties_of(resource: dict[str, Any]) -> dict[str, Any]:
    properties = resource.get("properties")
    return properties if isinstance(properties, dict) else {}


def resource_facts(item: dict[str, Any], facts: Facts) -> ResourceFacts:
    return ResourceFacts(str(item.get("id") or ""), str(item.get("name") or ""), facts)


def arm_items(context: CloudContext, path: str, api_version: str) -> Iterator[dict[str, Any]]:
    for page in context.arm_pages(path, api_version):
        yield from page


def per_subscription(spec: ProbeSpec, context: CloudContext, params: Params, lister: ResourceLister) -> list[Any]:
    """Run `lister` for every subscription; an unreadable subscription becomes one error resource."""
    results: list[ResourceFacts] = []
    for subscription in context.subscriptions():
        try:
            results.extend(lister(spec, context, subscription, params))
        except RequestFailed as exc:
            # A resource provider never registered on the subscription means none of its resources exist.
            if exc.code == "MissingSubscriptionRegistration":
                continue
            results.append(subscription_error(spec, subscription, exc))
        except CloudError as exc:
            results.append(subscription_error(spec, subscription, exc))
    return results


def azure_collector(spec: ProbeSpec, lister: ResourceLister) -> None:
    """Register `lister`, run over every subscription, as the probe's Azure collector."""

    def collect(context: CloudContext, params: Params) -> list[Any]:
        return per_subscription(spec, context, params, lister)

    collect.__wrapped__ = lister  # type: ignore[attr-defined]  # where the probe's own code is (layout test)
    cloud_collector(spec, "azure")(collect)
