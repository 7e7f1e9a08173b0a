"""Microsoft Graph and Azure Resource Manager over requests: the `CloudContext` the cloud probes read.

- Paging: Graph pages carry `@odata.nextLink`, ARM pages `nextLink`; either is followed verbatim until
  absent, one page in memory at a time. A next link that leaves the configured host is refused, so the
  bearer token only ever goes where it was meant for.
- Throttling: 429, 502, 503 and 504 (and connection errors) are retried up to `max_retries` times per
  request, waiting what `Retry-After` says (seconds or an HTTP date) or an exponential back-off. All
  waiting in one run comes out of `retry_budget_s`; a wait that does not fit fails at once rather than
  sleeping for nothing.
- Errors: 403 with `Authentication_RequestFromNonPremiumTenantOrB2CTenant` is a missing licence, any
  other 403 a missing permission; other failures are `RequestFailed`. Each names the API, the path, the
  HTTP status, the service's code and message and its request id, never the token.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from checks.backoff import Backoff, parse_retry_after
from checks.probes.cloud.conditional_access import POLICIES_PATH, SECURITY_DEFAULTS_PATH
from checks.probes.cloud.context import (
    CloudError,
    LicenceMissing,
    Page,
    PermissionMissing,
    RequestFailed,
    Throttled,
)
from collector.cloud.auth import TokenSource
from collector.cloud.config import CloudConfig
from collector.cloud.endpoints import Endpoints, resolve
from collector.cloud.http import PinnedSession, describe_failure

RETRYABLE = {429, 502, 503, 504}
LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
SUBSCRIPTIONS_API = "2022-12-01"
BACKOFF_CAP_S = 60.0

# (api, path, pages read so far in this collection, items in this page)
PageHook = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class Wait:
    """A wait before a retry, told before it starts: Graph may ask for minutes, which must not look like a hang."""

    api: str
    path: str
    status: int | None  # the HTTP status that asked for it; None for a connection error
    seconds: float
    asked: bool  # the service asked for it (Retry-After); otherwise our own back-off
    retry: int  # which retry this wait comes before (1-based)
    of: int  # cloud.max_retries

    def describe(self) -> str:
        why = f"HTTP {self.status}" if self.status else "no answer"
        how = "as its Retry-After asks" if self.asked else "backing off"
        return f"{self.api} {self.path}: {why}; waiting {self.seconds:.0f}s {how} (retry {self.retry} of {self.of})"


WaitHook = Callable[[Wait], None]

# Documents more than one probe reads (conditional access drives three checks): fetched once per run.
SHARED_GRAPH_PATHS = frozenset({POLICIES_PATH, SECURITY_DEFAULTS_PATH})


@dataclass
class Stats:
    requests: int = 0
    pages: int = 0
    items: int = 0
    retries: int = 0
    waited_s: float = 0.0


class RetryBudget:
    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self.spent_s = 0.0

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.total_s - self.spent_s)


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable.

    Not capped here: a wait longer than what is left of the run's budget fails the request instead.
    """
    return parse_retry_after(response.headers.get("Retry-After"), time.time(), math.inf)


