"""Probe parameters that reach a program: hostile values are refused before anything starts, good ones reach
the program after `--`, and Windows scripts are fixed text that get their parameters as data.

The probes run through `collect`, the path every policy takes, on a ReplayHost: it answers from recorded
output and keeps every command a probe asked for (`calls`), so the tests show what would have run on the
machine, and that nothing did when a value was refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checks.policy.evaluate import collect
from checks.policy.model import ProbeRef
from checks.probes import registry
from checks.probes.host import PARAMS_ENV, ProbeError
from checks.probes.replay import ReplayHost
from checks.probes.windows import POWERSHELL, powershell_json
from tests.conftest import DATA, run_cli

# What a policy might hand a probe to break out of it: options (rpm's --pipe and --eval run commands),
# shell syntax, newlines and NUL, and the quotes PowerShell honours besides ' (U+2018 to U+201B).
HOSTILE = [
    "--pipe=id",
    "--eval=%(id)",
    "-q; id",
    "-a",
    "telnetd --pipe=id",
    "telnetd\n--pipe=id",
    "telnetd\n",
    "tel\x00netd",
    "x\u2019; Remove-Item C:\\ -Recurse; \u2018",
    "x\u2018",
    "x\u201a",
    "x\u201b",
    "x'; Stop-Computer; '",
    "$(id)",
    "`id`",
    "a|b",
    "",
]


def recording(tmp_path: Path, platform: str, **spec: Any) -> ReplayHost:
    """A machine recorded with the given commands and tools."""
    directory = tmp_path / platform
    directory.mkdir(exist_ok=True)
    data = {"platform": platform, "source": "typed in for parameter tests", **spec}
    (directory / "host.json").write_text(json.dumps(data), encoding="utf-8")
    return ReplayHost(directory)


def refused(host: ReplayHost, probe: str, **params: Any) -> str:
    with pytest.raises(ProbeError) as raised:
        collect(host, ProbeRef(probe, params))
    assert host.calls == [], f"{probe} {params!r} started {host.calls}"
    return raised.value.reason


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(
    ("platform", "tools"),
    [
        ("linux", {"rpm": "/usr/bin/rpm"}),
        ("linux", {"dpkg-query": "/usr/bin/dpkg-query"}),
        ("darwin", {}),
        ("windows", {}),
    ],
)
def test_hostile_package_names_start_nothing(tmp_path: Path, name: str, platform: str, tools: dict[str, str]) -> None:
    host = recording(tmp_path, platform, which=tools)
    reason = refused(host, "package", name=name)
    assert reason.startswith("refused: ") and "nothing was run" in reason


@pytest.mark.parametrize("name", HOSTILE + ["-.mount", "a b"])
@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_hostile_service_names_start_nothing(tmp_path: Path, name: str, platform: str) -> None:
    refused(recording(tmp_path, platform), "service", name=name)


@pytest.mark.parametrize("name", [n for n in HOSTILE if n not in ("a b",)])
def test_hostile_windows_service_names_start_nothing(tmp_path: Path, name: str) -> None:
    refused(recording(tmp_path, "windows"), "service", name=name)


@pytest.mark.parametrize("name", HOSTILE + ["kern.maxfiles=1", "kern.securelevel=-1", "net..x", "../../etc/shadow"])
@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_hostile_sysctl_names_start_nothing_and_never_write(tmp_path: Path, name: str, platform: str) -> None:
    refused(recording(tmp_path, platform), "sysctl", name=name)


@pytest.mark.parametrize("path", ["etc/passwd", "/etc/passwd\n", "/etc/\x00passwd", "", "~root/.ssh/id_rsa"])
def test_file_paths_must_be_absolute_and_plain(tmp_path: Path, path: str) -> None:
    for probe in ("file", "file_content", "key_value_file"):
        refused(recording(tmp_path, "linux"), probe, path=path)


def test_a_bad_regular_expression_is_an_error_that_says_so(tmp_path: Path) -> None:
    reason = refused(recording(tmp_path, "linux"), "process", name="sshd", cmdline_pattern="(unclosed")
    assert "cmdline_pattern" in reason and "is not a regular expression" in reason


def test_good_names_reach_the_program_after_end_of_options(tmp_path: Path) -> None:
    rpm = ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\n", "--", "openssh-server"]
    host = recording(
        tmp_path,
        "linux",
        which={"rpm": "/usr/bin/rpm"},
        commands=[{"argv": rpm, "stdout": "8.7p1-38.el9\n"}],
    )
    assert collect(host, ProbeRef("package", {"name": "openssh-server"}))["version"] == "8.7p1-38.el9"
    assert [call.argv for call in host.calls] == [tuple(rpm)]

    dpkg = ["dpkg-query", "-W", "-f=${Status}\t${Version}\n", "--", "libc6:amd64"]
    host = recording(
        tmp_path,
        "linux",
        which={"dpkg-query": "/usr/bin/dpkg-query"},
        commands=[{"argv": dpkg, "stdout": "install ok installed\t2.36-9+deb12u4\n"}],
    )
    assert collect(host, ProbeRef("package", {"name": "libc6:amd64"}))["installed"] is True

    systemctl = ["systemctl", "show", "--property=LoadState,ActiveState,SubState,UnitFileState", "--no-pager"]
    host = recording(
        tmp_path,
        "linux",
        commands=[
            {"argv": [*systemctl, "--", "getty@tty1.service"], "stdout": "LoadState=loaded\nActiveState=active\n"}
        ],
    )
    assert collect(host, ProbeRef("service", {"name": "getty@tty1.service"}))["active"] is True

    sysctl = ["sysctl", "-n", "--", "kern.hv_support"]
    host = recording(tmp_path, "darwin", commands=[{"argv": sysctl, "stdout": "1\n"}])
    assert collect(host, ProbeRef("sysctl", {"name": "kern.hv_support"}))["int_value"] == 1
    assert [call.argv for call in host.calls] == [tuple(sysctl)]


# Names a Windows policy really uses, each with text that would have been script syntax had it been
# interpolated: a $ (a variable in a PowerShell string), spaces, parentheses, wildcards.
WINDOWS_NAMES = ["WinDefend", "MSSQL$SQLEXPRESS", "Bonjour Service", "Notepad++ (64-bit x64)", "Mozilla Firefox*"]


def windows_host(tmp_path: Path) -> ReplayHost:
    # Get-ItemProperty on the Uninstall keys, Select-Object DisplayName,DisplayVersion | ConvertTo-Json: the
    # properties Microsoft documents for the Uninstall registry key, values typed in.
    return recording(
        tmp_path,
        "windows",
        commands=[
            {"match": "Get-Service -Name $p.name", "params": {"name": name}, "stdout": json.dumps(service)}
            for name, service in [
                ("WinDefend", {"Name": "WinDefend", "Status": "Running", "StartType": "Automatic"}),
                ("MSSQL$SQLEXPRESS", {"Name": "MSSQL$SQLEXPRESS", "Status": "Stopped", "StartType": "Manual"}),
                ("Bonjour Service", None),
            ]
        ]
        + [
            {
                "match": "Uninstall",
                "params": {"name": "Notepad++ (64-bit x64)"},
                "stdout": '{"DisplayName":"Notepad++ (64-bit x64)","DisplayVersion":"8.6.2"}',
            },
            {
                "match": "Uninstall",
                "params": {"name": "Mozilla Firefox*"},
                "stdout": '[{"DisplayName":"Mozilla Firefox (x64 en-GB)","DisplayVersion":"126.0.1"},'
                '{"DisplayName":"Mozilla Firefox ESR","DisplayVersion":"115.11.0"}]',
            },
        ],
    )


def test_windows_scripts_are_fixed_text_and_parameters_travel_as_data(tmp_path: Path) -> None:
    from checks.probes.package.windows import WINDOWS_PACKAGE_SCRIPT
    from checks.probes.service.windows import WINDOWS_SERVICE_SCRIPT

    host = windows_host(tmp_path)
    assert collect(host, ProbeRef("service", {"name": "WinDefend"}))["active"] is True
    assert collect(host, ProbeRef("service", {"name": "MSSQL$SQLEXPRESS"}))["state"] == "Stopped"
    assert collect(host, ProbeRef("service", {"name": "Bonjour Service"}))["exists"] is False
    assert collect(host, ProbeRef("package", {"name": "Notepad++ (64-bit x64)"}))["version"] == "8.6.2"
    firefox = collect(host, ProbeRef("package", {"name": "Mozilla Firefox*"}))
    assert firefox == {"installed": True, "version": "126.0.1", "manager": "registry"}
    assert len(host.calls) == 5
    # one fixed script per probe, whatever the name; the name is in the data only
    assert {call.argv[-1] for call in host.calls} == {WINDOWS_SERVICE_SCRIPT, WINDOWS_PACKAGE_SCRIPT}
    for call in host.calls:
        assert list(call.argv[:-1]) == POWERSHELL
        name = json.loads(call.env[PARAMS_ENV])["name"]
        assert name in WINDOWS_NAMES and name not in call.argv[-1]


def test_any_text_given_as_data_stays_out_of_the_script(tmp_path: Path) -> None:
    host = recording(tmp_path, "windows", commands=[{"match": "Get-Thing", "stdout": "null"}])
    script = "$p = $env:RAMPART_PROBE_PARAMS | ConvertFrom-Json; Get-Thing -Name $p.name | ConvertTo-Json"
    for text in HOSTILE:
        powershell_json(host, script, params={"name": text})
    for call, text in zip(host.calls, HOSTILE, strict=True):
        assert call.argv[-1] == script
        data = call.env[PARAMS_ENV]
        assert data.isascii() and json.loads(data) == {"name": text}
    with pytest.raises(ValueError, match="READ_PARAMS"):
        powershell_json(host, "Get-Thing", params={"name": "x"})


def test_the_recorded_windows_machines_still_read_the_same() -> None:
    result = run_cli("rampart-agent", "check", "--replay", str(DATA / "hosts" / "windows11-laptop"), "--format", "json")
    assert result.returncode == 0, result.stderr
    results = {r["check_id"]: r for r in json.loads(result.stdout)["results"]}
    assert results["windows-defender-service"]["status"] == "pass"


def test_the_schema_shows_each_grammar() -> None:
    probes = {spec.name: spec for spec in registry.all_probes()}
    for probe, param in [("package", "name"), ("service", "name"), ("sysctl", "name"), ("file_content", "path")]:
        field = probes[probe].param(param)
        assert field is not None and field.json_schema()["pattern"] == field.pattern
    listed = json.loads(run_cli("rampart-agent", "policy", "probes", "--format", "json").stdout)
    package = next(p for p in listed if p["name"] == "package")
    assert package["params"]["name"]["pattern"].startswith("^[A-Za-z0-9*]")
    assert next(p for p in listed if p["name"] == "process")["params"]["cmdline_pattern"]["format"] == "regex"


POLICY = """\
id: hostile
version: "1"
title: Hostile parameters
inputs:
  package: {type: string, default: telnetd, description: The package}
