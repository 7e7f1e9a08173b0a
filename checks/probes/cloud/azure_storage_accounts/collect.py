"""Reading storage accounts through Resource Manager, one subscription at a time."""

from __future__ import annotations

from collections.abc import Iterator

from checks.probes.cloud.azure_storage_accounts.parse import storage_facts
from checks.probes.cloud.common import arm_items, resource_facts
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

STORAGE_API = "2024-01-01"


def list_accounts(spec: ProbeSpec, context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Storage/storageAccounts"
    for account in arm_items(context, path, STORAGE_API):
        yield resource_facts(account, storage_facts(account))
