"""A storage account document -> its facts."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import properties_of
from checks.probes.registry import Facts

TLS_ORDER = {"tls1_0": 0, "tls1_1": 1, "tls1_2": 2, "tls1_3": 3}


def storage_facts(account: dict[str, Any]) -> Facts:
    properties = properties_of(account)
    # The API documents an absent minimumTlsVersion as TLS 1.0.
    tls = str(properties.get("minimumTlsVersion") or "TLS1_0")
    optional_bools = {
        "https_only": properties.get("supportsHttpsTrafficOnly"),
        "allow_blob_public_access": properties.get("allowBlobPublicAccess"),
        "allow_shared_key_access": properties.get("allowSharedKeyAccess"),
    }
    return {
        **{key: value if isinstance(value, bool) else None for key, value in optional_bools.items()},
        "minimum_tls_version": tls,
        "tls_1_2_or_newer": TLS_ORDER.get(tls.lower(), -1) >= TLS_ORDER["tls1_2"],
        "public_network_access": properties.get("publicNetworkAccess"),
        "location": str(account.get("location") or ""),
    }
