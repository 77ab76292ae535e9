"""Web console sessions: opened by a password sign-in, ended by sign-out or expiry.

The browser keeps a random token (in a signed cookie, ``app.web.cookies``); the database
keeps only its SHA-256, the user, when it was last used (idle expiry) and when it ends
regardless (absolute expiry). A session also remembers the user's token version when it
was opened: what ends bearer tokens (a password change or reset, a role taken away,
disabling the user: ``app.auth.users``) bumps that version, and every session opened
before it stops working at its next request, exactly like the tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.models.security import ConsoleSession, User, UserState
from app.settings import Settings

# Idle time is measured from the last write of last_seen_at: at most one write a minute.
TOUCH_EVERY_SECONDS = 60


def credential_fingerprint(user: User) -> str:
    """What a session is tied to: the user and its token version, the one record of "the
    credential changed" that bearer tokens are checked against too (``user_for_token``)."""
    return hashlib.sha256(f"{user.id}:{user.token_version}".encode()).hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ActiveSession:
    token: str
    user: User


async def open_session(session: AsyncSession, settings: Settings, *, user: User) -> str:
    """A new session for a signed-in user; returns its token (for the cookie only)."""
    now = utc_now()
    await session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= now))
    token = secrets.token_urlsafe(32)
    assert user.id is not None  # noqa: S101 - a signed-in user is a stored row
    session.add(
        ConsoleSession(
            token_digest=_digest(token),
            user_id=user.id,
            credential=credential_fingerprint(user),
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.console_session_hours),
        )
    )
    await session.flush()
    return token


def _is_current(row: ConsoleSession, user: User, settings: Settings) -> bool:
    now = utc_now()
    idle = timedelta(minutes=settings.console_idle_minutes)
    return (
        as_utc(row.expires_at) > now
        and as_utc(row.last_seen_at) + idle > now
        and user.state == UserState.enabled
        and secrets.compare_digest(row.credential, credential_fingerprint(user))
    )


async def resume_session(
    session: AsyncSession, settings: Settings, *, token: str
) -> ActiveSession | None:
    """The session's user, or None (unknown, expired, or its credential changed: ended)."""
    statement = (
        select(ConsoleSession, User)
        .join(User, col(User.id) == col(ConsoleSession.user_id))
        .where(ConsoleSession.token_digest == _digest(token))
    )
    found = (await session.exec(statement)).first()
    if found is None:
        return None
    row, user = found
    if not _is_current(row, user, settings):
        await session.delete(row)
        await session.flush()
        return None
    now = utc_now()
    if (now - as_utc(row.last_seen_at)).total_seconds() >= TOUCH_EVERY_SECONDS:
        row.last_seen_at = now
        session.add(row)
        await session.flush()
    return ActiveSession(token=token, user=user)


async def end_session(session: AsyncSession, *, token: str) -> None:
    digest = col(ConsoleSession.token_digest) == _digest(token)
    await session.exec(delete(ConsoleSession).where(digest))
