"""Azure resource configuration, read through Resource Manager with the Reader role.

Resource-scoped probes: each returns one `ResourceFacts` per resource (storage account, network security
group, key vault, SQL database) or per subscription (Defender plans), and the evaluator makes one result
each. A subscription that cannot be read becomes an `error` result of its own, naming the role to grant,
while the others are still judged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from checks.probes.cloud.common import cloud_collector, explain, lower_all, subscription_error
from checks.probes.cloud.context import CloudContext, CloudError, RequestFailed
from checks.probes.registry import Facts, Field, Params, ProbeSpec, ResourceFacts, register

READER = ("the Reader role on each subscription (Azure RBAC)",)
STORAGE_API = "2024-01-01"
NETWORK_API = "2023-09-01"
KEYVAULT_API = "2023-07-01"
SECURITY_API = "2024-01-01"
SQL_API = "2021-11-01"

ResourceLister = Callable[[CloudContext, str, Params], Iterator[ResourceFacts]]


def _properties(resource: dict[str, Any]) -> dict[str, Any]:
    properties = resource.get("properties")
    return properties if isinstance(properties, dict) else {}


def _resource(item: dict[str, Any], facts: Facts) -> ResourceFacts:
    return ResourceFacts(str(item.get("id") or ""), str(item.get("name") or ""), facts)


def per_subscription(spec: ProbeSpec, context: CloudContext, params: Params, lister: ResourceLister) -> list[Any]:
    """Run `lister` for every subscription; an unreadable subscription becomes one error resource."""
    results: list[ResourceFacts] = []
    for subscription in context.subscriptions():
        try:
            results.extend(lister(context, subscription, params))
        except RequestFailed as exc:
            # A resource provider never registered on the subscription means none of its resources exist.
            if exc.code == "MissingSubscriptionRegistration":
                continue
            results.append(subscription_error(spec, subscription, exc))
        except CloudError as exc:
            results.append(subscription_error(spec, subscription, exc))
    return results


def _items(context: CloudContext, path: str, api_version: str) -> Iterator[dict[str, Any]]:
    for page in context.arm_pages(path, api_version):
        yield from page


# --- storage accounts ------------------------------------------------------------------------------------

STORAGE = register(
    ProbeSpec(
        name="azure_storage_accounts",
        description="Storage account transport and access settings: HTTPS only, anonymous blob access, "
        "minimum TLS version, shared key access, public network access",
        scope="resource",
        permissions=READER,
        facts=(
            Field("https_only", "boolean", "supportsHttpsTrafficOnly", nullable=True),
            Field("allow_blob_public_access", "boolean", "Anonymous blob access may be allowed", nullable=True),
            Field("minimum_tls_version", "string", "TLS1_0, TLS1_1, TLS1_2 or TLS1_3 (absent means TLS1_0)"),
            Field("tls_1_2_or_newer", "boolean", "The minimum TLS version is 1.2 or newer"),
            Field("allow_shared_key_access", "boolean", "Account keys may be used", nullable=True),
            Field("public_network_access", "string", "Enabled, Disabled or SecuredByPerimeter", nullable=True),
            Field("location", "string", "Azure region"),
        ),
        example="""\
- id: storage-secure-transfer
  title: Storage accounts accept HTTPS only, with TLS 1.2 or newer, and no anonymous blob access
  description: Reads each storage account's properties.
  rationale: Plain HTTP and old TLS expose data in transit; anonymous blob access exposes it to anyone.
  remediation: Enable secure transfer, set the minimum TLS version to 1.2, disallow blob anonymous access.
  severity: high
  platforms: [azure]
  probe: azure_storage_accounts
  expect:
    all:
      - {fact: https_only, eq: true}
      - {fact: tls_1_2_or_newer, eq: true}
      - {fact: allow_blob_public_access, eq: false}
