"""Accounts: local administrators, the local password policy and the screen lock.

Group names are localised on Windows ("Administratoren"), so the administrators group is found by its
well-known SID, S-1-5-32-544, and the password policy is read from the WinNT provider, not `net accounts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checks.probes.common import raise_for_failure, read_optional
from checks.probes.generic import parse_key_values
from checks.probes.host import Host, ProbeError
from checks.probes.registry import UNKNOWN_BECAUSE, Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import as_list, powershell_json

# --- local administrators ------------------------------------------------------------------------------

LOCAL_ADMINS = register(
    ProbeSpec(
        name="local_admins",
        description="Accounts with local administrator rights: Linux sudo/wheel/admin groups and UID 0, Windows "
        "Administrators (by SID), macOS admin group",
        facts=(
            Field(
                "admins",
                "array",
                "The administrator accounts",
                fields=(
                    Field("name", "string", "Account (DOMAIN\\user on Windows)"),
                    Field("via", "string", "Why it is an administrator: group name, uid0"),
                    Field("kind", "string", "user, group or unknown"),
                ),
            ),
            Field("count", "integer", "How many administrator accounts (users and groups)"),
            Field("uid0_accounts", "array", "Accounts other than root with UID 0 (Linux, macOS)", items="string"),
            Field(
                "builtin_admin_enabled",
                "boolean",
                "The built-in Administrator account (RID 500) is enabled (Windows)",
                nullable=True,
            ),
            Field("notes", "array", "What was not read, and why", items="string"),
        ),
        example="""\
- id: few-local-admins
  title: No more than two local administrator accounts
  description: Lists the accounts with administrator rights on the machine.
  rationale: Every administrator account is a way to take over the whole machine.
  remediation: Remove administrator rights from accounts that do not need them.
  severity: medium
  probe: local_admins
  expect: {fact: count, lte: 2}
""",
    )
)

LINUX_ADMIN_GROUPS = ("sudo", "wheel", "admin")


def parse_linux_admins(passwd: str, group: str) -> Facts:
    users: dict[str, tuple[int, int]] = {}
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            users[parts[0]] = (int(parts[2]), int(parts[3]))
    admins: list[dict[str, str]] = []
    seen: set[str] = set()
    for name, (uid, _) in sorted(users.items()):
        if uid == 0:
            admins.append({"name": name, "via": "uid0", "kind": "user"})
            seen.add(name)
    for line in group.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or parts[0] not in LINUX_ADMIN_GROUPS or not parts[2].isdigit():
            continue
        gid = int(parts[2])
        members = {m for m in parts[3].split(",") if m}
        members |= {u for u, (_, primary) in users.items() if primary == gid}
        for member in sorted(members - seen):
            admins.append({"name": member, "via": parts[0], "kind": "user"})
            seen.add(member)
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": sorted(u for u, (uid, _) in users.items() if uid == 0 and u != "root"),
        "builtin_admin_enabled": None,
        "notes": ["sudoers rules are not read (root-only): only the sudo, wheel and admin groups and UID 0 count"],
    }


@LOCAL_ADMINS.collector("linux")
def collect_local_admins_linux(host: Host, params: Params) -> Facts:
    return parse_linux_admins(host.read_text("/etc/passwd"), host.read_text("/etc/group"))


WINDOWS_ADMINS_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$members = @(Get-LocalGroupMember -SID 'S-1-5-32-544' | Select-Object Name,
  @{n='ObjectClass';e={[string]$_.ObjectClass}}, @{n='PrincipalSource';e={[string]$_.PrincipalSource}},
  @{n='SID';e={[string]$_.SID}})
$builtin = Get-LocalUser | Where-Object { $_.SID.Value -like 'S-1-5-21-*-500' } | Select-Object -First 1
[pscustomobject]@{ Members = $members; BuiltinAdministratorEnabled = $(if ($builtin) { $builtin.Enabled }) } |
  ConvertTo-Json -Depth 3 -Compress
"""


