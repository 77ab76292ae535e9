"""Client credentials like Microsoft Entra ID's v2.0 token endpoint, and bearer checks.

The app signs in with its client secret, or with a client assertion signed by a
certificate registered on it (``SandboxConfig.client_certificates``).

Tokens are HS256 JWTs signed with a key derived from the configured secret, so they
survive a restart of a file-backed sandbox the way a real token outlives a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import orjson

from app.sandbox.client_assertion import JWT_BEARER, AssertionRefused, check_assertion
from app.sandbox.config import SandboxConfig


class OAuthError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description}",
            "error_codes": [self.code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_key(config: SandboxConfig) -> bytes:
    material = f"{config.tenant_id}\0{config.client_id}\0{config.client_secret}".encode()
    return hashlib.sha256(material).digest()


def _check_client(form: dict[str, str], config: SandboxConfig, *, token_url: str) -> None:
    """The app proves itself with its secret or with a certificate's client assertion."""
    if "client_assertion" in form or "client_assertion_type" in form:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise OAuthError(
                400, "invalid_request", 700023,
                f"client_assertion_type must be '{JWT_BEARER}'.",
            )  # fmt: skip
        try:
            check_assertion(
                form.get("client_assertion", ""), client_id=config.client_id,
                token_url=token_url, registered=config.client_certificates,
            )  # fmt: skip
        except AssertionRefused as refused:
            raise OAuthError(401, "invalid_client", refused.code, refused.description) from None
        return
    secret = form.get("client_secret", "")
    if not hmac.compare_digest(secret.encode(), config.client_secret.encode()):
        raise OAuthError(
            401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
            "being sent in the request is the client secret value, not the client secret ID.",
        )  # fmt: skip


def issue_token(
    form: dict[str, str], config: SandboxConfig, *, tenant: str, token_url: str = ""
) -> dict[str, Any]:
    """Answer a token request or raise OAuthError with Entra's error shape.

    ``token_url`` is the URL the request came to: a client assertion's audience.
    """
    if tenant != config.tenant_id:
        raise OAuthError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(
            400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
        )
    if form.get("client_id") != config.client_id:
        raise OAuthError(
            401,
            "invalid_client",
            700016,
            f"Application with identifier '{form.get('client_id')}' was not found in the "
            f"directory '{tenant}'.",
        )
    _check_client(form, config, token_url=token_url)
    scope = form.get("scope", "")
    if not scope.endswith("/.default"):
        raise OAuthError(
            400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
            "Client credential flows must have a scope value with /.default suffixed to the "
            "resource identifier (application ID URI).",
        )  # fmt: skip
    now = int(time.time())
    expires = now + config.token_lifetime_seconds
    claims = {
        "aud": scope.removesuffix("/.default"),
        "iss": f"https://sts.sandbox/{tenant}/",
        "iat": now,
        "nbf": now,
        "exp": expires,
        "appid": config.client_id,
        "tid": tenant,
    }
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64(orjson.dumps(claims))
    signature = hmac.new(_signing_key(config), f"{header}.{payload}".encode(), hashlib.sha256)
    token = f"{header}.{payload}.{_b64(signature.digest())}"
    return {
        "token_type": "Bearer",
        "expires_in": config.token_lifetime_seconds,
        "ext_expires_in": config.token_lifetime_seconds,
        "access_token": token,
    }


def verify_bearer(authorization: str | None, config: SandboxConfig) -> str | None:
    """The client id a valid, unexpired bearer token was issued to, else None."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    token = authorization[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(_signing_key(config), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    try:
        if not hmac.compare_digest(_unb64(parts[2]), expected.digest()):
            return None
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict) or int(claims.get("exp", 0)) <= time.time():
        return None
    client = claims.get("appid")
    return client if client == config.client_id else None
