"""The `collector.dashboard:` section (documented key by key in config.example.yaml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from checks.config import ConfigError
from checks.durations import parse_duration

ROLES = ("admin", "analyst", "auditor")


@dataclass
class EntraConfig:
    """Sign-in with Microsoft Entra ID (OpenID Connect, authorisation code with PKCE, through msal)."""

    tenant_id: str = ""  # directory (tenant) id; empty: only local sign-in
    client_id: str = ""  # application (client) id of the dashboard's app registration
    client_secret: str = field(default="", repr=False)  # or client_secret_file
    certificate_path: str = ""  # PEM with the private key and the certificate uploaded to the app
    certificate_password: str = field(default="", repr=False)
    authority_url: str = ""  # default https://login.microsoftonline.com (national clouds: their host)
    redirect_url: str = ""  # https://<this collector>/auth/entra/callback, as registered on the app
    ca_bundle: str = ""  # CA file for the sign-in service; empty: the public CAs shipped with requests
    app_roles: dict[str, str] = field(default_factory=dict)  # app role value -> admin | analyst | auditor
    group_roles: dict[str, str] = field(default_factory=dict)  # group object id -> admin | analyst | auditor
    timeout_s: float = 15.0

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id and self.client_id)

    def validate(self) -> None:
        if not self.configured:
            return
        if bool(self.client_secret) == bool(self.certificate_path):
            raise ConfigError(
                "collector.dashboard.entra: give exactly one credential, client_secret (or client_secret_file) "
                "or certificate_path"
            )
        if not self.redirect_url.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise ConfigError(
                "collector.dashboard.entra.redirect_url must be this collector's https:// URL ending in "
                f"/auth/entra/callback, got {self.redirect_url!r}"
            )
        if self.authority_url and not self.authority_url.startswith("https://"):
            raise ConfigError(f"collector.dashboard.entra.authority_url must be https://, got {self.authority_url!r}")
        for key in ("app_roles", "group_roles"):
            for claim, role in getattr(self, key).items():
                if role not in ROLES:
                    raise ConfigError(
                        f"collector.dashboard.entra.{key}.{claim}: {role!r} is not one of {', '.join(ROLES)}"
                    )
        if not (self.app_roles or self.group_roles):
            raise ConfigError(
                "collector.dashboard.entra: map at least one app role (app_roles) or group (group_roles) to a role"
            )


@dataclass
class DashboardConfig:
    enabled: bool = True  # serve the dashboard at / (the API is served either way)
    session_lifetime: str = "8h"  # a session ends this long after sign-in, whatever happens
    idle_timeout: str = "1h"  # ... or after this long without a request
    secure_cookies: bool = True  # Secure cookies (__Host- prefix); see docs/dashboard.md before turning off
    sign_in_max_failures: int = 5  # refused sign-ins for one user name within the window before a pause
    sign_in_max_address_failures: int = 20  # ... and from one address
    sign_in_window: str = "15m"
    # Where the built GOV.UK Frontend and Swagger UI assets are; empty: collector/dashboard/built.
    assets_dir: str = ""
    entra: EntraConfig = field(default_factory=EntraConfig)

    def duration(self, key: str) -> dt.timedelta:
        value = getattr(self, key)
        try:
            return dt.timedelta(seconds=parse_duration(value))
        except ValueError as exc:
            raise ConfigError(f"collector.dashboard.{key}: {exc}") from None

    def validate(self) -> None:
        for key in ("session_lifetime", "idle_timeout", "sign_in_window"):
            self.duration(key)
        if self.sign_in_max_failures < 1 or self.sign_in_max_address_failures < 1:
            raise ConfigError("collector.dashboard.sign_in_max_failures and ..._address_failures must be at least 1")
        self.entra.validate()
