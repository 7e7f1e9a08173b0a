"""The azure_key_vaults probe: its contract, and the collector that lists every subscription's vaults."""

from __future__ import annotations

from checks.probes.cloud.azure_key_vaults import collect
from checks.probes.cloud.common import READER, azure_collector
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
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
azure_collector(SPEC, collect.list_vaults)
