"""Small helpers the endpoint probes share: optional reads, dates and ages, the `path` parameter, key/value
configuration text."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from checks.probes import grammar
from checks.probes.host import AccessDenied, CommandResult, Host, ProbeError
from checks.probes.registry import Field, Params


def read_optional(host: Host, path: str, *, unreadable: Literal["raise", "missing"] = "raise") -> str | None:
    """The file's text as read, or None when it does not exist.

    A file that exists but cannot be looked at or read (AccessDenied, or any other ProbeError) raises by
    default, so that the check is an `error` naming the file rather than a silent absence. With
    `unreadable="missing"` it counts as absent instead: for facts a probe reports only when it can (the
    `os` probe's kernel and host name)."""
    try:
        if host.stat(path) is None:
            return None
        return host.read_text(path)
    except ProbeError:
        if unreadable == "missing":
            return None
        raise


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def age_days(then: float | None, now: float) -> float | None:
    """Days from `then` to `now`, one decimal; never negative (clocks drift)."""
    if then is None:
        return None
    return round(max(now - then, 0.0) / 86400.0, 1)


def whole_days(then: float | None, now: float) -> int | None:
    if then is None:
        return None
    return int(max(now - then, 0.0) // 86400)


def parse_timestamp(text: str | None) -> float | None:
    """An ISO 8601 date-time (with or without zone; naive means UTC), or a /Date(ms)/ value, as epoch seconds."""
    if not text:
        return None
    text = str(text).strip()
    match = re.fullmatch(r"/Date\((-?\d+)\)/", text)
    if match:
        return int(match.group(1)) / 1000.0
    candidate = text.replace("Z", "+00:00")
    # `2020-10-10 14:14:38 +0000` (macOS defaults) -> ISO
    candidate = re.sub(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ?([+-]\d\d)(\d\d)$", r"\1T\2\3:\4", candidate)
    # .NET's round-trip format carries seven fractional digits; Python takes six.
    candidate = re.sub(r"(\.\d{6})\d+", r"\1", candidate)
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    if parsed.year < 1980:  # COM/WMI's "never" (1601-01-01, 1899-12-30)
        return None
    return parsed.timestamp()


DENIED_MARKERS = ("permission denied", "operation not permitted", "access is denied", "must be run as root")


def raise_for_failure(result: CommandResult, what: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    """Raise AccessDenied or ProbeError, naming `what`, when a command did not succeed."""
    if result.returncode in ok_codes:
        return
    text = (result.stderr + " " + result.stdout).lower()
    if any(marker in text for marker in DENIED_MARKERS):
        raise AccessDenied(f"permission denied: {what} needs more privileges ({result.describe_failure()})")
    raise ProbeError(result.describe_failure())


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages (never the value: it may be hostile text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def path_field() -> Field:
    """The `path` parameter of the probes that read one file (file, file_content, key_value_file)."""
    return Field("path", "string", "Absolute path of the file", pattern=grammar.PATH_PATTERN, max_length=4096)


def path_read(params: Params) -> tuple[str, ...]:
    """What a probe that reads the file named by `path` reads (the read allow-list applies to it)."""
    return (params["path"],)


def parse_key_values(text: str, separator: str) -> dict[str, str]:
    """`key value` (separator `whitespace`) or `key=value` lines, keys lower-cased, the last one winning;
    shared by key_value_file and password_policy (login.defs, pwquality.conf, faillock.conf)."""
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
