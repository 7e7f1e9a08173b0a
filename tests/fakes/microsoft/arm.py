"""Azure Resource Manager documents the fake serves: subscriptions and their storage accounts, network
security groups, key vaults, Defender pricings and SQL servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.microsoft.constants import TENANT_ID


@dataclass
class Subscription:
    id: str
    name: str = "Production"
    storage: list[dict[str, Any]] = field(default_factory=list)
    nsgs: list[dict[str, Any]] = field(default_factory=list)
    vaults: list[dict[str, Any]] = field(default_factory=list)
    pricings: list[dict[str, Any]] = field(default_factory=list)
    sql: dict[str, dict[str, str]] = field(default_factory=dict)  # server -> database -> TDE state


def arm_id(subscription: str, provider: str, name: str, group: str = "rg-main") -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"


def storage_account(subscription: str, name: str, **properties: Any) -> dict[str, Any]:
    base = {"supportsHttpsTrafficOnly": True, "allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2"}
    base.update(properties)
    base = {k: v for k, v in base.items() if v is not None}
    return {
        "id": arm_id(subscription, "Microsoft.Storage/storageAccounts", name),
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "location": "uksouth",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "properties": {"provisioningState": "Succeeded", **base},
    }


def nsg_rule(name: str, priority: int, access: str = "Allow", **properties: Any) -> dict[str, Any]:
    rule = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "access": access,
        "priority": priority,
        "direction": "Inbound",
        "sourcePortRanges": [],
        "destinationPortRanges": [],
        "sourceAddressPrefixes": [],
        "destinationAddressPrefixes": [],
    }
    rule.update(properties)
    return {"name": name, "id": f".../securityRules/{name}", "properties": rule}


DEFAULT_NSG_RULES = [
    nsg_rule("AllowVnetInBound", 65000, sourceAddressPrefix="VirtualNetwork", destinationPortRange="*", protocol="*"),
    nsg_rule(
        "AllowAzureLoadBalancerInBound",
        65001,
        sourceAddressPrefix="AzureLoadBalancer",
        destinationPortRange="*",
        protocol="*",
    ),
    nsg_rule("DenyAllInBound", 65500, access="Deny", sourceAddressPrefix="*", destinationPortRange="*", protocol="*"),
]


def nsg(subscription: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": arm_id(subscription, "Microsoft.Network/networkSecurityGroups", name),
        "name": name,
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "uksouth",
        "properties": {"securityRules": rules, "defaultSecurityRules": DEFAULT_NSG_RULES},
    }


def vault(subscription: str, name: str, **properties: Any) -> dict[str, Any]:
    base = {"tenantId": TENANT_ID, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": True}
    base.update(properties)
    return {
        "id": arm_id(subscription, "Microsoft.KeyVault/vaults", name),
        "name": name,
        "type": "Microsoft.KeyVault/vaults",
        "location": "uksouth",
        "properties": {k: v for k, v in base.items() if v is not None},
    }


def pricing(subscription: str, name: str, tier: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings/{name}",
        "name": name,
        "type": "Microsoft.Security/pricings",
        "properties": {"pricingTier": tier, "freeTrialRemainingTime": "PT0S"},
    }
