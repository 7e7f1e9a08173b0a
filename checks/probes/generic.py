"""Generic probes that policies compose: files, commands, kernel parameters, services, packages,
processes and the operating system."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from checks.probes import grammar
from checks.probes.common import read_optional
from checks.probes.grammar import checker, require
from checks.probes.host import CommandMissing, Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import READ_PARAMS, as_list, as_objects, powershell_json


def _path_field() -> Field:
    return Field("path", "string", "Absolute path of the file", pattern=grammar.PATH_PATTERN, max_length=4096)


def _path_param(params: Params) -> tuple[str, ...]:
    return (params["path"],)


# --- file ----------------------------------------------------------------------------------------------

FILE = register(
    ProbeSpec(
        name="file",
        description="A file's existence, type, owner, group and permission bits (and optionally its SHA-256)",
        params=(
            _path_field(),
            Field("hash", "boolean", "Also compute the SHA-256 of the content", required=False, default=False),
        ),
        facts=(
            Field("exists", "boolean", "The path exists"),
            Field("is_dir", "boolean", "It is a directory", nullable=True),
            Field("mode", "string", "Permission bits in octal, e.g. 0640", nullable=True),
            Field("owner", "string", "Owning user", nullable=True),
            Field("group", "string", "Owning group", nullable=True),
            Field("size", "integer", "Size in bytes", nullable=True),
            Field("world_readable", "boolean", "Others may read it", nullable=True),
            Field("world_writable", "boolean", "Others may write it", nullable=True),
            Field("group_writable", "boolean", "The group may write it", nullable=True),
            Field("sha256", "string", "SHA-256 of the content, when asked", nullable=True, required=False),
        ),
        example="""\
- id: shadow-permissions
  title: /etc/shadow is readable by root and the shadow group only
  description: Reads the permission bits of /etc/shadow.
  rationale: Password hashes must not be readable by ordinary users.
  remediation: chown root:shadow /etc/shadow && chmod 0640 /etc/shadow
  severity: high
  platforms: [linux]
  probe: {name: file, params: {path: /etc/shadow}}
  expect:
    all:
      - {fact: exists, eq: true}
      - {fact: world_readable, eq: false}
      - {fact: owner, eq: root}
""",
        check_params=checker("path", grammar.path_problem),
        # The metadata is not the content: only a hash reads the file.
        reads=lambda params: (params["path"],) if params.get("hash") else (),
    )
)


@FILE.collector("linux", "darwin")
def collect_file(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    info = host.stat(path)
    if info is None:
        return {
            "exists": False,
            **{
                key: None
                for key in (
                    "is_dir",
                    "mode",
                    "owner",
                    "group",
                    "size",
                    "world_readable",
                    "world_writable",
                    "group_writable",
                )
            },
        }
    facts: Facts = {
        "exists": True,
        "is_dir": info.is_dir,
        "mode": f"{info.mode:04o}",
        "owner": info.owner,
        "group": info.group,
        "size": info.size,
        "world_readable": bool(info.mode & 0o004),
        "world_writable": bool(info.mode & 0o002),
        "group_writable": bool(info.mode & 0o020),
    }
    if params.get("hash") and not info.is_dir:
        facts["sha256"] = host.hash_file(path)
    return facts


# --- file content --------------------------------------------------------------------------------------

FILE_CONTENT = register(
    ProbeSpec(
        name="file_content",
        description="The lines of a text file, optionally only those matching a regular expression",
        params=(
            _path_field(),
            Field(
                "pattern",
                "string",
                "Keep only lines where this regular expression is found",
                required=False,
                max_length=1000,
                regex=True,
            ),
            Field(
                "skip_comments",
                "boolean",
                "Drop blank lines and lines starting with #",
                required=False,
                default=True,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The file exists"),
            Field("lines", "array", "The (matching) lines, stripped", items="string"),
            Field("match_count", "integer", "How many lines are in `lines`"),
        ),
        example="""\
- id: no-nis-passwd
  title: No NIS entries in /etc/passwd
  description: Looks for legacy '+' entries in /etc/passwd.
  rationale: Lines starting with a plus sign pull accounts from NIS, which is unauthenticated.
  remediation: Remove the lines starting with a plus sign from /etc/passwd.
  severity: medium
  platforms: [linux]
  probe: {name: file_content, params: {path: /etc/passwd, pattern: "^\\\\+"}}
  expect: {fact: match_count, eq: 0}