""",
    )
)

TLS_ORDER = {"tls1_0": 0, "tls1_1": 1, "tls1_2": 2, "tls1_3": 3}


def storage_facts(account: dict[str, Any]) -> Facts:
    properties = _properties(account)
    # The API documents an absent minimumTlsVersion as TLS 1.0.
    tls = str(properties.get("minimumTlsVersion") or "TLS1_0")
    optional_bools = {
        "https_only": properties.get("supportsHttpsTrafficOnly"),
        "allow_blob_public_access": properties.get("allowBlobPublicAccess"),
        "allow_shared_key_access": properties.get("allowSharedKeyAccess"),
    }
    return {
        **{key: value if isinstance(value, bool) else None for key, value in optional_bools.items()},
        "minimum_tls_version": tls,
        "tls_1_2_or_newer": TLS_ORDER.get(tls.lower(), -1) >= TLS_ORDER["tls1_2"],
        "public_network_access": properties.get("publicNetworkAccess"),
        "location": str(account.get("location") or ""),
    }


def _list_storage(context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Storage/storageAccounts"
    for account in _items(context, path, STORAGE_API):
        yield _resource(account, storage_facts(account))


@cloud_collector(STORAGE, "azure")
def collect_storage(context: CloudContext, params: Params) -> list[Any]:
    return per_subscription(STORAGE, context, params, _list_storage)


# --- network security groups -----------------------------------------------------------------------------

NSG = register(
    ProbeSpec(
        name="azure_nsg_open_ports",
        description="Network security groups that let the internet reach management ports (RDP, SSH): reads "
        "singular and plural source-prefix and port fields, port ranges and wildcards, in priority order",
        scope="resource",
        permissions=READER,
        params=(
            Field(
                "ports",
                "array",
                "TCP ports that must not be open to the internet",
                items="integer",
                required=False,
                default=[22, 3389],
            ),
        ),
        facts=(
            Field("open_ports", "array", "Listed ports the internet can reach", items="integer"),
            Field(
                "open_rules",
                "array",
                "The rules that let it in",
                fields=(
                    Field("rule", "string", "Rule name"),
                    Field("priority", "integer", "Rule priority (lower wins)"),
                    Field("port", "integer", "The listed port the rule opens"),
                    Field("ports", "array", "The rule's destination port specs", items="string"),
                    Field("sources", "array", "The rule's source prefixes", items="string"),
                    Field("protocol", "string", "Tcp, Udp or *"),
                ),
            ),
            Field("inbound_rules", "integer", "Inbound rules read, default rules included"),
        ),
        example="""\
- id: nsg-no-internet-rdp-ssh
  title: No network security group opens RDP or SSH to the internet
  description: Walks each NSG's inbound rules in priority order for ports 22 and 3389.
  rationale: Internet-facing RDP and SSH are brute-forced continuously and are a common way in.
  remediation: Remove the rule, restrict its source, or use Azure Bastion or just-in-time access.
  severity: critical
  platforms: [azure]
  probe: azure_nsg_open_ports
  expect: {fact: open_ports, count: {eq: 0}}
""",
    )
)

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
    properties = _properties(nsg)
    rules = []
    for rule in list(properties.get("securityRules") or []) + list(properties.get("defaultSecurityRules") or []):
        rule_properties = _properties(rule)
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


def _list_nsgs(context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Network/networkSecurityGroups"
    ports = [int(p) for p in params["ports"]]
    for nsg in _items(context, path, NETWORK_API):
        yield _resource(nsg, open_ports(nsg, ports))


@cloud_collector(NSG, "azure")
def collect_nsgs(context: CloudContext, params: Params) -> list[Any]:
    return per_subscription(NSG, context, params, _list_nsgs)


# --- key vaults ------------------------------------------------------------------------------------------

KEY_VAULTS = register(
    ProbeSpec(
        name="azure_key_vaults",
        description="Key Vault recovery settings: soft delete and purge protection, and the access model",
        scope="resource",
        permissions=READER,
        facts=(
            Field("soft_delete", "boolean", "enableSoftDelete (null when the vault does not say)", nullable=True),
            Field("purge_protection", "boolean", "enablePurgeProtection (absent means off)"),
            Field("rbac_authorization", "boolean", "Access is by Azure RBAC rather than access policies"),
        ),
        example="""\
- id: key-vault-recoverable
  title: Key vaults have soft delete and purge protection
  description: Reads each vault's recovery settings.
  rationale: Without them a deleted or purged vault takes its keys and secrets with it for good.
  remediation: Enable purge protection on the vault (soft delete is on for every new vault).
  severity: high
  platforms: [azure]
  probe: azure_key_vaults
  expect:
    all:
      - {fact: soft_delete, eq: true}
      - {fact: purge_protection, eq: true}
