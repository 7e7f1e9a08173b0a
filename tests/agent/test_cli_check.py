"""`rampart-agent check` and `policy ...` run as processes, the way administrators use them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema

from tests.conftest import DATA, run_cli

Write = Callable[[str, str], Path]


def test_version_and_help() -> None:
    version = run_cli("rampart-agent", "--version")
    assert version.returncode == 0 and version.stdout.startswith("rampart-agent ")
    helped = run_cli("rampart-agent", "check", "--help")
    assert helped.returncode == 0 and "--waivers" in helped.stdout and "Exit 0 when" in helped.stdout


def test_bad_usage_exits_2() -> None:
    assert run_cli("rampart-agent").returncode == 2
    assert run_cli("rampart-agent", "check", "--format", "xml").returncode == 2


def test_check_prints_a_table_of_the_baseline() -> None:
    result = run_cli("rampart-agent", "check")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Endpoint security baseline (baseline 1.3.0, sha256 ")
    assert lines[1].split() == ["STATUS", "SEVERITY", "CHECK", "DETAIL"]
    assert any(line.startswith("not_applicable") and "windows-defender-service" in line for line in lines)
    assert "score" in lines[-1]


def test_check_json_carries_everything_a_result_needs() -> None:
    result = run_cli("rampart-agent", "check", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["platform"] == "linux"
    results = {r["check_id"]: r for r in report["results"]}
    shadow = results["shadow-file-permissions"]
    assert shadow["policy"] == {"id": "baseline", "version": "1.3.0", "hash": report["policy"]["hash"]}
    assert shadow["observed"]["mode"] == f"{Path('/etc/shadow').stat().st_mode & 0o7777:04o}"
    assert shadow["expectation"]["all"][0] == {"fact": "exists", "eq": True}
    for r in report["results"]:
        assert r["status"] in ("pass", "fail", "error", "not_applicable")
        if r["status"] in ("error", "not_applicable", "fail"):
            assert r["reason"], r


def test_check_with_waivers_and_groups(write: Write) -> None:
    policy = write(
        "p.yaml",
        """
        id: local
        version: "1"
        title: Local
        inputs:
          limit: {type: integer, default: 1, description: d}
        overrides:
          - groups: [relaxed]
            inputs: {limit: 99999999}
        checks:
          - id: pid-max-small
            title: pid_max under the limit
            description: d
            rationale: r
            remediation: m
            severity: low
            probe: {name: sysctl, params: {name: kernel.pid_max}}
            expect: {fact: int_value, lte: {input: limit}}
        """,
    )
    waivers = write(
        "w.yaml",
        """
        waivers:
          - id: W-9
            check: pid-max-small
            scope: {all: true}
            justification: test
            requested_by: a@example.org
            approved_by: b@example.org
            expires: 2999-01-01
        """,
    )
    plain = json.loads(run_cli("rampart-agent", "check", "--policy", str(policy), "--format", "json").stdout)
    assert plain["results"][0]["status"] == "fail"
    relaxed = run_cli("rampart-agent", "check", "--policy", str(policy), "--group", "relaxed", "--format", "json")
    assert json.loads(relaxed.stdout)["results"][0]["status"] == "pass"
    waived = run_cli("rampart-agent", "check", "--policy", str(policy), "--waivers", str(waivers), "--format", "json")
    result = json.loads(waived.stdout)["results"][0]
    assert (result["status"], result["waived_status"], result["waiver_id"]) == ("waived", "fail", "W-9")


def test_check_rejects_a_bad_policy_with_exit_2(write: Write) -> None:
    policy = write("bad.yaml", 'id: x\nversion: "1"\ntitle: t\nchecks:\n  - id: a\n    title: t\n')
    result = run_cli("rampart-agent", "check", "--policy", str(policy))
    assert result.returncode == 2
    assert f"{policy}:5: checks[0]: missing required field 'description'" in result.stderr
    assert result.stdout == ""


def test_check_on_a_recorded_windows_machine() -> None:
    result = run_cli("rampart-agent", "check", "--replay", str(DATA / "hosts" / "windows-basic"), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["platform"] == "windows" and report["subject"]["name"] == "LAPTOP-0042"
    results = {r["check_id"]: r for r in report["results"]}
    assert results["windows-defender-service"]["status"] == "fail"
    assert "active = false" in results["windows-defender-service"]["reason"]
    assert results["os-64-bit"]["status"] == "pass"
    assert results["shadow-file-permissions"]["status"] == "not_applicable"


def test_policy_validate_reports_file_line_and_exits_1(write: Write) -> None:
    bad = write("bad.yaml", 'id: x\nversion: "1"\ntitle: t\nchecks:\n  - id: a\n    title: t\n    sevrity: low\n')
    result = run_cli("rampart-agent", "policy", "validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}:7: checks[0]: unknown key 'sevrity'; did you mean 'severity'?" in result.stdout.splitlines()
    good = run_cli("rampart-agent", "policy", "validate", str(DATA.parent.parent / "policies" / "baseline.yaml"))
    assert good.returncode == 0 and good.stdout.startswith("ok: ")


def test_policy_validate_json(write: Write) -> None:
    bad = write("bad.yaml", "id: x\n")
    report = json.loads(run_cli("rampart-agent", "policy", "validate", "--format", "json", str(bad)).stdout)
    assert report["valid"] is False
    assert {
        "file": str(bad),
        "line": 1,
        "message": "(top level): missing required field 'version'",
    } in report["issues"]


def test_policy_test_runs_the_tests_section(write: Write) -> None:
    baseline = str(DATA.parent.parent / "policies" / "baseline.yaml")
    result = run_cli("rampart-agent", "policy", "test", baseline)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].endswith("passed, 0 failed")
    wrong = write(
        "p.yaml",
        """
        id: t
        version: "1"
        title: t
        checks:
          - id: aslr
            title: t
            description: d
            rationale: r
            remediation: m
            severity: low
            probe: {name: sysctl, params: {name: kernel.randomize_va_space}}
            expect: {fact: int_value, eq: 2}
        tests:
          - name: claims partial ASLR passes
            check: aslr
            facts: {exists: true, value: "1", int_value: 1}
            status: pass
        """,
    )
    failed = run_cli("rampart-agent", "policy", "test", str(wrong))
    assert failed.returncode == 1
    assert "expected pass, got fail (int_value = 1 (expected == 2))" in failed.stdout


def test_policy_schema_is_printed_for_editors() -> None:
    result = run_cli("rampart-agent", "policy", "schema")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "sysctl" in json.dumps(schema["$defs"]["probe_ref"])
    waivers = json.loads(run_cli("rampart-agent", "policy", "schema", "--waivers").stdout)
    assert "approved_by" in json.dumps(waivers)


def test_policy_probes_lists_every_probe() -> None:
    listing = json.loads(run_cli("rampart-agent", "policy", "probes", "--format", "json").stdout)
    names = {p["name"] for p in listing}
    assert {"file", "command", "sysctl", "service", "package", "process", "os"} <= names


def test_bad_waivers_are_said_in_words_with_file_and_line(write: Write) -> None:
    waivers = write(
        "w.yaml",
        """
        waivers:
          - id: legacy-ssh
            check: ssh-root-login-disabled
            scope: {hosts: [web*]}
            justification: ''
            requested_by: alice
            approved_by: bob
            expires: 31/12/2026
        """,
    )
    done = run_cli("rampart-agent", "check", "--waivers", str(waivers))
    assert done.returncode == 2
    assert f"{waivers}:5: waiver legacy-ssh: justification is empty" in done.stderr
    assert f"{waivers}:8: waiver legacy-ssh: expires '31/12/2026' is not a date; use YYYY-MM-DD" in done.stderr
    assert "should be non-empty" not in done.stderr and "[0-9]" not in done.stderr and "waivers[0]" not in done.stderr


def test_check_says_how_to_fix_each_failure_and_error(write: Write) -> None:
    policy = write(
        "fix.yaml",
        r"""
        id: fixable
        version: "1"
        title: Fixable
        checks:
          - id: pid-max-tiny
            title: pid_max tiny
            description: d
            rationale: r
            remediation: "Lower kernel.pid_max\e[2J in /etc/sysctl.d/.\nThen reboot."
            severity: low
            probe: {name: sysctl, params: {name: kernel.pid_max}}
            expect: {fact: int_value, lte: 1}
          - id: no-such-sysctl
            title: an unknown setting
            description: d
            rationale: r
            remediation: Install the module that provides it.
            severity: low
            probe: {name: sysctl, params: {name: kernel.no_such_setting_here}}
            expect: {fact: int_value, lte: 1}
          - id: pid-max-any
            title: pid_max set
            description: d
            rationale: r
            remediation: Nothing to fix.
            severity: low
            probe: {name: sysctl, params: {name: kernel.pid_max}}
            expect: {fact: int_value, gte: 1}
        """,
    )
    table = run_cli("rampart-agent", "check", "--policy", str(policy))
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout
    fixes = table.stdout.split("To fix")[1].splitlines()
    # One short line per failure: the first line of the text, escaped, with a mark that more follows.
    assert any(
        line.startswith("pid-max-tiny") and "Lower kernel.pid_max\\x1b[2J in /etc/sysctl.d/. …" in line
        for line in fixes
    )
    assert "Nothing to fix." not in table.stdout
    report = json.loads(run_cli("rampart-agent", "check", "--policy", str(policy), "--format", "json").stdout)
    results = {r["check_id"]: r for r in report["results"]}
    assert results["pid-max-tiny"]["remediation"] == "Lower kernel.pid_max\x1b[2J in /etc/sysctl.d/.\nThen reboot."
    assert results["pid-max-any"]["remediation"] is None
    unknown = results["no-such-sysctl"]  # a fact the probe could not read: an error, with what to do too
    assert unknown["status"] == "error", unknown
    assert unknown["remediation"] == "Install the module that provides it."
    assert any(line.startswith("no-such-sysctl") and "Install the module" in line for line in fixes)


def test_errors_show_the_probes_notes() -> None:
    # The recorded Mac has no plutil: the last install date cannot be read, and the probe's notes say so.
    mac = str(DATA / "hosts" / "macos-laptop")
    table = run_cli("rampart-agent", "check", "--replay", mac)
    assert table.returncode == 0, table.stderr
    notes = table.stdout.split("Why it could not be judged")[1].split("\n\n")[0].splitlines()
    assert notes[1].split() == ["CHECK", "NOTE"]
    mine = [line for line in notes if line.startswith("updates-installed-recently")]
    assert any("last install unknown: /Library/Receipts/InstallHistory.plist" in line for line in mine)
    assert mine[-1].endswith("… 1 more (--format json)") and len(mine) == 4  # short: three notes, then a count
    report = json.loads(run_cli("rampart-agent", "check", "--replay", mac, "--format", "json").stdout)
    results = {r["check_id"]: r for r in report["results"]}
    recent = results["updates-installed-recently"]
    assert recent["status"] == "error" and len(recent["notes"]) == 4  # whole in JSON
    assert any(note.startswith("last install unknown:") for note in recent["notes"])
    assert all(r["notes"] == [] for r in report["results"] if r["status"] != "error")


def test_policy_test_refuses_recorded_facts_of_the_wrong_type(write: Write) -> None:
    """Recorded facts a probe could never return prove nothing: the run fails, naming probe and fact."""
    wrong = write(
        "p.yaml",
        """
        id: t
        version: "1"
        title: t
        checks:
          - id: telnet-absent
            title: t
            description: d
            rationale: r
            remediation: m
            severity: high
            probe: {name: package, params: {name: telnetd}}
            expect: {fact: installed, eq: false}
        tests:
          - name: telnet absent, version recorded as a list
            check: telnet-absent
            facts: {installed: false, version: ["1", "2"], manager: dpkg}
            status: pass
        """,
    )
    failed = run_cli("rampart-agent", "policy", "test", str(wrong))
    assert failed.returncode == 2, failed.stdout
    # The loader sees it first, with the file's line; the evaluator's strict mode is the second line.
    assert f"{wrong}:16: facts for probe package: version: expected a string, got ['1', '2']" in failed.stderr
    assert "passed" not in failed.stdout
