"""Who may read the OData service: Basic (user name + web service access key) or Bearer.

Verified credentials are cached in-process for ``CACHE_SECONDS`` (5 s) so a busy client
costs no database round trips per request; the cache key is a SHA-256 of the credential,
never the credential itself. A revoked or expired key, a disabled user or a changed role
therefore takes effect within 5 seconds in every process (the entry simply expires); there
is no cross-process invalidation to get wrong. Failures are never cached, so throttling
(``app.auth.throttle``) sees every bad attempt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass

from app.auth.service import BAD_CREDENTIALS, authenticate, user_for_token
from app.db import SessionMaker
from app.errors import UnauthorizedError
from app.models.security import Role, User
from app.odata.errors import ODataForbiddenError, ODataUnauthorizedError
from app.settings import Settings

CACHE_SECONDS = 5.0
CACHE_MAX_ENTRIES = 4096
ALLOWED_ROLES = frozenset({Role.product_availability, Role.integration_admin})


@dataclass(frozen=True)
class Caller:
    user_name: str
    roles: frozenset[Role]


_cache: dict[bytes, tuple[float, Caller]] = {}


# What the service accepts, said in every 401: the shared message of the REST sign-in also
# names passwords, which OData refuses.
ACCEPTED = (
    "OData accepts HTTP Basic with a user name and one of its web service access keys "
    "(not its password), or a bearer token from POST /api/v1/auth/token."
)


def clear_cache() -> None:
    _cache.clear()


def _cache_get(key: bytes) -> Caller | None:
    entry = _cache.get(key)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        _cache.pop(key, None)
        return None
    return entry[1]


def _cache_put(key: bytes, caller: Caller) -> None:
    if len(_cache) >= CACHE_MAX_ENTRIES:
        _cache.clear()  # bounded memory; a refill costs one lookup per client
    _cache[key] = (time.monotonic() + CACHE_SECONDS, caller)


async def authenticate_request(
    sessionmaker: SessionMaker,
    settings: Settings,
    *,
    authorization: str | None,
    client_ip: str | None,
) -> Caller:
    if not authorization:
        msg = f"Authentication required. {ACCEPTED}"
        raise ODataUnauthorizedError(msg)
    scheme, _, credentials = authorization.partition(" ")
    key = hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()
    caller = _cache_get(key)
    if caller is None:
        if scheme.lower() == "basic":
            caller = await _basic(sessionmaker, settings, credentials.strip(), client_ip)
        elif scheme.lower() == "bearer":
            caller = await _bearer(sessionmaker, settings, credentials.strip())
        else:
            msg = "Unsupported authentication scheme; use Basic or Bearer."
            raise ODataUnauthorizedError(msg)
        _cache_put(key, caller)
    if not caller.roles & ALLOWED_ROLES:
        msg = "This needs the product-availability or integration-admin role."
        raise ODataForbiddenError(msg)
    return caller


def _caller(user: User) -> Caller:
    return Caller(user_name=user.user_name, roles=user.role_set)


async def _basic(
    sessionmaker: SessionMaker, settings: Settings, credentials: str, client_ip: str | None
) -> Caller:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        msg = "Malformed Basic credentials."
        raise ODataUnauthorizedError(msg) from exc
    user_name, separator, secret = decoded.partition(":")
    if not separator or not user_name:
        msg = "Malformed Basic credentials."
        raise ODataUnauthorizedError(msg)
    try:
        sign_in = await authenticate(
            sessionmaker,
            settings,
            user_name=user_name,
            secret=secret,
            client_ip=client_ip,
            allow_password=False,
        )
    except UnauthorizedError as exc:
        detail = f"Incorrect user name or access key. {ACCEPTED}"
        raise ODataUnauthorizedError(
            detail if exc.detail == BAD_CREDENTIALS else exc.detail
        ) from exc
    return _caller(sign_in.user)


async def _bearer(sessionmaker: SessionMaker, settings: Settings, token: str) -> Caller:
    # JWT support is loaded on the first Bearer caller: CRMs read with Basic, and a process
    # serving only them keeps python-jose (and its cryptography backend) out of memory.
    from app.auth import tokens

    try:
        claims = tokens.decode_access_token(settings, token)
    except UnauthorizedError as exc:
        raise ODataUnauthorizedError(exc.detail) from exc
    async with sessionmaker() as session:
        user = await user_for_token(session, claims)
    if user is None:
        raise ODataUnauthorizedError(tokens.INVALID)
    return _caller(user)
