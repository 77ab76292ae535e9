"""Who is calling: users by password, web service access key or token.

Every failed sign-in costs the same work whatever the reason (unknown user, wrong
password, key-only user, disabled user, revoked key): the same queries, the same argon2
or HMAC check, the same counter writes. So neither the answer nor its timing says
whether a user name exists. How failures are counted and when they are refused:
``app.auth.throttle``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys, passwords, throttle
from app.auth.users import USER_NAME_PATTERN
from app.clock import as_utc, utc_now
from app.db import SessionMaker, session_scope
from app.errors import TooManyRequestsError, UnauthorizedError
from app.logs import get_logger
from app.models.security import User, UserState, WebServiceAccessKey
from app.settings import Settings

if TYPE_CHECKING:  # python-jose stays unloaded until a bearer token is checked
    from app.auth.tokens import TokenClaims

log = get_logger("salesbridge.sign_in")

BAD_CREDENTIALS = "Incorrect user name, password or access key."
THROTTLED = "Too many failed sign-in attempts. Try again later."
_USER_NAME = re.compile(USER_NAME_PATTERN)
# Compared against when no key row matches the key id, so a miss costs one HMAC as a hit.
_NO_DIGEST = "0" * 64


@dataclass(frozen=True)
class SignIn:
    user: User
    key_id: str | None  # the access key used; None for a password


async def get_user_by_name(session: AsyncSession, user_name: str) -> User | None:
    return (await session.exec(select(User).where(User.user_name == user_name))).first()


async def _key_row(session: AsyncSession, key_id: str) -> WebServiceAccessKey | None:
    statement = select(WebServiceAccessKey).where(WebServiceAccessKey.key_id == key_id)
    return (await session.exec(statement)).first()


def _is_active(row: WebServiceAccessKey) -> bool:
    if row.revoked_at is not None:
        return False
    return row.expires_at is None or as_utc(row.expires_at) > utc_now()


def _key_problem(user: User | None, row: WebServiceAccessKey | None, *, matches: bool) -> str:
    """Why a key sign-in fails ("" when it does not); for the security log only."""
    if user is None:
        return "unknown_user"
    if row is None or row.user_id != user.id or not matches:
        return "wrong_key"
    if not _is_active(row):
        return "inactive_key"
    if user.state != UserState.enabled:
        return "disabled_user"
    return ""


def _note_use(row: WebServiceAccessKey) -> None:
    now = utc_now()
    # Written at most once a minute: a write per OData request would cost more than the read.
    if row.last_used_at is None or (now - as_utc(row.last_used_at)).total_seconds() > 60:
        row.last_used_at = now


def _security_event(event: str, attempt: throttle.Attempt, **fields: object) -> None:
    log.warning(
        event,
        category="security",
        user_name=attempt.user_name[: throttle.NAME_CHARS],
        client_ip=attempt.where,
        **fields,
    )


async def _fail(
    sessionmaker: SessionMaker,
    settings: Settings,
    attempt: throttle.Attempt,
    standing: throttle.Standing,
    *,
    reason: str,
    is_password: bool,
) -> UnauthorizedError | TooManyRequestsError:
    """Count the failure; a party already throttled gets 429, anyone else 401."""
    await throttle.record_failure(sessionmaker, settings, attempt, is_password=is_password)
    refusal = standing.refusal()
    if refusal is not None:
        throttled_by, wait = refusal
        _security_event("sign_in_refused", attempt, reason=reason, throttled_by=throttled_by,
                        retry_after_seconds=wait)  # fmt: skip
        return TooManyRequestsError(THROTTLED, retry_after_seconds=wait)
    _security_event("sign_in_failed", attempt, reason=reason)
    return UnauthorizedError(BAD_CREDENTIALS)


async def _with_key(
    sessionmaker: SessionMaker, settings: Settings, attempt: throttle.Attempt, *, key: str
) -> SignIn:
    """A key whose digest matches always passes: keys cannot be guessed, so no counter
    (anyone else's failures included) stands in its way."""
    key_id = access_keys.parse_key_id(key) or ""
    pepper = settings.access_key_pepper.get_secret_value()
    async with session_scope(sessionmaker) as session:  # keeps last_used_at
        user = await get_user_by_name(session, attempt.user_name)
        row = await _key_row(session, key_id)
        matches = access_keys.key_matches(pepper, key, row.key_digest if row else _NO_DIGEST)
        problem = _key_problem(user, row, matches=matches)
        if not problem and user is not None and row is not None:
            _note_use(row)
            return SignIn(user=user, key_id=key_id)
    standing = await throttle.standing(sessionmaker, settings, attempt)
    raise await _fail(sessionmaker, settings, attempt, standing, reason=problem, is_password=False)


async def _load_user(sessionmaker: SessionMaker, user_name: str) -> User | None:
    async with sessionmaker() as session:
        return await get_user_by_name(session, user_name)


async def _with_password(
    sessionmaker: SessionMaker, settings: Settings, attempt: throttle.Attempt, *, password: str
) -> SignIn:
    standing = await throttle.standing(sessionmaker, settings, attempt)
    refusal = standing.refusal()
    if refusal is not None:  # before argon2: a throttled party costs one query
        throttled_by, wait = refusal
        _security_event("sign_in_refused", attempt, reason="throttled", throttled_by=throttled_by,
                        retry_after_seconds=wait)  # fmt: skip
        raise TooManyRequestsError(THROTTLED, retry_after_seconds=wait)
    delay = standing.backoff_seconds(settings)
    if delay:
        _security_event("sign_in_slowed", attempt, delay_seconds=delay)
        await asyncio.sleep(delay)
    # No database connection is held while argon2 runs (or waits for its turn).
    user = await _load_user(sessionmaker, attempt.user_name)
    is_valid = await passwords.check_password(password, user.password_hash if user else None)
    if user is not None and is_valid and user.state == UserState.enabled:
        await throttle.record_password_success(sessionmaker, attempt)
        return SignIn(user=user, key_id=None)
    reason = (
        "unknown_user" if user is None
        else "wrong_password" if not is_valid
        else "disabled_user"
    )  # fmt: skip
    raise await _fail(sessionmaker, settings, attempt, standing, reason=reason, is_password=True)


async def authenticate(
    sessionmaker: SessionMaker,
    settings: Settings,
    *,
    user_name: str,
    secret: str,
    client_ip: str | None,
    allow_password: bool = True,
) -> SignIn:
    """A user from a user name plus a password or access key; counts failed attempts.

    Each step uses its own short session, so a request never holds a pooled connection
    while it waits (for argon2, for a backoff): a flood cannot drain the pool."""
    attempt = throttle.Attempt(user_name=user_name, address=client_ip)
    if access_keys.parse_key_id(secret) is not None:
        return await _with_key(sessionmaker, settings, attempt, key=secret)
    if allow_password and _USER_NAME.match(user_name):
        return await _with_password(sessionmaker, settings, attempt, password=secret)
    # No user can have this name, or a password where only keys count: no argon2 needed.
    reason = "malformed_user_name" if allow_password else "password_not_accepted"
    standing = await throttle.standing(sessionmaker, settings, attempt)
    raise await _fail(sessionmaker, settings, attempt, standing, reason=reason, is_password=False)


async def user_for_token(session: AsyncSession, claims: TokenClaims) -> User | None:
    """The token's user while the token is still good: the user is enabled, nothing has
    bumped its token version, and the access key it came from (if any) is still active."""
    user = await get_user_by_name(session, claims.subject)
    if user is None or user.state != UserState.enabled or user.token_version != claims.version:
        return None
    if claims.key_id is not None:
        row = await _key_row(session, claims.key_id)
        if row is None or row.user_id != user.id or not _is_active(row):
            return None
    return user
