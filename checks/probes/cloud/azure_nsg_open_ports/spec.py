"""The azure_nsg_open_ports probe: its contract, and the collector that lists every subscription's NSGs."""

from __future__ import annotations

from checks.probes.cloud.azure_nsg_open_ports import collect
from checks.probes.cloud.common import READER, azure_collector
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
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
azure_collector(SPEC, collect.list_nsgs)
