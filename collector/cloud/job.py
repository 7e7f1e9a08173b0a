"""One cloud run against the collector's database: its waivers in, the results stored. Shared by
`rampart-collector cloud run` and the scheduled `cloud` job (run once across replicas by collector/jobs.py,
whose build_jobs composes it from these functions: this module does not import collector/jobs.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from checks.config import ConfigError
from checks.policy.model import Policy
from checks.results import Status
from collector.cloud.client import PageHook, WaitHook
from collector.cloud.config import CloudConfig
from collector.cloud.run import CloudRun, run_cloud_checks
from collector.cloud.store import StoredRun, store_cloud_run
from collector.storage import waivers
from collector.storage.engine import read_tx, run_write


def run_and_store(
    engine: Engine,
    config: CloudConfig,
    now: dt.datetime,
    *,
    policies: list[Policy] | None = None,
    on_page: PageHook | None = None,
    on_wait: WaitHook | None = None,
) -> tuple[CloudRun, StoredRun]:
    """Judge the cloud policies with the collector's waivers and store the results (and the run's record)."""
    with read_tx(engine) as connection:
        in_force = waivers.in_force(connection, now.date())
    run = run_cloud_checks(config, policies=policies, waivers=in_force, on_page=on_page, on_wait=on_wait)
    cache = waivers.WaiverCache()
    stored = run_write(engine, lambda c: store_cloud_run(c, run, now=now, waivers=cache.current))
    return run, stored


def summary(run: CloudRun, stored: StoredRun) -> dict[str, Any]:
    """What a job run records about itself."""
    return {
        "tenant": run.tenant.id,
        "status": run.status,
        "reason": run.reason,
        "results": len(run.results),
        "stored": stored.stored,
        "retired": stored.retired,
        "standing": stored.standing,
        "errors": sum(1 for r in run.results if r.status is Status.ERROR),
        "sign_in_error": run.sign_in_error,
        "requests": run.stats.requests,
        "retries": run.stats.retries,
        "duration_s": round(run.duration_s, 3),
    }


# --- the scheduled job -----------------------------------------------------------------------------------
# collector/jobs.py's build_jobs hands each function `load`, which reads the cloud section from the config
# file the collector was started with, at every slot: a changed config takes effect without a restart. Off
# while cloud.tenant_id is empty.

CloudSource = Callable[[], CloudConfig]


def cloud_enabled(load: CloudSource) -> bool:
    """On once `cloud.tenant_id` is set. Never raises (the job thread must keep running): an invalid cloud
    section counts as enabled, so that the run records what is wrong."""
    try:
        return load().configured
    except (ConfigError, ValueError):
        return True


def cloud_interval_s(load: CloudSource) -> int:
    try:
        return load().interval_s
    except (ConfigError, ValueError):
        return CloudConfig().interval_s


def scheduled_cloud_run(engine: Engine, load: CloudSource, now: dt.datetime) -> dict[str, Any]:
    config = load()
    config.validate()  # a ConfigError is recorded as the run's failure, naming the key
    run, stored = run_and_store(engine, config, now)
    return summary(run, stored)