""",
        check_params=checker("path", grammar.path_problem),
        reads=_path_param,
    )
)


def select_lines(text: str, pattern: str | None, skip_comments: bool) -> list[str]:
    regex = re.compile(pattern) if pattern else None
    selected = []
    for raw in text.splitlines():
        line = raw.strip()
        if skip_comments and (not line or line.startswith("#")):
            continue
        if regex is None or regex.search(line):
            selected.append(line)
    return selected


@FILE_CONTENT.collector("linux", "darwin", "windows")
def collect_file_content(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    if host.stat(path) is None:
        return {"exists": False, "lines": [], "match_count": 0}
    lines = select_lines(host.read_text(path), params.get("pattern"), params.get("skip_comments", True))
    return {"exists": True, "lines": lines, "match_count": len(lines)}


# --- key/value configuration files ---------------------------------------------------------------------

KEY_VALUE_FILE = register(
    ProbeSpec(
        name="key_value_file",
        description="Settings of a `key value` or `key=value` configuration file (login.defs, sysctl.conf, ...); "
        "keys lower-cased, the last occurrence wins",
        params=(
            _path_field(),
            Field(
                "separator",
                "string",
                "`whitespace` or `=`",
                required=False,
                default="whitespace",
                enum=("whitespace", "="),
            ),
        ),
        facts=(
            Field("exists", "boolean", "The file exists"),
            Field("settings", "object", "Key (lower case) to value (string)"),
            Field("numbers", "object", "The settings whose value is a plain decimal number, as numbers"),
        ),
        example="""\
- id: password-max-days
  title: Passwords expire within a year
  description: Reads PASS_MAX_DAYS from /etc/login.defs.
  rationale: Long-lived passwords stay useful to an attacker who learned them.
  remediation: Set PASS_MAX_DAYS 365 (or less) in /etc/login.defs.
  severity: low
  platforms: [linux]
  probe: {name: key_value_file, params: {path: /etc/login.defs}}
  expect: {fact: numbers.pass_max_days, lte: 365}
""",
        check_params=checker("path", grammar.path_problem),
        reads=_path_param,
    )
)


def parse_key_values(text: str, separator: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if separator == "=":
            key, sep, value = line.partition("=")
            if not sep:
                continue
        else:
            parts = line.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
        settings[key.strip().lower()] = value.strip()
    return settings


@KEY_VALUE_FILE.collector("linux", "darwin", "windows")
def collect_key_value_file(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    if host.stat(path) is None:
        return {"exists": False, "settings": {}, "numbers": {}}
    settings = parse_key_values(host.read_text(path), params["separator"])
    # Only plain decimals: a leading zero often means octal (UMASK 027), so it stays a string.
    numbers = {k: int(v) for k, v in settings.items() if re.fullmatch(r"-?(0|[1-9][0-9]*)", v)}
    return {"exists": True, "settings": settings, "numbers": numbers}


# --- command -------------------------------------------------------------------------------------------

COMMAND = register(
    ProbeSpec(
        name="command",
        description="Runs a command (an argument list, never a shell) with a timeout and an output cap",
        params=(
            Field("argv", "array", "The program and its arguments", items="string"),
            Field("timeout", "integer", "Seconds before the command is killed", required=False, default=30),
            Field("max_output", "integer", "Bytes of output kept", required=False, default=1048576),
            Field(
                "parse",
                "string",
                "How stdout is read: text, lines or json",
                required=False,
                default="text",
                enum=("text", "lines", "json"),
            ),
        ),
        facts=(
            Field("exit_code", "integer", "The command's exit status"),
            Field("stdout", "string", "Standard output (capped)"),
            Field("stderr", "string", "Standard error (capped)"),
            Field(
                "lines",
                "array",
                "Non-empty lines of stdout, when parse is lines",
                items="string",
                required=False,
            ),
            Field("json", "object", "stdout parsed as JSON, when parse is json", required=False, nullable=True),
            Field("truncated", "boolean", "Output went past max_output and was cut"),
        ),
        example="""\
