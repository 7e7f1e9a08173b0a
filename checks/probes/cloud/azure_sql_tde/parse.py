"""A database's transparent data encryption document -> its facts."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import properties_of
from checks.probes.registry import Facts


def tde_facts(tde: dict[str, Any], server: dict[str, Any]) -> Facts:
    state = properties_of(tde).get("state")
    return {
        "state": str(state) if state is not None else None,
        "encrypted": str(state or "").lower() == "enabled",
        "server": str(server.get("name") or ""),
    }
