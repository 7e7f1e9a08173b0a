"""antivirus on Linux: Microsoft Defender for Endpoint, or ClamAV's daemons and daily database."""

from __future__ import annotations

import time

from checks.probes.antivirus.parse import (
    CLAMAV_DATABASES,
    CLAMAV_DIR,
    antivirus_facts,
    clamav_facts,
    parse_mdatp_health,
)
from checks.probes.common import raise_for_failure
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_antivirus_linux(host: Host, params: Params) -> Facts:
    if host.which("mdatp"):
        result = host.run(["mdatp", "health"], timeout=60)
        raise_for_failure(result, "mdatp health")
        return parse_mdatp_health(result.stdout)
    if not (host.which("clamd") or host.which("clamscan") or host.which("freshclam")):
        return antivirus_facts(
            notes=["no anti-malware product found (looked for Microsoft Defender for Endpoint and ClamAV)"]
        )
    # Process names, not systemd units: the same answer in containers and on hosts without systemd.
    names = {str(p.get("name")) for p in host.processes()}
    mtimes = [info.mtime for name in CLAMAV_DATABASES if (info := host.stat(f"{CLAMAV_DIR}/{name}")) is not None]
    return clamav_facts(names, mtimes, time.time())
