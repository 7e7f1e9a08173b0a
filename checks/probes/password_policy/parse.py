"""password_policy's pure parsers: login.defs, pwquality.conf, faillock.conf and the PAM stacks (Linux),
and the WinNT provider's answer (Windows)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checks.probes.common import parse_key_values
from checks.probes.host import ProbeError
from checks.probes.registry import UNKNOWN_BECAUSE, Facts


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
