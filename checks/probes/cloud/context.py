"""What a cloud probe may ask of a signed-in tenant, and the errors it may get back.

The collector implements `CloudContext` with msal and requests (collector/cloud/); probes only iterate
pages and read documents, so they can neither leak a token nor forget to follow a next link.

Exception tree (all are `ProbeError`, so a failure becomes an `error` result, never a pass or a fail):

    CloudError
    ├── SignInFailed          the token endpoint refused the app (bad secret, unknown tenant, ...)
    ├── PermissionMissing     403: the app lacks a Graph permission or an Azure role
    ├── LicenceMissing        403: the tenant lacks the licence the endpoint needs (Entra ID P1/P2)
    ├── Throttled             429/503 retries or the retry-wait budget ran out
    └── RequestFailed         anything else: timeouts, 4xx/5xx, a body that is not the JSON expected
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from checks.probes.host import ProbeError

Page = list[dict[str, Any]]


class CloudError(ProbeError):
    """A cloud request failed; `reason` says what, where and, when known, what to do."""

    def __init__(self, reason: str, *, status: int | None = None, code: str = "", url: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.url = url


class SignInFailed(CloudError):
    pass


class PermissionMissing(CloudError):
    pass


class LicenceMissing(CloudError):
    pass


class Throttled(CloudError):
    pass


class RequestFailed(CloudError):
    pass


class CloudContext(Protocol):
    """A signed-in view of one tenant and its Azure subscriptions, for one platform.

    `platform` is `microsoft365` or `azure`: the evaluator picks the probe's collector by it. Paths are
    relative to the Graph or ARM root (`/v1.0/...`, `/subscriptions/...`); next links are followed
    verbatim until absent, and pages are yielded one at a time so that a caller can stream.
    """

    @property
    def platform(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def emergency_accounts(self) -> tuple[str, ...]:
        """The break-glass accounts (user ids or sign-in names) a policy may exclude from MFA (config)."""
        ...

    def graph_pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[Page]:
        """The `value` list of each page of a Graph collection, following `@odata.nextLink`."""
        ...

    def graph_get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """One Graph document (an entity, not a collection)."""
        ...

    def subscriptions(self) -> list[str]:
        """The Azure subscription ids to check: those configured, or every one the app can read."""
        ...

    def arm_pages(self, path: str, api_version: str) -> Iterator[Page]:
        """The `value` list of each page of an ARM collection, following `nextLink`."""
        ...

    def arm_get(self, path: str, api_version: str) -> dict[str, Any]:
        """One ARM document."""
        ...
