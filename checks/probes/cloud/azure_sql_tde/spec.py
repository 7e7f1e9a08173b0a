"""The azure_sql_tde probe: its contract, and the collector that reads every subscription's databases."""

from __future__ import annotations

from checks.probes.cloud.azure_sql_tde import collect
from checks.probes.cloud.common import READER, azure_collector
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
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
azure_collector(SPEC, collect.list_databases)
