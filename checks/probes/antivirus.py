"""Anti-malware: is real-time protection on, and how old are the signatures?

Windows: Microsoft Defender's own status (Get-MpComputerStatus), and other products registered with the
Security Center when Defender is passive. macOS: XProtect, which is always on; its age is that of its
bundle. Linux: ClamAV's daemon and signature database, when installed.
"""

from __future__ import annotations

import time
from typing import Any

from checks.probes.common import parse_timestamp, raise_for_failure, whole_days
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import as_list, powershell_json

ANTIVIRUS = register(
    ProbeSpec(
        name="antivirus",
        description="Anti-malware protection: product, real-time protection, signature age (Microsoft "
        "Defender and Security Center products, macOS XProtect, ClamAV)",
        facts=(
            Field("product", "string", "The product protecting the machine", nullable=True),
            Field("installed", "boolean", "An anti-malware product is present"),
            Field("realtime_enabled", "boolean", "Files are scanned on access", nullable=True),
            Field("signature_age_days", "integer", "Days since the signatures were updated", nullable=True),
            Field("signature_version", "string", "Signature (definition) version", nullable=True),
            Field("tamper_protected", "boolean", "Tamper protection is on (Defender)", nullable=True),
            Field("mode", "string", "Defender running mode: Normal, Passive Mode, EDR Block Mode", nullable=True),
            Field("notes", "array", "How the state was read; caveats", items="string"),
        ),
        example="""\
- id: antimalware-current
  title: Anti-malware is on and its signatures are recent
  description: Reads the anti-malware product's state.
  rationale: Out-of-date or disabled protection misses current malware.
  remediation: Turn on real-time protection and let signatures update.
  severity: high
  platforms: [windows]
  probe: antivirus
  expect:
    all:
      - {fact: realtime_enabled, eq: true}
      - {fact: signature_age_days, lte: 3}
""",
    )
)


def _facts(**values: Any) -> Facts:
    base: Facts = {
        "product": None,
        "installed": False,
        "realtime_enabled": None,
        "signature_age_days": None,
        "signature_version": None,
        "tamper_protected": None,
        "mode": None,
        "notes": [],
    }
    base.update(values)
    return base


# --- Windows -------------------------------------------------------------------------------------------

WINDOWS_AV_SCRIPT = r"""
$status = $null; $defenderError = $null
try {
  $status = Get-MpComputerStatus -ErrorAction Stop | Select-Object AMServiceEnabled, AntivirusEnabled,
    RealTimeProtectionEnabled, AntivirusSignatureAge, AntivirusSignatureVersion,
    @{n='AntivirusSignatureLastUpdated';e={
      if ($_.AntivirusSignatureLastUpdated) { $_.AntivirusSignatureLastUpdated.ToUniversalTime().ToString('o') } }},
    IsTamperProtected, AMRunningMode
} catch { $defenderError = $_.Exception.Message }
$products = @(Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct -EA SilentlyContinue |
  Select-Object displayName, productState)
[pscustomobject]@{ Defender = $status; DefenderError = $defenderError; Products = $products } |
  ConvertTo-Json -Depth 3 -Compress
"""


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
            return _facts(
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
            return _facts(product=product.get("displayName"), installed=True, notes=notes)
        on, current = decode_product_state(state)
        notes.append("signature age is not reported by the Security Center; only whether it is out of date")
        return _facts(
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
    return _facts(notes=notes)


@ANTIVIRUS.collector("windows")
def collect_antivirus_windows(host: Host, params: Params) -> Facts:
    return parse_windows_antivirus(powershell_json(host, WINDOWS_AV_SCRIPT), time.time())


# --- macOS ---------------------------------------------------------------------------------------------

XPROTECT_PLISTS = (
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
)


def parse_plist_version(text: str) -> str | None:
    import plistlib

    try:
        data = plistlib.loads(text.encode("utf-8"))
    except (plistlib.InvalidFileException, ValueError):
        return None
    version = data.get("CFBundleShortVersionString") if isinstance(data, dict) else None
    return str(version) if version is not None else None


@ANTIVIRUS.collector("darwin")
def collect_antivirus_darwin(host: Host, params: Params) -> Facts:
    now = time.time()
    for path in XPROTECT_PLISTS:
        info = host.stat(path)
        if info is None:
            continue
        return _facts(
            product="XProtect",
            installed=True,
            realtime_enabled=True,
            signature_age_days=whole_days(info.mtime, now),
            signature_version=parse_plist_version(host.read_text(path)),
            notes=["XProtect is part of macOS and always scans on access; age is that of its bundle"],
        )
    raise ProbeError("XProtect's bundle was not found")


# --- Linux ---------------------------------------------------------------------------------------------

CLAMAV_DATABASES = ("daily.cld", "daily.cvd")


@ANTIVIRUS.collector("linux")
def collect_antivirus_linux(host: Host, params: Params) -> Facts:
    now = time.time()
    if not (host.which("clamd") or host.which("clamscan") or host.which("mdatp")):
        return _facts(notes=["no anti-malware product found (looked for ClamAV and Microsoft Defender for Endpoint)"])
    if host.which("mdatp"):
        result = host.run(["mdatp", "health", "--field", "real_time_protection_enabled"], timeout=60)
        raise_for_failure(result, "mdatp health")
        realtime = result.stdout.strip().lower().startswith("true")
        return _facts(product="Microsoft Defender for Endpoint", installed=True, realtime_enabled=realtime)
    names = {str(p.get("name")) for p in host.processes()}
    ages = [
        whole_days(info.mtime, now)
        for name in CLAMAV_DATABASES
        if (info := host.stat(f"/var/lib/clamav/{name}")) is not None
    ]
    return _facts(
        product="ClamAV",
        installed=True,
        realtime_enabled="clamonacc" in names,
        signature_age_days=min((a for a in ages if a is not None), default=None),
        notes=["on-access scanning needs clamonacc; clamd alone scans on request"],
    )
