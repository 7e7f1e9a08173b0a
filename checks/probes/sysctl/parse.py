"""A kernel parameter's raw value as facts."""

from __future__ import annotations

import re

from checks.probes.registry import Facts


def sysctl_facts(raw: str | None) -> Facts:
    if raw is None:
        return {"exists": False, "value": None, "int_value": None}
    value = " ".join(raw.split())
    int_value = int(value) if re.fullmatch(r"-?[0-9]+", value) else None
    return {"exists": True, "value": value, "int_value": int_value}
