"""azure_key_vaults on recorded vault listings (tests/data/probes/azure_key_vaults/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe


def test_vault_settings_and_a_subscription_without_the_provider() -> None:
    resources, context = run_probe("azure_key_vaults", "purge-protection-off")
    assert len(context.requested) == 2
    # Subscription 2 never registered Microsoft.KeyVault: it has no vaults, which is not an error.
    assert {r.name: r.facts for r in resources} == {
        "kv-prod-secrets": {"soft_delete": True, "purge_protection": True, "rbac_authorization": True},
        "kv-dev": {"soft_delete": True, "purge_protection": False, "rbac_authorization": False},
    }
    assert all(r.error is None for r in resources)


def test_the_example_check() -> None:
    statuses = {r.subject.name: r.status for r in run_example("azure_key_vaults", "purge-protection-off")}
    assert statuses == {"kv-prod-secrets": Status.PASS, "kv-dev": Status.FAIL}
