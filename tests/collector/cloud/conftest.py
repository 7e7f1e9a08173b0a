"""A fresh fake Microsoft tenant per test, and helpers to run the cloud checks against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from checks.results import Result
from collector.cloud.config import CloudConfig
from collector.cloud.run import CloudRun, run_cloud_checks
from tests.fakes.microsoft import (
    CLIENT_ID,
    CLIENT_SECRET,
    App,
    Certificate,
    FakeMicrosoft,
    Scenario,
    Subscription,
    ca_policy,
    make_certificate,
    methods_policy,
    nsg,
    nsg_rule,
    pricing,
    role_assignment,
    secure_scores,
    storage_account,
    user,
    vault,
)
from tests.fakes.microsoft import DEFAULT_NSG_RULES as DEFAULT_NSG_RULES

SUB_A = "00000000-aaaa-0000-0000-000000000001"
SUB_B = "00000000-bbbb-0000-0000-000000000002"
DEFENDER_PLANS = ["VirtualMachines", "SqlServers", "AppServices", "StorageAccounts", "KeyVaults", "Arm", "Containers"]


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def app_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("app-cert"))


def healthy_scenario(certificate: Certificate | None = None) -> Scenario:
    """A tenant and subscription where every shipped cloud check passes."""
    scenario = Scenario(
        apps={CLIENT_ID: App(CLIENT_ID, secret=CLIENT_SECRET, certificate=certificate)},
        users=[user(f"person{i}@contoso.example", admin=i == 0) for i in range(20)],
        ca_policies=[
            ca_policy("Require MFA for everyone", exclude_users=["breakglass-1"]),
            ca_policy(
                "Block legacy authentication",
                client_app_types=["exchangeActiveSync", "other"],
                controls=["block"],
            ),
        ],
        role_assignments=[role_assignment(f"admin-{n}") for n in range(3)]
        + [role_assignment("helpdesk-1", "729827e3-9c14-49f7-bb1b-9608f156bbb8")],
        methods=methods_policy(["MicrosoftAuthenticator", "Fido2"]),
        scores=secure_scores([75.0] + [72.0] * 40),
        subscriptions=[
            Subscription(
                SUB_A,
                storage=[storage_account(SUB_A, "stcouncildocs")],
                nsgs=[
                    nsg(
                        SUB_A,
                        "nsg-web",
                        [nsg_rule("AllowHttps", 100, sourceAddressPrefix="Internet", destinationPortRange="443")],
                    )
                ],
                vaults=[vault(SUB_A, "kv-council", enableSoftDelete=True, enablePurgeProtection=True)],
                pricings=[pricing(SUB_A, name, "Standard") for name in DEFENDER_PLANS],
                sql={"sql-council": {"payroll": "Enabled"}},
            )
        ],
    )
    return scenario


@pytest.fixture
def fake(test_ca: trustme.CA, app_certificate: Certificate) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft(test_ca, healthy_scenario(app_certificate)) as server:
        yield server


def cloud_config(fake: FakeMicrosoft, **overrides: Any) -> CloudConfig:
    return CloudConfig(**fake.config(**overrides))


def run_checks(fake: FakeMicrosoft, **overrides: Any) -> CloudRun:
    return run_cloud_checks(cloud_config(fake, **overrides), backoff_base_s=0.01)


def results_of(run: CloudRun, check_id: str) -> list[Result]:
    found = [r for r in run.results if r.check_id == check_id]
    assert found, f"no result for {check_id}; have {sorted({r.check_id for r in run.results})}"
    return found


def result_of(run: CloudRun, check_id: str) -> Result:
    (found,) = results_of(run, check_id)
    return found


def write_pem(directory: Path, name: str, password: str | None = None) -> Certificate:
    return make_certificate(directory, name, password)