overrides:
  - groups: [servers]
    inputs: {package: "--eval=%(id)"}
checks:
  - id: by-input
    title: t
    description: d
    rationale: r
    remediation: r
    severity: low
    platforms: [linux]
    probe: {name: package, params: {name: {input: package}}}
    expect: {fact: installed, eq: false}
  - id: windows-name-everywhere
    title: t
    description: d
    rationale: r
    remediation: r
    severity: low
    probe: {name: package, params: {name: Mozilla Firefox}}
    expect: {fact: installed, eq: false}
  - id: trailing-newline
    title: t
    description: d
    rationale: r
    remediation: r
    severity: low
    probe: {name: service, params: {name: "sshd\\n"}}
    expect: {fact: active, eq: true}
"""


def test_policy_validate_reports_bad_parameters_with_file_and_line(tmp_path: Path) -> None:
    policy = tmp_path / "hostile.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    result = run_cli("rampart-agent", "policy", "validate", str(policy))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{policy}:8: overrides[0].inputs.package: '--eval=%(id)'") for line in lines)
    assert any(
        line.startswith(f"{policy}:25: checks[1].probe.params.name: 'Mozilla Firefox' is not a Linux package name")
        and "`platforms:`" in line
        for line in lines
    )
    assert any(line.startswith(f"{policy}:33: checks[2].probe.params.name: 'sshd\\n'") for line in lines)
    # limited to Windows, the display name is what it should be
    fixed = POLICY.replace("    probe: {name: package, params: {name: Mozilla Firefox}}", "    platforms: [windows]\n"
                           "    probe: {name: package, params: {name: Mozilla Firefox}}")  # fmt: skip
    policy.write_text(fixed, encoding="utf-8")
    again = run_cli("rampart-agent", "policy", "validate", str(policy))
    assert "Mozilla Firefox" not in again.stdout and "--eval" in again.stdout


def test_every_shipped_policy_fits_the_grammars() -> None:
    for name in ("baseline.yaml", "microsoft365.yaml", "azure.yaml"):
        result = run_cli("rampart-agent", "policy", "validate", str(DATA.parent.parent / "policies" / name))
        assert result.returncode == 0, result.stdout
