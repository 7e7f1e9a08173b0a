"""The disk_encryption probe's contract: its facts, platforms and example (the collectors are per platform)."""

from __future__ import annotations

from checks.probes.disk_encryption import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

VOLUME_FIELDS = (
    Field("mount", "string", "Mount point, drive letter or swap device"),
    Field("device", "string", "Device (kernel name, BitLocker device id)"),
    Field("kind", "string", "system, data or swap", enum=("system", "data", "swap")),
    Field("encrypted", "boolean", "The data on the volume is encrypted (fully or partly)", nullable=True),
    Field("method", "string", "luks, dm-crypt, bitlocker, filevault or none", nullable=True),
    Field(
        "protection_on", "boolean", "The encryption key is protected (not suspended or stored in clear)", nullable=True
    ),
    Field(
        "status",
        "string",
        "encrypted, not_encrypted, encrypting, decrypting, paused, suspended, locked or unknown",
    ),
    Field("percent", "number", "Percentage encrypted, where the platform reports it", nullable=True),
    Field("compliant", "boolean", "Fully encrypted with protection on", nullable=True),
)

SPEC = register(
    ProbeSpec(
        name="disk_encryption",
        description="Encryption of each fixed volume (system, data, swap): LUKS/dm-crypt including LVM on LUKS, "
        "BitLocker (protection and conversion status), FileVault",
        facts=(
            Field("volumes", "array", "One entry per fixed volume", fields=VOLUME_FIELDS),
            Field("system_encrypted", "boolean", "The system volume is compliant", nullable=True),
            Field("noncompliant", "array", "Mounts of the volumes that are not compliant", items="string"),
            Field("notes", "array", "Volumes left out and why; caveats", items="string"),
        ),
        example="""\
- id: disks-encrypted
  title: Every fixed disk volume is encrypted
  description: Checks the system volume, fixed data volumes and swap.
  rationale: A lost or stolen device must not give away the data on it.
  remediation: Turn on BitLocker/FileVault, or install Linux on LUKS; let encryption finish.
  severity: high
  probe: disk_encryption
  expect:
    all:
      - {fact: volumes, count: {gte: 1}}
      - {fact: volumes, every_item: {fact: compliant, eq: true}}
""",
        collectors={
            "linux": linux.collect_disk_encryption_linux,
            "windows": windows.collect_disk_encryption_windows,
            "darwin": darwin.collect_disk_encryption_darwin,
        },
    )
)
