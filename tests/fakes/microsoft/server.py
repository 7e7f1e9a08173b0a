"""The fake's HTTPS server: sign-in, Graph and ARM on one port of 127.0.0.1, started in a thread."""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from tests.fakes.microsoft.arm_routes import ArmRoutes
from tests.fakes.microsoft.constants import CLIENT_ID, CLIENT_SECRET
from tests.fakes.microsoft.graph_routes import GraphRoutes
from tests.fakes.microsoft.scenario import App, Fault, Recorded, Scenario
from tests.fakes.microsoft.signin import SignInRoutes
from tests.fakes.microsoft.wire import Reply, aad_error


class FakeMicrosoft:
    """The fake sign-in service, Graph and ARM on one HTTPS port; `start()` / `stop()` or a `with` block."""

    def __init__(self, ca: trustme.CA, scenario: Scenario | None = None, *, ca_path: Path | None = None) -> None:
        self.ca = ca
        self.scenario = scenario or Scenario()
        self.requests: list[Recorded] = []
        self.tokens: dict[str, tuple[str, str, float]] = {}  # token -> (client id, audience, expiry)
        self.oidc: Any = None  # an OidcProvider (tests/fakes/entra_oidc.py) to serve user sign-in too
        self.lock = threading.Lock()
        # requests being answered (recorded once answered): a test waits for 0 before it counts what a new
        # client asks, so that a killed client's last request is not counted as the next one's
        self.in_flight = 0
        self._ca_path = ca_path
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None

    # addresses

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/graph"

    @property
    def arm_url(self) -> str:
        return f"{self.base_url}/arm"

    @property
    def ca_path(self) -> str:
        assert self._ca_path is not None
        return str(self._ca_path)

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A `cloud:` config section pointing at this fake."""
        values: dict[str, Any] = {
            "tenant_id": self.scenario.tenant_id,
            "tenant_name": "Contoso Borough Council",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority_url": self.base_url,
            "graph_url": self.graph_url,
            "arm_url": self.arm_url,
            "ca_bundle": self.ca_path,
            "timeout_s": 10.0,
            "max_retries": 3,
            "retry_budget_s": 30.0,
            "emergency_accounts": ["breakglass-1"],  # the account the tests' MFA policies exclude
        }
        values.update(overrides)
        return values

    def start(self) -> FakeMicrosoft:
        if not self.scenario.apps:
            self.scenario.apps[CLIENT_ID] = App(CLIENT_ID, secret=CLIENT_SECRET)
        if self._ca_path is None:
            self._temp = tempfile.TemporaryDirectory(prefix="rampart-fake-ms-")
            self._ca_path = Path(self._temp.name) / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self._ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-microsoft", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._temp is not None:
            self._temp.cleanup()

    def __enter__(self) -> FakeMicrosoft:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self, prefix: str = "") -> list[str]:
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def record(self, method: str, path: str, query: str, status: int) -> None:
        self.requests.append(Recorded(method, path, query, status, time.monotonic()))

    def fault_for(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.scenario.faults:
                if path.startswith(fault.prefix) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None


class _Handler(SignInRoutes, GraphRoutes, ArmRoutes):
    """Sends each request to the sign-in service, Graph, ARM or (when set) the OpenID Connect fake."""

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        scenario = self.owner.scenario
        tenant = scenario.tenant_id
        if path.startswith("/graph/"):
            return self._graph(method, path[len("/graph") :], query)
        if path.startswith("/arm/"):
            return self._arm(method, path[len("/arm") :], query)
        if method == "GET" and path.endswith("/v2.0/.well-known/openid-configuration"):
            requested = path.split("/")[1]
            if requested != tenant:
                return 400, aad_error("invalid_tenant", f"AADSTS90002: Tenant '{requested}' not found."), {}
            return 200, self._openid(), {}
        if method == "POST" and path == f"/{tenant}/oauth2/v2.0/token":
            return self._token()
        if self.owner.oidc is not None:
            answer: Reply | None = self.owner.oidc.route(method, path, query, self.owner.base_url)
            if answer is not None:
                return answer
        return 404, {"error": "not_found", "error_description": f"no such endpoint {path}"}, {}