""",
    )
)


def key_vault_facts(vault: dict[str, Any]) -> Facts:
    properties = _properties(vault)
    soft_delete = properties.get("enableSoftDelete")
    return {
        "soft_delete": soft_delete if isinstance(soft_delete, bool) else None,
        # Resource Manager leaves the flag out until purge protection is turned on (it cannot be turned off).
        "purge_protection": properties.get("enablePurgeProtection") is True,
        "rbac_authorization": properties.get("enableRbacAuthorization") is True,
    }


def _list_vaults(context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/vaults"
    for vault in _items(context, path, KEYVAULT_API):
        yield _resource(vault, key_vault_facts(vault))


@cloud_collector(KEY_VAULTS, "azure")
def collect_key_vaults(context: CloudContext, params: Params) -> list[Any]:
    return per_subscription(KEY_VAULTS, context, params, _list_vaults)


# --- Defender for Cloud plans ----------------------------------------------------------------------------

DEFAULT_PLANS = ["VirtualMachines", "SqlServers", "AppServices", "StorageAccounts", "KeyVaults", "Arm", "Containers"]

DEFENDER = register(
    ProbeSpec(
        name="azure_defender_plans",
        description="Microsoft Defender for Cloud plans of each subscription, and which required plans are "
        "not on the Standard (paid) tier",
        scope="resource",
        permissions=READER,
        params=(
            Field(
                "required_plans",
                "array",
                "Plan names that must be Standard",
                items="string",
                required=False,
                default=DEFAULT_PLANS,
            ),
        ),
        facts=(
            Field(
                "plans",
                "array",
                "Every plan",
                fields=(Field("name", "string", "Plan name"), Field("tier", "string", "Free or Standard")),
            ),
            Field("standard_plans", "array", "Plans on the Standard tier", items="string"),
            Field("missing_plans", "array", "Required plans not on Standard (or absent)", items="string"),
        ),
        example="""\
- id: defender-plans
  title: Defender for Cloud protects servers, databases, storage, key vaults and Resource Manager
  description: Reads each subscription's Defender plans.
  rationale: Without the paid plans Defender does not detect threats against those resources.
  remediation: Turn the plans on in Defender for Cloud, Environment settings.
  severity: medium
  platforms: [azure]
  probe: azure_defender_plans
  expect: {fact: missing_plans, count: {eq: 0}}
""",
    )
)


def defender_facts(pricings: list[dict[str, Any]], required: list[str]) -> Facts:
    plans = [{"name": str(p.get("name") or ""), "tier": str(_properties(p).get("pricingTier") or "")} for p in pricings]
    standard = sorted(p["name"] for p in plans if p["tier"].lower() == "standard")
    standard_lower = set(lower_all(standard))
    return {
        "plans": plans,
        "standard_plans": standard,
        "missing_plans": [name for name in required if name.lower() not in standard_lower],
    }


def _list_defender(context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    path = f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings"
    pricings = list(_items(context, path, SECURITY_API))
    facts = defender_facts(pricings, [str(p) for p in params["required_plans"]])
    yield ResourceFacts(f"/subscriptions/{subscription}", f"subscription {subscription}", facts)


@cloud_collector(DEFENDER, "azure")
def collect_defender(context: CloudContext, params: Params) -> list[Any]:
    return per_subscription(DEFENDER, context, params, _list_defender)


# --- SQL transparent data encryption ---------------------------------------------------------------------

SQL_TDE = register(
    ProbeSpec(
        name="azure_sql_tde",
        description="Transparent data encryption of each Azure SQL database (the master database is skipped: "
        "its encryption is not configurable)",
        scope="resource",
        permissions=READER,
        facts=(
            Field("state", "string", "Enabled or Disabled", nullable=True),
            Field("encrypted", "boolean", "TDE is Enabled"),
            Field("server", "string", "The logical server"),
        ),
        example="""\
- id: sql-tde
  title: Azure SQL databases are encrypted at rest
  description: Reads transparent data encryption for each database.
  rationale: Unencrypted database files and backups expose data if storage is accessed.
  remediation: Enable transparent data encryption on the database.
  severity: high
  platforms: [azure]
  probe: azure_sql_tde
  expect: {fact: encrypted, eq: true}
""",
    )
)


def _list_sql(context: CloudContext, subscription: str, params: Params) -> Iterator[ResourceFacts]:
    servers = f"/subscriptions/{subscription}/providers/Microsoft.Sql/servers"
    for server in _items(context, servers, SQL_API):
        for database in _items(context, f"{server['id']}/databases", SQL_API):
            if str(database.get("name") or "").lower() == "master":
                continue
            try:
                tde = context.arm_get(f"{database['id']}/transparentDataEncryption/current", SQL_API)
            except CloudError as exc:
                yield ResourceFacts(str(database["id"]), str(database.get("name") or ""), {}, explain(SQL_TDE, exc))
                continue
            state = _properties(tde).get("state")
            facts = {
                "state": str(state) if state is not None else None,
                "encrypted": str(state or "").lower() == "enabled",
                "server": str(server.get("name") or ""),
            }
            yield _resource(database, facts)


@cloud_collector(SQL_TDE, "azure")
def collect_sql_tde(context: CloudContext, params: Params) -> list[Any]:
    return per_subscription(SQL_TDE, context, params, _list_sql)
