"""What every source of patch_level fills in (`PatchFacts`), and the facts it gives."""

from __future__ import annotations

from dataclasses import dataclass, field

from checks.probes.common import age_days, iso, whole_days
from checks.probes.registry import UNKNOWN_BECAUSE, Facts

# Names listed in `security_packages` are capped so a neglected host does not make results huge.
MAX_LISTED = 50


@dataclass
class PatchFacts:
    manager: str
    pending_updates: int | None = None
    security_updates: int | None = None
    security_packages: list[str] = field(default_factory=list)
    held_packages: list[str] = field(default_factory=list)
    oldest_security_update_age_days: int | None = None
    # Bounds where the age itself is not known (apt); where it is, it is both bounds.
    oldest_security_update_min_age_days: int | None = None
    oldest_security_update_max_age_days: int | None = None
    last_installed: float | None = None
    reboot_pending: bool | None = None
    index_updated: float | None = None
    notes: list[str] = field(default_factory=list)
    unknown_because: dict[str, str] = field(default_factory=dict)  # fact -> why it is null

    def facts(self, now: float) -> Facts:
        facts = self._facts(now)
        facts[UNKNOWN_BECAUSE] = {
            name: reason for name, reason in sorted(self.unknown_because.items()) if facts.get(name) is None
        }
        return facts

    def _facts(self, now: float) -> Facts:
        return {
            "manager": self.manager,
            "pending_updates": self.pending_updates,
            "security_updates": self.security_updates,
            "security_packages": sorted(self.security_packages)[:MAX_LISTED],
            "held_packages": sorted(self.held_packages),
            "oldest_security_update_age_days": self.oldest_security_update_age_days,
            "oldest_security_update_min_age_days": _either(
                self.oldest_security_update_min_age_days, self.oldest_security_update_age_days
            ),
            "oldest_security_update_max_age_days": _either(
                self.oldest_security_update_max_age_days, self.oldest_security_update_age_days
            ),
            "last_installed_at": iso(self.last_installed),
            "days_since_last_install": whole_days(self.last_installed, now),
            "reboot_pending": self.reboot_pending,
            "index_updated_at": iso(self.index_updated),
            "index_age_days": age_days(self.index_updated, now),
            "notes": self.notes,
        }


def _either(bound: int | None, exact: int | None) -> int | None:
    return exact if bound is None else bound
