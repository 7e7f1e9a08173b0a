"""A 100,000-user tenant: counts exact, memory bounded (the tenant is never held whole).

The fake runs in a child process so that tracemalloc here measures the client only. The figure is
compared with a tenant ten times smaller: streaming means the peak does not grow with the tenant.
The formal figures are in docs/benchmarks.md (bench/cloud_mfa.py).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from checks.results import Status
from collector.cloud.config import CloudConfig
from collector.cloud.run import CloudRun, run_cloud_checks
from tests.collector.cloud.conftest import result_of
from tests.fakes.microsoft import SpawnedFake

pytestmark = pytest.mark.slow


def measured_run(users: int, directory: Path) -> tuple[CloudRun, int, dict[str, int], int]:
    with SpawnedFake(users, directory) as fake:
        config = CloudConfig(**fake.config())
        tracemalloc.start()
        try:
            run = run_cloud_checks(config)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        fake.stop()
        return run, peak, fake.expected, fake.pages_served


@pytest.mark.timeout(600)
def test_a_100k_user_tenant_is_counted_exactly_in_bounded_memory(tmp_path: Path) -> None:
    small_run, small_peak, _, _ = measured_run(10_000, tmp_path)
    run, peak, expected, pages = measured_run(100_000, tmp_path)

    coverage = result_of(run, "mfa-coverage")
    facts = coverage.observed
    assert facts["members"] == expected["members"] == 90_000
    assert facts["mfa_capable"] == expected["mfa_capable"]
    assert facts["admins"] == expected["admins"] and facts["admins_without_mfa"] == expected["admins_without_mfa"]
    assert facts["guests_not_counted"] == expected["guests"]
    assert facts["pages"] == pages == 100
    assert len(facts["users_without_mfa"]) == 1000 and facts["evidence_truncated"] is True
    assert coverage.status is Status.FAIL  # about one in seven lacks MFA
    assert result_of(run, "admins-mfa-capable").status is Status.FAIL

    mib = 1024 * 1024
    print(f"\npeak traced memory: 10k users {small_peak / mib:.1f} MiB, 100k users {peak / mib:.1f} MiB")
    # Holding 90,000 member records would take well over 100 MiB; streaming stays near one page.
    assert peak < 16 * mib
    assert peak < small_peak * 1.5 + 4 * mib
    assert result_of(small_run, "mfa-coverage").observed["members"] == 9_000
