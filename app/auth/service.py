"""Who is calling: users by password, web service access key or token."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys, passwords, throttle
from app.clock import as_utc, utc_now
from app.db import SessionMaker
from app.errors import UnauthorizedError
from app.models.security import User, UserState, WebServiceAccessKey
from app.settings import Settings

BAD_CREDENTIALS = "Incorrect user name, password or access key."


async def get_user_by_name(session: AsyncSession, user_name: str) -> User | None:
    return (await session.exec(select(User).where(User.user_name == user_name))).first()


async def _key_belongs_to(
    session: AsyncSession, settings: Settings, *, user: User, key: str
) -> bool:
    key_id = access_keys.parse_key_id(key)
    if key_id is None:
        return False
    row = (
        await session.exec(
            select(WebServiceAccessKey).where(
                WebServiceAccessKey.key_id == key_id, WebServiceAccessKey.user_id == user.id
            )
        )
    ).first()
    if row is None or row.revoked_at is not None:
        return False
    if row.expires_at is not None and as_utc(row.expires_at) <= utc_now():
        return False
    pepper = settings.access_key_pepper.get_secret_value()
    if not access_keys.key_matches(pepper, key, row.key_digest):
        return False
    now = utc_now()
    # Written at most once a minute: a write per OData request would cost more than the read.
    if row.last_used_at is None or (now - as_utc(row.last_used_at)).total_seconds() > 60:
        row.last_used_at = now
    return True


async def authenticate(
    session: AsyncSession,
    sessionmaker: SessionMaker,
    settings: Settings,
    *,
    user_name: str,
    secret: str,
    client_ip: str | None,
    allow_password: bool = True,
) -> User:
    """A user from a user name plus a password or access key; throttles repeated failures."""
    subjects = throttle.subjects_for(user_name, client_ip)
    await throttle.raise_if_throttled(sessionmaker, subjects)
    user = await get_user_by_name(session, user_name)
    is_valid = False
    if user is not None and user.state == UserState.enabled:
        if access_keys.parse_key_id(secret) is not None:
            is_valid = await _key_belongs_to(session, settings, user=user, key=secret)
        elif allow_password:
            is_valid = passwords.verify_password(secret, user.password_hash)
    elif allow_password:
        passwords.verify_password(secret, None)  # equal time for unknown users
    if user is None or not is_valid:
        await throttle.record_failure(sessionmaker, settings, subjects)
        raise UnauthorizedError(BAD_CREDENTIALS)
    return user
