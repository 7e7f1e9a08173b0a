"""The antivirus probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.antivirus import darwin, linux, windows
from checks.probes.registry import UNKNOWN_BECAUSE, Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="antivirus",
        description="Anti-malware protection: product, real-time protection, signature age (Microsoft "
        "Defender and Security Center products, macOS XProtect, Linux: Defender for Endpoint and ClamAV)",
        facts=(
            Field("product", "string", "The product protecting the machine", nullable=True),
            Field("installed", "boolean", "An anti-malware product is present"),
            Field("realtime_enabled", "boolean", "Files are scanned on access", nullable=True),
            Field("signature_age_days", "integer", "Days since the signatures were updated", nullable=True),
            Field("signature_version", "string", "Signature (definition) version", nullable=True),
            Field("tamper_protected", "boolean", "Tamper protection is on (Defender)", nullable=True),
            Field("mode", "string", "Defender running mode: Normal, Passive Mode, EDR Block Mode", nullable=True),
            Field(
                "service_running",
                "boolean",
                "The scanning service runs (Linux: clamd; Defender for Endpoint: `mdatp health` says healthy)",
                nullable=True,
            ),
            Field(
                "updates_automatic",
                "boolean",
                "Signatures update by themselves (Linux: freshclam runs as a daemon; Defender for Endpoint: "
                "automatic_definition_update_enabled)",
                nullable=True,
            ),
            Field("notes", "array", "How the state was read; caveats", items="string"),
            Field(UNKNOWN_BECAUSE, "object", "For each fact that is null: why, in words (an error result shows it)"),
        ),
        example="""\
- id: antimalware-current
  title: Anti-malware is on and its signatures are recent
  description: Reads the anti-malware product's state.
  rationale: Out-of-date or disabled protection misses current malware.
  remediation: Turn on real-time protection and let signatures update.
  severity: high
  platforms: [windows]
  probe: antivirus
  expect:
    all:
      - {fact: realtime_enabled, eq: true}
      - {fact: signature_age_days, lte: 3}
""",
        collectors={
            "windows": windows.collect_antivirus_windows,
            "darwin": darwin.collect_antivirus_darwin,
            "linux": linux.collect_antivirus_linux,
        },
    )
)
