"""Signing in with Microsoft Entra ID: OpenID Connect, authorisation code flow with PKCE, through msal.

msal (1.39) builds the authorisation request (state, a nonce, a PKCE S256 challenge), checks on the way
back that the state and the nonce match, and redeems the code with the verifier. It does NOT validate the
id_token (it only decodes its claims, msal issue 911), so this module does: its RS256 signature against
the tenant's JWKS (from the OpenID configuration document), issuer, audience, expiry, not-before, issued
at, and the nonce again. Roles come from the token's `roles` (app roles) or `groups` claims, mapped by the
config; an account with no mapped role is refused.

Microsoft posts its answer back (response_mode=form_post, as msal and RFC 9700 recommend: the code never
sits in a URL, a log or the history). The flow msal returns (with the PKCE verifier and the nonce) lives
in a cookie encrypted with a key derived from the collector's signing key, for ten minutes: nothing is
stored, any replica can finish it. That cookie alone is SameSite=None, so that it comes with Microsoft's
cross-site POST; it is worth nothing without the state and code of that same sign-in.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import msal  # type: ignore[import-untyped]
import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from collector.cloud.auth import certificate_credential
from collector.cloud.http import PinnedSession
from collector.dashboard.config import EntraConfig
from collector.security import Role

FLOW_TTL_S = 600
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
ROLE_ORDER = (Role.ADMIN, Role.ANALYST, Role.AUDITOR)  # an account mapped to several roles gets the first
CLOCK_SKEW_S = 120


class SignInError(Exception):
    """The sign-in could not be completed; the message is shown to the person (no secrets in it)."""


@dataclass(frozen=True)
class Identity:
    external_id: str  # entra:<tenant id>:<object id>
    name: str  # the user name here: preferred_username (UPN), lower-cased
    display_name: str
    role: Role


def flow_cipher(signing_key: Ed25519PrivateKey) -> Fernet:
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rampart dashboard sign-in flow").derive(raw)
    import base64

    return Fernet(base64.urlsafe_b64encode(key))


def seal_flow(cipher: Fernet, flow: dict[str, Any]) -> str:
    kept = {k: v for k, v in flow.items() if k != "auth_uri"}  # the URL is long and not needed back
    return cipher.encrypt(json.dumps(kept, separators=(",", ":")).encode()).decode()


def open_flow(cipher: Fernet, sealed: str) -> dict[str, Any]:
    try:
        flow: dict[str, Any] = json.loads(cipher.decrypt(sealed.encode(), ttl=FLOW_TTL_S))
    except (InvalidToken, ValueError):
        raise SignInError("The sign-in took too long or did not start here. Start again.") from None
    return flow


class EntraSignIn:
    """One msal application and the tenant's signing keys, per process."""

    def __init__(self, config: EntraConfig) -> None:
        self.config = config
        self.authority = f"{(config.authority_url or PUBLIC_AUTHORITY).rstrip('/')}/{config.tenant_id}"
        self.session = PinnedSession(config.ca_bundle, config.timeout_s)
        self._app: msal.ConfidentialClientApplication | None = None
        self._metadata: dict[str, Any] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None
        self._lock = threading.Lock()

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                credential: Any = self.config.client_secret
                if self.config.certificate_path:
                    credential = certificate_credential(self.config.certificate_path, self.config.certificate_password)
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.config.client_id,
                        client_credential=credential,
                        authority=self.authority,
                        http_client=self.session,
                        instance_discovery=self.config.authority_url in ("", PUBLIC_AUTHORITY),
                    )
                except (ValueError, requests.RequestException) as exc:
                    raise SignInError(
                        f"Microsoft's sign-in service at {self.authority} cannot be reached: {exc}"
                    ) from None
            return self._app

    def start(self) -> dict[str, Any]:
        """A new flow: its `auth_uri` is where the browser goes."""
        flow: dict[str, Any] = self._application().initiate_auth_code_flow(
            scopes=[], redirect_uri=self.config.redirect_url, response_mode="form_post"
        )
        return flow

    def finish(self, flow: dict[str, Any], response: dict[str, str]) -> Identity:
        """Redeem the code of Microsoft's answer; the validated identity, or SignInError."""
        if "error" in response:
            description = (response.get("error_description") or "").splitlines()
            raise SignInError(
                f"Microsoft refused the sign-in: {response['error']}: {description[0] if description else ''}".strip()
            )
        try:
            result = self._application().acquire_token_by_auth_code_flow(flow, response)
        except ValueError:  # state mismatch: msal's check
            raise SignInError("The sign-in answer does not belong to the sign-in started here. Start again.") from None
        except RuntimeError:  # nonce mismatch: msal's check
            raise SignInError("The sign-in answer was for another request (nonce). Start again.") from None
        except requests.RequestException as exc:
            raise SignInError(f"Microsoft's sign-in service could not be reached: {type(exc).__name__}") from None
        if "id_token" not in result:
            description = str(result.get("error_description") or "").splitlines()
            raise SignInError(
                f"Microsoft did not sign you in: {result.get('error', 'no id_token')}: "
                f"{description[0] if description else ''}".strip()
            )
        claims = self.validate(str(result["id_token"]), str(flow.get("nonce") or ""))
        return self.identity(claims)

    # --- the id_token ---------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.authority}/v2.0/.well-known/openid-configuration"
            try:
                reply = self.session.get(url)
                reply.raise_for_status()
                self._metadata = reply.json()
            except (requests.RequestException, ValueError) as exc:
                raise SignInError(f"cannot read the sign-in service's configuration ({url}): {exc}") from None
        return self._metadata

    def signing_keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        if self._keys is None or refresh or time.monotonic() - self._keys[0] > 3600:
            uri = str(self.metadata().get("jwks_uri") or "")
            if not uri.startswith("https://"):
                raise SignInError("the sign-in service's configuration names no https jwks_uri")
            try:
                reply = self.session.get(uri)
                reply.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(reply.json())
            except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
                raise SignInError(f"cannot read the sign-in service's signing keys: {exc}") from None
            self._keys = (time.monotonic(), keys)
        return self._keys[1]

    def _key_for(self, kid: str) -> Any:
        for refresh in (False, True):  # keys roll over: look once more after a refresh
            for key in self.signing_keys(refresh).keys:
                if key.key_id == kid:
                    return key.key
        raise SignInError("the id_token is signed by a key the tenant does not publish")

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInError("the id_token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise SignInError(f"the id_token is signed with {header.get('alg')!r}, not RS256")
        key = self._key_for(str(header.get("kid") or ""))
        issuer = str(self.metadata().get("issuer") or "").replace("{tenantid}", self.config.tenant_id)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.config.client_id,
                issuer=issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignInError("the id_token has expired") from None
        except jwt.InvalidAudienceError:
            raise SignInError("the id_token was issued for another application (aud)") from None
        except jwt.InvalidIssuerError:
            raise SignInError("the id_token was issued by another tenant or service (iss)") from None
        except jwt.InvalidSignatureError:
            raise SignInError("the id_token's signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise SignInError(f"the id_token is not valid: {exc}") from None
        # msal sends the SHA-256 of the flow's nonce (OIDC core, nonce notes) and checks it; so do we.
        if claims.get("nonce") != hashlib.sha256(nonce.encode()).hexdigest():
            raise SignInError("the id_token was issued for another sign-in (nonce)")
        if str(claims.get("tid") or self.config.tenant_id) != self.config.tenant_id:
            raise SignInError("the id_token is from another tenant (tid)")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        object_id = str(claims.get("oid") or claims.get("sub") or "")
        name = str(claims.get("preferred_username") or claims.get("upn") or claims.get("email") or "").lower()
        if not object_id or not name:
            raise SignInError("the id_token names no user (oid, preferred_username)")
        roles = self.roles(claims)
        if not roles:
            raise SignInError(
                f"{name} has no Rampart role: ask an administrator to assign you one of the app roles "
                f"({', '.join(sorted(self.config.app_roles)) or 'none configured'}) or add you to a mapped group."
            )
        return Identity(
            external_id=f"entra:{self.config.tenant_id}:{object_id}",
            name=name,
            display_name=str(claims.get("name") or name),
            role=next(role for role in ROLE_ORDER if role in roles),
        )

    def roles(self, claims: dict[str, Any]) -> set[Role]:
        found: set[Role] = set()
        for value in claims.get("roles") or []:
            if str(value) in self.config.app_roles:
                found.add(Role(self.config.app_roles[str(value)]))
        for value in claims.get("groups") or []:
            if str(value) in self.config.group_roles:
                found.add(Role(self.config.group_roles[str(value)]))
        return found


_sign_ins: dict[int, EntraSignIn] = {}
_sign_ins_lock = threading.Lock()


def sign_in_for(config: EntraConfig) -> EntraSignIn:
    """The process's EntraSignIn for this config (one msal application per tenant per process)."""
    key = id(config)
    with _sign_ins_lock:
        if key not in _sign_ins:
            _sign_ins[key] = EntraSignIn(config)
        return _sign_ins[key]
