"""An authentication methods policy document -> the enabled methods, and the weak ones among them."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import lower_all
from checks.probes.registry import Facts


def enabled_methods(document: dict[str, Any], weak: list[str]) -> Facts:
    methods = [
        {"id": str(config.get("id") or ""), "state": str(config.get("state") or "")}
        for config in document.get("authenticationMethodConfigurations") or []
        if isinstance(config, dict)
    ]
    enabled = sorted(m["id"].lower() for m in methods if m["state"].lower() == "enabled")
    weak_set = set(lower_all(weak))
    return {
        "methods": methods,
        "enabled_methods": enabled,
        "enabled_weak_methods": [m for m in enabled if m in weak_set],
    }
