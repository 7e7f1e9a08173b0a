"""Signing in as the app registration with msal (client credentials: a secret or a certificate).

One `ConfidentialClientApplication` per tenant per process: msal caches tokens (and briefly, token
errors) per application object. Secrets and tokens are never logged or put in an error message; msal's
error description (an AADSTS code and text) is.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msal  # type: ignore[import-untyped]
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from checks.probes.cloud.context import SignInFailed
from collector.cloud.config import CloudConfig
from collector.cloud.endpoints import Endpoints
from collector.cloud.http import describe_failure

# What to fix for the sign-in refusals an administrator meets first (AADSTS codes as Microsoft documents).
FIXES = {
    "AADSTS7000215": "check cloud.client_secret (or client_secret_file): it must be the secret's Value, not its "
    "Secret ID, from the app registration's Certificates & secrets",
    "AADSTS7000222": "the client secret has expired: add a new one to the app registration and put it in "
    "cloud.client_secret (or client_secret_file)",
    "AADSTS700016": "check cloud.client_id and cloud.tenant_id: the app registration is not in this tenant",
    "AADSTS90002": "check cloud.tenant_id: no such tenant",
    "AADSTS700027": "check cloud.certificate_path: its certificate is not one uploaded to the app registration",
    "AADSTS7000112": "the app registration is disabled in the tenant: enable it",
}


def fix_for(description: str) -> str:
    for code, fix in FIXES.items():
        if description.startswith(code + ":") or f" {code}:" in description:
            return fix
    return "check cloud.tenant_id, cloud.client_id and the credential (see docs/cloud.md)"


def certificate_credential(path: str, password: str = "") -> dict[str, Any]:
    """msal's credential for a PEM file holding the private key and its certificate.

    The SHA-1 thumbprint makes msal sign an RS256 assertion with the `x5t` header, which every Microsoft
    cloud accepts.
    """
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise SignInFailed(f"cannot read cloud.certificate_path {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise SignInFailed(
            f"cloud.certificate_path {path}: no usable private key (PEM, encrypted ones need "
            f"cloud.certificate_password): {exc}"
        ) from None
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SignInFailed(f"cloud.certificate_path {path}: no PEM certificate beside the key: {exc}") from None
    unencrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "private_key": unencrypted.decode(),
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # names the certificate; not for security
    }


class TokenSource:
    """Access tokens for one tenant's Graph and ARM scopes; a sign-in failure is remembered for the run."""

    def __init__(self, config: CloudConfig, endpoints: Endpoints, session: requests.Session) -> None:
        self.config = config
        self.endpoints = endpoints
        self.session = session
        self._app: msal.ConfidentialClientApplication | None = None
        self._failure: SignInFailed | None = None
        self._lock = threading.Lock()

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            credential: Any = self.config.client_secret
            if self.config.certificate_path:
                credential = certificate_credential(self.config.certificate_path, self.config.certificate_password)
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=credential,
                    authority=self.endpoints.authority,
                    http_client=self.session,
                    instance_discovery=self.endpoints.instance_discovery,
                )
            except requests.RequestException as exc:
                # The constructor fetches the OpenID configuration: an unreachable or untrusted host ends here.
                raise SignInFailed(f"cannot reach the sign-in service: {self._unanswered(exc)}") from None
            except ValueError as exc:  # msal: an unknown tenant (AADSTS90002) or an unusable answer
                raise SignInFailed(
                    f"the sign-in service at {self.endpoints.authority} refused the tenant: {exc}; {fix_for(str(exc))}"
                ) from None
        return self._app

    def _unanswered(self, exc: requests.RequestException) -> str:
        return describe_failure(exc, self.endpoints.authority, self.config.ca_bundle)

    @property
    def failure(self) -> SignInFailed | None:
        return self._failure

    def token(self, scope: str) -> str:
        with self._lock:
            if self._failure is not None:
                raise self._failure
            try:
                result = self._application().acquire_token_for_client(scopes=[scope])
            except SignInFailed as exc:
                self._failure = exc
                raise
            except requests.RequestException as exc:
                self._failure = SignInFailed(f"the sign-in request got no answer: {self._unanswered(exc)}")
                raise self._failure from None
            except (msal.exceptions.MsalServiceError, ValueError) as exc:
                raise SignInFailed(f"sign-in request to {self.endpoints.authority} failed: {exc}") from None
            if "access_token" in result:
                return str(result["access_token"])
            description = str(result.get("error_description") or "").strip().splitlines()
            self._failure = SignInFailed(
                f"sign-in as app {self.config.client_id} to tenant {self.config.tenant_id} was refused: "
                f"{result.get('error', 'unknown error')}: {description[0] if description else 'no description'}; "
                f"{fix_for(description[0] if description else '')}",
                code=str(result.get("error") or ""),
            )
            raise self._failure
