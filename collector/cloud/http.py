"""The HTTP session every cloud request goes through, msal's included.

The environment must not choose whom we trust: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
`verify` when `trust_env` is on, and this machine (like many) sets them. So the session ignores the
environment, and every request carries the configured CA and a timeout explicitly.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import requests

from checks import __version__


class PinnedSession(requests.Session):
    def __init__(self, ca_bundle: str, timeout_s: float) -> None:
        super().__init__()
        self.trust_env = False  # no proxies, netrc or CA bundle from the environment
        self.pinned_verify: str | bool = ca_bundle or True  # True: the CAs requests ships (certifi)
        self.verify = self.pinned_verify
        self.timeout_s = timeout_s
        self.headers["User-Agent"] = f"rampart-collector/{__version__}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self.pinned_verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().request(method, url, *args, **kwargs)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps: urllib3 nests the real cause in `reason` and in args."""
    seen: list[BaseException] = []
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__, *current.args])
    return seen


def describe_failure(exc: requests.RequestException, url: str, ca_bundle: str) -> str:
    """One line in words for a request that got no answer, with what to do; never urllib3's retry dump."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}"
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = f"CERTIFICATE_VERIFY_FAILED: {cause.verify_message or 'certificate verify failed'}"
            trusted = f"the CAs in cloud.ca_bundle ({ca_bundle})" if ca_bundle else "the bundled public CAs"
            return (
                f"the TLS certificate of {where} was not trusted ({detail}) by {trusted}: if a proxy inspects "
                f"TLS on this network, set cloud.ca_bundle to a PEM file holding its CA"
            )
    if any(isinstance(cause, ssl.SSLError) for cause in causes):
        return f"the TLS handshake with {where} failed: check cloud.ca_bundle and any proxy in between"
    if isinstance(exc, requests.Timeout):
        return f"{where} did not answer within cloud.timeout_s ({type(exc).__name__})"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect to {where}: {cause.strerror}"
    for cause in causes:
        if "Failed to resolve" in str(cause) or "Name or service not known" in str(cause):
            return f"cannot connect to {where}: the name does not resolve"
    return f"cannot connect to {where}: {type(exc).__name__}"