def parse_windows_admins(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Get-LocalGroupMember returned nothing")
    admins = []
    for member in as_list(data.get("Members")):
        object_class = str(member.get("ObjectClass") or "").lower()
        # ObjectClass is localised too ("Benutzer", "Gruppe"); the SID says a group when it is a builtin alias.
        kind = (
            "group"
            if object_class in ("group", "gruppe", "groupe", "grupo")
            else ("user" if object_class in ("user", "benutzer", "utilisateur", "usuario") else "unknown")
        )
        admins.append({"name": str(member.get("Name")), "via": "Administrators (S-1-5-32-544)", "kind": kind})
    enabled = data.get("BuiltinAdministratorEnabled")
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": [],
        "builtin_admin_enabled": enabled if isinstance(enabled, bool) else None,
        "notes": ["members of nested domain groups are not expanded"],
    }


@LOCAL_ADMINS.collector("windows")
def collect_local_admins_windows(host: Host, params: Params) -> Facts:
    return parse_windows_admins(powershell_json(host, WINDOWS_ADMINS_SCRIPT))


def parse_dscl_group_membership(text: str) -> list[str]:
    """`dscl . -read /Groups/admin GroupMembership` -> member names (the value may wrap onto a new line)."""
    _, _, value = text.partition("GroupMembership:")
    return value.split()


@LOCAL_ADMINS.collector("darwin")
def collect_local_admins_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["dscl", ".", "-read", "/Groups/admin", "GroupMembership"], timeout=30)
    raise_for_failure(result, "dscl . -read /Groups/admin")
    members = parse_dscl_group_membership(result.stdout)
    admins = [{"name": m, "via": "admin", "kind": "user"} for m in members]
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": [],
        "builtin_admin_enabled": None,
        "notes": ["members of nested groups (NestedGroups) are not expanded"],
    }


# --- password policy -----------------------------------------------------------------------------------

PASSWORD_POLICY = register(
    ProbeSpec(
        name="password_policy",
        description="The local password policy: minimum length, maximum age and the lockout threshold (Linux "
        "login.defs, pwquality and faillock; Windows local policy)",
        facts=(
            Field("min_length", "integer", "Shortest password accepted", nullable=True),
            Field("max_age_days", "integer", "Days before a password must change (null: never)", nullable=True),
            Field("lockout_threshold", "integer", "Failed logons before lockout (0: never locks)", nullable=True),
            Field("notes", "array", "Where each value came from; what is not configured", items="string"),
            Field(UNKNOWN_BECAUSE, "object", "For each fact that is null: why, in words (an error result shows it)"),
        ),
        example="""\
- id: password-length
  title: Local passwords are at least 12 characters
  description: Reads the minimum password length of the local policy.
  rationale: Cyber Essentials asks for 12 characters where no other protection applies.
  remediation: Set the minimum password length to 12 or more.
  severity: medium
  platforms: [windows]
  probe: password_policy
  expect: {fact: min_length, gte: 12}
""",
    )
)


def _int_setting(settings: dict[str, str], key: str) -> int | None:
    value = settings.get(key, "")
    return int(value) if re.fullmatch(r"-?\d+", value) else None


@dataclass(frozen=True)
class PamLine:
    kind: str  # auth, password, account, session
    module: str  # pam_faillock, pam_pwquality, ... (no directory, no .so)
    args: dict[str, str]  # minlen=14 -> {"minlen": "14"}; a bare flag maps to ""


def parse_pam_stack(text: str) -> list[PamLine]:
    """The module lines of a PAM file (`type control module args`; control may be `[a=b c=d]`)."""
    lines: list[PamLine] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0].startswith("@"):
            continue
        rest = words[1:]
        if rest[0].startswith("["):
            # A bracketed control may hold spaces: it ends at the first word ending in `]`.
            end = next((i for i, w in enumerate(rest) if w.endswith("]")), len(rest) - 1)
            rest = rest[end + 1 :]
        else:
            rest = rest[1:]
        if not rest:
            continue
        module = rest[0].rsplit("/", 1)[-1].removesuffix(".so")
        args = {k: v for k, _, v in (w.partition("=") for w in rest[1:])}
        lines.append(PamLine(words[0].lstrip("-"), module, args))
    return lines


def _first_int(*values: str | None) -> int | None:
    for value in values:
        number = _int(value)
        if number is not None:
            return number
    return None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?\d+", value) else None


# Built-in defaults, from the manual pages: pwquality.conf(5) minlen 8, pam_unix(8) minlen 6,
# pam_faillock(8) deny 3.
PWQUALITY_DEFAULT_MINLEN = 8
PAM_UNIX_DEFAULT_MINLEN = 6
FAILLOCK_DEFAULT_DENY = 3
# pam_pwquality's credits: above 0, each such character counts as one more towards minlen.
CREDITS = ("dcredit", "ucredit", "lcredit", "ocredit")