- id: no-world-writable-root-path
  title: root's PATH has no world-writable directory
  description: Lists the directories of the default PATH that anyone may write.
  rationale: A writable PATH entry lets any user plant a program that root runs.
  remediation: Remove the write bit for others from the listed directories.
  severity: medium
  platforms: [linux]
  probe:
    name: command
    params: {argv: [find, /usr/local/bin, /usr/bin, -maxdepth, "0", -perm, "-0002"], parse: lines}
  expect: {fact: lines, count: {eq: 0}}
""",
    )
)


def _command(host: Host, params: Params) -> Facts:
    argv = params["argv"]
    if not argv:
        raise ProbeError("command probe needs a non-empty argv")
    result = host.run(list(argv), timeout=float(params["timeout"]), max_output=int(params["max_output"]))
    facts: Facts = {
        "exit_code": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "truncated": result.truncated,
    }
    if params["parse"] == "lines":
        facts["lines"] = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    elif params["parse"] == "json":
        if result.truncated:
            raise ProbeError(f"output of {shlex.join(argv)} went past {params['max_output']} bytes; cannot parse JSON")
        try:
            parsed = json.loads(result.stdout) if result.stdout.strip() else None
        except json.JSONDecodeError as exc:
            raise ProbeError(f"output of {shlex.join(argv)} is not JSON: {exc}") from exc
        facts["json"] = parsed if isinstance(parsed, dict) or parsed is None else {"value": parsed}
    return facts


COMMAND.collector("linux", "darwin", "windows")(_command)


# --- sysctl --------------------------------------------------------------------------------------------

SYSCTL = register(
    ProbeSpec(
        name="sysctl",
        description="A kernel parameter (Linux /proc/sys, macOS sysctl)",
        params=(
            Field(
                "name",
                "string",
                "Parameter name, e.g. net.ipv4.ip_forward (never name=value)",
                pattern=grammar.SYSCTL_PATTERN,
                max_length=512,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The parameter exists on this kernel"),
            Field("value", "string", "Its value, whitespace collapsed", nullable=True),
            Field("int_value", "integer", "Its value as a whole number, when it is one", nullable=True),
        ),
        example="""\
- id: kernel-aslr
  title: Address space layout randomisation is fully on
  description: Reads kernel.randomize_va_space.
  rationale: ASLR makes memory-corruption exploits much harder.
  remediation: Set kernel.randomize_va_space = 2 in /etc/sysctl.d/.
  severity: medium
  platforms: [linux]
  probe: {name: sysctl, params: {name: kernel.randomize_va_space}}
  expect: {fact: int_value, eq: 2}
""",
        check_params=checker("name", grammar.sysctl_name_problem),
    )
)


def sysctl_facts(raw: str | None) -> Facts:
    if raw is None:
        return {"exists": False, "value": None, "int_value": None}
    value = " ".join(raw.split())
    int_value = int(value) if re.fullmatch(r"-?[0-9]+", value) else None
    return {"exists": True, "value": value, "int_value": int_value}


@SYSCTL.collector("linux")
def collect_sysctl_linux(host: Host, params: Params) -> Facts:
    name = require(grammar.sysctl_name_problem, params["name"], "linux")
    path = "/proc/sys/" + name.replace(".", "/")  # the grammar leaves no `..` and no empty component
    if host.stat(path) is None:
        return sysctl_facts(None)
    return sysctl_facts(host.read_text(path))


@SYSCTL.collector("darwin")
def collect_sysctl_darwin(host: Host, params: Params) -> Facts:
    # `name=value` would write the setting: the grammar has no `=`, and `--` ends the options.
    result = host.run(["sysctl", "-n", "--", require(grammar.sysctl_name_problem, params["name"], "darwin")])
    if not result.ok:
        if "unknown oid" in result.stderr:
            return sysctl_facts(None)
        raise ProbeError(result.describe_failure())
    return sysctl_facts(result.stdout)


# --- service -------------------------------------------------------------------------------------------

SERVICE = register(
    ProbeSpec(
        name="service",
        description="A service's state: installed, running, started at boot",
        params=(
            Field(
                "name",
                "string",
                "Unit (Linux), service (Windows) or launchd label (macOS)",
                pattern=grammar.SERVICE_PATTERN,
            ),
        ),
        facts=(
            Field("exists", "boolean", "The service is installed"),
            Field("active", "boolean", "It is running now"),
            Field("enabled", "boolean", "It starts at boot", nullable=True),
            Field("state", "string", "The platform's own word for its state, e.g. active, Running"),
        ),
        example="""\
