"""A local fake of Microsoft's sign-in service, Microsoft Graph and Azure Resource Manager.

It speaks the real protocol over HTTPS on 127.0.0.1, shaped as /work/shared/reference/microsoft-apis.md
describes (and as msal 1.39 sends and expects):

- `GET /{tenant}/v2.0/.well-known/openid-configuration` (msal's tenant discovery);
- `POST /{tenant}/oauth2/v2.0/token`: client credentials with a client secret, or an RS256 client
  assertion whose `x5t` header is the SHA-1 thumbprint of the registered certificate (PS256 with
  `x5t#S256` is accepted too), checked for signature, aud, iss, sub and exp; a bad secret gets 401
  `invalid_client` with AADSTS7000215;
- Graph under `/graph` and ARM under `/arm` (their own token audiences): lists as `value` plus
  `@odata.nextLink` (Graph) or `nextLink` (ARM), error bodies with `innerError` (Graph) or
  code/message/target/details (ARM), 401 for a missing or wrong-audience token;
- directory objects for what conditional access exclusions name: `GET /v1.0/users/{id}`,
  `GET /v1.0/groups/{id}`, `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` (nested groups
  flattened) and role assignments with `$expand=principal`; an unknown id is 404 Request_ResourceNotFound;
- scenario switches: 429/503 with Retry-After on chosen paths, 403 Authorization_RequestDenied /
  Authentication_RequestFromNonPremiumTenantOrB2CTenant / AuthorizationFailed, a tenant with no
  conditional access policies, and generated tenants of any size served lazily page by page.

Run standalone (used by the large-tenant memory test and bench/, so the fake's own memory is not
counted with the client's):  python -m tests.fakes.microsoft --users 100000
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT_SECRET = "fake-secret-Qx7~never-log-me"
GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- test credentials ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """An app registration's certificate: the PEM (key and certificate) the client uses, and the public part."""

    pem_path: Path
    certificate: x509.Certificate

    @property
    def sha1_x5t(self) -> str:
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))

    @property
    def sha256_x5t(self) -> str:
        return _b64url(self.certificate.fingerprint(hashes.SHA256()))


def make_certificate(directory: Path, name: str = "app", password: str | None = None) -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rampart-test-{name}")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password:
        encryption = serialization.BestAvailableEncryption(password.encode())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    pem += certificate.public_bytes(serialization.Encoding.PEM)
    path = directory / f"{name}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return Certificate(path, certificate)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- tenant data -----------------------------------------------------------------------------------------


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


@dataclass
class Subscription:
    id: str
    name: str = "Production"
    storage: list[dict[str, Any]] = field(default_factory=list)
    nsgs: list[dict[str, Any]] = field(default_factory=list)
    vaults: list[dict[str, Any]] = field(default_factory=list)
    pricings: list[dict[str, Any]] = field(default_factory=list)
    sql: dict[str, dict[str, str]] = field(default_factory=dict)  # server -> database -> TDE state


def arm_id(subscription: str, provider: str, name: str, group: str = "rg-main") -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"


def storage_account(subscription: str, name: str, **properties: Any) -> dict[str, Any]:
    base = {"supportsHttpsTrafficOnly": True, "allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2"}
    base.update(properties)
    base = {k: v for k, v in base.items() if v is not None}
    return {
        "id": arm_id(subscription, "Microsoft.Storage/storageAccounts", name),
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "location": "uksouth",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "properties": {"provisioningState": "Succeeded", **base},
    }


def nsg_rule(name: str, priority: int, access: str = "Allow", **properties: Any) -> dict[str, Any]:
    rule = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "access": access,
        "priority": priority,
        "direction": "Inbound",
        "sourcePortRanges": [],
        "destinationPortRanges": [],
        "sourceAddressPrefixes": [],
        "destinationAddressPrefixes": [],
    }
    rule.update(properties)
    return {"name": name, "id": f".../securityRules/{name}", "properties": rule}


