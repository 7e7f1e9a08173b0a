"""Graph documents the fake serves, shaped like Microsoft's resources: registration-report records (a list,
or a generated tenant of any size), conditional access policies, directory users and groups, role
assignments, the authentication methods policy and Secure Score snapshots."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.microsoft.constants import GLOBAL_ADMIN_ROLE, TENANT_ID


@dataclass
class GeneratedUsers:
    """A registration report of `count` users made on demand: nothing is held, any slice is computed.

    User i is a guest when i % guest_every == guest_every - 1, an admin when i % admin_every == 0, and
    not MFA capable when i % without_mfa_every == 1.
    """

    count: int
    guest_every: int = 10
    admin_every: int = 500
    without_mfa_every: int = 7

    def __len__(self) -> int:
        return self.count

    def record(self, i: int) -> dict[str, Any]:
        guest = i % self.guest_every == self.guest_every - 1
        capable = i % self.without_mfa_every != 1
        methods = ["microsoftAuthenticatorPush", "softwareOneTimePasscode"] if capable else ["email"]
        return {
            "id": str(uuid.UUID(int=i + 1)),
            "userPrincipalName": f"user{i:07d}@contoso.example" if not guest else f"guest{i:07d}#EXT#@contoso.example",
            "userDisplayName": f"User {i}",
            "userType": "guest" if guest else "member",
            "isAdmin": i % self.admin_every == 0,
            "isMfaRegistered": capable,
            "isMfaCapable": capable,
            "isPasswordlessCapable": False,
            "isSsprRegistered": capable,
            "isSsprEnabled": True,
            "isSsprCapable": capable,
            "isSystemPreferredAuthenticationMethodEnabled": True,
            "methodsRegistered": methods,
            "systemPreferredAuthenticationMethods": ["push"] if capable else [],
            "userPreferredMethodForSecondaryAuthentication": "push" if capable else "none",
            "lastUpdatedDateTime": "2025-01-15T08:30:00Z",
        }

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        start, stop, _ = window.indices(self.count)
        return [self.record(i) for i in range(start, stop)]

    def expected(self) -> dict[str, int]:
        """The counts a correct reader must arrive at, computed independently of the reader."""
        totals = {"members": 0, "mfa_capable": 0, "admins": 0, "admins_without_mfa": 0, "guests": 0}
        for i in range(self.count):
            if i % self.guest_every == self.guest_every - 1:
                totals["guests"] += 1
                continue
            totals["members"] += 1
            capable = i % self.without_mfa_every != 1
            admin = i % self.admin_every == 0
            totals["mfa_capable"] += capable
            totals["admins"] += admin
            totals["admins_without_mfa"] += admin and not capable
        return totals


def user(
    upn: str,
    *,
    capable: bool = True,
    admin: bool = False,
    guest: bool = False,
    methods: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One registration-report record, as Graph returns it."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, upn)),
        "userPrincipalName": upn,
        "userDisplayName": upn.split("@")[0].replace(".", " ").title(),
        "userType": "guest" if guest else "member",
        "isAdmin": admin,
        "isMfaRegistered": capable,
        "isMfaCapable": capable,
        "isPasswordlessCapable": False,
        "isSsprRegistered": False,
        "isSsprEnabled": False,
        "isSsprCapable": False,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "methodsRegistered": list(
            methods if methods is not None else (["microsoftAuthenticatorPush"] if capable else [])
        ),
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": "push" if capable else "none",
        "lastUpdatedDateTime": "2025-01-15T08:30:00Z",
    }


def ca_policy(
    name: str,
    *,
    state: str = "enabled",
    include_users: Sequence[str] = ("All",),
    exclude_users: Sequence[str] = (),
    exclude_groups: Sequence[str] = (),
    include_roles: Sequence[str] = (),
    exclude_roles: Sequence[str] = (),
    applications: Sequence[str] = ("All",),
    client_app_types: Sequence[str] = ("all",),
    controls: Sequence[str] = ("mfa",),
    operator: str = "OR",
    strength_mfa: bool = False,
    user_risk: Sequence[str] = (),
    sign_in_risk: Sequence[str] = (),
) -> dict[str, Any]:
    """A conditional access policy shaped like Graph's conditionalAccessPolicy resource."""
    strength = None
    if strength_mfa:
        strength = {
            "id": "00000000-0000-0000-0000-000000000004",
            "displayName": "Phishing-resistant MFA",
            "requirementsSatisfied": "mfa",
            "allowedCombinations": ["fido2", "windowsHelloForBusiness", "x509CertificateMultiFactor"],
        }
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "displayName": name,
        "createdDateTime": "2024-03-01T10:00:00Z",
        "modifiedDateTime": None,
        "state": state,
        "conditions": {
            "userRiskLevels": list(user_risk),
            "signInRiskLevels": list(sign_in_risk),
            "clientAppTypes": list(client_app_types),
            "platforms": None,
            "locations": None,
            "applications": {
                "includeApplications": list(applications),
                "excludeApplications": [],
                "includeUserActions": [],
            },
            "users": {
                "includeUsers": list(include_users),
                "excludeUsers": list(exclude_users),
                "includeGroups": [],
                "excludeGroups": list(exclude_groups),
                "includeRoles": list(include_roles),
                "excludeRoles": list(exclude_roles),
            },
        },
        "grantControls": {
            "operator": operator,
            "builtInControls": list(controls),
            "customAuthenticationFactors": [],
            "termsOfUse": [],
            "authenticationStrength": strength,
        },
        "sessionControls": None,
    }


def directory_user(upn: str, object_id: str | None = None) -> dict[str, Any]:
    """A user as Graph's directory returns it (not the registration report's record)."""
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": object_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, upn)),
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0].replace(".", " ").title(),
    }


def directory_group(name: str, members: Sequence[str], object_id: str | None = None) -> dict[str, Any]:
    """A group; `members` are object ids of users or of other groups."""
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": object_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"group:{name}")),
        "displayName": name,
        "members": list(members),
    }


def role_assignment(principal: str, role: str = GLOBAL_ADMIN_ROLE) -> dict[str, Any]:
    return {
        "id": f"{principal}-{role}",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
    }


def methods_policy(enabled: Sequence[str]) -> dict[str, Any]:
    known = ["Fido2", "MicrosoftAuthenticator", "Sms", "TemporaryAccessPass", "SoftwareOath", "Voice", "Email"]
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#authenticationMethodsPolicy",
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "policyVersion": "1.5",
        "authenticationMethodConfigurations": [
            {
                "@odata.type": f"#microsoft.graph.{name[0].lower() + name[1:]}AuthenticationMethodConfiguration",
                "id": name,
                "state": "enabled" if name in enabled else "disabled",
            }
            for name in known
        ],
    }


def secure_scores(percents_newest_first: Sequence[float], max_score: float = 200.0) -> list[dict[str, Any]]:
    today = dt.datetime(2025, 6, 30, tzinfo=dt.UTC)
    return [
        {
            "id": f"{TENANT_ID}_{(today - dt.timedelta(days=n)).date().isoformat()}",
            "azureTenantId": TENANT_ID,
            "activeUserCount": 120,
            "createdDateTime": (today - dt.timedelta(days=n)).isoformat().replace("+00:00", "Z"),
            "currentScore": round(max_score * percent / 100, 2),
            "maxScore": max_score,
            "enabledServices": ["exchange", "sharepoint"],
            "controlScores": [],
        }
        for n, percent in enumerate(percents_newest_first)
    ]
