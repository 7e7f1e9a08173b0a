"""entra_legacy_auth on recorded conditional access (tests/data/probes/entra_legacy_auth/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe

BREAK_GLASS = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def test_an_enabled_policy_blocking_both_legacy_client_types_blocks() -> None:
    facts, _ = run_probe("entra_legacy_auth", "blocking-policy")
    assert facts["blocked"] is True
    assert facts["blocked_by"] == ["Block legacy authentication"]
    assert [p["name"] for p in facts["policies"]] == ["Block legacy authentication"]
    assert facts["policies"][0]["exclusions"]["users"] == [BREAK_GLASS]
    assert facts["excluded_users"] == [BREAK_GLASS]
    assert facts["not_counted"] == [] and facts["conditional_access_policies"] == 4


def test_security_defaults_block_legacy_authentication() -> None:
    facts, _ = run_probe("entra_legacy_auth", "security-defaults")
    assert facts["blocked"] is True and facts["blocked_by"] == ["security defaults"]
    assert facts["security_defaults_enabled"] is True and facts["conditional_access_policies"] is None


def test_the_example_check_passes() -> None:
    assert [r.status for r in run_example("entra_legacy_auth", "blocking-policy")] == [Status.PASS]