def error_details(response: requests.Response) -> tuple[str, str, str]:
    """(code, message, request id) from a Graph or ARM error body; tolerant of any body at all."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200].strip(), ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(body)[:200], ""
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = str(inner.get("request-id") or "") if isinstance(inner, dict) else ""
    request_id = request_id or response.headers.get("request-id", "") or response.headers.get("x-ms-request-id", "")
    return str(error.get("code") or ""), str(error.get("message") or ""), request_id


class MicrosoftCloud:
    """A signed-in view of one tenant for one platform; `for_platform` gives the other view of the same run."""

    def __init__(
        self,
        config: CloudConfig,
        *,
        platform: str = "microsoft365",
        on_page: PageHook | None = None,
        on_wait: WaitHook | None = None,
        backoff_base_s: float = 1.0,
    ) -> None:
        self.config = config
        self.endpoints: Endpoints = resolve(config)
        self.session = PinnedSession(config.ca_bundle, config.timeout_s)
        self.tokens = TokenSource(config, self.endpoints, self.session)
        self.budget = RetryBudget(config.retry_budget_s)
        self.stats = Stats()
        self.on_page = on_page
        self.on_wait = on_wait
        # Shared by every platform view of the run (copy.copy keeps the same dict).
        self._shared: dict[str, list[Page] | dict[str, Any] | CloudError] = {}
        self.backoff = Backoff(initial_s=backoff_base_s, cap_s=BACKOFF_CAP_S)
        self._platform = platform
        self._subscriptions: list[str] | None = None

    # --- the CloudContext protocol -----------------------------------------------------------------------

    @property
    def platform(self) -> str:
        return self._platform

    @property
    def tenant_id(self) -> str:
        return self.config.tenant_id

    @property
    def emergency_accounts(self) -> tuple[str, ...]:
        return tuple(self.config.emergency_accounts)

    def for_platform(self, platform: str) -> MicrosoftCloud:
        """The same session, tokens, budget and statistics, seen as another platform."""
        view = copy.copy(self)
        view._platform = platform
        return view

    def graph_pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[Page]:
        url = self.endpoints.graph + path + _query(params)
        if path in SHARED_GRAPH_PATHS and not params:
            return iter(self._once(path, lambda: list(self._graph_pages(url))))
        return self._graph_pages(url)

    def _graph_pages(self, url: str) -> Iterator[Page]:
        return self._pages("Graph", url, self.endpoints.graph, self.endpoints.graph_scope, "@odata.nextLink")

    def graph_get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        url = self.endpoints.graph + path + _query(params)
        if path in SHARED_GRAPH_PATHS and not params:
            document: dict[str, Any] = self._once(path, lambda: self._get("Graph", url, self.endpoints.graph_scope))
            return document
        return self._get("Graph", url, self.endpoints.graph_scope)

    def _once(self, key: str, read: Callable[[], Any]) -> Any:
        """The answer (or the failure) of a small document read once per run; each caller gets a copy."""
        if key not in self._shared:
            try:
                self._shared[key] = read()
            except CloudError as exc:
                self._shared[key] = exc
        answer = self._shared[key]
        if isinstance(answer, CloudError):
            raise answer
        return copy.deepcopy(answer)

    def arm_pages(self, path: str, api_version: str) -> Iterator[Page]:
        url = self.endpoints.arm + path + _query({"api-version": api_version}, path)
        return self._pages("ARM", url, self.endpoints.arm, self.endpoints.arm_scope, "nextLink")

    def arm_get(self, path: str, api_version: str) -> dict[str, Any]:
        url = self.endpoints.arm + path + _query({"api-version": api_version}, path)
        return self._get("ARM", url, self.endpoints.arm_scope)

    def subscriptions(self) -> list[str]:
        if self.config.subscriptions:
            return list(self.config.subscriptions)
        if self._subscriptions is None:
            found = []
            for page in self.arm_pages("/subscriptions", SUBSCRIPTIONS_API):
                for item in page:
                    if str(item.get("state") or "Enabled") not in ("Disabled", "Deleted"):
                        found.append(str(item.get("subscriptionId") or ""))
            self._subscriptions = [s for s in found if s]
        return list(self._subscriptions)

    # --- HTTP ----------------------------------------------------------------------------------------------

    def _pages(self, api: str, url: str, root: str, scope: str, link_key: str) -> Iterator[Page]:
        path = urlsplit(url).path
        count = 0
        next_url: str | None = url
        while next_url:
            body = self._get(api, next_url, scope)
            value = body.get("value")
            if not isinstance(value, list):
                raise RequestFailed(f"{api} GET {path}: the reply has no `value` list (page {count + 1})", url=path)
            link = body.get(link_key)
            del body  # hold one page at a time
            next_url = self._same_host(api, path, link, root) if link else None
            count += 1
            self.stats.pages += 1
            self.stats.items += len(value)
            if self.on_page is not None:
                self.on_page(api, path, count, len(value))
            yield [item for item in value if isinstance(item, dict)]

    def _same_host(self, api: str, path: str, link: Any, root: str) -> str:
        target, expected = urlsplit(str(link)), urlsplit(root)
        if (target.scheme, target.netloc) != (expected.scheme, expected.netloc):
            raise RequestFailed(
                f"{api} GET {path}: the next link points to {target.scheme}://{target.netloc}, "
                f"not {expected.netloc}; refused so the token is not sent elsewhere",
                url=path,
            )
        return str(link)

    def _get(self, api: str, url: str, scope: str) -> dict[str, Any]:
        path = urlsplit(url).path
        failure: CloudError | None = None
        for attempt in range(self.config.max_retries + 1):
            token = self.tokens.token(scope)
            self.stats.requests += 1
            try:
                response = self.session.get(
                    url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
                )
            except requests.RequestException as exc:
                failure = RequestFailed(
                    f"{api} GET {path}: {describe_failure(exc, url, self.config.ca_bundle)}", url=path
                )
                if isinstance(exc, requests.exceptions.SSLError):
                    raise failure from None  # an untrusted certificate is no better on the next attempt
                wait = self._backoff(attempt)
                asked = False
            else:
                if response.status_code < 300:
                    return self._json(api, path, response)
                if response.status_code not in RETRYABLE:
                    raise self._failure(api, path, response)
                failure = self._failure(api, path, response)
                after = retry_after(response)
                wait = after if after is not None else self._backoff(attempt)
                asked = after is not None
            if attempt == self.config.max_retries:
                break
            if wait > self.budget.remaining_s:
                raise Throttled(
                    f"{failure.reason}; asked to wait {wait:.0f}s but only {self.budget.remaining_s:.0f}s of the "
                    f"retry budget (cloud.retry_budget_s) is left",
                    status=failure.status,
                    code=failure.code,
                    url=path,
                )
            self.budget.spent_s += wait
            self.stats.retries += 1
            self.stats.waited_s += wait
            if self.on_wait is not None:
                self.on_wait(Wait(api, path, failure.status, wait, asked, attempt + 1, self.config.max_retries))
            time.sleep(wait)
        assert failure is not None
        raise type(failure)(
            f"{failure.reason}; gave up after {self.config.max_retries} retries (cloud.max_retries)",
            status=failure.status,
            code=failure.code,
            url=path,
        )

    def _backoff(self, attempt: int) -> float:
        return self.backoff.delay(attempt)  # jitter so that replicas do not retry in step

    def _json(self, api: str, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise RequestFailed(f"{api} GET {path}: the reply is not JSON", status=response.status_code) from None
        if not isinstance(body, dict):
            raise RequestFailed(f"{api} GET {path}: the reply is not a JSON object", status=response.status_code)
        return body

    def _failure(self, api: str, path: str, response: requests.Response) -> CloudError:
        code, message, request_id = error_details(response)
        status = response.status_code
        reason = f"{api} GET {path}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        if request_id:
            reason += f" (request-id {request_id})"
        kind: type[CloudError] = RequestFailed
        if status == 403:
            kind = LicenceMissing if code == LICENCE_CODE else PermissionMissing
        elif status in RETRYABLE:
            kind = Throttled
        return kind(reason, status=status, code=code, url=path)


def _query(params: dict[str, str] | None, path: str = "") -> str:
    if not params:
        return ""
    # OData wants %20 rather than +, and reads $, quotes and commas literally.
    encoded = urlencode(params, quote_via=quote, safe="$,'()")
    return ("&" if "?" in path else "?") + encoded
