"""entra_secure_score on recorded snapshots (tests/data/probes/entra_secure_score/)."""

from __future__ import annotations

import json

import pytest

from checks.probes.cloud.entra_secure_score.parse import score_trend
from checks.probes.host import ProbeError
from checks.results import Status
from tests.support.cloud_replay import RECORDINGS, run_example, run_probe


def test_latest_score_and_its_fall_over_thirty_days() -> None:
    facts, context = run_probe("entra_secure_score", "falling")
    assert len(context.requested) == 2
    assert facts == {
        "current_score": 150.0,
        "max_score": 250.0,
        "percent": 60.0,
        "measured_at": "2026-11-30T00:00:00Z",
        # The newest snapshot at least 30 days older than the latest.
        "previous_percent": 66.0,
        "previous_measured_at": "2026-10-31T00:00:00Z",
        "change_points": -6.0,
        "trend": "down",
    }


def test_a_shorter_period_compares_with_a_nearer_snapshot() -> None:
    pages = [
        json.loads((RECORDINGS / "entra_secure_score" / "falling" / f"scores-page-{n}.json").read_text())
        for n in (1, 2)
    ]
    facts = score_trend([snapshot for page in pages for snapshot in page["value"]], trend_days=1)
    assert facts["previous_measured_at"] == "2026-11-29T00:00:00Z" and facts["change_points"] == -1.0


def test_no_snapshot_yet_is_an_error_not_a_zero() -> None:
    with pytest.raises(ProbeError, match="no Secure Score snapshot yet"):
        run_probe("entra_secure_score", "no-snapshot")


def test_the_example_check_fails_on_a_falling_score() -> None:
    (result,) = run_example("entra_secure_score", "falling")
    assert result.status is Status.FAIL and "trend" in result.reason
