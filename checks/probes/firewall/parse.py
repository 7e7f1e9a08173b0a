"""firewall's pure parsers: the nftables ruleset and iptables-save (Linux), the ActiveStore's profiles
(Windows), socketfilterfw's answers (macOS)."""

from __future__ import annotations

import json
from typing import Any

from checks.probes.common import json_type
from checks.probes.host import ProbeError
from checks.probes.registry import Facts
from checks.probes.windows import as_list, as_objects


def firewall_facts(
    enabled: bool | None,
    inbound_blocked: bool | None,
    backend: str,
    manager: str | None,
    profiles: list[dict[str, Any]],
    notes: list[str],
) -> Facts:
    return {
        "enabled": enabled,
        "inbound_blocked": inbound_blocked,
        "backend": backend,
        "manager": manager,
        "profiles": profiles,
        "notes": notes,
    }


# --- Linux: nftables -----------------------------------------------------------------------------------

_FAMILY_COVERS = {"ip": ("ipv4",), "ip6": ("ipv6",), "inet": ("ipv4", "ipv6")}
_NEUTRAL_EXPRS = ("counter", "log", "limit")


def _unconditional_verdict(expr: list[Any]) -> str | None:
    """`drop` / `reject` when a rule is nothing but (counter/log and) that verdict."""
    verdict = None
    for statement in expr:
        key = next(iter(statement)) if isinstance(statement, dict) and len(statement) == 1 else None
        if key in _NEUTRAL_EXPRS:
            continue
        if key in ("drop", "reject"):
            verdict = key
            continue
        return None
    return verdict


