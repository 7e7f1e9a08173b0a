"""macOS Software Update: its preferences (an old-style property list) and the install history."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from checks.probes.common import parse_timestamp
from checks.probes.host import ProbeError
from checks.probes.patch_level.facts import PatchFacts

_PLIST_ESCAPE = re.compile(r"\\(U[0-9a-fA-F]{4}|[0-7]{3}|.)")


def _unescape_plist_string(text: str) -> str:
    """`defaults` escapes non-ASCII as \\UXXXX (four hex digits), plus the usual \\n, \\" and \\\\."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("U") and len(code) == 5:
            return chr(int(code[1:], 16))
        if len(code) == 3 and code.isdigit():
            return chr(int(code, 8))
        return {"n": "\n", "t": "\t", "r": "\r"}.get(code, code)

    return _PLIST_ESCAPE.sub(replace, text)


def parse_old_plist(text: str) -> Any:
    """Parse the old-style (NeXTSTEP) property list that `defaults read` prints."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}()=;,]|[^\s{}()=;,"]+', text)
    position = 0

    def value() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "{":
            result: dict[str, Any] = {}
            while tokens[position] != "}":
                key = value()
                if tokens[position] != "=":
                    raise ProbeError(f"plist: expected '=' after {key!r}")
                position += 1
                result[str(key)] = value()
                if tokens[position] == ";":
                    position += 1
            position += 1
            return result
        if token == "(":
            items: list[Any] = []
            while tokens[position] != ")":
                items.append(value())
                if tokens[position] == ",":
                    position += 1
            position += 1
            return items
        if token.startswith('"'):
            return _unescape_plist_string(token[1:-1])
        return token

    try:
        return value()
    except IndexError as exc:
        raise ProbeError("plist output ended early") from exc


def parse_softwareupdate_prefs(text: str, now: float) -> PatchFacts:
    prefs = parse_old_plist(text) if text.strip() else {}
    if not isinstance(prefs, dict):
        raise ProbeError("com.apple.SoftwareUpdate preferences are not a dictionary")
    result = PatchFacts("softwareupdate")
    recommended = prefs.get("RecommendedUpdates")
    if isinstance(recommended, list):
        names = [str(u.get("Display Name") or u.get("Identifier") or "") for u in recommended if isinstance(u, dict)]
        result.pending_updates = len(names)
        # Apple labels no update as "security": every recommended macOS, Safari and security update ships
        # security content, so all recommended updates count (never fewer than the truth).
        result.security_updates = len(names)
        result.security_packages = names
        result.notes.append("macOS does not classify updates: every recommended update counts as security")
        result.notes.append("Apple's catalog gives no release dates: the age of pending updates cannot be known")
        for name in ("oldest_security_update_age_days", "oldest_security_update_max_age_days"):
            result.unknown_because[name] = (
                f"{len(names)} recommended update(s) pending; Apple's catalog gives no release dates, so their "
                "age is never known: install them"
            )
    else:
        result.notes.append("Software Update has not recorded its recommended updates")
    result.index_updated = parse_timestamp(prefs.get("LastSuccessfulDate") or prefs.get("LastFullSuccessfulDate"))
    if result.index_updated is None:
        result.notes.append("Software Update has never completed a check")
        result.pending_updates = result.security_updates = None
    return result


def parse_install_history(data: Any) -> float | None:
    """The newest Software Update install in /Library/Receipts/InstallHistory.plist (plistlib value)."""
    latest = None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("processName") not in ("softwareupdated", "Software Update"):
            continue
        when = item.get("date")
        stamp = when.timestamp() if isinstance(when, dt.datetime) else parse_timestamp(str(when))
        if stamp is not None and (latest is None or stamp > latest):
            latest = stamp
    return latest
