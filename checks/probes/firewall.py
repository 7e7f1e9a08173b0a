"""Host firewall: the state in force, not the configured intent.

Linux: the kernel's ruleset (nftables, or iptables), whatever manages it (ufw, firewalld). Inbound is
blocked by default for an address family when an input-hook base chain drops by policy or ends in an
unconditional drop/reject. Windows: each profile from the ActiveStore (the merged, effective policy, not
one GPO) and the firewall service. macOS: the application firewall's global state.
"""

from __future__ import annotations

import json
from typing import Any

from checks.probes.common import json_type, raise_for_failure, read_optional
from checks.probes.host import AccessDenied, Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import as_list, as_objects, powershell_json

FIREWALL = register(
    ProbeSpec(
        name="firewall",
        description="The host firewall as enforced: Linux nftables/iptables ruleset (ufw, firewalld), Windows "
        "profiles from the ActiveStore, macOS application firewall",
        facts=(
            Field("enabled", "boolean", "Inbound traffic is filtered on every profile / address family", nullable=True),
            Field(
                "inbound_blocked",
                "boolean",
                "Unsolicited inbound traffic is blocked unless a rule allows it, everywhere",
                nullable=True,
            ),
            Field("backend", "string", "nftables, iptables, windows_firewall, application_firewall or none"),
            Field(
                "manager", "string", "What manages the rules: ufw, firewalld, group_policy, ... or none", nullable=True
            ),
            Field(
                "profiles",
                "array",
                "Per profile (Windows: Domain/Private/Public) or address family (Linux: ipv4/ipv6)",
                fields=(
                    Field("name", "string", "Profile or address family"),
                    Field("enabled", "boolean", "Filtering is on", nullable=True),
                    Field("default_inbound", "string", "block, allow or per_application", nullable=True),
                    Field("active", "boolean", "A network currently uses this profile", nullable=True),
                ),
            ),
            Field("notes", "array", "How the state was read; caveats", items="string"),
        ),
        example="""\
- id: host-firewall-on
  title: The host firewall blocks unsolicited inbound traffic
  description: Reads the firewall state in force.
  rationale: A host firewall limits what an attacker on the same network can reach.
  remediation: Enable the firewall on every profile with a default-deny inbound policy.
  severity: high
  probe: firewall
  expect: {fact: enabled, eq: true}
""",
    )
)


def _facts(
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


def _ipv6_enabled(host: Host) -> bool:
    disabled = (read_optional(host, "/proc/sys/net/ipv6/conf/all/disable_ipv6") or "").strip()
    return host.stat("/proc/net/if_inet6") is not None and disabled != "1"


def _linux_manager(host: Host) -> str | None:
    for process in host.processes():
        cmdline = process.get("cmdline")
        words = [str(w) for w in cmdline] if isinstance(cmdline, list) else []
        if process.get("name") == "firewalld" or any(w.endswith("/firewalld") for w in words[:2]):
            return "firewalld"
    ufw_conf = read_optional(host, "/etc/ufw/ufw.conf") if host.stat("/etc/ufw/ufw.conf") else None
    if ufw_conf and any(line.strip().upper() == "ENABLED=YES" for line in ufw_conf.splitlines()):
        return "ufw"
    return None


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
    return _facts(protected, protected, backend, manager, profiles, notes)


@FIREWALL.collector("linux")
def collect_firewall_linux(host: Host, params: Params) -> Facts:
    notes: list[str] = []
    manager = _linux_manager(host)
    ipv6 = _ipv6_enabled(host)
    if host.which("nft"):
        result = host.run(["nft", "-j", "list", "ruleset"], timeout=30)
        raise_for_failure(result, "reading the nftables ruleset (nft list ruleset)")
        blocked = parse_nft_ruleset(result.stdout)
        legacy = read_optional(host, "/proc/net/ip_tables_names") if host.stat("/proc/net/ip_tables_names") else ""
        if legacy and legacy.strip() and host.which("iptables-legacy-save"):
            saved = host.run(["iptables-legacy-save"], timeout=30)
            raise_for_failure(saved, "iptables-legacy-save")
            blocked["ipv4"] = blocked["ipv4"] or parse_iptables_save(saved.stdout)
            notes.append("legacy iptables tables are loaded beside nftables; both were read")
        notes.append("read from the kernel with `nft -j list ruleset`")
        return linux_facts(blocked, ipv6, "nftables", manager, notes)
    if host.which("iptables-save"):
        v4 = host.run(["iptables-save"], timeout=30)
        raise_for_failure(v4, "iptables-save")
        blocked = {"ipv4": parse_iptables_save(v4.stdout), "ipv6": False}
        if host.which("ip6tables-save"):
            v6 = host.run(["ip6tables-save"], timeout=30)
            raise_for_failure(v6, "ip6tables-save")
            blocked["ipv6"] = parse_iptables_save(v6.stdout)
        notes.append("read from the kernel with iptables-save")
        return linux_facts(blocked, ipv6, "iptables", manager, notes)
    # No userland tool can load or show a packet filter. Legacy tables would still be listed by the kernel.
    try:
        legacy = read_optional(host, "/proc/net/ip_tables_names")
    except AccessDenied:
        legacy = None
        notes.append("/proc/net/ip_tables_names is unreadable without root")
    if legacy and legacy.strip():
        raise ProbeError("legacy iptables tables are loaded but iptables-save is not installed to read them")
    notes.append("no firewall is installed: neither nft nor iptables exists on this host")
    return _facts(False, False, "none", manager, [], notes)


# --- Windows -------------------------------------------------------------------------------------------

WINDOWS_FIREWALL_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$profiles = @(Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,
  @{n='Enabled';e={[string]$_.Enabled}}, @{n='DefaultInboundAction';e={[string]$_.DefaultInboundAction}})
$categories = @(Get-NetConnectionProfile -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.NetworkCategory })
[pscustomobject]@{
  Profiles = $profiles
  ActiveCategories = $categories
  Service = [string](Get-Service -Name MpsSvc).Status
} | ConvertTo-Json -Depth 3 -Compress
"""

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
    return _facts(enabled_all, inbound_blocked, "windows_firewall", None, profiles, notes)


@FIREWALL.collector("windows")
def collect_firewall_windows(host: Host, params: Params) -> Facts:
    return parse_windows_firewall(powershell_json(host, WINDOWS_FIREWALL_SCRIPT))


# --- macOS ---------------------------------------------------------------------------------------------

SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"


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
    return _facts(enabled, enabled, "application_firewall", None, [profile], notes)


@FIREWALL.collector("darwin")
def collect_firewall_darwin(host: Host, params: Params) -> Facts:
    state = host.run([SOCKETFILTERFW, "--getglobalstate"], timeout=30)
    raise_for_failure(state, "socketfilterfw --getglobalstate")
    stealth = host.run([SOCKETFILTERFW, "--getstealthmode"], timeout=30)
    return parse_socketfilterfw(state.stdout, stealth.stdout if stealth.ok else "")
