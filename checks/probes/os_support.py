"""OS support: is this operating-system release still getting security updates, and for how long?

Judged against `data/eol.json`, a table shipped with the agent in which every date names its source.
An OS the table does not know gives null facts (and so an error), never a guess.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from checks.probes.generic import collect_os_darwin, collect_os_linux, parse_windows_os
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import powershell_json

EOL_TABLE = Path(__file__).parent / "data" / "eol.json"

OS_SUPPORT = register(
    ProbeSpec(
        name="os_support",
        description="The operating system release against the shipped end-of-life table: the date security "
        "updates end, days left, and where that date comes from",
        facts=(
            Field("os", "string", "The OS as detected, e.g. Debian GNU/Linux 12 (bookworm)"),
            Field("product", "string", "Table product: debian, ubuntu, rhel, windows, windows_server, macos, ..."),
            Field("cycle", "string", "Release cycle in the table, e.g. 12, 22.04, 11-23H2-enterprise", nullable=True),
            Field("eol_date", "string", "Last day of free security updates (ISO date)", nullable=True),
            Field("days_to_eol", "integer", "Days from today to eol_date (negative once passed)", nullable=True),
            Field("supported", "boolean", "Security updates are still published for this release", nullable=True),
            Field("eol_estimated", "boolean", "The vendor has not published the date; the table estimates it"),
            Field("extended_eol", "string", "End of paid extended support (ESM, ELS), if any", nullable=True),
            Field("eol_source", "string", "Where the date comes from", nullable=True),
        ),
        example="""\
- id: os-still-supported
  title: The operating system still receives security updates
  description: Compares the OS release with the shipped end-of-life table.
  rationale: An unsupported OS gets no fixes for newly found vulnerabilities.
  remediation: Upgrade to a supported release before the end-of-life date.
  severity: high
  probe: os_support
  expect:
    all:
      - {fact: supported, eq: true}
      - {fact: days_to_eol, gt: 30}
""",
    )
)


@cache
def eol_entries() -> tuple[dict[str, Any], ...]:
    data = json.loads(EOL_TABLE.read_text(encoding="utf-8"))
    return tuple(data["entries"])


# Windows 10/11 feature updates by build number.
WINDOWS_RELEASES = {
    "10240": "1507",
    "14393": "1607",
    "17763": "1809",
    "19041": "2004",
    "19042": "20H2",
    "19043": "21H1",
    "19044": "21H2",
    "19045": "22H2",
    "22000": "21H2",
    "22621": "22H2",
    "22631": "23H2",
    "26100": "24H2",
    "26200": "25H2",
}
SERVER_BUILDS = {
    "9200": "2012",
    "9600": "2012-r2",
    "14393": "2016",
    "17763": "2019",
    "20348": "2022",
    "26100": "2025",
}


def windows_cycle(caption: str, build: str) -> tuple[str, str | None]:
    """(product, cycle) for a Win32_OperatingSystem caption and build number."""
    if "Server" in caption:
        return "windows_server", SERVER_BUILDS.get(build)
    major = "11" if build.isdigit() and int(build) >= 22000 else "10"
    if "LTSC" in caption or "LTSB" in caption:
        year = re.search(r"(20\d\d)", caption)
        if year:
            kind = "ltsb" if "LTSB" in caption else "ltsc"
            return "windows", f"{major}-{kind}-{year.group(1)}"
        ltsc_builds = {
            "14393": "10-ltsb-2016",
            "17763": "10-ltsc-2019",
            "19044": "10-ltsc-2021",
            "26100": "11-ltsc-2024",
        }
        return "windows", ltsc_builds.get(build)
    release = WINDOWS_RELEASES.get(build)
    if release is None:
        return "windows", None
    enterprise = any(word in caption for word in ("Enterprise", "Education"))
    if major == "10" and release == "22H2":
        return "windows", "10-22H2"  # one date for every edition
    return "windows", f"{major}-{release}" + ("-enterprise" if enterprise else "")


def linux_cycle(os_id: str, id_like: list[str], version: str) -> tuple[str, str | None]:
    known = {e["product"] for e in eol_entries()}
    product = os_id if os_id in known else next((i for i in id_like if i in known and i != "fedora"), os_id)
    if product == "ubuntu":
        return product, version or None
    major = version.split(".")[0] if version else None
    return product, major


def macos_cycle(version: str) -> str | None:
    parts = version.split(".")
    if not parts or not parts[0].isdigit():
        return None
    return f"{parts[0]}.{parts[1]}" if parts[0] == "10" and len(parts) > 1 else parts[0]


def judge_support(os_name: str, product: str, cycle: str | None, today: dt.date) -> Facts:
    entry = next((e for e in eol_entries() if e["product"] == product and e["cycle"] == cycle), None)
    if entry is None:
        return {
            "os": os_name,
            "product": product,
            "cycle": cycle,
            "eol_date": None,
            "days_to_eol": None,
            "supported": None,
            "eol_estimated": False,
            "extended_eol": None,
            "eol_source": None,
        }
    eol = dt.date.fromisoformat(entry["eol"])
    days = (eol - today).days
    return {
        "os": os_name,
        "product": product,
        "cycle": cycle,
        "eol_date": entry["eol"],
        "days_to_eol": days,
        "supported": days >= 0,
        "eol_estimated": bool(entry.get("estimated", False)),
        "extended_eol": entry.get("extended_eol"),
        "eol_source": entry["source"],
    }


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@OS_SUPPORT.collector("linux")
def collect_os_support_linux(host: Host, params: Params) -> Facts:
    os_facts = collect_os_linux(host, {})
    product, cycle = linux_cycle(os_facts["id"], os_facts["id_like"], os_facts["version"])
    return judge_support(os_facts["name"], product, cycle, _today())


@OS_SUPPORT.collector("windows")
def collect_os_support_windows(host: Host, params: Params) -> Facts:
    data = powershell_json(
        host,
        "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber,OSArchitecture,"
        "CSName,ProductType | ConvertTo-Json -Compress",
    )
    os_facts = parse_windows_os(data)
    if not isinstance(data, dict):
        raise ProbeError("Win32_OperatingSystem returned nothing")
    product, cycle = windows_cycle(str(data.get("Caption", "")), str(data.get("BuildNumber", "")))
    return judge_support(os_facts["name"], product, cycle, _today())


@OS_SUPPORT.collector("darwin")
def collect_os_support_darwin(host: Host, params: Params) -> Facts:
    os_facts = collect_os_darwin(host, {})
    return judge_support(os_facts["name"], "macos", macos_cycle(os_facts["version"]), _today())