def _nft_object(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProbeError(f"nft output: a {kind} is not an object but {json_type(value)}")
    return value


def _nft_key(entry: dict[str, Any], chain_field: str) -> tuple[str, str, str]:
    """(family, table, chain name) of a chain (its `name`) or of a rule (its `chain`)."""
    parts = (entry.get("family"), entry.get("table"), entry.get(chain_field))
    if not all(isinstance(part, str) for part in parts):
        raise ProbeError(f"nft output: a chain or rule lacks a text family, table or {chain_field}")
    return (str(parts[0]), str(parts[1]), str(parts[2]))


def parse_nft_ruleset(text: str) -> dict[str, bool]:
    """Address family -> inbound blocked by default, from `nft -j list ruleset`."""
    try:
        data = json.loads(text) if text.strip() else {"nftables": []}
    except json.JSONDecodeError as exc:
        raise ProbeError(f"nft output is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProbeError(f"nft output is not a JSON object but {json_type(data)}")
    items = data.get("nftables") or []
    if not isinstance(items, list):
        raise ProbeError(f"nft output: 'nftables' is not an array but {json_type(items)}")
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[list[Any]]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ProbeError(f"nft output: an entry of 'nftables' is not an object but {json_type(item)}")
        if "chain" in item:
            chain = _nft_object(item["chain"], "chain")
            chains[_nft_key(chain, "name")] = chain
        elif "rule" in item:
            rule = _nft_object(item["rule"], "rule")
            expr = rule.get("expr") or []
            if not isinstance(expr, list):
                raise ProbeError(f"nft output: a rule's 'expr' is not an array but {json_type(expr)}")
            rules.setdefault(_nft_key(rule, "chain"), []).append(expr)
    blocked = {"ipv4": False, "ipv6": False}
    for key, chain in chains.items():
        if chain.get("hook") != "input" or chain.get("type", "filter") != "filter":
            continue
        covers = _FAMILY_COVERS.get(key[0], ())
        chain_rules = rules.get(key, [])
        drops = chain.get("policy") == "drop" or (
            bool(chain_rules) and _unconditional_verdict(chain_rules[-1]) is not None
        )
        for family in covers:
            blocked[family] = blocked[family] or drops
    return blocked


# --- Linux: iptables -----------------------------------------------------------------------------------


def parse_iptables_save(text: str) -> bool:
    """Inbound blocked by default in `iptables-save` output (filter table, INPUT chain)."""
    table = ""
    policy = "ACCEPT"
    last_rule = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(":INPUT "):
            policy = line.split()[1]
        elif table == "filter" and line.startswith("-A INPUT "):
            last_rule = line
    if policy in ("DROP", "REJECT"):
        return True
    # Unconditional: `-A INPUT -j DROP`, or REJECT with only its --reject-with option.
    parts = last_rule.split()
    return (
        len(parts) >= 4
        and parts[2:4] in (["-j", "DROP"], ["-j", "REJECT"])
        and (len(parts) == 4 or (len(parts) == 6 and parts[4] == "--reject-with"))
    )


def linux_facts(blocked: dict[str, bool], ipv6: bool, backend: str, manager: str | None, notes: list[str]) -> Facts:
    profiles = [
        {
            "name": "ipv4",
            "enabled": blocked["ipv4"],
            "default_inbound": "block" if blocked["ipv4"] else "allow",
            "active": True,
        },
        {
            "name": "ipv6",
            "enabled": blocked["ipv6"],
            "default_inbound": "block" if blocked["ipv6"] else "allow",
            "active": ipv6,
        },
    ]
    relevant = [p for p in profiles if p["active"]]
    protected = all(p["enabled"] for p in relevant)
    if not ipv6:
        notes.append("IPv6 is disabled on this host: only IPv4 is judged")
    return firewall_facts(protected, protected, backend, manager, profiles, notes)


# NetSecurity enums when a sample serialised them as numbers.
_GPO_BOOLEAN = {0: "False", 1: "True", 2: "NotConfigured"}
_ACTION = {0: "NotConfigured", 2: "Allow", 4: "Block"}
_CATEGORY_PROFILE = {
    "DomainAuthenticated": "Domain",
    "Private": "Private",
    "Public": "Public",
    "2": "Domain",
    "1": "Private",
    "0": "Public",
}


def parse_windows_firewall(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Get-NetFirewallProfile returned nothing")
    notes = ["read from the ActiveStore (the policy in force, merged from local settings and Group Policy)"]
    active = {_CATEGORY_PROFILE.get(str(c), str(c)) for c in as_list(data.get("ActiveCategories"))}
    service = str(data.get("Service") or "")
    running = service in ("Running", "4")
    if not running:
        notes.append(f"the firewall service (MpsSvc) is {service or 'not reported'}: no profile is enforced")
    profiles = []
    for item in as_objects(data.get("Profiles"), "Get-NetFirewallProfile"):
        enabled_raw = item.get("Enabled")
        inbound_raw = item.get("DefaultInboundAction")
        enabled_text = (
            _GPO_BOOLEAN.get(enabled_raw, str(enabled_raw)) if isinstance(enabled_raw, int) else str(enabled_raw)
        )
        inbound_text = _ACTION.get(inbound_raw, str(inbound_raw)) if isinstance(inbound_raw, int) else str(inbound_raw)
        enabled: bool | None = {"True": True, "False": False}.get(enabled_text)
        if enabled_text == "NotConfigured":
            enabled = True  # Windows' built-in default for every profile
            notes.append(f"{item.get('Name')}: Enabled is NotConfigured, so Windows' default (on) applies")
        # NotConfigured inbound action means Windows' default, Block.
        default_inbound = {"Block": "block", "Allow": "allow", "NotConfigured": "block"}.get(inbound_text)
        profiles.append(
            {
                "name": str(item.get("Name")),
                "enabled": (enabled and running) if enabled is not None else None,
                "default_inbound": default_inbound,
                "active": (str(item.get("Name")) in active) if active else None,
            }
        )
    if not profiles:
        raise ProbeError("Get-NetFirewallProfile listed no profiles")
    values = [p["enabled"] for p in profiles]
    enabled_all = None if None in values else all(values)
    blocks = [p["default_inbound"] for p in profiles]
    inbound_blocked = (
        None if None in blocks or enabled_all is None else enabled_all and all(b == "block" for b in blocks)
    )
    return firewall_facts(enabled_all, inbound_blocked, "windows_firewall", None, profiles, notes)


def parse_socketfilterfw(global_state: str, stealth: str) -> Facts:
    """`socketfilterfw --getglobalstate` (State = 0 off, 1 on, 2 block all) and `--getstealthmode`."""
    text = global_state.strip()
    lower = text.lower()
    if "state = 2" in lower or "block all" in lower:
        enabled, inbound, mode = True, "block", "block all incoming connections"
    elif "state = 1" in lower or "firewall is enabled" in lower:
        enabled, inbound, mode = True, "per_application", "on"
    elif "state = 0" in lower or "firewall is disabled" in lower:
        enabled, inbound, mode = False, "allow", "off"
    else:
        raise ProbeError(f"unrecognised socketfilterfw output: {text[:200]!r}")
    notes = [f"application firewall: {mode}"]
    stealth_lower = stealth.lower()
    if "stealth mode enabled" in stealth_lower or "stealth mode is on" in stealth_lower:
        notes.append("stealth mode is on")
    elif stealth_lower.strip():
        notes.append("stealth mode is off")
    profile = {"name": "application", "enabled": enabled, "default_inbound": inbound, "active": True}
    # The application firewall admits signed and allowed applications: on is the platform's default-deny.
    return firewall_facts(enabled, enabled, "application_firewall", None, [profile], notes)
