"""Engine, sessions and the data-layer hooks that keep the audit columns exact.

``system_id``, ``created_at``, ``modified_at`` and ``modified_by`` are set here, on every
flush, for every table that has them, so no endpoint or job can forget them: sync
watermarks and loop prevention depend on them. ``modified_by`` comes from the
``current_actor`` context variable that the request dependency or the job sets.
"""

from __future__ import annotations

import contextvars
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now

current_actor: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_actor", default="system"
)
# The actor of the sync's own writes: what the wake-ups and the nudges ignore.
SYNC_ACTOR = "salesbridge-sync"

SessionMaker = async_sessionmaker[AsyncSession]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if database_url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_async_engine(database_url, **kwargs)
    if database_url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@event.listens_for(Session, "before_flush")
def _stamp_audit_columns(session: Session, _context: Any, _instances: Any) -> None:
    now = utc_now()
    actor = current_actor.get()
    for obj in session.new:
        if hasattr(obj, "modified_at"):
            if getattr(obj, "created_at", None) is None:
                obj.created_at = now
            obj.modified_at = now
            obj.modified_by = actor
    for obj in session.dirty:
        if hasattr(obj, "modified_at") and session.is_modified(obj, include_collections=False):
            if _IMMUTABLE & _changed_keys(obj):
                msg = "system_id and created_at are immutable"
                raise ValueError(msg)
            obj.modified_at = now
            obj.modified_by = actor


_IMMUTABLE = frozenset({"system_id", "created_at"})


def _changed_keys(obj: Any) -> set[str]:
    return {attr.key for attr in inspect(obj).attrs if attr.history.has_changes()}


def engine_is_sqlite(engine: AsyncEngine | Engine) -> bool:
    return engine.dialect.name == "sqlite"


async def lock_until_commit(session: AsyncSession, name: str, *, table: type[Any]) -> None:
    """Serialize writers on ``name`` until this transaction ends.

    Check-then-write code (the next number of a series, "refuse if already queued") is only
    correct when no other transaction can do the same check in between.

    - PostgreSQL: ``pg_advisory_xact_lock`` on a key derived from ``name``.
    - SQLite: a write statement on ``table`` that changes nothing takes the database's single
      write lock (SQLite's ``BEGIN`` is deferred, so a plain read would not), with the same
      effect for every name.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"salesbridge:{name}".encode())
        await session.exec(select(func.pg_advisory_xact_lock(key)))
        return
    connection = await session.connection()
    no_op = f'UPDATE "{table.__tablename__}" SET id = id WHERE 1 = 0'  # noqa: S608 - our table
    await connection.execute(text(no_op))
