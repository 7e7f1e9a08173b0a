"""Reading a subscription's Defender for Cloud pricings through Resource Manager."""

from __future__ import annotations

from collections.abc import Iterator

from checks.probes.cloud.azure_defender_plans.parse import defender_facts
from checks.probes.cloud.common import arm_items
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

SECURITY_API = "2024-01-01"


def read_plans(spec: ProbeSpec, context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings"
    pricings = list(arm_items(context, path, SECURITY_API))
    facts = defender_facts(pricings, [str(p) for p in params["required_plans"]])
    yield ResourceFacts(f"/subscriptions/{subscription}", f"subscription {subscription}", facts)
