"""A fake Microsoft sign-in service that speaks OpenID Connect, and a collector set up to sign in with it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme

from collector.dashboard.config import DashboardConfig, EntraConfig
from tests.fakes.entra_oidc import Account, OidcProvider
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeMicrosoft

APP_ROLES = {"Rampart.Admin": "admin", "Rampart.Analyst": "analyst"}
AUDITORS_GROUP = "9a9a9a9a-0000-4000-8000-000000000001"


@dataclass
class Entra:
    fake: FakeMicrosoft
    oidc: OidcProvider

    def sign_in_as(self, account: Account) -> None:
        self.oidc.signed_in = account


@pytest.fixture
def entra() -> Iterator[Entra]:
    with FakeMicrosoft(trustme.CA()) as fake:
        fake.oidc = OidcProvider(TENANT_ID)
        yield Entra(fake, fake.oidc)


def entra_dashboard(fake: FakeMicrosoft) -> DashboardConfig:
    """The dashboard's config for the fake; its redirect URL is set once the collector's port is known."""
    return DashboardConfig(
        entra=EntraConfig(
            tenant_id=TENANT_ID,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authority_url=fake.base_url,
            redirect_url="https://127.0.0.1/auth/entra/callback",
            ca_bundle=fake.ca_path,
            app_roles=dict(APP_ROLES),
            group_roles={AUDITORS_GROUP: "auditor"},
        )
    )


@pytest.fixture
def live_config(request: pytest.FixtureRequest) -> dict[str, object]:
    """Collectors of the tests that ask for `entra` sign in with it."""
    if "entra" in request.fixturenames:
        return {"dashboard": entra_dashboard(request.getfixturevalue("entra").fake)}
    return {}
