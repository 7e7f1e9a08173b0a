"""A network security group document -> the listed ports its inbound rules open to the internet."""

from __future__ import annotations

import ipaddress
from typing import Any

from checks.probes.cloud.common import properties_of
from checks.probes.registry import Facts

INTERNET_SOURCES = {"*", "internet", "any", "0.0.0.0/0", "::/0"}


def _both(properties: dict[str, Any], singular: str, plural: str) -> list[str]:
    """A rule keeps one value in the singular field or several in the plural one; read both."""
    values = [str(v).strip() for v in properties.get(plural) or [] if str(v).strip()]
    single = properties.get(singular)
    if single not in (None, ""):
        values.append(str(single).strip())
    return values


def is_internet(prefix: str) -> bool:
    if prefix.lower() in INTERNET_SOURCES:
        return True
    try:
        return ipaddress.ip_network(prefix, strict=False).prefixlen == 0
    except ValueError:
        return False  # a service tag other than Internet, or a named prefix


def port_covered(spec: str, port: int) -> bool:
    """`*`, a single port `22`, or a range `3380-3390`."""
    spec = spec.strip()
    if spec in ("*", "any", "Any"):
        return True
    low, sep, high = spec.partition("-")
    try:
        if sep:
            return int(low) <= port <= int(high)
        return int(spec) == port
    except ValueError:
        return False


def open_ports(nsg: dict[str, Any], ports: list[int]) -> Facts:
    """For each port, the first inbound rule (by priority) that matches internet TCP traffic decides."""
    properties = properties_of(nsg)
    rules = []
    for rule in list(properties.get("securityRules") or []) + list(properties.get("defaultSecurityRules") or []):
        rule_properties = properties_of(rule)
        if str(rule_properties.get("direction") or "").lower() != "inbound":
            continue
        rules.append((rule, rule_properties))
    rules.sort(key=lambda pair: int(pair[1].get("priority") or 65535))
    open_list, open_rules = [], []
    for port in ports:
        for rule, rp in rules:
            if str(rp.get("protocol") or "*").lower() not in ("*", "tcp"):
                continue
            sources = _both(rp, "sourceAddressPrefix", "sourceAddressPrefixes")
            port_specs = _both(rp, "destinationPortRange", "destinationPortRanges")
            if not any(is_internet(s) for s in sources) or not any(port_covered(p, port) for p in port_specs):
                continue
            if str(rp.get("access") or "").lower() == "allow":
                open_list.append(port)
                open_rules.append(
                    {
                        "rule": str(rule.get("name") or ""),
                        "priority": int(rp.get("priority") or 0),
                        "port": port,
                        "ports": port_specs,
                        "sources": sources,
                        "protocol": str(rp.get("protocol") or "*"),
                    }
                )
            break  # the first matching rule decides, allow or deny
    return {"open_ports": open_list, "open_rules": open_rules, "inbound_rules": len(rules)}
