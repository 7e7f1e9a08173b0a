"""azure_defender_plans on recorded pricings (tests/data/probes/azure_defender_plans/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe

SUB1 = "00000000-1111-2222-3333-444444444444"


def test_plans_not_on_standard() -> None:
    (resource,) = run_probe("azure_defender_plans", "servers-only")[0]
    assert resource.resource_id == f"/subscriptions/{SUB1}" and resource.name == f"subscription {SUB1}"
    assert len(resource.facts["plans"]) == 8
    assert {"name": "CloudPosture", "tier": "Free"} in resource.facts["plans"]
    assert resource.facts["standard_plans"] == ["KeyVaults", "VirtualMachines"]
    assert resource.facts["missing_plans"] == ["SqlServers", "AppServices", "StorageAccounts", "Arm", "Containers"]


def test_the_required_plans_are_a_parameter() -> None:
    (resource,) = run_probe("azure_defender_plans", "servers-only", {"required_plans": ["virtualmachines"]})[0]
    assert resource.facts["missing_plans"] == []


def test_the_example_check_fails() -> None:
    assert [r.status for r in run_example("azure_defender_plans", "servers-only")] == [Status.FAIL]
