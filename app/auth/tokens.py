"""All JWT code (python-jose, HS256). Decoding is strict: one algorithm, aud, iss, exp, iat, sub.

Any problem with a token raises ``UnauthorizedError``; callers never see jose exceptions.
A token names the credential it came from (``cred``: ``password`` or ``key:<key id>``)
and the user's ``token_version`` (``ver``) at issue time; ``app.auth.service`` refuses it
once either has changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeGuard

from jose import JWTError, jwt

from app.clock import utc_now
from app.errors import UnauthorizedError
from app.settings import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
# Our tokens are a few hundred characters; anything far larger is refused before decoding.
MAX_TOKEN_CHARS = 4096
LEEWAY_SECONDS = 10
PASSWORD_CREDENTIAL = "password"  # noqa: S105 - a claim value, not a secret
_KEY_CREDENTIAL = re.compile(r"^key:([A-Za-z0-9]{12})$")
INVALID = "Invalid or expired token."


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    roles: tuple[str, ...]
    version: int
    key_id: str | None  # the access key the token came from; None for a password


def create_access_token(
    settings: Settings, *, subject: str, roles: list[str], version: int, key_id: str | None
) -> tuple[str, int]:
    """Return the token and its lifetime in seconds."""
    now = utc_now()
    lifetime = timedelta(minutes=settings.token_minutes)
    claims = {
        "sub": subject,
        "roles": roles,
        "typ": TOKEN_TYPE,
        "cred": PASSWORD_CREDENTIAL if key_id is None else f"key:{key_id}",
        "ver": version,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
    }
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _times_are_sound(settings: Settings, claims: dict[str, Any]) -> bool:
    """Whole seconds, issued no later than now, living no longer than we issue tokens for."""
    issued, expires, not_before = claims.get("iat"), claims.get("exp"), claims.get("nbf", 0)
    if not (_is_int(issued) and _is_int(expires) and _is_int(not_before)):
        return False
    now = int(utc_now().timestamp())
    lifetime = expires - issued
    return issued <= now + LEEWAY_SECONDS and 0 < lifetime <= settings.token_minutes * 60


def _key_id(credential: Any) -> tuple[bool, str | None]:
    if credential == PASSWORD_CREDENTIAL:
        return True, None
    match = _KEY_CREDENTIAL.match(credential) if isinstance(credential, str) else None
    return (True, match.group(1)) if match else (False, None)


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    if len(token) > MAX_TOKEN_CHARS:
        raise UnauthorizedError(INVALID)
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_aud": True,
                "require_iss": True,
                "leeway": LEEWAY_SECONDS,
            },
        )
    except (JWTError, ValueError, TypeError) as exc:
        raise UnauthorizedError(INVALID) from exc
    roles, version = claims.get("roles"), claims.get("ver")
    is_credential, key_id = _key_id(claims.get("cred"))
    if (
        claims.get("typ") != TOKEN_TYPE
        or not isinstance(roles, list)
        or not _is_int(version)
        or not is_credential
        or not _times_are_sound(settings, claims)
    ):
        raise UnauthorizedError(INVALID)
    return TokenClaims(
        subject=str(claims["sub"]),
        roles=tuple(str(r) for r in roles),
        version=version,
        key_id=key_id,
    )
