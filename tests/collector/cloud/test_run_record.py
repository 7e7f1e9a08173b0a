"""What a cloud run could not observe never replaces what is known; what a complete listing no longer has is
retired; every run is recorded with why and since when it was not ok (against the HTTPS fake tenant, on
SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from collector.cloud.job import run_and_store
from collector.cloud.run import CloudRun
from collector.cloud.store import StoredRun
from collector.storage import migrate, models
from collector.storage.engine import make_engine, read_tx
from collector.storage.queries import summary as summary_view
from tests.collector.cloud.conftest import SUB_A, cloud_config
from tests.fakes.microsoft import FakeMicrosoft, Fault, storage_account, user, vault

REPORT = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
STORAGE = f"/subscriptions/{SUB_A}/providers/Microsoft.Storage"
STORAGE_CHECKS = ("storage-https-only", "storage-tls-1-2", "storage-no-public-blob-access")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url, pool_size=2)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def run(fake: FakeMicrosoft, engine: sa.Engine, **config: Any) -> tuple[CloudRun, StoredRun]:
    return run_and_store(engine, cloud_config(fake, **config), utcnow())


def latest(engine: sa.Engine) -> dict[tuple[str, str], str]:
    """(subject, check) -> status of every latest row, retired ones included."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(models.subjects.c.name, models.latest_results.c.check_id, models.latest_results.c.status).join(
                models.subjects, models.subjects.c.id == models.latest_results.c.subject_id
            )
        ).all()
    return {(name, check): status for name, check, status in rows}


def summary(engine: sa.Engine, now: dt.datetime | None = None, **kwargs: Any) -> dict[str, Any]:
    with read_tx(engine) as connection:
        return summary_view.summary(connection, now=now or utcnow(), stale_after=dt.timedelta(hours=48), **kwargs)


