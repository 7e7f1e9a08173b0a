"""Running a probe on this machine the way a check does (parameters checked, defaults applied)."""

from __future__ import annotations

from typing import Any

from checks.policy.evaluate import collect
from checks.policy.model import ProbeRef
from checks.probes.local import LocalHost

HOST = LocalHost()


def probe(probe_name: str, /, **params: Any) -> Any:
    return collect(HOST, ProbeRef(probe_name, params))
