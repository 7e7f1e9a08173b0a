"""`rampart-collector cloud run` stores results where endpoint results go (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from checks.results import Subject, SubjectKind
from collector.cloud.store import MAX_EXT_ID, subject_key
from collector.storage import waivers
from collector.storage.engine import make_engine, run_write
from collector.storage.models import latest_results, result_intervals, subjects
from tests.collector.cloud.conftest import SUB_A
from tests.conftest import run_cli
from tests.fakes.microsoft import FakeMicrosoft, nsg, nsg_rule, role_assignment
from tests.support.collector import init_collector

NSG_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-main/providers/Microsoft.Network/networkSecurityGroups/nsg-web"


def configure(fake: FakeMicrosoft, tmp_path: Path, database_url: str) -> tuple[Path, sa.Engine]:
    collector = init_collector(tmp_path / "collector", database_url=database_url)
    document = yaml.safe_load(collector.config_path.read_text())
    document["cloud"] = fake.config()
    collector.config_path.write_text(yaml.safe_dump(document))
    url = database_url or f"sqlite:///{collector.data_dir / 'collector.db'}"
    return collector.config_path, make_engine(url, pool_size=1)


def latest(engine: sa.Engine) -> dict[tuple[str, str], dict[str, Any]]:
    query = sa.select(subjects.c.kind, subjects.c.ext_id, subjects.c.group_name, latest_results).join(
        latest_results, latest_results.c.subject_id == subjects.c.id
    )
    with engine.connect() as connection:
        return {(row.ext_id, row.check_id): dict(row._mapping) for row in connection.execute(query)}


def test_cloud_results_are_stored_per_subject_with_history_and_waivers(
    fake: FakeMicrosoft, tmp_path: Path, database_url: str
) -> None:
    config, engine = configure(fake, tmp_path, database_url)
    tenant = fake.scenario.tenant_id
    try:
        # The collector holds a waiver for the admin count on this tenant, approved by someone else.
        def waive(connection: sa.Connection) -> None:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            draft = waivers.request(
                connection,
                check_id="global-admin-count",
                policy_id="microsoft365",
                scope={"tenants": [tenant]},
                justification="Merger: two directories being consolidated",
                expires=now.date() + dt.timedelta(days=30),
                requested_by="it.manager",
                now=now,
            )
            waivers.approve(connection, draft["id"], approver="ciso", now=now)

        run_write(engine, waive)
        fake.scenario.role_assignments = [role_assignment(f"ga-{i}") for i in range(7)]
        fake.scenario.subscriptions[0].nsgs = [
            nsg(SUB_A, "nsg-web", [nsg_rule("rdp", 100, sourceAddressPrefix="*", destinationPortRange="3389")])
        ]
        first = run_cli("rampart-collector", "--config", str(config), "cloud", "run")
        assert first.returncode == 0, first.stderr
        assert "16 results stored" in first.stdout

        rows = latest(engine)
        assert len(rows) == 16
        coverage = rows[(tenant, "mfa-coverage")]
        assert (coverage["kind"], coverage["group_name"], coverage["status"]) == ("tenant", "cloud", "pass")
        assert coverage["observed"]["members"] == 20
        waived = rows[(tenant, "global-admin-count")]
        assert (waived["status"], waived["waived_status"]) == ("waived", "fail") and waived["waiver_id"]
        open_nsg = rows[(NSG_ID, "nsg-no-internet-management-ports")]
        assert (open_nsg["kind"], open_nsg["status"]) == ("cloud_resource", "fail")
        assert open_nsg["observed"]["open_ports"] == [3389]

        # Fixed in Azure: the next run closes the fail interval and opens a pass one.
        fake.scenario.subscriptions[0].nsgs = [nsg(SUB_A, "nsg-web", [])]
        second = run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--format", "json")
        assert second.returncode == 0, second.stderr
        assert latest(engine)[(NSG_ID, "nsg-no-internet-management-ports")]["status"] == "pass"
        with engine.connect() as connection:
            history = connection.execute(
                sa.select(result_intervals.c.status, result_intervals.c.valid_to)
                .where(result_intervals.c.check_id == "nsg-no-internet-management-ports")
                .order_by(result_intervals.c.valid_from, result_intervals.c.id)
            ).all()
            tenants = connection.execute(sa.select(sa.func.count()).where(subjects.c.kind == "tenant")).scalar()
        assert [h.status for h in history] == ["fail", "pass"]
        assert history[0].valid_to is not None and history[1].valid_to is None
        assert tenants == 1  # the same subject row, run after run
    finally:
        engine.dispose()


def test_without_a_database_schema_cloud_run_fails_clearly(fake: FakeMicrosoft, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"collector": {"data_dir": str(tmp_path / "none")}, "cloud": fake.config()}))
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run")
    assert done.returncode == 1
    assert "cannot open the database" in done.stderr
    assert not fake.paths("/graph")  # nothing is asked of Microsoft when results could not be stored


def test_long_resource_ids_fit_the_subject_column() -> None:
    short = Subject(SubjectKind.CLOUD_RESOURCE, "/subscriptions/x/st")
    long_id = (
        "/subscriptions/x/resourceGroups/" + "g" * 90 + "/providers/Microsoft.Sql/servers/" + "s" * 63 + "/databases/db"
    )
    assert subject_key(short) == short.id
    key = subject_key(Subject(SubjectKind.CLOUD_RESOURCE, long_id))
    assert len(key) == MAX_EXT_ID and key.startswith(long_id[:100])
    assert key != subject_key(Subject(SubjectKind.CLOUD_RESOURCE, long_id + "2"))


def test_the_cloud_job_can_be_run_from_the_cli_and_is_off_until_configured(fake: FakeMicrosoft, tmp_path: Path) -> None:
    config, engine = configure(fake, tmp_path, "")
    engine.dispose()
    ran = run_cli("rampart-collector", "--config", str(config), "jobs", "run", "cloud", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    (outcome,) = json.loads(ran.stdout)
    assert (outcome["job"], outcome["status"], outcome["detail"]["stored"]) == ("cloud", "ok", 16)

    document = yaml.safe_load(config.read_text())
    document["cloud"]["tenant_id"] = ""
    config.write_text(yaml.safe_dump(document))
    forced = run_cli("rampart-collector", "--config", str(config), "jobs", "run", "--force", "--format", "json")
    assert forced.returncode == 0, forced.stderr
    assert [o["job"] for o in json.loads(forced.stdout)] == ["retention"]


def test_a_failed_run_is_shown_by_cloud_run_and_summary_with_its_reason_and_since_when(
    fake: FakeMicrosoft, tmp_path: Path
) -> None:
    config, engine = configure(fake, tmp_path, "")
    engine.dispose()
    assert run_cli("rampart-collector", "--config", str(config), "cloud", "run").returncode == 0
    document = yaml.safe_load(config.read_text())
    document["cloud"]["client_secret"] = "rotated-secret-xyz"
    config.write_text(yaml.safe_dump(document))
    failed = run_cli("rampart-collector", "--config", str(config), "cloud", "run")
    assert failed.returncode == 1
    assert "Run failed: sign-in as app" in failed.stdout and "AADSTS7000215" in failed.stdout
    assert "Not fully observed since 20" in failed.stdout and "last complete run 20" in failed.stdout
    assert "0 results stored, 0 retired" in failed.stdout
    as_json = json.loads(
        run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--format", "json").stdout
    )
    assert (as_json["status"], as_json["stored"]) == ("failed", 0) and as_json["failing_since"]
    summary = run_cli("rampart-collector", "--config", str(config), "summary")
    assert summary.returncode == 0, summary.stderr
    assert f"Cloud (tenant {fake.scenario.tenant_id}): last run" in summary.stdout
    assert "failed: sign-in as app" in summary.stdout and "not fully observed since" in summary.stdout
    assert "16 pass" in summary.stdout  # the last known results stand
    assert "rotated-secret-xyz" not in failed.stdout + failed.stderr + summary.stdout


def test_results_of_a_check_the_run_says_nothing_about_are_stored(tmp_path: Path, database_url: str) -> None:
    """A run without a coverage entry for a check (what it could observe is not known) stores that check's
    results and retires nothing of it; before, they were dropped without a word."""
    from checks.results import Result, Severity, Status
    from collector.cloud.run import CloudRun
    from collector.cloud.store import store_cloud_run

    collector = init_collector(tmp_path / "collector", database_url=database_url)
    engine = make_engine(database_url or f"sqlite:///{collector.data_dir / 'collector.db'}", pool_size=1)
    tenant = Subject(SubjectKind.TENANT, "00000000-0000-0000-0000-0000000000aa", "Contoso")
    result = Result(
        check_id="mfa-coverage", status=Status.FAIL, severity=Severity.HIGH, title="MFA coverage",
        policy_id="microsoft365", policy_version="1", policy_hash="ab" * 32, observed={"coverage_percent": 50},
        expectation={}, reason="below", subject=tenant,
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    try:
        stored = run_write(engine, lambda c: store_cloud_run(c, CloudRun(tenant=tenant, results=[result]), now=now,
                                                             waivers=waivers.WaiverCache().current))  # fmt: skip
        assert stored.stored == 1 and stored.retired == 0
        assert latest(engine)[(tenant.id, "mfa-coverage")]["status"] == "fail"
    finally:
        engine.dispose()