def checks(data: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {c["check"]: (c["pass"], c["fail"], c["error"]) for c in data["by_check"]}


def counted_equals_latest(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        counted = connection.execute(sa.select(sa.func.sum(models.status_counts.c.count))).scalar()
        rows = connection.execute(
            sa.select(sa.func.count()).where(models.latest_results.c.status != "retired")
        ).scalar()
    assert counted == rows


def test_a_run_that_cannot_sign_in_leaves_the_known_results_standing(fake: FakeMicrosoft, engine: sa.Engine) -> None:
    fake.scenario.users = [user(f"person{i}@contoso.example", capable=i % 4 != 1, admin=i < 2) for i in range(20)]
    first, stored = run(fake, engine)
    assert (first.status, stored.stored) == ("ok", 16)
    before = summary(engine)
    assert checks(before)["mfa-coverage"] == (0, 1, 0) and checks(before)["admins-mfa-capable"] == (0, 1, 0)

    fake.scenario.apps[next(iter(fake.scenario.apps))].secret = "rotated-by-someone"
    failed, kept = run(fake, engine)
    assert failed.status == "failed" and "AADSTS7000215" in failed.reason
    assert (kept.stored, kept.retired) == (0, 0)
    after = summary(engine)
    assert after["totals"] == before["totals"]  # the MFA coverage failure and the admin without MFA remain
    assert checks(after)["mfa-coverage"] == (0, 1, 0) and checks(after)["admins-mfa-capable"] == (0, 1, 0)
    (state,) = after["cloud"]
    assert (state["status"], state["tenant"]) == ("failed", fake.scenario.tenant_id)
    assert "AADSTS7000215" in state["reason"] and state["last_success_at"] == before["cloud"][0]["last_run_at"]
    assert state["failing_since"] == state["last_run_at"] and state["stale_results"] == 0

    again, _ = run(fake, engine)  # still failing: since when does not move
    (still,) = summary(engine)["cloud"]
    assert again.status == "failed" and still["failing_since"] == state["failing_since"]
    # A day later, nothing new observed: the results that stand are shown stale.
    (stale,) = summary(engine, now=utcnow() + dt.timedelta(days=1, hours=1))["cloud"]
    assert (stale["stale_results"], stale["results"], stale["stale_after_hours"]) == (16, 16, 24.0)

    fake.scenario.apps[next(iter(fake.scenario.apps))].secret = cloud_config(fake).client_secret
    recovered, _ = run(fake, engine)
    (ok,) = summary(engine)["cloud"]
    assert recovered.status == "ok" and ok["failing_since"] is None and ok["last_success_at"] == ok["last_run_at"]
    counted_equals_latest(engine)


def test_a_check_that_cannot_be_read_keeps_its_last_verdict(fake: FakeMicrosoft, engine: sa.Engine) -> None:
    fake.scenario.users = [user(f"person{i}@contoso.example", capable=i % 4 != 1) for i in range(20)]
    run(fake, engine)
    fake.scenario.faults = [Fault(REPORT, 403, "Authorization_RequestDenied", "Insufficient privileges.")]
    partial, stored = run(fake, engine)
    assert partial.status == "partial" and stored.standing == 2  # mfa-coverage and admins-mfa-capable
    assert {f["check"] for f in partial.failures()} == {"mfa-coverage", "admins-mfa-capable"}
    assert checks(summary(engine))["mfa-coverage"] == (0, 1, 0)
    (state,) = summary(engine)["cloud"]
    assert state["status"] == "partial" and "AuditLog.Read.All" in state["reason"] and state["not_observed"] == 2


def test_a_check_never_observed_is_an_error_naming_what_to_grant(fake: FakeMicrosoft, engine: sa.Engine) -> None:
    fake.scenario.faults = [Fault(REPORT, 403, "Authorization_RequestDenied", "Insufficient privileges.")]
    partial, _ = run(fake, engine)
    assert partial.status == "partial"
    assert checks(summary(engine))["mfa-coverage"] == (0, 0, 1)
    fake.scenario.faults = []
    run(fake, engine)  # readable now: the verdict replaces the error
    assert checks(summary(engine))["mfa-coverage"] == (1, 0, 0)


def test_a_resource_gone_from_a_complete_listing_is_retired(fake: FakeMicrosoft, engine: sa.Engine) -> None:
    subscription = fake.scenario.subscriptions[0]
    subscription.storage = [
        storage_account(SUB_A, "stkept"),
        storage_account(SUB_A, "stgone", minimumTlsVersion="TLS1_0"),
    ]
    subscription.vaults.append(vault(SUB_A, "kv-gone"))  # no purge protection: fails
    run(fake, engine)
    before = checks(summary(engine))
    assert before["storage-tls-1-2"] == (1, 1, 0) and before["key-vault-recoverable"][1] == 1

    subscription.storage = [storage_account(SUB_A, "stkept")]
    subscription.vaults = subscription.vaults[:1]
    done, stored = run(fake, engine)
    assert done.status == "ok" and stored.retired == 4  # three storage checks and the vault check
    after = checks(summary(engine))
    assert after["storage-tls-1-2"] == (1, 0, 0) and after["key-vault-recoverable"] == (1, 0, 0)
    rows = latest(engine)
    assert {rows[("stgone", check)] for check in STORAGE_CHECKS} == {"retired"}
    assert rows[("kv-gone", "key-vault-recoverable")] == "retired"
    with engine.connect() as connection:  # history kept: the fail interval ended at the retirement
        (valid_to,) = connection.execute(
            sa.select(models.result_intervals.c.valid_to)
            .join(models.subjects, models.subjects.c.id == models.result_intervals.c.subject_id)
            .where(models.subjects.c.name == "stgone", models.result_intervals.c.check_id == "storage-tls-1-2")
        ).one()
    assert valid_to is not None
    # It comes back: counted afresh.
    subscription.storage.append(storage_account(SUB_A, "stgone"))
    run(fake, engine)
    assert (
        checks(summary(engine))["storage-tls-1-2"] == (2, 0, 0)
        and latest(engine)[("stgone", "storage-https-only")] == "pass"
    )
    counted_equals_latest(engine)


def test_a_subscription_error_does_not_stay_beside_the_next_good_listing(
    fake: FakeMicrosoft, engine: sa.Engine
) -> None:
    fake.scenario.faults = [Fault(STORAGE, 403, "AuthorizationFailed", "The client does not have authorization.")]
    partial, _ = run(fake, engine)
    assert partial.status == "partial"
    assert all(checks(summary(engine))[check] == (0, 0, 1) for check in STORAGE_CHECKS)  # nothing known yet

    fake.scenario.faults = []
    done, stored = run(fake, engine)
    assert done.status == "ok" and stored.retired == 3
    assert all(checks(summary(engine))[check] == (1, 0, 0) for check in STORAGE_CHECKS)
    assert {latest(engine)[(f"subscription {SUB_A}", check)] for check in STORAGE_CHECKS} == {"retired"}
    counted_equals_latest(engine)


def test_a_subscription_that_cannot_be_listed_keeps_its_resources_results(
    fake: FakeMicrosoft, engine: sa.Engine
) -> None:
    run(fake, engine)
    before = summary(engine)
    fake.scenario.faults = [Fault(STORAGE, 403, "AuthorizationFailed", "The client does not have authorization.")]
    partial, stored = run(fake, engine)
    assert partial.status == "partial" and (stored.retired, stored.standing) == (0, 3)
    assert summary(engine)["totals"] == before["totals"]
    assert [f["scope"] for f in partial.failures()] == [f"subscription {SUB_A}"] * 3
    assert all(latest(engine)[("stcouncildocs", check)] == "pass" for check in STORAGE_CHECKS)