def _min_length(
    defs: dict[str, str], pwquality: dict[str, str], password_stack: list[PamLine] | None, notes: list[str]
) -> int | None:
    if password_stack is None:
        # No PAM password stack found: the settings files are all there is.
        value = _int(pwquality.get("minlen"))
        if value is None:
            value = _int_setting(defs, "pass_min_len")
            notes.append(
                "pwquality sets no minlen; PASS_MIN_LEN from login.defs used"
                if value is not None
                else "no minimum length is configured (pwquality minlen / PASS_MIN_LEN)"
            )
        return value
    lengths: list[int] = []
    quality = [p for p in password_stack if p.kind == "password" and p.module in ("pam_pwquality", "pam_cracklib")]
    for line in quality:
        # Module arguments override pwquality.conf, which overrides the built-in default.
        value = _first_int(line.args.get("minlen"), pwquality.get("minlen"))
        lengths.append(PWQUALITY_DEFAULT_MINLEN if value is None else value)
        credits = [k for k in CREDITS if (_first_int(line.args.get(k), pwquality.get(k)) or 0) > 0]
        if credits:
            notes.append(
                f"{line.module} gives credits ({', '.join(credits)}): passwords with those characters may be shorter"
            )
    for line in (p for p in password_stack if p.kind == "password" and p.module == "pam_unix"):
        value = _first_int(line.args.get("minlen"))
        lengths.append(PAM_UNIX_DEFAULT_MINLEN if value is None else value)
    if not quality:
        notes.append(
            "pam_pwquality is not in the password stack: only pam_unix's minimum applies (6 unless minlen= is given)"
        )
    if not lengths:
        notes.append("neither pam_pwquality nor pam_unix is in the password stack: the minimum length is unknown")
        return None
    return max(lengths)


def _lockout(faillock: dict[str, str], auth_stack: list[PamLine] | None, notes: list[str]) -> int | None:
    configured = _int(faillock.get("deny"))
    if auth_stack is None:
        if configured is None:
            notes.append("no faillock deny setting: lockout threshold unknown")
        return configured
    lines = [p for p in auth_stack if p.kind == "auth" and p.module == "pam_faillock"]
    if not lines:
        notes.append("pam_faillock is not in the auth stack: accounts never lock, whatever faillock.conf says")
        return 0
    # Arguments override faillock.conf, which overrides the built-in default.
    value = _first_int(*(p.args.get("deny") for p in lines), faillock.get("deny"))
    return FAILLOCK_DEFAULT_DENY if value is None else value


def parse_linux_password_policy(
    login_defs: str | None,
    pwquality: list[str] | str | None,
    faillock: str | None,
    password_stack: str | None = None,
    auth_stack: str | None = None,
) -> Facts:
    """The policy from login.defs, pwquality.conf (the .d files first, then the main file: later values
    win, as libpwquality reads them), faillock.conf and the PAM stacks. A stack that is not given (None)
    leaves the settings files to speak alone."""
    notes: list[str] = []
    defs = parse_key_values(login_defs or "", "whitespace")
    max_days = _int_setting(defs, "pass_max_days")
    if max_days is not None and max_days >= 99999:
        max_days = None
        notes.append("PASS_MAX_DAYS is 99999: passwords never expire")
    quality: dict[str, str] = {}
    for text in [pwquality] if isinstance(pwquality, str) else (pwquality or []):
        quality.update(parse_key_values(text, "="))
    password = None if password_stack is None else parse_pam_stack(password_stack)
    auth = None if auth_stack is None else parse_pam_stack(auth_stack)
    min_length = _min_length(defs, quality, password, notes)
    lockout = _lockout(parse_key_values(faillock or "", "="), auth, notes)
    unknown: dict[str, str] = {}
    if min_length is None:
        unknown["min_length"] = notes_about(notes, "minimum length") or "no minimum length is configured"
    if lockout is None:
        unknown["lockout_threshold"] = notes_about(notes, "lockout") or "no lockout is configured"
    return {
        "min_length": min_length,
        "max_age_days": max_days,
        "lockout_threshold": lockout,
        "notes": notes,
        UNKNOWN_BECAUSE: unknown,
    }


def notes_about(notes: list[str], topic: str) -> str | None:
    return next((n for n in notes if topic in n), None)


PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
# Debian and Ubuntu keep the stacks in common-*; Red Hat and SUSE-like systems in system-auth.
PAM_PASSWORD_FILES = ("/etc/pam.d/common-password", "/etc/pam.d/system-auth")
PAM_AUTH_FILES = ("/etc/pam.d/common-auth", "/etc/pam.d/system-auth")


def _first_existing(host: Host, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        text = read_optional(host, path)
        if text is not None:
            return text
    return None


@PASSWORD_POLICY.collector("linux")
def collect_password_policy_linux(host: Host, params: Params) -> Facts:
    snippets = [
        host.read_text(f"{PWQUALITY_DIR}/{name}")
        for name in sorted(host.list_dir(PWQUALITY_DIR))
        if name.endswith(".conf")
    ]
    main = read_optional(host, "/etc/security/pwquality.conf")
    return parse_linux_password_policy(
        read_optional(host, "/etc/login.defs"),
        snippets + ([main] if main is not None else []),
        read_optional(host, "/etc/security/faillock.conf"),
        _first_existing(host, PAM_PASSWORD_FILES),
        _first_existing(host, PAM_AUTH_FILES),
    )


WINDOWS_PASSWORD_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$c = [ADSI]"WinNT://$env:COMPUTERNAME"
[pscustomobject]@{
  MinPasswordLength = [int]$c.MinPasswordLength.Value
  MaxPasswordAge = [int64]$c.MaxPasswordAge.Value
  MaxBadPasswordsAllowed = [int]$c.MaxBadPasswordsAllowed.Value
} | ConvertTo-Json -Compress
"""


def parse_windows_password_policy(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("the WinNT provider returned no password policy")
    max_age = data.get("MaxPasswordAge")
    notes = ["local policy from the WinNT provider; domain accounts follow the domain's policy"]
    max_days: int | None = None
    if isinstance(max_age, int) and max_age > 0 and max_age < 0xFFFFFFFF:
        max_days = max_age // 86400
    else:
        notes.append("maximum password age is unlimited")
    min_length = data.get("MinPasswordLength")
    lockout = data.get("MaxBadPasswordsAllowed")
    return {
        "min_length": min_length if isinstance(min_length, int) else None,
        "max_age_days": max_days,
        "lockout_threshold": lockout if isinstance(lockout, int) else None,
        "notes": notes,
        UNKNOWN_BECAUSE: {},
    }


@PASSWORD_POLICY.collector("windows")
def collect_password_policy_windows(host: Host, params: Params) -> Facts:
    return parse_windows_password_policy(powershell_json(host, WINDOWS_PASSWORD_SCRIPT))


# --- screen lock ---------------------------------------------------------------------------------------

SCREEN_LOCK = register(
    ProbeSpec(
        name="screen_lock",
        description="The machine-wide idle screen lock (Windows machine inactivity limit; macOS screen lock "
        "after the screen saver; Linux: GNOME's settings, where GNOME is installed)",
        facts=(
            Field(
                "desktop",
                "string",
                "The desktop whose lock was read: windows, macos, gnome; null on Linux without GNOME",
                nullable=True,
            ),
            Field("enabled", "boolean", "The screen locks after inactivity", nullable=True),
            Field("timeout_seconds", "integer", "Idle seconds before the lock", nullable=True),
            Field("source", "string", "Where the setting was read"),
        ),
        example="""\
- id: screen-locks
  title: The screen locks within 15 minutes of inactivity
  description: Reads the machine inactivity limit.
  rationale: An unattended, unlocked session gives anyone nearby the user's access.
  remediation: Set "Interactive logon - Machine inactivity limit" to 900 seconds or less.
  severity: medium
  platforms: [windows]
  probe: screen_lock
  expect:
    all:
      - {fact: enabled, eq: true}
      - {fact: timeout_seconds, lte: 900}
""",
    )
)

WINDOWS_SCREEN_LOCK_SCRIPT = r"""
$key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
$value = (Get-ItemProperty -Path $key -Name InactivityTimeoutSecs -ErrorAction SilentlyContinue).InactivityTimeoutSecs
[pscustomobject]@{ InactivityTimeoutSecs = $value } | ConvertTo-Json -Compress
"""


def parse_windows_screen_lock(data: Any) -> Facts:
    value = data.get("InactivityTimeoutSecs") if isinstance(data, dict) else None
    source = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\InactivityTimeoutSecs"
    if not isinstance(value, int) or value <= 0:
        return {"desktop": "windows", "enabled": False, "timeout_seconds": None, "source": source + " (not set)"}
    return {"desktop": "windows", "enabled": True, "timeout_seconds": value, "source": source}


@SCREEN_LOCK.collector("windows")
def collect_screen_lock_windows(host: Host, params: Params) -> Facts:
    return parse_windows_screen_lock(powershell_json(host, WINDOWS_SCREEN_LOCK_SCRIPT))


def parse_sysadminctl_screenlock(text: str) -> Facts:
    """`sysadminctl -screenLock status` (it writes to stderr): `screenLock delay is 300 seconds`,
    `screenLock delay is immediate`, `screenLock is off`."""
    source = "sysadminctl -screenLock status"
    if re.search(r"screenLock is off", text, re.I):
        return {"desktop": "macos", "enabled": False, "timeout_seconds": None, "source": source}
    if re.search(r"screenLock delay is immediate", text, re.I):
        return {"desktop": "macos", "enabled": True, "timeout_seconds": 0, "source": source}
    match = re.search(r"screenLock delay is (\d+) seconds", text, re.I)
    if match:
        return {"desktop": "macos", "enabled": True, "timeout_seconds": int(match.group(1)), "source": source}
    raise ProbeError(f"unrecognised sysadminctl output: {text.strip()[:200]!r}")


@SCREEN_LOCK.collector("darwin")
def collect_screen_lock_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["sysadminctl", "-screenLock", "status"], timeout=30)
    raise_for_failure(result, "sysadminctl -screenLock status")
    return parse_sysadminctl_screenlock(result.stdout + "\n" + result.stderr)


# GNOME keeps the lock in three settings: the session goes idle after idle-delay seconds (0: never), and
# then, when lock-enabled, the screen locks lock-delay seconds later.
GNOME_KEYS = (
    ("org.gnome.desktop.session", "idle-delay"),
    ("org.gnome.desktop.screensaver", "lock-enabled"),
    ("org.gnome.desktop.screensaver", "lock-delay"),
)
GNOME_SOURCE = (
    "gsettings as the agent's user: the machine's dconf defaults and locks (/etc/dconf/db) over GNOME's own; "
    "a user's own changes are not seen"
)


def parse_gsettings_value(text: str) -> bool | int:
    """One `gsettings get` answer: `true`, `false`, `uint32 300` or a bare number."""
    value = text.strip()
    if value in ("true", "false"):
        return value == "true"
    match = re.fullmatch(r"(?:u?int(?:32|64)\s+)?(\d+)", value)
    if match:
        return int(match.group(1))
    raise ProbeError(f"unrecognised gsettings value: {value[:100]!r}")


def gnome_screen_lock(values: dict[str, bool | int]) -> Facts:
    idle = values.get("idle-delay")
    lock = values.get("lock-enabled")
    delay = values.get("lock-delay")
    if not isinstance(idle, int) or isinstance(idle, bool) or not isinstance(lock, bool):
        raise ProbeError(f"gsettings gave unexpected values: {values!r}")
    enabled = lock and idle > 0
    timeout = idle + (delay if isinstance(delay, int) and not isinstance(delay, bool) else 0) if enabled else None
    return {"desktop": "gnome", "enabled": enabled, "timeout_seconds": timeout, "source": GNOME_SOURCE}


@SCREEN_LOCK.collector("linux")
def collect_screen_lock_linux(host: Host, params: Params) -> Facts:
    if not host.which("gnome-shell"):
        return {"desktop": None, "enabled": None, "timeout_seconds": None, "source": "no GNOME desktop (gnome-shell)"}
    if not host.which("gsettings"):
        raise ProbeError("GNOME is installed but gsettings is not (package libglib2.0-bin)")
    values: dict[str, bool | int] = {}
    for schema, key in GNOME_KEYS:
        result = host.run(["gsettings", "get", schema, key], timeout=30)
        raise_for_failure(result, f"gsettings get {schema} {key}")
        if "memory" in result.stderr and "backend" in result.stderr:
            # Without dconf's backend gsettings answers GNOME's defaults, not the machine's settings.
            raise ProbeError(
                "gsettings has no dconf backend (package dconf-gsettings-backend): the settings cannot be read"
            )
        values[key] = parse_gsettings_value(result.stdout)
    return gnome_screen_lock(values)
