"""The `cloud:` section of the config file: which tenant, as which app, in which cloud."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from checks.config import ConfigError, load_section
from checks.durations import parse_duration

CLOUDS = ("public", "usgov", "usgov_dod", "china")


@dataclass
class CloudConfig:
    """Every key with its default; config.example.yaml documents them and a test keeps the two equal."""

    tenant_id: str = ""  # directory (tenant) id; empty: cloud checks are not configured
    tenant_name: str = ""  # shown as the subject's name; defaults to the tenant id
    client_id: str = ""  # application (client) id of the app registration
    # One of the two credentials. Both also come from `<key>_file` or RAMPART_CLOUD__<KEY>.
    client_secret: str = field(default="", repr=False)
    certificate_path: str = ""  # PEM file with the private key and the certificate uploaded to the app
    certificate_password: str = field(default="", repr=False)  # for an encrypted private key
    cloud: str = "public"  # public | usgov | usgov_dod | china
    authority_url: str = ""  # e.g. https://login.microsoftonline.us ; overrides the cloud's
    graph_url: str = ""  # e.g. https://graph.microsoft.us ; overrides the cloud's
    arm_url: str = ""  # e.g. https://management.usgovcloudapi.net ; overrides the cloud's
    subscriptions: list[str] = field(default_factory=list)  # empty: every subscription the app can read
    ca_bundle: str = ""  # CA file to trust; empty: the bundled public CAs. Never the environment's.
    timeout_s: float = 30.0  # per HTTP request
    max_retries: int = 5  # per request, on 429 / 503 / 504 / connection errors
    retry_budget_s: float = 600.0  # most seconds one run may spend waiting on Retry-After and back-off
    interval: str = "6h"  # how often the collector runs the cloud checks
    # A run that cannot observe leaves the last known results standing: past this age they are shown stale.
    stale_after: str = "1d"
    # Break-glass accounts (user object ids or user principal names) that conditional access may exclude
    # from MFA; any other excluded user, group or role is a gap that fails mfa-enforced.
    emergency_accounts: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)  # policy files; empty: the shipped cloud policies

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id)

    @property
    def interval_s(self) -> int:
        return parse_duration(self.interval)

    @property
    def stale_after_s(self) -> int:
        return parse_duration(self.stale_after)

    def validate(self) -> None:
        """What a run needs, checked before anything is sent; errors name the key."""
        if not self.tenant_id:
            raise ConfigError("cloud.tenant_id is not set: cloud checks need a tenant (see docs/cloud.md)")
        if not self.client_id:
            raise ConfigError("cloud.client_id is not set: the application (client) id of the app registration")
        if bool(self.client_secret) == bool(self.certificate_path):
            raise ConfigError(
                "cloud: give exactly one credential, client_secret (or client_secret_file) or certificate_path"
            )
        if self.cloud not in CLOUDS:
            raise ConfigError(f"cloud.cloud must be one of {', '.join(CLOUDS)}, got {self.cloud!r}")
        for key in ("authority_url", "graph_url", "arm_url"):
            value = getattr(self, key)
            if value and not value.startswith("https://"):
                raise ConfigError(f"cloud.{key} must be an https:// URL, got {value!r}")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.retry_budget_s < 0:
            raise ConfigError("cloud.timeout_s must be positive; max_retries and retry_budget_s not negative")
        for key in ("interval", "stale_after"):
            try:
                parse_duration(getattr(self, key))
            except ValueError as exc:
                raise ConfigError(f"cloud.{key}: {exc}") from None
        if any(not isinstance(a, str) or not a.strip() for a in self.emergency_accounts):
            raise ConfigError("cloud.emergency_accounts: each entry is a user object id or user principal name")


def load_cloud_config(path: str | None, environ: Mapping[str, str] | None = None) -> CloudConfig:
    return load_section(CloudConfig, "cloud", path, environ)


def defaults() -> dict[str, object]:
    """The defaults, as config.example.yaml should show them."""
    return {f.name: getattr(CloudConfig(), f.name) for f in dataclasses.fields(CloudConfig)}
