"""The firewall probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.firewall import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
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
        collectors={
            "linux": linux.collect_firewall_linux,
            "windows": windows.collect_firewall_windows,
            "darwin": darwin.collect_firewall_darwin,
        },
    )
)
