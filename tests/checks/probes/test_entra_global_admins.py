"""entra_global_admins on recorded role assignments (tests/data/probes/entra_global_admins/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe


def test_distinct_global_administrators_across_pages() -> None:
    facts, context = run_probe("entra_global_admins", "paged-assignments")
    assert len(context.requested) == 2
    # One principal at two scopes counts once; the Helpdesk Administrator assignment is not counted.
    assert facts == {
        "count": 3,
        "principal_ids": [
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "86462606-fde0-4fc4-9e0c-a20eb73e54c6",
            "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        ],
    }


def test_the_example_check_passes_with_three() -> None:
    assert [r.status for r in run_example("entra_global_admins", "paged-assignments")] == [Status.PASS]