DEFAULT_NSG_RULES = [
    nsg_rule("AllowVnetInBound", 65000, sourceAddressPrefix="VirtualNetwork", destinationPortRange="*", protocol="*"),
    nsg_rule(
        "AllowAzureLoadBalancerInBound",
        65001,
        sourceAddressPrefix="AzureLoadBalancer",
        destinationPortRange="*",
        protocol="*",
    ),
    nsg_rule("DenyAllInBound", 65500, access="Deny", sourceAddressPrefix="*", destinationPortRange="*", protocol="*"),
]


def nsg(subscription: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": arm_id(subscription, "Microsoft.Network/networkSecurityGroups", name),
        "name": name,
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "uksouth",
        "properties": {"securityRules": rules, "defaultSecurityRules": DEFAULT_NSG_RULES},
    }


def vault(subscription: str, name: str, **properties: Any) -> dict[str, Any]:
    base = {"tenantId": TENANT_ID, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": True}
    base.update(properties)
    return {
        "id": arm_id(subscription, "Microsoft.KeyVault/vaults", name),
        "name": name,
        "type": "Microsoft.KeyVault/vaults",
        "location": "uksouth",
        "properties": {k: v for k, v in base.items() if v is not None},
    }


def pricing(subscription: str, name: str, tier: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings/{name}",
        "name": name,
        "type": "Microsoft.Security/pricings",
        "properties": {"pricingTier": tier, "freeTrialRemainingTime": "PT0S"},
    }


@dataclass
class Fault:
    """Answer requests whose path starts with `prefix` with an error, `times` times (None: always)."""

    prefix: str
    status: int
    code: str
    message: str = ""
    retry_after: str | None = None
    times: int | None = None
    delay_s: float = 0.0  # wait this long before answering (timeouts)


@dataclass
class App:
    client_id: str
    secret: str | None = None
    certificate: Certificate | None = None


@dataclass
class Scenario:
    """Everything the fake tenant serves; tests change it before (or during) a run."""

    tenant_id: str = TENANT_ID
    apps: dict[str, App] = field(default_factory=dict)
    security_defaults: bool = False
    ca_policies: list[dict[str, Any]] = field(default_factory=list)
    users: Any = field(default_factory=list)  # a list of records, or GeneratedUsers
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    directory: dict[str, dict[str, Any]] = field(default_factory=dict)  # object id -> directory_user/_group
    methods: dict[str, Any] = field(default_factory=lambda: methods_policy(["MicrosoftAuthenticator", "Fido2"]))
    scores: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    graph_page_size: int = 100
    arm_page_size: int = 2
    next_link_base: str | None = None  # serve next links on another host (the client must refuse them)
    empty_first_page: bool = False  # Graph may answer a page with no items and a next link
    token_lifetime_s: int = 3599


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    status: int
    at: float


# --- the server ------------------------------------------------------------------------------------------


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


Reply = tuple[int, dict[str, Any], dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    owner: FakeMicrosoft
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms to each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # plumbing

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        html = body.get("__html__") if isinstance(body, dict) else None  # a page (the sign-in service's)
        data = html.encode() if isinstance(html, str) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.owner.lock:
            self.owner.in_flight += 1
        try:
            status, body, headers = self._route(method, path, query)
        except Exception as exc:  # a bug in the fake must show, not hang the client
            status, body, headers = 500, {"error": {"code": "FakeBug", "message": repr(exc)}}, {}
        finally:
            with self.owner.lock:
                self.owner.in_flight -= 1
        self.owner.record(method, path, parts.query, status)
        self._send(status, body, headers)

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

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
                return 400, _aad_error("invalid_tenant", f"AADSTS90002: Tenant '{requested}' not found."), {}
            return 200, self._openid(), {}
        if method == "POST" and path == f"/{tenant}/oauth2/v2.0/token":
            return self._token()
        if self.owner.oidc is not None:
            answer: Reply | None = self.owner.oidc.route(method, path, query, self.owner.base_url)
            if answer is not None:
                return answer
        return 404, {"error": "not_found", "error_description": f"no such endpoint {path}"}, {}

    # sign-in

    def _openid(self) -> dict[str, Any]:
        base = self.owner.base_url
        tenant = self.owner.scenario.tenant_id
        return {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _token(self) -> Reply:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
        scenario = self.owner.scenario
        fault = self.owner.fault_for("/token")
        if fault is not None:
            return fault.status, _aad_error(fault.code, fault.message), _retry(fault)
        if form.get("grant_type") == "authorization_code" and self.owner.oidc is not None:
            user_app = scenario.apps.get(form.get("client_id", ""))
            if user_app is None:
                return 400, _aad_error("unauthorized_client", "AADSTS700016: Application not found."), {}
            refusal = self._authenticate(user_app, form)
            if refusal is not None:
                return 401, _aad_error("invalid_client", refusal), {}
            redeemed: Reply = self.owner.oidc.redeem(form, self.owner.base_url)
            return redeemed
        if form.get("grant_type") != "client_credentials":
            return 400, _aad_error("unsupported_grant_type", "AADSTS70003: grant type not supported here."), {}
        app = scenario.apps.get(form.get("client_id", ""))
        if app is None:
            message = f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found."
            return 400, _aad_error("unauthorized_client", message), {}
        scopes = [s for s in form.get("scope", "").split() if s not in ("openid", "profile", "offline_access")]
        audiences = {f"{self.owner.graph_url}/.default": "graph", f"{self.owner.arm_url}/.default": "arm"}
        if len(scopes) != 1 or scopes[0] not in audiences:
            return 400, _aad_error("invalid_scope", f"AADSTS1002012: The provided scope {scopes} is not valid."), {}
        refusal = self._authenticate(app, form)
        if refusal is not None:
            return 401, _aad_error("invalid_client", refusal), {}
        token = secrets.token_urlsafe(32)
        lifetime = scenario.token_lifetime_s
        with self.owner.lock:
            self.owner.tokens[token] = (app.client_id, audiences[scopes[0]], time.time() + lifetime)
        reply = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        return 200, reply, {}

    def _authenticate(self, app: App, form: dict[str, str]) -> str | None:
        """None when the client proved who it is; otherwise the AADSTS description of why not."""
        if "client_secret" in form:
            if app.secret is None or not hmac.compare_digest(form["client_secret"], app.secret):
                return (
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to app "
                    f"'{app.client_id}'."
                )
            return None
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return "AADSTS7000218: The request body must contain client_assertion or client_secret."
        if app.certificate is None:
            return "AADSTS700027: No certificate is registered for this application."
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            return f"AADSTS50027: Invalid JWT token: {exc}"
        certificate = app.certificate
        algorithm = header.get("alg")
        # base64url, with or without padding (msal keeps the `=`).
        x5t = str(header.get("x5t") or "").rstrip("=")
        x5t_s256 = str(header.get("x5t#S256") or "").rstrip("=")
        if algorithm == "RS256" and x5t == certificate.sha1_x5t:
            pass
        elif algorithm == "PS256" and x5t_s256 == certificate.sha256_x5t:
            pass
        else:
            return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered."
        token_endpoint = f"{self.owner.base_url}/{self.owner.scenario.tenant_id}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                certificate.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=[algorithm],
                audience=token_endpoint,
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"AADSTS700027: Client assertion failed validation: {exc}"
        if claims.get("sub") != app.client_id:
            return "AADSTS700023: The client assertion's sub claim does not match the client id."
        return None

    # Graph and ARM

    def _bearer(self, audience: str) -> bool:
        value = self.headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            return False
        with self.owner.lock:
            entry = self.owner.tokens.get(value[len("Bearer ") :])
        return entry is not None and entry[1] == audience and entry[2] > time.time()

    def _graph(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if not self._bearer("graph"):
            return 401, _graph_error("InvalidAuthenticationToken", "Access token is empty or invalid."), {}
        fault = self.owner.fault_for(path)
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.status < 400:  # a slow but correct answer
                fault = None
        if fault is not None:
            return fault.status, _graph_error(fault.code, fault.message or fault.code), _retry(fault)
        scenario = self.owner.scenario
        select = _first(query, "$select")
        if path == "/v1.0/reports/authenticationMethods/userRegistrationDetails":
            return self._graph_page(path, query, scenario.users, select, "userRegistrationDetails")
        if path == "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy":
            return (
                200,
                {
                    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/"
                    "identitySecurityDefaultsEnforcementPolicy/$entity",
                    "id": "00000000-0000-0000-0000-000000000005",
                    "displayName": "Security Defaults",
                    "description": "Security defaults is a set of basic identity security mechanisms "
                    "recommended by Microsoft.",
                    "isEnabled": scenario.security_defaults,
                },
                {},
            )
        if path == "/v1.0/identity/conditionalAccess/policies":
            return self._graph_page(path, query, scenario.ca_policies, select, "identity/conditionalAccess/policies")
        if path == "/v1.0/roleManagement/directory/roleAssignments":
            wanted = _filter_eq(_first(query, "$filter"), "roleDefinitionId")
            rows = [a for a in scenario.role_assignments if wanted is None or a["roleDefinitionId"] == wanted]
            if _first(query, "$expand") == "principal":
                rows = [dict(a, principal=_public(scenario.directory.get(a["principalId"]))) for a in rows]
            return self._graph_page(path, query, rows, select, "roleManagement/directory/roleAssignments")
        if path.startswith(("/v1.0/users/", "/v1.0/groups/")):
            return self._directory(path, query, select)
        if path == "/v1.0/policies/authenticationMethodsPolicy":
            return 200, scenario.methods, {}
        if path == "/v1.0/security/secureScores":
            top = int(_first(query, "$top") or len(scenario.scores) or 1)
            newest = sorted(scenario.scores, key=lambda s: s["createdDateTime"], reverse=True)[:top]
            return (
                200,
                {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/secureScores", "value": newest},
                {},
            )
        segment = path.rsplit("/", 1)[-1]
        return 400, _graph_error("BadRequest", f"Resource not found for the segment '{segment}'."), {}

    def _directory(self, path: str, query: dict[str, list[str]], select: str | None) -> Reply:
        directory = self.owner.scenario.directory
        parts = path.split("/")  # "", "v1.0", "users" | "groups", id, ...
        found = directory.get(parts[3])
        kind = "#microsoft.graph.user" if parts[2] == "users" else "#microsoft.graph.group"
        if found is None or found["@odata.type"] != kind:
            message = (
                f"Resource '{parts[3]}' does not exist or one of its queried reference-property objects "
                "are not present."
            )
            return 404, _graph_error("Request_ResourceNotFound", message), {}
        if len(parts) == 4:
            item = _public(found) or {}
            if select:
                item = {k: item[k] for k in select.split(",") if k in item}
            return 200, {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{parts[2]}/$entity", **item}, {}
        if parts[2] == "groups" and parts[4:] == ["transitiveMembers", "microsoft.graph.user"]:
            users: dict[str, dict[str, Any]] = {}
            pending, seen = list(found["members"]), set()
            while pending:  # nested groups flattened, as the transitive relationship is
                member = directory.get(pending.pop(0))
                if member is None or member["id"] in seen:
                    continue
                seen.add(member["id"])
                if member["@odata.type"] == "#microsoft.graph.group":
                    pending.extend(member["members"])
                elif member["@odata.type"] == "#microsoft.graph.user":
                    users[member["id"]] = member
            rows = [users[key] for key in sorted(users)]
            return self._graph_page(path, query, rows, select, "users")
        segment = path.rsplit("/", 1)[-1]
        return 400, _graph_error("BadRequest", f"Resource not found for the segment '{segment}'."), {}

    def _graph_page(self, path: str, query: dict[str, list[str]], rows: Any, select: str | None, context: str) -> Reply:
        size = self.owner.scenario.graph_page_size
        token = _first(query, "$skiptoken")
        offset = _decode_skiptoken(token)
        if offset is None:
            return 400, _graph_error("BadRequest", "The $skiptoken is not valid."), {}
        if token is None and self.owner.scenario.empty_first_page:
            size = 0
        window = rows[offset : offset + size]
        if select:
            fields = select.split(",")
            window = [{k: item[k] for k in fields if k in item} for item in window]
        body: dict[str, Any] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}",
            "value": window,
        }
        if offset + size < len(rows) or (size == 0 and rows):
            kept = {k: v[-1] for k, v in query.items() if k != "$skiptoken"}
            kept["$skiptoken"] = _encode_skiptoken(offset + size)
            base = self.owner.scenario.next_link_base or self.owner.graph_url
            body["@odata.nextLink"] = f"{base}{path}?{urlencode(kept, quote_via=quote, safe='$,')}"
        return 200, body, {}

    def _arm(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if not self._bearer("arm"):
            return 401, _arm_error("InvalidAuthenticationToken", "The access token is invalid."), {}
        if not _first(query, "api-version"):
            return (
                400,
                _arm_error(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ),
                {},
            )
        fault = self.owner.fault_for(path)
        if fault is not None:
            return fault.status, _arm_error(fault.code, fault.message or fault.code), _retry(fault)
        scenario = self.owner.scenario
        if path == "/subscriptions":
            rows = [
                {
                    "id": f"/subscriptions/{s.id}",
                    "subscriptionId": s.id,
                    "tenantId": scenario.tenant_id,
                    "displayName": s.name,
                    "state": "Enabled",
                }
                for s in scenario.subscriptions
            ]
            return self._arm_page(path, query, rows)
        parts = path.strip("/").split("/")
        subscription = next((s for s in scenario.subscriptions if len(parts) > 1 and s.id == parts[1]), None)
        if subscription is None:
            return (
                404,
                _arm_error(
                    "SubscriptionNotFound",
                    f"The subscription '{parts[1] if len(parts) > 1 else ''}' could not be found.",
                ),
                {},
            )
        provider = "/".join(parts[2:])
        lists: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "providers/Microsoft.Storage/storageAccounts": lambda: subscription.storage,
            "providers/Microsoft.Network/networkSecurityGroups": lambda: subscription.nsgs,
            "providers/Microsoft.KeyVault/vaults": lambda: subscription.vaults,
            "providers/Microsoft.Security/pricings": lambda: subscription.pricings,
            "providers/Microsoft.Sql/servers": lambda: [
                {
                    "id": arm_id(subscription.id, "Microsoft.Sql/servers", server),
                    "name": server,
                    "type": "Microsoft.Sql/servers",
                    "location": "uksouth",
                    "properties": {"state": "Ready", "version": "12.0"},
                }
                for server in subscription.sql
            ],
        }
        if provider in lists:
            return self._arm_page(path, query, lists[provider]())
        # /subscriptions/{s}/resourceGroups/rg-main/providers/Microsoft.Sql/servers/{server}/databases[/{db}/...]
        if len(parts) >= 9 and parts[4:7] == ["providers", "Microsoft.Sql", "servers"]:
            server = parts[7]
            databases = subscription.sql.get(server)
            if databases is None or parts[8] != "databases":
                return (
                    404,
                    _arm_error("ResourceNotFound", f"The Resource 'Microsoft.Sql/servers/{server}' was not found."),
                    {},
                )
            server_id = arm_id(subscription.id, "Microsoft.Sql/servers", server)
            if len(parts) == 9:
                rows = [
                    {
                        "id": f"{server_id}/databases/{db}",
                        "name": db,
                        "type": "Microsoft.Sql/servers/databases",
                        "location": "uksouth",
                    }
                    for db in ["master", *databases]
                ]
                return self._arm_page(path, query, rows)
            if len(parts) == 12 and parts[10:12] == ["transparentDataEncryption", "current"]:
                db = parts[9]
                state = "Enabled" if db == "master" else databases.get(db)
                if state is None:
                    return 404, _arm_error("ResourceNotFound", f"Database '{db}' was not found."), {}
                return (
                    200,
                    {
                        "id": f"{server_id}/databases/{db}/transparentDataEncryption/Current",
                        "name": "Current",
                        "type": "Microsoft.Sql/servers/databases/transparentDataEncryption",
                        "properties": {"state": state},
                    },
                    {},
                )
        return 404, _arm_error("InvalidResourceType", f"The resource type could not be found for '{path}'."), {}

    def _arm_page(self, path: str, query: dict[str, list[str]], rows: list[dict[str, Any]]) -> Reply:
        size = self.owner.scenario.arm_page_size
        offset = _decode_skiptoken(_first(query, "$skiptoken"))
        if offset is None:
            return 400, _arm_error("InvalidSkipToken", "The skip token is not valid."), {}
        body: dict[str, Any] = {"value": rows[offset : offset + size]}
        if offset + size < len(rows):
            kept = {k: v[-1] for k, v in query.items() if k != "$skiptoken"}
            kept["$skiptoken"] = _encode_skiptoken(offset + size)
            body["nextLink"] = f"{self.owner.arm_url}{path}?{urlencode(kept, quote_via=quote, safe='$,')}"
        return 200, body, {}


def _public(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A directory object as Graph shows it (a group's members are a relationship, not a property)."""
    return None if item is None else {k: v for k, v in item.items() if k != "members"}


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _filter_eq(expression: str | None, field_name: str) -> str | None:
    if not expression:
        return None
    prefix = f"{field_name} eq '"
    if expression.startswith(prefix) and expression.endswith("'"):
        return expression[len(prefix) : -1]
    return "<unsupported filter>"


def _encode_skiptoken(offset: int) -> str:
    # Opaque to the client, as Microsoft's are.
    return _b64url(hashlib.sha256(str(offset).encode()).digest()[:6] + offset.to_bytes(8, "big"))


def _decode_skiptoken(token: str | None) -> int | None:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    offset = int.from_bytes(raw[6:], "big")
    return offset if raw[:6] == hashlib.sha256(str(offset).encode()).digest()[:6] else None


def _retry(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def _graph_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


def _arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "target": None, "details": []}}


def _aad_error(code: str, description: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "error": code,
        "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\n"
        f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}",
        "error_codes": [int(code) for code in re.findall(r"^AADSTS(\d+)", description)],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }


# --- standalone ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Microsoft tenant until stdin closes.")
    parser.add_argument("--users", type=int, default=100_000, help="users in the generated registration report")
    parser.add_argument("--page-size", type=int, default=1000, help="Graph page size")
    parser.add_argument("--directory", required=True, help="where to write ca.pem")
    args = parser.parse_args(argv)
    ca = trustme.CA()
    ca_path = Path(args.directory) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    scenario = Scenario(users=GeneratedUsers(args.users), graph_page_size=args.page_size, security_defaults=True)
    with FakeMicrosoft(ca, scenario, ca_path=ca_path) as fake:
        print(
            json.dumps({"port": fake.port, "ca_path": str(ca_path), "expected": scenario.users.expected()}), flush=True
        )
        sys.stdin.read()  # the parent closes stdin (or dies) to stop us
        served = sum(1 for r in fake.requests if r.path.endswith("userRegistrationDetails"))
        print(json.dumps({"pages_served": served}), flush=True)
    return 0


class SpawnedFake:
    """The fake tenant in a child process (`main` above), so its memory is not measured with ours."""

    def __init__(self, users: int, directory: Path, page_size: int = 1000) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.microsoft", "--users", str(users), "--page-size", str(page_size),
             "--directory", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )  # fmt: skip
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        self.port = int(ready["port"])
        self.ca_path = str(ready["ca_path"])
        self.expected: dict[str, int] = ready["expected"]
        self.pages_served = 0

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def config(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority_url": self.base_url,
            "graph_url": f"{self.base_url}/graph",
            "arm_url": f"{self.base_url}/arm",
            "ca_bundle": self.ca_path,
            "timeout_s": 60.0,
        }
        values.update(overrides)
        return values

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        line = self.process.stdout.readline()
        if line:
            self.pages_served = int(json.loads(line)["pages_served"])
        self.process.stdout.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> SpawnedFake:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop()


if __name__ == "__main__":
    sys.exit(main())
