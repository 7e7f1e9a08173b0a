"""The scheduled cloud run: once per slot across two collector processes on one PostgreSQL, stored like
endpoint results and shown in the summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from collector.storage import models
from collector.storage.engine import make_engine
from tests.fakes.microsoft import FakeMicrosoft
from tests.support.collector import RunningCollector, init_collector

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REPORT = "/graph/v1.0/reports/authenticationMethods/userRegistrationDetails"


def with_cloud(collector: RunningCollector, fake: FakeMicrosoft, **cloud: object) -> None:
    document = yaml.safe_load(collector.config_path.read_text())
    document["cloud"] = fake.config(**cloud)
    collector.config_path.write_text(yaml.safe_dump(document))


def cloud_runs(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(models.job_runs.c.holder, models.job_runs.c.status, models.job_runs.c.detail)
                .where(models.job_runs.c.name == "cloud")
                .order_by(models.job_runs.c.id)
            ).all()
        )


@pytest.mark.timeout(180)
def test_the_cloud_job_runs_once_across_replicas_and_feeds_the_summary(
    fake: FakeMicrosoft, tmp_path: Path, pg_url: str
) -> None:
    collector = init_collector(tmp_path, database_url=pg_url, config={"job_poll_s": 1, "db_pool_size": 4})
    with_cloud(collector, fake, interval="1h")
    engine = make_engine(pg_url, pool_size=1)
    try:
        collector.start()
        collector.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [r for r in cloud_runs(engine) if r.status != "running"]:
            time.sleep(0.5)
        time.sleep(4)  # several more polls by both processes: the slot is taken until the hour is up
        runs = cloud_runs(engine)
        assert len(runs) == 1, runs
        assert runs[0].status == "ok", runs[0].detail
        detail = runs[0].detail
        assert isinstance(detail, dict) and detail["stored"] == 16 and detail["sign_in_error"] is None
        assert len(fake.paths(REPORT)) == 1  # Microsoft was asked once, not once per replica

        summary = collector.cli("summary", "--format", "json")
        assert summary.returncode == 0, summary.stderr
        text = json.dumps(json.loads(summary.stdout))
        assert "microsoft365" in text and "azure" in text
        checked = collector.cli("check", "mfa-coverage", "--status", "pass", "--format", "json")
        assert checked.returncode == 0, checked.stderr
        assert fake.scenario.tenant_id in checked.stdout
    finally:
        collector.stop()
        engine.dispose()


@pytest.mark.timeout(120)
def test_a_refused_sign_in_is_recorded_and_the_collector_goes_on(
    fake: FakeMicrosoft, tmp_path: Path, pg_url: str
) -> None:
    collector = init_collector(tmp_path, database_url=pg_url, config={"job_poll_s": 1})
    with_cloud(collector, fake, interval="1h", client_secret="wrong-secret-abc")
    engine = make_engine(pg_url, pool_size=1)
    try:
        url = collector.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [r for r in cloud_runs(engine) if r.status != "running"]:
            time.sleep(0.5)
        (run,) = cloud_runs(engine)
        assert isinstance(run.detail, dict) and "AADSTS7000215" in str(run.detail["sign_in_error"])
        assert "wrong-secret-abc" not in json.dumps(run.detail) + collector.log()
        assert collector.session().get(url + "/healthz").json() == {"status": "ok"}
    finally:
        collector.stop()
        engine.dispose()
