"""`timedatectl show` (systemd 239 and later): one `Property=value` line per property, values `yes`/`no`."""

from __future__ import annotations

from checks.probes.host import ProbeError
from checks.probes.registry import Facts


def _yes_no(properties: dict[str, str], name: str) -> bool | None:
    value = properties.get(name)
    return None if value is None else value == "yes"


def parse_timedatectl_show(text: str) -> Facts:
    properties: dict[str, str] = {}
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals and name.strip():
            properties[name.strip()] = value.strip()
    if "NTPSynchronized" not in properties and "NTP" not in properties:
        raise ProbeError("timedatectl show printed neither NTP nor NTPSynchronized: not systemd's timedatectl?")
    return {
        "synchronized": _yes_no(properties, "NTPSynchronized"),
        "ntp_enabled": _yes_no(properties, "NTP"),
        "can_ntp": _yes_no(properties, "CanNTP"),
        "timezone": properties.get("Timezone") or None,
        "rtc_in_local_time": _yes_no(properties, "LocalRTC"),
    }
