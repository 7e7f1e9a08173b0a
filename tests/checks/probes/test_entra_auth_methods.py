"""entra_auth_methods on a recorded authentication methods policy (tests/data/probes/entra_auth_methods/)."""

from __future__ import annotations

import pytest

from checks.probes.host import ProbeError
from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe


def test_enabled_and_weak_methods() -> None:
    facts, _ = run_probe("entra_auth_methods", "sms-and-email-on")
    assert len(facts["methods"]) == 8
    assert {"id": "Voice", "state": "disabled"} in facts["methods"]
    assert facts["enabled_methods"] == ["email", "fido2", "microsoftauthenticator", "sms"]
    assert facts["enabled_weak_methods"] == ["email", "sms"]


def test_the_weak_list_is_a_parameter() -> None:
    facts, _ = run_probe("entra_auth_methods", "sms-and-email-on", {"weak_methods": ["SMS"]})
    assert facts["enabled_weak_methods"] == ["sms"]


def test_a_missing_permission_is_an_error() -> None:
    with pytest.raises(ProbeError) as raised:
        run_probe("entra_auth_methods", "permission-missing")
    assert "grant the app registration Policy.Read.All" in raised.value.reason


def test_the_example_check_fails() -> None:
    assert [r.status for r in run_example("entra_auth_methods", "sms-and-email-on")] == [Status.FAIL]
