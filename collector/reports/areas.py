"""The posture model: the audit committee's questions, which checks answer each, and red/amber/green.

The areas (in the order the briefing asks them) and the frameworks' control names come from a YAML file,
by default the shipped `policies/mappings/areas.yaml` (`collector.briefing.areas_file` names another):

| area | question | judged by |
|---|---|---|
| `updates` | Are our computers up to date? | its checks' results |
| `mfa` | Is MFA on for everyone, and for administrators above all? | its checks' results |
| `protection` | Are disks encrypted, firewalls on, malware protection running? | its checks' results |
| `cloud` | Is the cloud configured safely? | its checks' results |
| `devices` | Do we know all our devices? | agents reporting (`judge_devices`) |
| `accepted_risks` | What risks have we accepted? | waivers in force (`judge_waivers`) |

A check belongs to the first area that names it (`policy/check`), else the first that names its policy,
else the first that shares one of its framework controls (`AreaMap.area_of`); the collector's stored
check catalogue gives the frameworks. The rules for red, amber and green (`judge_checks`) take their
thresholds from `collector.briefing.rag` (`RagThresholds`, defaults in config.example.yaml):

- no result at all: not known (grey), never green;
- pass / (pass + fail) at or above `green_at_percent`: green; at or above `amber_at_percent`: amber;
  below: red; only errors (nothing could be judged): red;
- a failing check of critical severity: red (`critical_failure_is_red`);
- more than `error_amber_percent` of the results in error: at best amber.

Public, stable and used by the dashboard: `Rag`, `Judgement`, `Area`, `AreaMap`, `load_area_map`,
`judge_checks`, `judge_devices`, `judge_waivers`, `AreaStatus`, `check_areas`, `RagThresholds`. With a
database connection, `collector.reports.figures.area_posture(connection, config=, now=, as_of=, group=)`
gives every area's judgement at one moment from the stored counts (the same the briefing shows).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.config import RagThresholds

__all__ = [
    "Area",
    "AreaMap",
    "AreaStatus",
    "Judgement",
    "Rag",
    "RagThresholds",
    "check_areas",
    "judge_checks",
    "judge_devices",
    "judge_waivers",
    "load_area_map",
]

KINDS = ("checks", "devices", "waivers")
_STATUSES = ("pass", "fail", "error", "not_applicable", "waived")


class AreaMapError(ValueError):
    """An areas file that cannot be used; the message names the file and the entry."""


class Rag(enum.StrEnum):
    RED = "red"
    AMBER = "amber"
    GREEN = "green"
    UNKNOWN = "unknown"  # nothing to judge: shown grey, "not known"

    @property
    def label(self) -> str:
        return {"red": "Red", "amber": "Amber", "green": "Green", "unknown": "Not known"}[self.value]


_ORDER = {Rag.GREEN: 0, Rag.UNKNOWN: 1, Rag.AMBER: 2, Rag.RED: 3}


def worst(*judgements: Rag) -> Rag:
    """The most severe of several statuses (red over amber over not known over green)."""
    return max(judgements, key=lambda rag: _ORDER[rag]) if judgements else Rag.UNKNOWN


@dataclass(frozen=True)
class Judgement:
    rag: Rag
    reason: str  # in plain words: why this colour


@dataclass(frozen=True)
class Area:
    key: str
    kind: str  # checks | devices | waivers
    question: str
    title: str
    explains: str
    checks: frozenset[tuple[str, str]] = frozenset()
    policies: frozenset[str] = frozenset()
    frameworks: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Framework:
    key: str  # as in policies: cyber_essentials, ncsc_caf, cis_controls_v8
    name: str
    controls: Mapping[str, str]  # control id -> its name, in the order to show them
    show_all: bool = False  # list every control, those no check evidences too


@dataclass(frozen=True)
class AreaMap:
    areas: tuple[Area, ...]
    frameworks: tuple[Framework, ...]

    def get(self, key: str) -> Area:
        for area in self.areas:
            if area.key == key:
                return area
        raise KeyError(key)

    def framework(self, key: str) -> Framework | None:
        return next((f for f in self.frameworks if f.key == key), None)

    def area_of(self, policy_id: str, check_id: str, frameworks: Mapping[str, Any] | None = None) -> Area | None:
        """The area a check answers: named, then by policy, then by framework control; None if none."""
        judged = [a for a in self.areas if a.kind == "checks"]
        for area in judged:
            if (policy_id, check_id) in area.checks:
                return area
        for area in judged:
            if policy_id in area.policies:
                return area
        for area in judged:
            for framework, controls in (frameworks or {}).items():
                if set(map(str, controls or ())) & area.frameworks.get(framework, frozenset()):
                    return area
        return None


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AreaMapError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def parse_area_map(data: Any, source: str) -> AreaMap:
    if not isinstance(data, dict) or not isinstance(data.get("areas"), list):
        raise AreaMapError(f"{source}: expected a mapping with an `areas:` list")
    areas: list[Area] = []
    for index, entry in enumerate(data["areas"]):
        where = f"{source}: areas[{index}]"
        if not isinstance(entry, dict):
            raise AreaMapError(f"{where} must be a mapping")
        kind = entry.get("kind", "checks")
        if kind not in KINDS:
            raise AreaMapError(f"{where}: kind must be one of {', '.join(KINDS)}")
        checks = set()
        for name in entry.get("checks") or []:
            policy_id, _, check_id = str(name).partition("/")
            if not policy_id or not check_id:
                raise AreaMapError(f"{where}: check {name!r} must be written policy/check")
            checks.add((policy_id, check_id))
        frameworks = {str(k): frozenset(map(str, v or ())) for k, v in (entry.get("frameworks") or {}).items()}
        key = _text(entry, "key", where)
        if any(a.key == key for a in areas):
            raise AreaMapError(f"{where}: area {key!r} is defined twice")
        areas.append(
            Area(
                key=key,
                kind=kind,
                question=_text(entry, "question", where),
                title=_text(entry, "title", where),
                explains=_text(entry, "explains", where),
                checks=frozenset(checks),
                policies=frozenset(map(str, entry.get("policies") or ())),
                frameworks=frameworks,
            )
        )
    known: list[Framework] = []
    for key, entry in (data.get("frameworks") or {}).items():
        where = f"{source}: frameworks.{key}"
        if not isinstance(entry, dict) or not isinstance(entry.get("controls", {}), dict):
            raise AreaMapError(f"{where} must be a mapping with name and controls")
        controls = {str(k): str(v) for k, v in (entry.get("controls") or {}).items()}
        known.append(Framework(str(key), _text(entry, "name", where), controls, bool(entry.get("show_all"))))
    return AreaMap(tuple(areas), tuple(known))


@functools.lru_cache(maxsize=8)
def load_area_map(path: str | None = None) -> AreaMap:
    """The areas file at `path`, or the shipped one; AreaMapError names what is wrong and where."""
    if path:
        source = Path(path)
    else:
        from policies import shipped_path

        source = shipped_path("mappings/areas.yaml")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AreaMapError(f"{source}: cannot read the areas file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise AreaMapError(f"{source}: not valid YAML: {exc}") from None
    return parse_area_map(data, str(source))


# --- judgements ---------------------------------------------------------------------------------------


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def judge_checks(counts: Mapping[str, int], critical_failing: int, thresholds: RagThresholds) -> Judgement:
    """Red, amber or green for results counted by status; `critical_failing`: failing results of
    critical-severity checks among them."""
    passed, failed, errors = counts.get("pass", 0), counts.get("fail", 0), counts.get("error", 0)
    total = sum(counts.get(s, 0) for s in _STATUSES)
    if total == 0:
        return Judgement(Rag.UNKNOWN, "No results: no check answers this yet.")
    if passed + failed == 0:
        if errors:
            return Judgement(Rag.RED, f"Nothing could be judged: all {_plural(errors, 'result')} are errors.")
        return Judgement(Rag.UNKNOWN, "No result passed or failed (all were not applicable or waived).")
    share = 100.0 * passed / (passed + failed)
    if share >= thresholds.green_at_percent:
        rag = Rag.GREEN
        reason = f"{share:.1f}% of results pass (green at {thresholds.green_at_percent:g}% or more)."
    elif share >= thresholds.amber_at_percent:
        rag = Rag.AMBER
        reason = f"{share:.1f}% of results pass (green needs {thresholds.green_at_percent:g}%)."
    else:
        rag = Rag.RED
        reason = f"{share:.1f}% of results pass (below {thresholds.amber_at_percent:g}%, the least for amber)."
    if critical_failing and thresholds.critical_failure_is_red:
        rag = Rag.RED
        verb = "makes" if critical_failing == 1 else "make"
        reason += f" {_plural(critical_failing, 'critical finding')} {verb} it red."
    error_share = _percent(errors, total) or 0.0
    if errors and error_share > thresholds.error_amber_percent and rag is Rag.GREEN:
        rag = Rag.AMBER
        reason += f" {error_share:.1f}% of results could not be judged (errors), so it is amber at best."
    return Judgement(rag, reason)


def judge_devices(enrolled: int, reporting: int, thresholds: RagThresholds) -> Judgement:
    """How many of the enrolled (not revoked) hosts sent results within stale_after_hours."""
    if enrolled == 0:
        return Judgement(Rag.UNKNOWN, "No device is enrolled.")
    share = 100.0 * reporting / enrolled
    if share >= thresholds.devices_green_at_percent:
        rag = Rag.GREEN
    elif share >= thresholds.devices_amber_at_percent:
        rag = Rag.AMBER
    else:
        rag = Rag.RED
    return Judgement(
        rag,
        f"{share:.1f}% of enrolled devices are reporting ({reporting:,} of {enrolled:,}; green at "
        f"{thresholds.devices_green_at_percent:g}%, amber at {thresholds.devices_amber_at_percent:g}%).",
    )


def judge_waivers(waived: int, total_results: int, expiring_next_period: int, thresholds: RagThresholds) -> Judgement:
    """`waived`: results waived now, out of `total_results`; `expiring_next_period`: waivers in force that
    end within the next period."""
    if total_results == 0 and not expiring_next_period:
        return Judgement(Rag.UNKNOWN, "No results yet, so nothing is waived.")
    share = _percent(waived, total_results) or 0.0
    if share > thresholds.waived_red_percent:
        rag, reason = Rag.RED, f"{share:.1f}% of results are waived (red above {thresholds.waived_red_percent:g}%)."
    elif share > thresholds.waived_amber_percent:
        rag, reason = (
            Rag.AMBER,
            f"{share:.1f}% of results are waived (amber above {thresholds.waived_amber_percent:g}%).",
        )
    else:
        rag, reason = Rag.GREEN, f"{share:.1f}% of results are waived."
    if expiring_next_period and thresholds.expiring_is_amber:
        rag = worst(rag, Rag.AMBER)
        verb = "ends" if expiring_next_period == 1 else "end"
        reason += f" {_plural(expiring_next_period, 'waiver')} {verb} within the next period: renew or fix."
    return Judgement(rag, reason)


# --- areas from counts by check -----------------------------------------------------------------------


@dataclass
class AreaStatus:
    """One check-judged area: its counts, compliance, judgement and per-check rows."""

    area: Area
    judgement: Judgement
    counts: dict[str, int]
    compliance: float | None  # pass / (pass + fail), 0..1
    critical_failing: int
    checks: list[dict[str, Any]]  # the summary's by_check rows of this area, most failing first


def check_areas(
    by_check: Iterable[Mapping[str, Any]],
    frameworks_of: Mapping[tuple[str, str], Mapping[str, Any]],
    area_map: AreaMap,
    thresholds: RagThresholds,
) -> dict[str, AreaStatus]:
    """Every check-judged area from the rows of `queries.summary(...)["by_check"]` (policy, check,
    severity and a count per status); `frameworks_of` gives each check's framework mapping."""
    grouped: dict[str, list[Mapping[str, Any]]] = {a.key: [] for a in area_map.areas if a.kind == "checks"}
    for row in by_check:
        area = area_map.area_of(row["policy"], row["check"], frameworks_of.get((row["policy"], row["check"])))
        if area is not None:
            grouped[area.key].append(row)
    statuses = {}
    for key, rows in grouped.items():
        counts = dict.fromkeys(_STATUSES, 0)
        critical = 0
        for row in rows:
            for status in _STATUSES:
                counts[status] += int(row.get(status, 0))
            if row.get("severity") == "critical":
                critical += int(row.get("fail", 0))
        judged = counts["pass"] + counts["fail"]
        statuses[key] = AreaStatus(
            area=area_map.get(key),
            judgement=judge_checks(counts, critical, thresholds),
            counts=counts,
            compliance=None if judged == 0 else counts["pass"] / judged,
            critical_failing=critical,
            checks=sorted((dict(r) for r in rows), key=lambda r: (-int(r.get("fail", 0)), r["policy"], r["check"])),
        )
    return statuses


def controls_in_order(framework: Framework, seen: Sequence[str]) -> list[str]:
    """A framework's controls to show: those named in the mapping file first, in its order (all of them
    when `show_all`), then any other control a check names."""
    named = [c for c in framework.controls if framework.show_all or c in seen]
    return named + sorted(c for c in set(seen) if c not in framework.controls)
