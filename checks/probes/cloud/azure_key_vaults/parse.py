"""A key vault document -> its recovery facts."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import properties_of
from checks.probes.registry import Facts


def key_vault_facts(vault: dict[str, Any]) -> Facts:
    properties = properties_of(vault)
    soft_delete = properties.get("enableSoftDelete")
    return {
        "soft_delete": soft_delete if isinstance(soft_delete, bool) else None,
        # Resource Manager leaves the flag out until purge protection is turned on (it cannot be turned off).
        "purge_protection": properties.get("enablePurgeProtection") is True,
        "rbac_authorization": properties.get("enableRbacAuthorization") is True,
    }
