"""Entra ID's OpenID Connect sign-in, for the fake of tests/fakes/microsoft/ (`FakeMicrosoft.oidc`).

What the dashboard's "Sign in with Microsoft" talks to, as Microsoft's identity platform documents it:

- `GET /{tenant}/oauth2/v2.0/authorize` (response_type=code, scope with openid, state, nonce,
  code_challenge with code_challenge_method=S256): the person signed in (`signed_in`, as when Microsoft
  already has a session for them) is sent back to the registered redirect_uri with `code` and `state`;
  with nobody signed in, or a refusal set, with `error` and `error_description` instead. With
  response_mode=form_post the answer is a page whose form posts them there (by script, as Microsoft's
  does); otherwise a redirect with them in the query;
- `POST /{tenant}/oauth2/v2.0/token` with grant_type=authorization_code: the client authenticated as for
  client credentials, the code single-use, bound to its client and redirect_uri, its PKCE verifier
  checked; the answer carries an id_token signed RS256 by this fake's own key (header `kid`), with iss,
  aud, iat, nbf, exp, nonce, sub, oid, tid, preferred_username, name, roles and groups;
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS with that key (named by the openid-configuration).

`tamper` makes the next id_tokens wrong in one way (bad_signature, wrong_audience, wrong_issuer,
expired, wrong_nonce, wrong_tenant), so that tests can see the collector refuse each.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

Reply = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Account:
    username: str  # preferred_username (the UPN)
    name: str = ""
    roles: list[str] = field(default_factory=list)  # app role values
    groups: list[str] = field(default_factory=list)  # group object ids
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    account: Account
    expires: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class OidcProvider:
    def __init__(self, tenant_id: str, redirect_uris: set[str] | None = None) -> None:
        self.tenant_id = tenant_id
        self.redirect_uris: set[str] = set(redirect_uris or ())
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = _b64url(secrets.token_bytes(12))
        self.signed_in: Account | None = None
        self.refusal: tuple[str, str] | None = None  # (error, error_description) sent back from authorize
        self.tamper: str | None = None
        self.codes: dict[str, _Code] = {}
        self.issued: list[dict[str, Any]] = []  # the claims of every id_token issued
        self.lock = threading.Lock()

    # --- endpoints -----------------------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]], base_url: str) -> Reply | None:
        prefix = f"/{self.tenant_id}"
        if method == "GET" and path == f"{prefix}/oauth2/v2.0/authorize":
            return self.authorize({k: v[-1] for k, v in query.items()})
        if method == "GET" and path == f"{prefix}/discovery/v2.0/keys":
            return 200, self.jwks(), {}
        return None

    def authorize(self, params: dict[str, str]) -> Reply:
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            message = f"AADSTS50011: The redirect URI '{redirect_uri}' does not match the redirect URIs configured."
            return 400, {"error": "invalid_request", "error_description": message}, {}
        problems = []
        if params.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in params.get("scope", "").split():
            problems.append("scope must include openid")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            problems.append("PKCE S256 code_challenge required")
        if not params.get("state") or not params.get("nonce"):
            problems.append("state and nonce required")
        back: dict[str, str] = {"state": params.get("state", "")}
        if problems:
            back.update(error="invalid_request", error_description="AADSTS900144: " + "; ".join(problems))
        elif self.refusal is not None or self.signed_in is None:
            error, description = self.refusal or ("login_required", "AADSTS50058: No user is signed in.")
            back.update(error=error, error_description=description)
        else:
            code = secrets.token_urlsafe(32)
            with self.lock:
                self.codes[code] = _Code(
                    params.get("client_id", ""),
                    redirect_uri,
                    params["code_challenge"],
                    params["nonce"],
                    self.signed_in,
                    time.time() + 300,
                )
            back["code"] = code
        if params.get("response_mode") == "form_post":
            # As Microsoft does: a page whose form posts the answer to the redirect URI, sent by script.
            fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in back.items())
            page = (
                '<!DOCTYPE html><html lang="en"><head><title>Working...</title></head><body>'
                f'<form method="post" name="hiddenform" action="{escape(redirect_uri)}">{fields}'
                '<noscript><p>Script is off. Press Continue.</p><button type="submit">Continue</button></noscript>'
                "</form><script>document.forms[0].submit()</script></body></html>"
            )
            return 200, {"__html__": page}, {}
        location = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(back)}"
        return 302, {}, {"Location": location}

    def redeem(self, form: dict[str, str], base_url: str) -> Reply:
        """The token endpoint's authorization_code grant, once the client has authenticated."""
        with self.lock:
            code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.expires < time.time():
            return _refused("AADSTS70008: The provided authorization code has expired or was used.")
        if code.client_id != form.get("client_id") or code.redirect_uri != form.get("redirect_uri"):
            return _refused("AADSTS70002: The code was issued to another client or redirect URI.")
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
            return _refused("AADSTS501481: The Code_Verifier does not match the code_challenge.")
        id_token = self.id_token(code, base_url)
        reply = {
            "token_type": "Bearer",
            "scope": "openid profile",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": secrets.token_urlsafe(32),
            "id_token": id_token,
        }
        return 200, reply, {}

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}]
        }

    # --- tokens --------------------------------------------------------------------------------------

    def id_token(self, code: _Code, base_url: str) -> str:
        now = int(time.time())
        tamper = self.tamper
        claims: dict[str, Any] = {
            "ver": "2.0",
            "iss": f"{base_url}/{self.tenant_id}/v2.0",
            "aud": code.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "nonce": code.nonce,
            "sub": _b64url(hashlib.sha256(code.account.object_id.encode()).digest()),
            "oid": code.account.object_id,
            "tid": self.tenant_id,
            "preferred_username": code.account.username,
            "name": code.account.name or code.account.username,
            "roles": list(code.account.roles),
            "groups": list(code.account.groups),
        }
        if tamper == "wrong_audience":
            claims["aud"] = str(uuid.uuid4())
        elif tamper == "wrong_issuer":
            claims["iss"] = f"{base_url}/{uuid.uuid4()}/v2.0"
        elif tamper == "expired":
            claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        elif tamper == "wrong_nonce":
            claims["nonce"] = secrets.token_hex(16)
        elif tamper == "wrong_tenant":
            claims["tid"] = str(uuid.uuid4())
        key = self.other_key if tamper == "bad_signature" else self.key
        self.issued.append(claims)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


def _refused(description: str) -> Reply:
    body = {"error": "invalid_grant", "error_description": description, "trace_id": str(uuid.uuid4())}
    return 400, body, {}
