"""The sign-in service: msal's tenant discovery and the token endpoint (client secret, client assertion,
and the authorization code of the OpenID Connect fake)."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import jwt

from tests.fakes.microsoft.constants import ASSERTION_TYPE
from tests.fakes.microsoft.handler import HandlerBase
from tests.fakes.microsoft.scenario import App
from tests.fakes.microsoft.wire import Reply, aad_error, retry


class SignInRoutes(HandlerBase):
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
            return fault.status, aad_error(fault.code, fault.message), retry(fault)
        if form.get("grant_type") == "authorization_code" and self.owner.oidc is not None:
            user_app = scenario.apps.get(form.get("client_id", ""))
            if user_app is None:
                return 400, aad_error("unauthorized_client", "AADSTS700016: Application not found."), {}
            refusal = self._authenticate(user_app, form)
            if refusal is not None:
                return 401, aad_error("invalid_client", refusal), {}
            redeemed: Reply = self.owner.oidc.redeem(form, self.owner.base_url)
            return redeemed
        if form.get("grant_type") != "client_credentials":
            return 400, aad_error("unsupported_grant_type", "AADSTS70003: grant type not supported here."), {}
        app = scenario.apps.get(form.get("client_id", ""))
        if app is None:
            message = f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found."
            return 400, aad_error("unauthorized_client", message), {}
        scopes = [s for s in form.get("scope", "").split() if s not in ("openid", "profile", "offline_access")]
        audiences = {f"{self.owner.graph_url}/.default": "graph", f"{self.owner.arm_url}/.default": "arm"}
        if len(scopes) != 1 or scopes[0] not in audiences:
            return 400, aad_error("invalid_scope", f"AADSTS1002012: The provided scope {scopes} is not valid."), {}
        refusal = self._authenticate(app, form)
        if refusal is not None:
            return 401, aad_error("invalid_client", refusal), {}
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
