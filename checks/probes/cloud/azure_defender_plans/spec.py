"""The azure_defender_plans probe: its contract, and the collector that reads every subscription's plans."""

from __future__ import annotations

from checks.probes.cloud.azure_defender_plans import collect
from checks.probes.cloud.common import READER, azure_collector
from checks.probes.registry import Field, ProbeSpec, register

DEFAULT_PLANS = ["VirtualMachines", "SqlServers", "AppServices", "StorageAccounts", "KeyVaults", "Arm", "Containers"]

SPEC = register(
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
azure_collector(SPEC, collect.read_plans)
