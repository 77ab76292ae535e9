"""Failed-login throttling per user name and per client address.

Counts live in the database (``login_throttle``) so every API process sees them, and are
written in their own transaction: the failed request itself is rolled back. After
``login_max_failures`` failures inside ``login_window_seconds`` the subject is refused with
429 + Retry-After until the window has passed; a success clears the user's counter, so the
real user is never locked out for longer than one window.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, delete, select

from app.clock import as_utc, utc_now
from app.db import SessionMaker, session_scope
from app.errors import TooManyRequestsError
from app.models.security import LoginThrottle
from app.settings import Settings


def subjects_for(user_name: str, client_ip: str | None) -> list[str]:
    subjects = [f"user:{user_name.lower()[:150]}"]
    if client_ip:
        subjects.append(f"ip:{client_ip}")
    return subjects


async def raise_if_throttled(sessionmaker: SessionMaker, subjects: list[str]) -> None:
    now = utc_now()
    async with sessionmaker() as session:
        rows = await session.exec(
            select(LoginThrottle).where(col(LoginThrottle.subject).in_(subjects))
        )
        for row in rows:
            if row.blocked_until is not None and as_utc(row.blocked_until) > now:
                wait = int((as_utc(row.blocked_until) - now).total_seconds()) + 1
                msg = "Too many failed sign-in attempts. Try again later."
                raise TooManyRequestsError(msg, retry_after_seconds=wait)


async def record_failure(
    sessionmaker: SessionMaker, settings: Settings, subjects: list[str]
) -> None:
    now = utc_now()
    window = timedelta(seconds=settings.login_window_seconds)
    async with session_scope(sessionmaker) as session:
        for subject in subjects:
            row = (
                await session.exec(select(LoginThrottle).where(LoginThrottle.subject == subject))
            ).first()
            if row is None:
                row = LoginThrottle(subject=subject, window_started_at=now)
                session.add(row)
            elif row.window_started_at is None or as_utc(row.window_started_at) + window < now:
                row.failure_count = 0
                row.window_started_at = now
                row.blocked_until = None
            row.failure_count += 1
            if row.failure_count >= settings.login_max_failures:
                row.blocked_until = now + window


async def clear_failures(sessionmaker: SessionMaker, user_name: str) -> None:
    async with session_scope(sessionmaker) as session:
        await session.exec(
            delete(LoginThrottle).where(
                col(LoginThrottle.subject) == f"user:{user_name.lower()[:150]}"
            )
        )
