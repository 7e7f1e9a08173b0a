"""Host facts the agent sends at enrolment and check-in: the collector's inventory and its stale flag."""

from __future__ import annotations

import platform
import socket
from typing import Any

from checks import __version__
from checks.policy.evaluate import collect
from checks.policy.model import ProbeRef
from checks.probes.host import Host, ProbeError
from checks.probes.local import LocalHost


def host_facts(host: Host | None = None) -> dict[str, Any]:
    """hostname, os, os_version, ..., agent_version. What the os probe cannot read is left empty, not guessed."""
    host = host or LocalHost()
    try:
        os_facts: dict[str, Any] = collect(host, ProbeRef("os"))
    except ProbeError:
        os_facts = {}
    return {
        "hostname": str(os_facts.get("hostname") or socket.gethostname()),
        "platform": host.platform,
        "os": str(os_facts.get("name") or platform.system()),
        "os_id": str(os_facts.get("id") or ""),
        "os_version": str(os_facts.get("version") or ""),
        "os_build": str(os_facts.get("build") or ""),
        "kernel": str(os_facts.get("kernel") or platform.release()),
        "arch": str(os_facts.get("arch") or platform.machine()),
        "agent_version": __version__,
        "python_version": platform.python_version(),
    }
