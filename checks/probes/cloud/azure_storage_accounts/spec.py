"""The azure_storage_accounts probe: its contract, and the collector that lists every subscription's accounts."""

from __future__ import annotations

from checks.probes.cloud.azure_storage_accounts import collect
from checks.probes.cloud.common import READER, azure_collector
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
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
azure_collector(SPEC, collect.list_accounts)
