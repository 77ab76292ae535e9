"""All JWT code (python-jose, HS256). Decoding is strict: one algorithm, aud, iss, exp, iat, sub.

Any problem with a token raises ``UnauthorizedError``; callers never see jose exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from jose import JWTError, jwt

from app.clock import utc_now
from app.errors import UnauthorizedError
from app.settings import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
# Our tokens are a few hundred characters; anything far larger is refused before decoding.
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    roles: tuple[str, ...]


def create_access_token(settings: Settings, *, subject: str, roles: list[str]) -> tuple[str, int]:
    """Return the token and its lifetime in seconds."""
    now = utc_now()
    lifetime = timedelta(minutes=settings.token_minutes)
    claims = {
        "sub": subject,
        "roles": roles,
        "typ": TOKEN_TYPE,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
    }
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    if len(token) > MAX_TOKEN_CHARS:
        msg = "Invalid or expired token."
        raise UnauthorizedError(msg)
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
                "leeway": 10,
            },
        )
    except (JWTError, ValueError, TypeError) as exc:
        msg = "Invalid or expired token."
        raise UnauthorizedError(msg) from exc
    roles = claims.get("roles")
    if claims.get("typ") != TOKEN_TYPE or not isinstance(roles, list):
        msg = "Invalid or expired token."
        raise UnauthorizedError(msg)
    return TokenClaims(subject=str(claims["sub"]), roles=tuple(str(r) for r in roles))
