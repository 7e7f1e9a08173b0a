"""The `os` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes.os import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="os",
        description="The operating system: family, distribution, version, kernel, architecture, host name",
        facts=(
            Field("platform", "string", "linux, windows or darwin"),
            Field("name", "string", "Human name, e.g. Debian GNU/Linux 12 (bookworm)"),
            Field("id", "string", "Lower-case distribution or product id: debian, ubuntu, rhel, windows, macos"),
            Field("id_like", "array", "Related distribution ids (Linux ID_LIKE)", items="string"),
            Field("version", "string", "Version, e.g. 12, 22.04, 10.0.22631, 14.5"),
            Field("build", "string", "Build number where the OS has one", nullable=True),
            Field("kernel", "string", "Kernel release", nullable=True),
            Field("arch", "string", "Machine architecture, e.g. x86_64, arm64", nullable=True),
            Field("hostname", "string", "Host name", nullable=True),
        ),
        example="""\
- id: os-is-64-bit
  title: The operating system is 64-bit
  description: Reads the machine architecture.
  rationale: 32-bit builds no longer receive security updates from most vendors.
  remediation: Reinstall with a 64-bit build.
  severity: low
  probe: os
  expect: {fact: arch, in: [x86_64, amd64, aarch64, arm64, AMD64, ARM64]}
""",
    )
)


SPEC.collector("linux")(linux.collect_os_linux)
SPEC.collector("windows")(windows.collect_os_windows)
SPEC.collector("darwin")(darwin.collect_os_darwin)
