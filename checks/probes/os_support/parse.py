"""Where an OS release falls in the shipped end-of-life table, and what that says: pure functions of the OS
facts and the day (the table, `eol.json`, is read once; `today()` gives the collectors their day)."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from checks.probes.registry import Facts

EOL_TABLE = Path(__file__).parent / "eol.json"


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
    major = "11" if build.isascii() and build.isdigit() and int(build) >= 22000 else "10"
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


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
