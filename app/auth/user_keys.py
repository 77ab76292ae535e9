"""Web service access keys per user (BC: "web service access key", "change web service key").

A key is returned in plaintext exactly once, by ``create_key`` or ``rotate_key``; the
database keeps only its public id and an HMAC-SHA256 digest under the pepper (see
``app.auth.access_keys``). Functions flush and never commit: ``rotate_key`` therefore
revokes the old keys and issues the new one in the caller's single transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys
from app.auth.users import get_user_or_raise
from app.clock import utc_now
from app.errors import InvalidInputError
from app.logs import get_logger
from app.models.security import User, WebServiceAccessKey
from app.settings import Settings

log = get_logger("salesbridge.user_keys")


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        msg = "The key expiration date needs a time zone (for example 2030-01-31T00:00:00Z)."
        raise InvalidInputError(msg)
    if expires_at <= utc_now():
        msg = "The key expiration date must be in the future."
        raise InvalidInputError(msg)
    return expires_at


async def _issue(
    session: AsyncSession, settings: Settings, *, user: User, expires_at: datetime | None
) -> tuple[WebServiceAccessKey, str]:
    assert user.id is not None  # noqa: S101 - a loaded user always has its primary key
    issued = access_keys.issue_key(settings.access_key_pepper.get_secret_value())
    row = WebServiceAccessKey(
        user_id=user.id, key_id=issued.key_id, key_digest=issued.digest, expires_at=expires_at
    )
    session.add(row)
    await session.flush()
    log.info("access_key_issued", user_name=user.user_name, expires_at=expires_at)
    return row, issued.key


async def create_key(
    session: AsyncSession, settings: Settings, *, user_name: str, expires_at: datetime | None = None
) -> tuple[WebServiceAccessKey, str]:
    """A new key for the user next to any existing ones; the plaintext is returned once."""
    expiry = _check_expiry(expires_at)
    user = await get_user_or_raise(session, user_name=user_name)
    return await _issue(session, settings, user=user, expires_at=expiry)


async def _revoke_active(session: AsyncSession, user: User) -> int:
    now = utc_now()
    rows = await session.exec(
        select(WebServiceAccessKey).where(
            WebServiceAccessKey.user_id == user.id, col(WebServiceAccessKey.revoked_at).is_(None)
        )
    )
    revoked = 0
    for row in rows:
        row.revoked_at = now
        session.add(row)
        revoked += 1
    await session.flush()
    return revoked


async def revoke_keys(session: AsyncSession, *, user_name: str) -> int:
    """Revoke every key of the user that is not revoked yet; returns how many."""
    user = await get_user_or_raise(session, user_name=user_name)
    revoked = await _revoke_active(session, user)
    log.info("access_keys_revoked", user_name=user.user_name, count=revoked)
    return revoked


async def rotate_key(
    session: AsyncSession, settings: Settings, *, user_name: str, expires_at: datetime | None = None
) -> tuple[WebServiceAccessKey, str]:
    """BC's "change web service key": revoke the user's keys and issue one new key."""
    expiry = _check_expiry(expires_at)
    user = await get_user_or_raise(session, user_name=user_name)
    revoked = await _revoke_active(session, user)
    log.info("access_keys_revoked", user_name=user.user_name, count=revoked)
    return await _issue(session, settings, user=user, expires_at=expiry)


async def list_keys(session: AsyncSession, *, user_name: str) -> list[WebServiceAccessKey]:
    user = await get_user_or_raise(session, user_name=user_name)
    statement = (
        select(WebServiceAccessKey)
        .where(WebServiceAccessKey.user_id == user.id)
        .order_by(col(WebServiceAccessKey.created_at), col(WebServiceAccessKey.id))
    )
    return list(await session.exec(statement))
