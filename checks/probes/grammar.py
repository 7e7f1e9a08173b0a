"""What a probe parameter that reaches a program or a file may be.

A policy can come from the collector, and the agent runs as root: a package name such as `--pipe=id`
handed to `rpm` would run a command. So every parameter that reaches a program has a grammar, written
twice: a `pattern` in the probe's spec (the JSON Schema shows it, `policy validate` reports a mismatch with
file:line), the union of what any platform accepts; and a check per platform, which the loader runs for
each platform a check applies to and `collect` runs again before anything starts. Every grammar starts
with a letter or digit, so no value can be read as an option; the collectors also end options with `--`
where the tool accepts it.

The patterns are written in the common subset of Python's and ECMAScript's regular expressions (editors
validate with the latter) and are matched in full.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from checks.probes.host import ProbeError
from checks.probes.registry import ParamCheck, Params

Problem = Callable[[object, str], "str | None"]

# --- package names -------------------------------------------------------------------------------------

# dpkg and rpm: Debian policy's package names (letters, digits, + - .), with rpm's upper case and _, and
# an optional dpkg architecture qualifier (libc6:amd64).
LINUX_PACKAGE = r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,199}(:[a-z0-9-]{1,32})?"
# pkgutil package ids are reverse-DNS names: com.apple.pkg.XProtectPlistConfigData.
MACOS_PACKAGE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
# Windows display names ("Notepad++ (64-bit x64)", "7-Zip 23.01 (x64)"), matched with PowerShell's -like,
# so * and ? are wildcards. The name reaches PowerShell as data, never as script text.
WINDOWS_PACKAGE = r"[A-Za-z0-9*][A-Za-z0-9 ._+()&,@#*?-]{0,255}"
PACKAGE_PATTERN = r"^[A-Za-z0-9*][A-Za-z0-9 ._+~:()&,@#*?-]{0,255}$"

# --- service names -------------------------------------------------------------------------------------

# systemd unit names: letters, digits, : _ . - and @ for template instances (getty@tty1.service).
LINUX_SERVICE = r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,254}"
# Windows service (not display) names, e.g. WinDefend, MSSQL$SQLEXPRESS, "Bonjour Service".
WINDOWS_SERVICE = r"[A-Za-z0-9_][A-Za-z0-9_.$@ -]{0,255}"
# launchd labels: com.openssh.sshd.
MACOS_SERVICE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"
SERVICE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:$@ -]{0,255}$"

# --- kernel parameters ---------------------------------------------------------------------------------

# Dot-separated words; on Linux a / inside a name stands for a dot in a path component (eth0/100).
# Never `name=value`: macOS sysctl would write the setting.
LINUX_SYSCTL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}([./][A-Za-z0-9_-]{1,64}){0,15}"
MACOS_SYSCTL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9_-]{1,64}){0,15}"
SYSCTL_PATTERN = "^" + LINUX_SYSCTL + "$"

# --- paths ---------------------------------------------------------------------------------------------

# Absolute (/... or C:\...), without control characters (a newline or NUL in a path is never configuration).
# The same on every platform: a check without `platforms:` may name a path that exists on one of them only.
ABSOLUTE_PATH = r"(/|[A-Za-z]:[\\/])[^\x00-\x1f\x7f]{0,4095}"
PATH_PATTERN = "^" + ABSOLUTE_PATH + "$"

_PACKAGE_RULES = {
    "linux": (LINUX_PACKAGE, "a Linux package name (dpkg, rpm): a letter or digit, then letters, digits, . _ + ~ -"),
    "darwin": (MACOS_PACKAGE, "a macOS package id (pkgutil): a letter or digit, then letters, digits, . _ -"),
    "windows": (
        WINDOWS_PACKAGE,
        "a Windows program's display name: a letter, digit or *, then letters, digits, spaces and "
        ". _ + ( ) & , @ # * ? -",
    ),
}
_SERVICE_RULES = {
    "linux": (LINUX_SERVICE, "a systemd unit name: a letter, digit or _, then letters, digits, : _ . @ -"),
    "darwin": (MACOS_SERVICE, "a launchd label: a letter, digit or _, then letters, digits, _ . -"),
    "windows": (
        WINDOWS_SERVICE,
        "a Windows service name: a letter, digit or _, then letters, digits, spaces, _ . $ @ -",
    ),
}
_SYSCTL_RULES = {
    "linux": (LINUX_SYSCTL, "a Linux kernel parameter name: words of letters, digits, _ - separated by . (or /)"),
    "darwin": (MACOS_SYSCTL, "a macOS sysctl name: words of letters, digits, _ - separated by . (never name=value)"),
}
_PATH_RULES = {
    platform: (ABSOLUTE_PATH, "an absolute path (/... or C:\\...) without control characters")
    for platform in ("linux", "darwin", "windows")
}


def _problem(rules: dict[str, tuple[str, str]], value: object, platform: str) -> str | None:
    rule = rules.get(platform)
    if rule is None or not isinstance(value, str):
        return None
    pattern, what = rule
    if re.fullmatch(pattern, value) is None:
        return f"{ascii(value)[:80]} is not {what}"
    return None


def package_name_problem(name: object, platform: str) -> str | None:
    return _problem(_PACKAGE_RULES, name, platform)


def service_name_problem(name: object, platform: str) -> str | None:
    return _problem(_SERVICE_RULES, name, platform)


def sysctl_name_problem(name: object, platform: str) -> str | None:
    return _problem(_SYSCTL_RULES, name, platform)


def path_problem(path: object, platform: str) -> str | None:
    return _problem(_PATH_RULES, path, platform)


def checker(param: str, problem: Problem) -> ParamCheck:
    """A spec's `check_params` for one parameter checked by `problem(value, platform)`."""

    def check(params: Params, platform: str) -> list[tuple[str, str]]:
        found = problem(params.get(param), platform)
        return [] if found is None else [(param, found)]

    return check


def require(problem: Problem, value: str, platform: str) -> str:
    """`value`, once it fits the platform's grammar; a ProbeError (and nothing run) otherwise.

    Collectors call this right before a value reaches a program, whatever was checked earlier.
    """
    found = problem(value, platform)
    if found is not None:
        raise ProbeError(f"refused: {found}; nothing was run")
    return value
