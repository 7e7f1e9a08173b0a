"""antivirus' pure parsers: Defender and the Security Center (Windows), XProtect's version (macOS),
`mdatp health` and ClamAV's state (Linux)."""

from __future__ import annotations

import re
from typing import Any

from checks.probes.common import parse_timestamp, whole_days
from checks.probes.host import ProbeError
from checks.probes.registry import UNKNOWN_BECAUSE, Facts
from checks.probes.windows import as_list


def antivirus_facts(**values: Any) -> Facts:
    base: Facts = {
        "product": None,
        "installed": False,
        "realtime_enabled": None,
        "signature_age_days": None,
        "signature_version": None,
        "tamper_protected": None,
        "mode": None,
        "service_running": None,
        "updates_automatic": None,
        "notes": [],
        UNKNOWN_BECAUSE: {},
    }
    base.update(values)
    return base


def decode_product_state(state: int) -> tuple[bool, bool]:
    """(real-time on, signatures up to date) from a Security Center productState.

    Bits 12-15 say on (0x1), snoozed (0x2) or expired (0x3); bits 4-7 say signatures out of date (0x1).
    """
    return (state >> 12) & 0xF == 0x1, (state >> 4) & 0xF == 0x0


def parse_windows_antivirus(data: Any, now: float) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("the antivirus status query returned nothing")
    defender = data.get("Defender")
    products = [p for p in as_list(data.get("Products")) if isinstance(p, dict)]
    others = [p for p in products if "defender" not in str(p.get("displayName", "")).lower()]
    notes: list[str] = []
    if isinstance(defender, dict):
        mode = defender.get("AMRunningMode") or "Normal"
        active = mode not in ("Passive Mode", "Passive", "SxS Passive Mode")
        if active or not others:
            updated = parse_timestamp(defender.get("AntivirusSignatureLastUpdated"))
            age = defender.get("AntivirusSignatureAge")
            # AntivirusSignatureAge is 65535 when signatures never loaded; prefer the date when present.
            age_days = (
                whole_days(updated, now)
                if updated is not None
                else (age if isinstance(age, int) and age < 65535 else None)
            )
            realtime = (
                bool(defender.get("AMServiceEnabled"))
                and bool(defender.get("AntivirusEnabled"))
                and bool(defender.get("RealTimeProtectionEnabled"))
            )
            if not active:
                notes.append(f"Defender is in {mode} and no other product is registered")
                realtime = False
            tamper = defender.get("IsTamperProtected")
            return antivirus_facts(
                product="Microsoft Defender Antivirus",
                installed=True,
                realtime_enabled=realtime,
                signature_age_days=age_days,
                signature_version=defender.get("AntivirusSignatureVersion"),
                tamper_protected=tamper if isinstance(tamper, bool) else None,
                mode=mode,
                notes=notes,
            )
        notes.append(f"Defender is in {mode}: another product is the primary antivirus")
    elif data.get("DefenderError"):
        notes.append(f"Defender status unavailable: {data['DefenderError']}")
    if others:
        product = others[0]
        state = product.get("productState")
        if not isinstance(state, int):
            return antivirus_facts(product=product.get("displayName"), installed=True, notes=notes)
        on, current = decode_product_state(state)
        notes.append("signature age is not reported by the Security Center; only whether it is out of date")
        return antivirus_facts(
            product=str(product.get("displayName")),
            installed=True,
            realtime_enabled=on,
            # The Security Center says only "up to date" or not: 0 days when current, unknown otherwise.
            signature_age_days=0 if current else None,
            notes=[*notes, *([] if current else ["the Security Center reports the signatures out of date"])],
        )
    if not isinstance(defender, dict):
        raise ProbeError(
            "no antivirus status: " + "; ".join(notes or ["Defender and the Security Center gave nothing"])
        )
    return antivirus_facts(notes=notes)


def parse_plist_version(text: str) -> str | None:
    import plistlib

    try:
        data = plistlib.loads(text.encode("utf-8"))
    except (plistlib.InvalidFileException, ValueError):
        return None
    version = data.get("CFBundleShortVersionString") if isinstance(data, dict) else None
    return str(version) if version is not None else None


MDATP_PRODUCT = "Microsoft Defender for Endpoint"


def parse_mdatp_health(text: str) -> Facts:
    """`mdatp health`: one `name : value` line per field; strings quoted, values set by the organisation's
    managed configuration followed by ` [managed]`."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[a-z_]+", name.strip()):
            continue
        value = re.sub(r"\s*\[managed\]$", "", value.strip())
        fields[name.strip()] = value.strip('"')
    if "healthy" not in fields:
        raise ProbeError(f"unrecognised `mdatp health` output: {text.strip()[:200]!r}")

    def flag(name: str) -> bool | None:
        value = fields.get(name)
        return None if value not in ("true", "false") else value == "true"

    notes: list[str] = []
    passive = flag("passive_mode_enabled") is True
    realtime = flag("real_time_protection_enabled")
    if passive and realtime:
        notes.append("Defender is in passive mode: it scans but does not block or remove what it finds")
        realtime = False
    issues = fields.get("health_issues", "[]")
    if issues not in ("[]", ""):
        notes.append(f"health issues: {issues}")
    status = fields.get("definitions_status")
    if status and status != "up_to_date":
        notes.append(f"definitions_status is {status}")
    minutes = fields.get("definitions_updated_minutes_ago", "")
    unknown: dict[str, str] = {}
    age = int(minutes) // 1440 if minutes.isascii() and minutes.isdigit() else None  # not '²', which int() refuses
    if age is None:
        unknown["signature_age_days"] = "mdatp health gave no definitions_updated_minutes_ago"
    tamper = fields.get("tamper_protection")
    return antivirus_facts(
        product=MDATP_PRODUCT,
        installed=True,
        realtime_enabled=realtime,
        signature_age_days=age,
        signature_version=fields.get("definitions_version"),
        tamper_protected=None if tamper is None else tamper == "block",
        mode="Passive Mode" if passive else "Normal",
        service_running=flag("healthy"),
        updates_automatic=flag("automatic_definition_update_enabled"),
        notes=notes,
        **{UNKNOWN_BECAUSE: unknown},
    )


CLAMAV_DIR = "/var/lib/clamav"
# The daily database changes several times a day; main and bytecode only every few months, so their age
# says nothing about freshness. freshclam keeps it as daily.cvd (whole) or daily.cld (patched).
CLAMAV_DATABASES = ("daily.cld", "daily.cvd")


def clamav_facts(process_names: set[str], database_mtimes: list[float], now: float) -> Facts:
    notes = [
        "on-access scanning needs clamonacc (the clamav-clamonacc service); clamd alone scans on request",
        "freshclam run from cron instead of as a daemon is not seen",
    ]
    unknown: dict[str, str] = {}
    age = whole_days(max(database_mtimes), now) if database_mtimes else None
    if age is None:
        unknown["signature_age_days"] = (
            f"no daily signature database (daily.cvd or daily.cld) in {CLAMAV_DIR}: freshclam has not yet "
            "downloaded one"
        )
    return antivirus_facts(
        product="ClamAV",
        installed=True,
        realtime_enabled="clamonacc" in process_names,
        signature_age_days=age,
        service_running="clamd" in process_names,
        updates_automatic="freshclam" in process_names,
        notes=notes,
        **{UNKNOWN_BECAUSE: unknown},
    )
