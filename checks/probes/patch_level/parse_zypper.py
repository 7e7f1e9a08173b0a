"""zypper: pending updates and security patches from its XML output."""

from __future__ import annotations

from xml.etree import ElementTree

from checks.probes.host import ProbeError


def parse_zypper_xml(text: str) -> tuple[list[str], list[str]]:
    """(all update names, security patch names) from `zypper --xmlout list-updates/list-patches`."""
    start = text.find("<?xml")
    try:
        root = ElementTree.fromstring(text[start:] if start >= 0 else text)
    except ElementTree.ParseError as exc:
        raise ProbeError(f"zypper output is not XML: {exc}") from exc
    updates, security = [], []
    for update in root.iter("update"):
        name = update.get("name", "")
        if update.get("kind") == "patch":
            if update.get("category") == "security" and update.get("status", "needed") == "needed":
                security.append(name)
        else:
            updates.append(name)
    return updates, security