- id: auditd-running
  title: The audit daemon is running and enabled
  description: Reads the state of auditd.service.
  rationale: Without auditd, security-relevant events are not recorded.
  remediation: apt install auditd && systemctl enable --now auditd
  severity: medium
  platforms: [linux]
  probe: {name: service, params: {name: auditd}}
  expect:
    all:
      - {fact: active, eq: true}
      - {fact: enabled, eq: true}
""",
        check_params=checker("name", grammar.service_name_problem),
    )
)


def parse_systemctl_show(text: str) -> Facts:
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    load = props.get("LoadState", "")
    active = props.get("ActiveState", "")
    enabled_state = props.get("UnitFileState", "")
    if load in ("not-found", "") or (load == "masked" and not enabled_state):
        return {"exists": False, "active": False, "enabled": False, "state": load or "not-found"}
    enabled: bool | None
    if enabled_state in ("enabled", "enabled-runtime", "alias", "static", "indirect", "generated"):
        enabled = enabled_state in ("enabled", "enabled-runtime", "alias")
        if enabled_state in ("static", "indirect", "generated"):
            enabled = None  # started by another unit or generated: "enabled at boot" is not defined
    else:
        enabled = False
    return {"exists": True, "active": active in ("active", "reloading"), "enabled": enabled, "state": active}


@SERVICE.collector("linux")
def collect_service_linux(host: Host, params: Params) -> Facts:
    name = require(grammar.service_name_problem, params["name"], "linux")
    result = host.run(
        ["systemctl", "show", "--property=LoadState,ActiveState,SubState,UnitFileState", "--no-pager", "--", name]
    )
    if not result.ok:
        if "not been booted with systemd" in result.stderr:
            raise ProbeError("systemd is not the init system here: service state cannot be read with systemctl")
        raise ProbeError(result.describe_failure())
    return parse_systemctl_show(result.stdout)


@SERVICE.collector("windows")
def collect_service_windows(host: Host, params: Params) -> Facts:
    name = require(grammar.service_name_problem, params["name"], "windows")
    return parse_windows_service(powershell_json(host, WINDOWS_SERVICE_SCRIPT, params={"name": name}))


WINDOWS_SERVICE_SCRIPT = (
    READ_PARAMS + "$s = Get-Service -Name $p.name -ErrorAction SilentlyContinue; "
    "if ($s) { $s | Select-Object Name,@{n='Status';e={[string]$_.Status}},"
    "@{n='StartType';e={[string]$_.StartType}} | ConvertTo-Json -Compress } else { 'null' }"
)


def parse_windows_service(data: Any) -> Facts:
    items = as_objects(data, "Get-Service")
    if not items:
        return {"exists": False, "active": False, "enabled": False, "state": "not-found"}
    service = items[0]
    status = str(service.get("Status", ""))
    start = str(service.get("StartType", ""))
    return {
        "exists": True,
        "active": status == "Running",
        "enabled": start in ("Automatic", "Boot", "System"),
        "state": status,
    }


@SERVICE.collector("darwin")
def collect_service_darwin(host: Host, params: Params) -> Facts:
    label = require(grammar.service_name_problem, params["name"], "darwin")
    result = host.run(["launchctl", "list"])  # the label is looked up in the listing, never passed
    if not result.ok:
        raise ProbeError(result.describe_failure())
    return parse_launchctl_list(result.stdout, label)


def parse_launchctl_list(text: str, label: str) -> Facts:
    for line in text.splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == label:
            running = parts[0] != "-"
            return {
                "exists": True,
                "active": running,
                "enabled": None,
                "state": "running" if running else "loaded",
            }
    return {"exists": False, "active": False, "enabled": False, "state": "not-loaded"}


# --- package -------------------------------------------------------------------------------------------

PACKAGE = register(
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


def parse_dpkg_query(text: str, returncode: int) -> Facts:
    for line in text.splitlines():
        status, _, version = line.partition("\t")
        if status.strip().endswith(" installed"):
            return {"installed": True, "version": version.strip() or None, "manager": "dpkg"}
    return {"installed": False, "version": None, "manager": "dpkg"}


def parse_rpm_query(text: str, returncode: int) -> Facts:
    if returncode != 0 or "is not installed" in text:
        return {"installed": False, "version": None, "manager": "rpm"}
    first = text.strip().splitlines()[0] if text.strip() else ""
    return {"installed": bool(first), "version": first or None, "manager": "rpm"}


@PACKAGE.collector("linux")
def collect_package_linux(host: Host, params: Params) -> Facts:
    # A name such as --pipe=... or --eval=%(...) would make rpm run a command: the grammar refuses any
    # name that could be an option, and `--` ends the options anyway.
    name = require(grammar.package_name_problem, params["name"], "linux")
    if host.which("dpkg-query"):
        result = host.run(["dpkg-query", "-W", "-f=${Status}\t${Version}\n", "--", name])
        if result.returncode not in (0, 1):
            raise ProbeError(result.describe_failure())
        return parse_dpkg_query(result.stdout, result.returncode)
    if host.which("rpm"):
        result = host.run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\n", "--", name])
        return parse_rpm_query(result.stdout + result.stderr, result.returncode)
    raise ProbeError("no package manager found (looked for dpkg-query and rpm)")


@PACKAGE.collector("windows")
def collect_package_windows(host: Host, params: Params) -> Facts:
    name = require(grammar.package_name_problem, params["name"], "windows")
    items = as_list(powershell_json(host, WINDOWS_PACKAGE_SCRIPT, params={"name": name}))
    if not items:
        return {"installed": False, "version": None, "manager": "registry"}
    return {"installed": True, "version": items[0].get("DisplayVersion"), "manager": "registry"}


WINDOWS_PACKAGE_SCRIPT = (
    READ_PARAMS + "$keys = 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*',"
    "'HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*'; "
    "Get-ItemProperty $keys -ErrorAction SilentlyContinue | Where-Object { $_.DisplayName -like $p.name } | "
    "Select-Object DisplayName,DisplayVersion | ConvertTo-Json -Compress"
)


@PACKAGE.collector("darwin")
def collect_package_darwin(host: Host, params: Params) -> Facts:
    # The grammar starts with a letter or digit, so the id is never read as an option.
    result = host.run(["pkgutil", "--pkg-info", require(grammar.package_name_problem, params["name"], "darwin")])
    if not result.ok:
        return {"installed": False, "version": None, "manager": "pkgutil"}
    version = None
    for line in result.stdout.splitlines():
        if line.startswith("version:"):
            version = line.split(":", 1)[1].strip()
    return {"installed": True, "version": version, "manager": "pkgutil"}


# --- process -------------------------------------------------------------------------------------------

PROCESS = register(
    ProbeSpec(
        name="process",
        description="Running processes with a given name (or whose command line matches a pattern)",
        params=(
            Field("name", "string", "Exact process name", required=False, pattern=r"^[^\x00-\x1f\x7f]{1,255}$"),
            Field(
                "cmdline_pattern",
                "string",
                "Regular expression searched in the joined command line (policies from the collector: only "
                "where the agent's local config allows, agent.pushed_process_cmdlines)",
                required=False,
                max_length=1000,
                regex=True,
            ),
        ),
        facts=(
            Field("running", "boolean", "At least one such process runs"),
            Field("count", "integer", "How many run"),
            Field(
                "processes",
                "array",
                "The matching processes",
                fields=(
                    Field("pid", "integer", "Process id"),
                    Field("name", "string", "Process name"),
                    Field("user", "string", "User it runs as"),
                    Field(
                        "cmdline",
                        "string",
                        "Command line, joined with spaces (null for policies from the collector unless the agent's "
                        "local config allows them, agent.pushed_process_cmdlines)",
                        nullable=True,
                    ),
                ),
            ),
        ),
        example="""\
