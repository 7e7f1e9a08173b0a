"""The `package` probe's contract: parameters, facts, example; and the collector for each platform."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import checker
from checks.probes.package import darwin, linux, windows
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="package",
        description="Whether a package is installed, and its version (dpkg or rpm; Windows uninstall registry; "
        "macOS pkgutil receipts)",
        params=(
            Field(
                "name",
                "string",
                "Package name (Windows: display name, * and ? as wildcards; macOS: package id)",
                pattern=grammar.PACKAGE_PATTERN,
            ),
        ),
        facts=(
            Field("installed", "boolean", "The package is installed"),
            Field("version", "string", "Installed version", nullable=True),
            Field("manager", "string", "What answered: dpkg, rpm, registry or pkgutil"),
        ),
        example="""\
- id: no-telnet-server
  title: No telnet server is installed
  description: Looks for the telnetd package.
  rationale: Telnet sends credentials in clear text.
  remediation: apt purge telnetd
  severity: high
  platforms: [linux]
  probe: {name: package, params: {name: telnetd}}
  expect: {fact: installed, eq: false}
""",
        check_params=checker("name", grammar.package_name_problem),
    )
)


SPEC.collector("linux")(linux.collect_package_linux)
SPEC.collector("windows")(windows.collect_package_windows)
SPEC.collector("darwin")(darwin.collect_package_darwin)
