"""Reading key vaults through Resource Manager, one subscription at a time."""

from __future__ import annotations

from collections.abc import Iterator

from checks.probes.cloud.azure_key_vaults.parse import key_vault_facts
from checks.probes.cloud.common import arm_items, resource_facts
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

KEYVAULT_API = "2023-07-01"


def list_vaults(spec: ProbeSpec, context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/vaults"
    for vault in arm_items(context, path, KEYVAULT_API):
        yield resource_facts(vault, key_vault_facts(vault))