- id: sshd-not-as-user
  title: The SSH daemon runs as root only
  description: Lists sshd processes and the users they run as.
  rationale: An sshd under an ordinary account suggests a planted backdoor.
  remediation: Investigate and stop sshd processes not started by the system.
  severity: high
  platforms: [linux]
  probe: {name: process, params: {name: sshd}}
  expect: {fact: processes, every_item: {fact: user, eq: root}}
""",
    )
)


def select_processes(processes: list[dict[str, object]], name: str | None, pattern: str | None) -> Facts:
    regex = re.compile(pattern) if pattern else None
    matched: list[dict[str, Any]] = []
    for proc in processes:
        cmdline_parts = proc.get("cmdline") or []
        cmdline = (
            " ".join(str(part) for part in cmdline_parts) if isinstance(cmdline_parts, list) else str(cmdline_parts)
        )
        if name is not None and proc.get("name") != name:
            continue
        if regex is not None and not regex.search(cmdline):
            continue
        matched.append(
            {
                "pid": int(str(proc["pid"])),
                "name": str(proc.get("name", "")),
                "user": str(proc.get("user", "")),
                "cmdline": cmdline,
            }
        )
    matched.sort(key=lambda p: p["pid"])
    return {"running": bool(matched), "count": len(matched), "processes": matched}


@PROCESS.collector("linux", "darwin", "windows")
def collect_process(host: Host, params: Params) -> Facts:
    if not params.get("name") and not params.get("cmdline_pattern"):
        raise ProbeError("process probe needs `name` or `cmdline_pattern`")
    return select_processes(host.processes(), params.get("name"), params.get("cmdline_pattern"))


# --- os ------------------------------------------------------------------------------------------------

OS = register(
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


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                parts = shlex.split(value)
            except ValueError:
                parts = [value.strip("\"'")]
            values[key] = parts[0] if parts else ""
    return values


def _stripped(text: str | None) -> str | None:
    return None if text is None else text.strip()


@OS.collector("linux")
def collect_os_linux(host: Host, params: Params) -> Facts:
    text = None
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _stripped(read_optional(host, path, unreadable="missing"))
        if text is not None:
            break
    if text is None:
        raise ProbeError("neither /etc/os-release nor /usr/lib/os-release exists")
    release = parse_os_release(text)
    arch = None
    try:
        uname = host.run(["uname", "-m"], timeout=10)
        arch = uname.stdout.strip() or None
    except CommandMissing:
        pass
    return {
        "platform": "linux",
        "name": release.get("PRETTY_NAME") or release.get("NAME", "Linux"),
        "id": release.get("ID", "linux").lower(),
        "id_like": release.get("ID_LIKE", "").lower().split(),
        "version": release.get("VERSION_ID", ""),
        "build": None,
        "kernel": _stripped(read_optional(host, "/proc/sys/kernel/osrelease", unreadable="missing")),
        "arch": arch,
        "hostname": _stripped(read_optional(host, "/proc/sys/kernel/hostname", unreadable="missing")),
    }


@OS.collector("windows")
def collect_os_windows(host: Host, params: Params) -> Facts:
    data = powershell_json(
        host,
        "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber,OSArchitecture,"
        "CSName,ProductType | ConvertTo-Json -Compress",
    )
    return parse_windows_os(data)


def parse_windows_os(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Win32_OperatingSystem returned nothing")
    caption = str(data.get("Caption", "")).strip()
    arch = str(data.get("OSArchitecture", "")) or None
    return {
        "platform": "windows",
        "name": caption,
        "id": "windows_server" if "Server" in caption else "windows",
        "id_like": [],
        "version": str(data.get("Version", "")),
        "build": str(data.get("BuildNumber", "")) or None,
        "kernel": str(data.get("Version", "")) or None,
        "arch": {"64-bit": "x86_64", "32-bit": "x86"}.get(arch or "", arch),
        "hostname": data.get("CSName"),
    }


@OS.collector("darwin")
def collect_os_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["sw_vers"])
    if not result.ok:
        raise ProbeError(result.describe_failure())
    values = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    kernel = host.run(["uname", "-r"]).stdout.strip() or None
    arch = host.run(["uname", "-m"]).stdout.strip() or None
    hostname = host.run(["hostname"]).stdout.strip() or None
    return {
        "platform": "darwin",
        "name": f"{values.get('ProductName', 'macOS')} {values.get('ProductVersion', '')}".strip(),
        "id": "macos",
        "id_like": [],
        "version": values.get("ProductVersion", ""),
        "build": values.get("BuildVersion"),
        "kernel": kernel,
        "arch": arch,
        "hostname": hostname,
    }
