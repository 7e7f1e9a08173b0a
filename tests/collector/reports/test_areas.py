"""The posture model: which checks answer which question, and red/amber/green with configured thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.policy.loader import load_policy_file
from collector.config import RagThresholds
from collector.reports.areas import (
    AreaMapError,
    Rag,
    check_areas,
    judge_checks,
    judge_devices,
    judge_waivers,
    load_area_map,
)
from policies import shipped_path

DEFAULTS = RagThresholds()


def counts(passed: int = 0, failed: int = 0, errors: int = 0, na: int = 0, waived: int = 0) -> dict[str, int]:
    return {"pass": passed, "fail": failed, "error": errors, "not_applicable": na, "waived": waived}


def test_the_shipped_checks_answer_the_committee_questions() -> None:
    areas = load_area_map()
    assert [a.key for a in areas.areas] == ["updates", "mfa", "protection", "cloud", "devices", "accepted_risks"]
    where = {}
    for name in ("baseline.yaml", "microsoft365.yaml", "azure.yaml"):
        policy = load_policy_file(shipped_path(name))
        for check in policy.checks:
            area = areas.area_of(policy.id, check.id, check.frameworks)
            where[f"{policy.id}/{check.id}"] = area.key if area else None
    assert where["baseline/security-updates-within-14-days"] == "updates"
    assert where["baseline/os-supported"] == "updates"
    assert where["baseline/os-64-bit"] == "updates"  # by its framework mapping (security update management)
    assert where["microsoft365/admins-mfa-capable"] == "mfa"
    assert where["baseline/disks-encrypted"] == "protection"
    assert where["baseline/antimalware-realtime"] == "protection"
    assert where["azure/nsg-no-internet-management-ports"] == "cloud"  # by policy, before its firewall mapping
    assert where["azure/defender-plans-on"] == "cloud"
    assert where["baseline/ssh-root-login-disabled"] is None  # counted in framework posture only
    # Every check named in the file exists in a shipped policy (a typo would silently answer nothing).
    for area in areas.areas:
        for policy_id, check_id in area.checks:
            assert f"{policy_id}/{check_id}" in where, f"{area.key} names unknown check {policy_id}/{check_id}"
    ce = areas.framework("cyber_essentials")
    assert ce is not None and ce.show_all and len(ce.controls) == 5


@pytest.mark.parametrize(
    ("given", "critical", "rag"),
    [
        (counts(), 0, Rag.UNKNOWN),
        (counts(na=3, waived=1), 0, Rag.UNKNOWN),
        (counts(errors=4), 0, Rag.RED),
        (counts(passed=95, failed=5), 0, Rag.GREEN),
        (counts(passed=94, failed=6), 0, Rag.AMBER),
        (counts(passed=85, failed=15), 0, Rag.AMBER),
        (counts(passed=84, failed=16), 0, Rag.RED),
        (counts(passed=99, failed=1), 1, Rag.RED),  # one critical finding
        (counts(passed=99, failed=1, errors=6), 0, Rag.AMBER),  # 5.6% errors: cannot be green
        (counts(passed=99, failed=1, errors=5), 0, Rag.GREEN),  # 4.8% errors
    ],
)
def test_checks_are_judged_by_the_default_thresholds(given: dict[str, int], critical: int, rag: Rag) -> None:
    assert judge_checks(given, critical, DEFAULTS).rag is rag


def test_thresholds_come_from_the_config() -> None:
    lenient = RagThresholds(green_at_percent=80, amber_at_percent=50, critical_failure_is_red=False)
    judged = judge_checks(counts(passed=81, failed=19), 2, lenient)
    assert judged.rag is Rag.GREEN and "81.0% of results pass" in judged.reason
    assert judge_checks(counts(passed=81, failed=19), 2, DEFAULTS).rag is Rag.RED
    assert judge_devices(100, 94, DEFAULTS).rag is Rag.AMBER
    assert judge_devices(100, 95, DEFAULTS).rag is Rag.GREEN
    assert judge_devices(100, 84, DEFAULTS).rag is Rag.RED
    assert judge_devices(0, 0, DEFAULTS).rag is Rag.UNKNOWN
    assert judge_waivers(1, 100, 0, DEFAULTS).rag is Rag.GREEN
    assert judge_waivers(0, 0, 0, DEFAULTS).rag is Rag.UNKNOWN  # no results at all: not known, not green
    assert judge_waivers(1, 100, 2, DEFAULTS).rag is Rag.AMBER
    assert "2 waivers end within the next period" in judge_waivers(1, 100, 2, DEFAULTS).reason
    assert judge_waivers(3, 100, 0, DEFAULTS).rag is Rag.AMBER
    assert judge_waivers(11, 100, 0, DEFAULTS).rag is Rag.RED


def test_areas_are_summed_from_the_summary_rows() -> None:
    rows = [
        {"policy": "baseline", "check": "disks-encrypted", "severity": "high", **counts(passed=90, failed=10)},
        {"policy": "baseline", "check": "host-firewall-enabled", "severity": "high", **counts(passed=100)},
        {"policy": "microsoft365", "check": "admins-mfa-capable", "severity": "critical", **counts(failed=1)},
        {"policy": "x", "check": "elsewhere", "severity": "low", **counts(failed=7)},
    ]
    statuses = check_areas(rows, {}, load_area_map(), DEFAULTS)
    protection = statuses["protection"]
    assert protection.counts["pass"] == 190 and protection.counts["fail"] == 10
    assert protection.compliance == pytest.approx(0.95) and protection.judgement.rag is Rag.GREEN
    assert [c["check"] for c in protection.checks] == ["disks-encrypted", "host-firewall-enabled"]
    assert statuses["mfa"].judgement.rag is Rag.RED and statuses["mfa"].critical_failing == 1
    assert statuses["cloud"].judgement.rag is Rag.UNKNOWN
    assert set(statuses) == {"updates", "mfa", "protection", "cloud"}


def test_a_broken_areas_file_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "areas.yaml"
    path.write_text("areas:\n  - key: x\n    question: q\n    title: t\n    explains: e\n    checks: [nope]\n")
    with pytest.raises(AreaMapError, match=r"areas\.yaml: areas\[0\]: check 'nope' must be written policy/check"):
        load_area_map(str(path))
    path.write_text("areas:\n  - key: x\n    kind: guess\n")
    with pytest.raises(AreaMapError, match="kind must be one of checks, devices, waivers"):
        load_area_map(str(path))
