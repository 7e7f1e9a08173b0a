"""The HTTP session every cloud request goes through, msal's included.

The environment must not choose whom we trust: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
`verify` when `trust_env` is on, and this machine (like many) sets them. So the session ignores the
environment, and every request carries the configured CA and a timeout explicitly.
"""

from __future__ import annotations

from typing import Any

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
