"""Reading network security groups through Resource Manager, one subscription at a time."""

from __future__ import annotations

from collections.abc import Iterator

from checks.probes.cloud.azure_nsg_open_ports.parse import open_ports
from checks.probes.cloud.common import arm_items, resource_facts
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

NETWORK_API = "2023-09-01"


def list_nsgs(spec: ProbeSpec, context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Network/networkSecurityGroups"
    ports = [int(p) for p in params["ports"]]
    for nsg in arm_items(context, path, NETWORK_API):
        yield resource_facts(nsg, open_ports(nsg, ports))
