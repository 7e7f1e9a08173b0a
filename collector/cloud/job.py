"""One cloud run against the collector's database: its waivers in, the results stored. Shared by
`rampart-collector cloud run` and the scheduled cloud job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from checks.policy.model import Policy
from checks.results import Status
from collector.cloud.client import PageHook
from collector.cloud.config import CloudConfig
from collector.cloud.run import CloudRun, run_cloud_checks
from collector.cloud.store import store_cloud_run
from collector.storage import waivers
from collector.storage.engine import read_tx, run_write


def run_and_store(
    engine: Engine,
    config: CloudConfig,
    now: dt.datetime,
    *,
    policies: list[Policy] | None = None,
    on_page: PageHook | None = None,
) -> tuple[CloudRun, int]:
    """Judge the cloud policies with the collector's waivers and store the results; (run, stored)."""
    with read_tx(engine) as connection:
        in_force = waivers.in_force(connection, now.date())
    run = run_cloud_checks(config, policies=policies, waivers=in_force, on_page=on_page)
    cache = waivers.WaiverCache()
    stored = run_write(engine, lambda c: store_cloud_run(c, run, now=now, waivers=cache.current))
    return run, stored


def summary(run: CloudRun, stored: int) -> dict[str, Any]:
    """What a job run records about itself."""
    return {
        "tenant": run.tenant.id,
        "results": len(run.results),
        "stored": stored,
        "errors": sum(1 for r in run.results if r.status is Status.ERROR),
        "sign_in_error": run.sign_in_error,
        "requests": run.stats.requests,
        "retries": run.stats.retries,
        "duration_s": round(run.duration_s, 3),
    }
