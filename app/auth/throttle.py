"""Sign-in throttling: counters that slow guessing without locking anyone else out.

The rule: a correct credential is never refused because of other parties' failures.
Counters live in ``login_throttle`` (shared by every API process), one row per subject:

- ``pair:<name>|<address>``: failures for one user name from one address. At
  ``login_max_failures`` inside the window that pair is refused (429) until the window
  ends. Only that user from that address is affected.
- ``addr:<address>``: failures from one address, whatever the user name. At the limit the
  address may no longer try password sign-ins for names that never signed in from it
  (spraying); names with a ``seen`` row from there still may.
- ``user:<name>``: password failures for one user name from any address. Past the limit
  each password check for that name waits (1 s, doubling, at most
  ``login_backoff_max_seconds``): guessing is slowed, the user is never refused.
- ``seen:<name>|<address>``: the last successful password sign-in of that name from
  that address, kept ``SEEN_DAYS``.

Access keys are 256-bit random: a key whose digest matches always passes, whatever the
counters say; a wrong key counts as a failure like a wrong password.

Every subject is derived from the user name as typed, never from whether such a user
exists, so the counters (and the answers they lead to) are the same for known and
unknown names. Rows are written in their own transaction (the failed request's is rolled
back) with one upsert, and rows whose window has passed are deleted on the way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete, select

from app.clock import as_utc, utc_now
from app.db import SessionMaker, current_actor, session_scope
from app.models.security import LoginThrottle
from app.models.types import UTCDateTime
from app.settings import Settings

SEEN_DAYS = 30
NAME_CHARS = 100  # user names are at most 100 characters; longer input is cut
NO_ADDRESS = "unknown"
SOON = timedelta(seconds=1)


@dataclass(frozen=True)
class Attempt:
    """Who tries: the user name as typed and the client address."""

    user_name: str
    address: str | None

    @property
    def name(self) -> str:
        return self.user_name.lower()[:NAME_CHARS]

    @property
    def where(self) -> str:
        return (self.address or NO_ADDRESS)[:60]

    @property
    def pair(self) -> str:
        return f"pair:{self.name}|{self.where}"

    @property
    def addr(self) -> str:
        return f"addr:{self.where}"

    @property
    def user(self) -> str:
        return f"user:{self.name}"

    @property
    def seen(self) -> str:
        return f"seen:{self.name}|{self.where}"


@dataclass(frozen=True)
class Standing:
    """What the counters say about one attempt, read in one query."""

    pair_blocked_for: int  # seconds until the pair may try again; 0 = not blocked
    address_blocked_for: int
    has_signed_in_here: bool
    user_failures: int

    def refusal(self) -> tuple[str, int] | None:
        """(reason, Retry-After) when this party is throttled: a password check does not
        even start, and a failed key is answered 429 rather than 401."""
        if self.pair_blocked_for:
            return "user_at_address", self.pair_blocked_for
        if self.address_blocked_for and not self.has_signed_in_here:
            return "address", self.address_blocked_for
        return None

    def backoff_seconds(self, settings: Settings) -> float:
        excess = self.user_failures - settings.login_max_failures
        if excess < 0 or settings.login_backoff_max_seconds == 0:
            return 0.0
        return float(min(settings.login_backoff_max_seconds, 2 ** min(excess, 16)))


def _blocked_for(row: LoginThrottle | None, settings: Settings, now: datetime) -> int:
    if row is None or row.window_started_at is None:
        return 0
    ends = as_utc(row.window_started_at) + timedelta(seconds=settings.login_window_seconds)
    if row.failure_count < settings.login_max_failures or ends <= now:
        return 0
    return int((ends - now).total_seconds()) + 1


def _current_failures(row: LoginThrottle | None, settings: Settings, now: datetime) -> int:
    if row is None or row.window_started_at is None:
        return 0
    window = timedelta(seconds=settings.login_window_seconds)
    return row.failure_count if as_utc(row.window_started_at) + window > now else 0


async def standing(sessionmaker: SessionMaker, settings: Settings, attempt: Attempt) -> Standing:
    now = utc_now()
    subjects = [attempt.pair, attempt.addr, attempt.user, attempt.seen]
    async with sessionmaker() as session:
        found = await session.exec(
            select(LoginThrottle).where(col(LoginThrottle.subject).in_(subjects))
        )
        rows = {row.subject: row for row in found}
    seen = rows.get(attempt.seen)
    recent = now - timedelta(days=SEEN_DAYS)
    return Standing(
        pair_blocked_for=_blocked_for(rows.get(attempt.pair), settings, now),
        address_blocked_for=_blocked_for(rows.get(attempt.addr), settings, now),
        has_signed_in_here=bool(
            seen and seen.window_started_at and as_utc(seen.window_started_at) > recent
        ),
        user_failures=_current_failures(rows.get(attempt.user), settings, now),
    )


def _upsert(dialect: str, subjects: list[str], now: datetime, restart_before: datetime) -> Any:
    """Count one for each subject; a row whose window started before ``restart_before``
    starts a new window now (count 1)."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    actor = current_actor.get()
    rows = [
        {"subject": subject, "failure_count": 1, "window_started_at": now,
         "system_id": uuid.uuid4(), "created_at": now, "modified_at": now, "modified_by": actor}
        for subject in subjects
    ]  # fmt: skip
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(rows)
    expired = table.c.window_started_at < sa.literal(restart_before, UTCDateTime)
    return insert.on_conflict_do_update(
        index_elements=[table.c.subject],
        set_={
            "failure_count": sa.case((expired, 1), else_=table.c.failure_count + 1),
            "window_started_at": sa.case(
                (expired, sa.literal(now, UTCDateTime)), else_=table.c.window_started_at
            ),
            "modified_at": sa.literal(now, UTCDateTime),
        },
    )


def _expired(settings: Settings, now: datetime) -> Any:
    window_start = now - timedelta(seconds=settings.login_window_seconds)
    seen = col(LoginThrottle.subject).startswith("seen:")
    return sa.or_(
        sa.and_(~seen, col(LoginThrottle.window_started_at) < window_start),
        sa.and_(seen, col(LoginThrottle.window_started_at) < now - timedelta(days=SEEN_DAYS)),
    )


async def record_failure(
    sessionmaker: SessionMaker, settings: Settings, attempt: Attempt, *, is_password: bool
) -> None:
    """Count a failed sign-in; rows whose window has passed are purged in the same step."""
    now = utc_now()
    window_start = now - timedelta(seconds=settings.login_window_seconds)
    subjects = [attempt.pair, attempt.addr] + ([attempt.user] if is_password else [])
    async with session_scope(sessionmaker) as session:
        dialect = session.get_bind().dialect.name
        await session.exec(_upsert(dialect, subjects, now, window_start))
        await session.exec(delete(LoginThrottle).where(_expired(settings, now)))


async def record_password_success(sessionmaker: SessionMaker, attempt: Attempt) -> None:
    """The pair's failures are forgiven, and the name counts as known at this address."""
    now = utc_now()
    async with session_scope(sessionmaker) as session:
        await session.exec(delete(LoginThrottle).where(col(LoginThrottle.subject) == attempt.pair))
        dialect = session.get_bind().dialect.name
        # Always restarted: a seen row's "window" is the time of the latest sign-in.
        await session.exec(_upsert(dialect, [attempt.seen], now, restart_before=now + SOON))
