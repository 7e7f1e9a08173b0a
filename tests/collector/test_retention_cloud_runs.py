"""Retention forgets cloud runs past the horizon, except each tenant's last (the summary reads it)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from collector import jobs
from collector.storage import models
from tests.support.live import LiveCollector

NOW = models.utcnow()


def cloud_run(tenant: str, days_ago: int, status: str = "ok") -> dict[str, object]:
    finished = NOW - dt.timedelta(days=days_ago)
    return {
        "tenant_id": tenant,
        "started_at": finished - dt.timedelta(minutes=3),
        "finished_at": finished,
        "status": status,
        "reason": "",
        "failing_since": None,
        "last_success_at": finished,
        "stale_after_s": 86400,
        "detail": {},
    }


def test_retention_forgets_old_cloud_runs_but_each_tenants_last(live: LiveCollector) -> None:
    horizon_days = live.config.retention_days
    with live.engine.begin() as connection:
        for days in (horizon_days + 30, horizon_days + 1, 10, 1):  # two past the horizon, two within
            connection.execute(models.cloud_runs.insert().values(cloud_run("busy-tenant", days)))
        # A tenant whose checks stopped long ago: its only runs are all past the horizon.
        for days in (horizon_days + 60, horizon_days + 50):
            connection.execute(models.cloud_runs.insert().values(cloud_run("quiet-tenant", days, "failed")))

    outcome = jobs.retention(live.engine, live.config, NOW)

    assert outcome["deleted_cloud_runs"] == 3
    kept = live.rows(
        sa.select(models.cloud_runs.c.tenant_id, models.cloud_runs.c.finished_at).order_by(models.cloud_runs.c.id)
    )
    ages = [(tenant, (NOW - finished).days) for tenant, finished in kept]
    assert ages == [("busy-tenant", 10), ("busy-tenant", 1), ("quiet-tenant", horizon_days + 50)]
    summary = live.admin().get(live.url + "/api/v1/summary")
    assert summary.status_code == 200, summary.text
    assert "quiet-tenant" in summary.text  # its last run still says it has not been observed since
    assert jobs.retention(live.engine, live.config, NOW)["deleted_cloud_runs"] == 0
