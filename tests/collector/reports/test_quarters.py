"""Three quarters of a small council, driven through the collector's real store with the test's clock,
against figures worked out by hand: the briefing now and as at a past quarter, the comparison with the
previous quarter, and an evidence pack as at a past date made on that date and again months later.

The story (every event at 09:00 UTC; the financial year starts in April):

    2026-Q1 (April-June)
      1 Apr  h1..h4 enrol and report: updates h1 pass, h2 fail, h3 fail, h4 pass; disks h3 fail;
             firewall h4 error
      10 May h2's updates pass
      29 Jun every host reports again (nothing changes)
    2026-Q2 (July-September)
      1 Jul  the tenant: 60% of 100 accounts have MFA, one administrator (Ada) without
      15 Jul h3's updates and disks pass
      1 Aug  80% MFA; a waiver for h4's firewall check, expiring 15 October
      20 Aug h5 enrols in group labs and never reports
      1 Sep  h1's updates fail; 96% MFA, every administrator with MFA
      29 Sep h1..h4 report again
    2026-Q3 (October-December), now = 15 November 12:00
      2 Oct  h5 is revoked
      16 Oct the waiver expires (h4's firewall is an error again)
      1 Nov  h3's disks fail
      14 Nov h1, h3, h4 report again (h2 has gone quiet)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from checks import wire
from collector import jobs
from collector.config import CollectorConfig
from collector.reports import evidence, figures, periods
from collector.reports.evidence_files import ExportRequest
from collector.storage import migrate, waivers
from collector.storage.engine import make_engine, read_tx, run_write
from collector.storage.snapshots import snapshot_on_or_before
from tests.collector.reports.fleet import Fleet, Host

U, D, F = "security-updates-within-14-days", "disks-encrypted", "host-firewall-enabled"
NOW = dt.datetime(2026, 11, 15, 12, 0)
END_Q2 = dt.datetime(2026, 9, 30, 23, 0)  # late on the last day of Q2


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 9, 0)


def mfa_facts(coverage: float, admins_without: list[str]) -> dict[str, Any]:
    return {
        "members": 100,
        "mfa_capable": int(coverage),
        "not_mfa_capable": 100 - int(coverage),
        "coverage_percent": coverage,
        "admins": 2,
        "admins_without_mfa": len(admins_without),
        "admins_without_mfa_list": [{"display_name": name, "user_principal_name": "ada@council.example"}
                                    for name in admins_without],
        "evidence_truncated": False,
    }  # fmt: skip


class Council:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fleet = Fleet(engine, at(4, 1))
        self.hosts: dict[str, Host] = {}
        self.state: dict[str, dict[str, str]] = {}
        self.reports: dict[tuple[str, str], str] = {}  # (host, date) -> report id

    def send(self, name: str, when: dt.datetime, **changes: str) -> None:
        statuses = {U: changes.get("u"), D: changes.get("d"), F: changes.get("f")}
        sent = {check: status for check, status in statuses.items() if status}
        self.state[name].update(sent)
        self.reports[(name, when.date().isoformat())] = self.fleet.report(self.hosts[name], sent, when)

    def heartbeat(self, names: list[str], when: dt.datetime) -> None:
        for name in names:
            self.reports[(name, when.date().isoformat())] = self.fleet.report(
                self.hosts[name], dict(self.state[name]), when
            )

    def tenant(self, when: dt.datetime, coverage: float, admins_without: list[str]) -> None:
        fleet = self.fleet
        coverage_status = "pass" if coverage >= 95 else "fail"
        fleet.cloud(
            "t1",
            [
                fleet.tenant_result("t1", "mfa-coverage", coverage_status, when, mfa_facts(coverage, admins_without)),
                fleet.tenant_result("t1", "admins-mfa-capable", "fail" if admins_without else "pass", when),
                fleet.tenant_result("t1", "mfa-enforced", "pass", when),
            ],
            when,
        )

    def until(self, moment: dt.datetime) -> None:
        """Play the story up to `moment`."""
        for step_at, step in self.steps():
            if step_at <= moment and step_at > self.played:
                step()
                self.played = step_at

    played = dt.datetime.min

    def steps(self) -> list[tuple[dt.datetime, Any]]:
        def enrol_four() -> None:
            for name in ("h1", "h2", "h3", "h4"):
                self.hosts[name] = self.fleet.enrol(name, at(4, 1))
                self.state[name] = {}
            self.send("h1", at(4, 1), u="pass", d="pass", f="pass")
            self.send("h2", at(4, 1), u="fail", d="pass", f="pass")
            self.send("h3", at(4, 1), u="fail", d="fail", f="pass")
            self.send("h4", at(4, 1), u="pass", d="pass", f="error")

        def waive() -> None:
            self.tenant(at(8, 1), 80.0, ["Ada <script>alert(1)</script>"])
            self.waiver = self.fleet.waive(F, {"hosts": ["h4"]}, dt.date(2026, 10, 15), at(8, 1), "<b>Old</b> kit")

        def enrol_h5() -> None:
            self.hosts["h5"] = self.fleet.enrol("h5", at(8, 20), group="labs")

        def september() -> None:
            self.send("h1", at(9, 1), u="fail")
            self.tenant(at(9, 1), 96.0, [])

        def expire() -> None:
            run_write(self.engine, lambda c: waivers.expire_due(c, at(10, 16)))

        return [
            (at(4, 1), enrol_four),
            (at(5, 10), lambda: self.send("h2", at(5, 10), u="pass")),
            (at(6, 29), lambda: self.heartbeat(["h1", "h2", "h3", "h4"], at(6, 29))),
            (at(7, 1), lambda: self.tenant(at(7, 1), 60.0, ["Ada <script>alert(1)</script>"])),
            (at(7, 15), lambda: self.send("h3", at(7, 15), u="pass", d="pass")),
            (at(8, 1), waive),
            (at(8, 20), enrol_h5),
            (at(9, 1), september),
            (at(9, 29), lambda: self.heartbeat(["h1", "h2", "h3", "h4"], at(9, 29))),
            (at(10, 2), lambda: self.fleet.revoke(self.hosts["h5"], at(10, 2))),
            (at(10, 16), expire),
            (at(11, 1), lambda: self.send("h3", at(11, 1), d="fail")),
            (at(11, 14), lambda: self.heartbeat(["h1", "h3", "h4"], at(11, 14))),
        ]


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url, 2)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


CONFIG = CollectorConfig()


def briefing(engine: Engine, quarter: str, now: dt.datetime, group: str | None = None) -> dict[str, Any]:
    with read_tx(engine) as connection:
        return figures.gather(connection, period=periods.quarter(quarter), group=group, config=CONFIG, now=now)


def _posture(engine: Engine, now: dt.datetime, as_of: dt.date | None = None) -> list[dict[str, Any]]:
    with read_tx(engine) as connection:
        return figures.area_posture(connection, config=CONFIG, now=now, as_of=as_of)


def area(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(a for a in data["areas"] if a["key"] == key)


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """The figures that must not depend on when the briefing was written."""
    copied: dict[str, Any] = json.loads(json.dumps(data))
    for name in ("generated_at", "period"):
        copied.pop(name)
    for section in copied["areas"]:
        section.get("now", {}).pop("not_reporting_listed", None)  # listed for the current state only
        for waiver in section.get("in_force", []):
            waiver.pop("results_waived")  # counted for the current state only
    return copied


def test_three_quarters_of_figures_against_hand_computed_truth(engine: Engine, tmp_path: Path) -> None:
    council = Council(engine)
    council.until(END_Q2)
    q2_then = briefing(engine, "2026-Q2", END_Q2)
    key = wire.generate_key()
    pack_then = tmp_path / "then.zip"
    evidence.export(engine, CONFIG, key, ExportRequest(end=dt.date(2026, 9, 30)), pack_then, now=END_Q2,
                    actor="cli:auditor", render_briefing=False)  # fmt: skip
    council.until(NOW)
    q3 = briefing(engine, "2026-Q3", NOW)

    # --- Q3 so far, against Q2 -----------------------------------------------------------------------------
    assert q3["period"]["as_at"] == "2026-11-15" and q3["period"]["current"] is True
    assert q3["previous"]["label"] == "2026-Q2" and q3["previous"]["known"]
    updates = area(q3, "updates")
    assert (updates["counts"]["pass"], updates["counts"]["fail"]) == (3, 1)  # h1 fails since 1 September
    assert (updates["compliance"], updates["rag"]) == (75.0, "red")
    assert (updates["before_compliance"], updates["before_rag"]) == (75.0, "red")
    protection = area(q3, "protection")  # disks h3 fail; firewall h4 error again since the waiver expired
    assert {k: protection["counts"][k] for k in ("pass", "fail", "error", "waived")} == {
        "pass": 6, "fail": 1, "error": 1, "waived": 0}  # fmt: skip
    assert (protection["compliance"], protection["rag"]) == (85.7, "amber")
    assert protection["before_counts"]["waived"] == 1 and protection["before_compliance"] == 100.0
    assert protection["before_rag"] == "green"
    mfa = area(q3, "mfa")
    assert (mfa["compliance"], mfa["rag"], mfa["before_rag"]) == (100.0, "green", "green")
    devices = area(q3, "devices")
    assert {k: devices["now"][k] for k in ("enrolled", "reporting", "stale", "never_seen", "revoked",
                                           "revoked_in_period")} == {
        "enrolled": 4, "reporting": 3, "stale": 1, "never_seen": 0, "revoked": 1, "revoked_in_period": 1}  # fmt: skip
    assert [h["hostname"] for h in devices["now"]["not_reporting_listed"]] == ["h2"]
    assert (devices["before"]["enrolled"], devices["before"]["reporting"], devices["before"]["never_seen"]) == (5, 4, 1)
    assert (devices["rag"], devices["before_rag"]) == ("red", "red")  # 75% now, 80% then
    risks = area(q3, "accepted_risks")
    assert (risks["in_force"], risks["approved_in_period"], risks["ended_in_period"]) == ([], 0, 1)
    assert (risks["rag"], risks["before_rag"]) == ("green", "amber")
    assert [(c["check"], c["failing"], c["before_failing"], c["longest_days"], c["over_30_days"])
            for c in q3["top_failing"]] == [(D, 1, 0, 14, 0), (U, 1, 1, 75, 1)]  # fmt: skip
    # Monthly points over Q2 and Q3: updates fail from 1 September (h1).
    assert q3["weeks"] == ["2026-07-31", "2026-08-31", "2026-09-30", "2026-10-31", "2026-11-15"]
    assert updates["trend"] == [100.0, 100.0, 75.0, 75.0, 75.0]
    (tenant,) = q3["mfa"]
    assert tenant["curve"] == [60.0, 80.0, 96.0, 96.0, 96.0]
    assert (tenant["now"]["coverage_percent"], tenant["now"]["without_mfa"]) == (96.0, 4)
    assert tenant["now"]["admins_without_mfa_listed"] == []
    assert tenant["enforced"] == {"mfa-enforced": "pass", "admin-roles-require-mfa": None}
    caf = next(f for f in q3["frameworks"] if f["key"] == "ncsc_caf")
    b4d = next(c for c in caf["controls"] if c["control"] == "B4.d")  # the updates check
    assert (b4d["compliance"], b4d["before_compliance"], b4d["fail"]) == (75.0, 75.0, 1)
    ce = next(f for f in q3["frameworks"] if f["key"] == "cyber_essentials")
    assert [c["control"] for c in ce["controls"]] == [
        "firewalls", "secure_configuration", "security_update_management", "user_access_control",
        "malware_protection"]  # fmt: skip
    assert not next(c for c in ce["controls"] if c["control"] == "malware_protection")["covered"]

    posture = {a["key"]: a["rag"] for a in _posture(engine, NOW)}
    assert posture == {a["key"]: a["rag"] for a in q3["areas"]}  # what the dashboard shows: the same judgement
    rags_then = {a["key"]: a["rag"] for a in _posture(engine, NOW, dt.date(2026, 9, 30))}
    assert rags_then == {a["key"]: a["rag"] for a in q2_then["areas"]}

    # --- Q2 as written on its last day, and as read back in November from the history ----------------------
    q2_later = briefing(engine, "2026-Q2", NOW)
    assert q2_then["period"]["current"] is True and q2_later["period"]["current"] is False
    assert comparable(q2_later) == comparable(q2_then)
    (tenant_q2,) = q2_later["mfa"]
    assert tenant_q2["before"] is None  # Q1 ended before the tenant was first checked
    assert tenant_q2["now"]["coverage_percent"] == 96.0
    with read_tx(engine) as connection:
        august = figures.gather(
            connection, period=periods.date_range(dt.date(2026, 8, 1), dt.date(2026, 8, 15)), group=None,
            config=CONFIG, now=NOW,
        )  # fmt: skip
    (tenant_august,) = august["mfa"]
    assert tenant_august["now"]["admins_without_mfa_listed"] == [
        {"name": "Ada <script>alert(1)</script>", "sign_in": "ada@council.example"}]  # fmt: skip
    assert tenant_august["before"]["coverage_percent"] == 60.0  # 17-31 July
    assert area(august, "mfa")["rag"] == "red"  # an administrator without MFA is critical
    risks_q2 = area(q2_later, "accepted_risks")
    assert [(w["check"], w["owner"], w["approver"], w["ticket"], w["expires"], w["ends_next_period"])
            for w in risks_q2["in_force"]] == [(F, "it.manager", "ciso", "CHG-1001", "2026-10-15", True)]  # fmt: skip
    q1 = briefing(engine, "2026-Q1", NOW)
    assert (area(q1, "updates")["compliance"], area(q1, "protection")["compliance"]) == (75.0, 85.7)
    assert area(q1, "devices")["now"]["reporting"] == 4 and q1["previous"]["label"] == "2025-Q4"
    labs = briefing(engine, "2026-Q2", NOW, group="labs")
    assert (area(labs, "devices")["now"]["enrolled"], area(labs, "devices")["now"]["never_seen"]) == (1, 1)
    assert area(labs, "updates")["rag"] == "unknown" and labs["mfa"] == []

    # --- the pack as at 30 September, made that evening and again in November ------------------------------
    pack_later = tmp_path / "later.zip"
    evidence.export(engine, CONFIG, key, ExportRequest(end=dt.date(2026, 9, 30)), pack_later, now=NOW,
                    actor="cli:auditor", render_briefing=False)  # fmt: skip
    with zipfile.ZipFile(pack_then) as then, zipfile.ZipFile(pack_later) as later:
        for name in (
            "results.csv",
            "results.jsonl",
            "agents.csv",
            "agents.json",
            "waivers.json",
            "waivers.csv",
            "policies/index.json",
            "changes.csv",
            "audit-log.jsonl",
            "ocsf/compliance-findings.jsonl",
        ):
            assert then.read(name) == later.read(name), f"{name} differs between the two exports"  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(later.read("results.csv").decode())))
        agents = {a["hostname"]: a for a in csv.DictReader(io.StringIO(later.read("agents.csv").decode()))}
        waiver = json.loads(later.read("waivers.json"))["waivers"][0]
    names = {council.hosts[n].agent_id: n for n in council.hosts}
    truth = {
        ("h1", U): ("fail", "2026-09-01"), ("h1", D): ("pass", "2026-04-01"), ("h1", F): ("pass", "2026-04-01"),
        ("h2", U): ("pass", "2026-05-10"), ("h2", D): ("pass", "2026-04-01"), ("h2", F): ("pass", "2026-04-01"),
        ("h3", U): ("pass", "2026-07-15"), ("h3", D): ("pass", "2026-07-15"), ("h3", F): ("pass", "2026-04-01"),
        ("h4", U): ("pass", "2026-04-01"), ("h4", D): ("pass", "2026-04-01"), ("h4", F): ("waived", "2026-08-01"),
        ("t1", "mfa-coverage"): ("pass", "2026-09-01"), ("t1", "admins-mfa-capable"): ("pass", "2026-09-01"),
        ("t1", "mfa-enforced"): ("pass", "2026-07-01"),
    }  # fmt: skip
    seen = {(names.get(r["subject_id"], r["subject_id"]), r["check"]): (r["status"], r["since"][:10]) for r in rows}
    assert seen == truth
    by_key = {(names.get(r["subject_id"], r["subject_id"]), r["check"]): r for r in rows}
    h1_updates = by_key[("h1", U)]
    assert h1_updates["report_id"] == council.reports[("h1", "2026-09-01")]
    assert json.loads(h1_updates["observed"]) == {"value": f"{U} fail"} and h1_updates["reason"] == f"{U} is fail"
    h4_firewall = by_key[("h4", F)]
    assert (h4_firewall["waived_status"], h4_firewall["waiver_id"]) == ("error", council.waiver)
    coverage = by_key[("t1", "mfa-coverage")]
    assert json.loads(coverage["observed"])["coverage_percent"] == 96.0
    assert coverage["facts_from"] == "tenant observation of 2026-09-01"
    assert agents["h5"]["revoked_at"] == "" and agents["h5"]["last_report_before_end"] == ""  # revoked in October
    assert agents["h1"]["last_report_before_end"] == "2026-09-29T09:00:00Z"
    assert waiver["state_at_end"] == "approved" and [e["action"] for e in waiver["history"]] == [
        "waiver.request", "waiver.approve"]  # fmt: skip


def test_every_tenant_keeps_its_mfa_rollout_as_at_a_past_date(engine: Engine) -> None:
    fleet = Fleet(engine, at(4, 1))
    for month, (first, second) in ((7, (50.0, 20.0)), (8, (70.0, 40.0)), (9, (90.0, 60.0))):
        for tenant, coverage in (("t1", first), ("t2", second)):
            fleet.cloud(tenant, [fleet.tenant_result(tenant, "mfa-coverage", "fail", at(month, 1),
                                                     mfa_facts(coverage, []))], at(month, 1))  # fmt: skip
    q2 = briefing(engine, "2026-Q2", NOW)  # read back from the history: a past quarter
    assert {t["tenant_id"]: t["curve"][-3:] for t in q2["mfa"]} == {
        "t1": [50.0, 70.0, 90.0], "t2": [20.0, 40.0, 60.0]}  # fmt: skip


def test_what_happened_in_the_briefings_own_second_is_in_its_figures(engine: Engine) -> None:
    """Stored times are whole seconds: a device enrolled, reporting and waived in the very second the
    briefing is made is counted (it was left out when `now` was the exclusive end)."""
    fleet = Fleet(engine, NOW)
    host = fleet.enrol("same-second", NOW)
    fleet.report(host, {U: "fail", D: "pass"}, NOW)
    fleet.waive(U, {"hosts": ["same-second"]}, dt.date(2026, 12, 31), NOW)
    data = briefing(engine, "2026-Q3", NOW)
    devices = area(data, "devices")
    assert devices["now"]["enrolled"] == 1 and devices["now"]["reporting"] == 1, devices
    assert data["totals"]["waived"] == 1 and data["totals"]["pass"] == 1, data["totals"]


def test_the_trends_read_from_the_counter_snapshots_match_the_sums_of_every_change(engine: Engine) -> None:
    """Once the retention job has written the weekly snapshots, the briefing's trends start from the newest
    one before their first day instead of summing every change kept: the same figures either way."""
    council = Council(engine)
    council.until(NOW)
    summed = [briefing(engine, "2026-Q3", NOW), briefing(engine, "2026-Q3", NOW, group="labs")]
    taken = jobs.retention(engine, CONFIG, NOW)["snapshots_taken"]
    with read_tx(engine) as connection:
        base = snapshot_on_or_before(connection, dt.date(2026, 7, 1))  # Q2 and Q3 are drawn: from 1 July
    assert taken > 0 and base is not None and base < dt.date(2026, 7, 1)
    from_snapshots = [briefing(engine, "2026-Q3", NOW), briefing(engine, "2026-Q3", NOW, group="labs")]
    for before, after in zip(summed, from_snapshots, strict=True):
        assert comparable(after) == comparable(before)
    assert area(from_snapshots[0], "updates")["trend"] == [100.0, 100.0, 75.0, 75.0, 75.0]
