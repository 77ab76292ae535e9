"""How the service runs its (read-only) statements: a pool of its own on PostgreSQL, inline
on SQLite.

Statements arrive compiled (``app.odata.statements``): SQL text plus positional values, run
at the DBAPI level, so no SQLAlchemy statement is built or cache-keyed per request. Rows
come back as the driver's plain tuples; ``app.odata.serialize`` turns driver values into
JSON values.

With aiosqlite every statement is a hand-off to its worker thread and back; measured in
bench/odata.py that hop, not SQLite, dominated a key lookup (docs/odata.md). An indexed
SQLite read takes tens of microseconds, less than the hop, so on SQLite the service reads
through one synchronous ``sqlite3`` connection on the event loop thread (``query_only``).
A statement runs to completion (``fetchall``) before the loop moves on, so one connection
serves every request; page sizes are capped (``ODATA_MAX_PAGE_SIZE``), which bounds how long
one read holds the loop. In WAL mode readers never wait for writers, and each SELECT sees
the latest commit.

On PostgreSQL the statements go to an asyncpg pool of the reader's own (opened on first
use, with the connection arguments SQLAlchemy's dialect derives from the database URL):
through the async engine each read cost a pool checkout with a pre-ping round trip and
SQLAlchemy's greenlet hand-off, measured as the larger part of a key lookup. The SQL and its
parameters are already in asyncpg's form (``$n`` placeholders, values through the
dialect's bind processors). In-memory SQLite, which cannot be shared between engines, keeps
the async engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from app.odata.statements import Prepared

Rows = Sequence[Sequence[Any]]
POOL_SIZE = 10
# Options SQLAlchemy's asyncpg adapter takes itself; asyncpg.create_pool does not know them.
_SQLALCHEMY_CONNECT_OPTIONS = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
    "async_creator_fn",
)


class Reader:
    """Runs prepared SELECTs and returns the driver's rows."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self.inline: Engine | None = _inline_engine(engine)
        self._raw: Any = None  # the inline engine's one DBAPI connection, opened on first use
        self._pool: Any = None  # PostgreSQL: the asyncpg pool, opened on first use
        self._pool_lock = asyncio.Lock()

    async def rows(self, prepared: Prepared, params: tuple[Any, ...]) -> Rows:
        if self.inline is not None:
            return self._inline_rows(prepared.sql, params)
        if self.dialect.name == "postgresql" and self.dialect.driver == "asyncpg":
            return await self._pooled_rows(prepared.sql, params)
        async with self.engine.connect() as connection:
            result = await connection.exec_driver_sql(prepared.sql, params)
            return [tuple(row) for row in result]  # plain tuples, as sqlite3 gives

    def _inline_rows(self, sql: str, params: tuple[Any, ...]) -> Rows:
        if self._raw is None:
            assert self.inline is not None  # noqa: S101 - only called on the inline path
            self._raw = self.inline.raw_connection()
        try:
            rows: Rows = self._raw.driver_connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:  # the same exception classes the async path raises
            raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
        return rows

    async def _pooled_rows(self, sql: str, params: tuple[Any, ...]) -> Rows:
        import asyncpg  # type: ignore[import-untyped]

        pool = self._pool or await self._open_pool()
        try:
            records = await pool.fetch(sql, *params)
        except asyncpg.PostgresError as exc:  # the classes SQLAlchemy would have raised
            if isinstance(exc, asyncpg.DataError):
                raise sa.exc.DataError(sql, params, exc) from exc
            if isinstance(exc, asyncpg.exceptions.SyntaxOrAccessError):
                raise sa.exc.ProgrammingError(sql, params, exc) from exc
            raise sa.exc.DBAPIError(sql, params, exc) from exc
        rows: Rows = records  # asyncpg's records index and slice like sqlite3's tuples
        return rows

    async def _open_pool(self) -> Any:
        import asyncpg

        async with self._pool_lock:
            if self._pool is None:
                args, kwargs = self.dialect.create_connect_args(self.engine.url)
                for adapter_only in _SQLALCHEMY_CONNECT_OPTIONS:
                    kwargs.pop(adapter_only, None)
                settings = kwargs.setdefault("server_settings", {})
                settings["DateStyle"] = "ISO, MDY"  # timestamps as text: sql_constructs
                self._pool = await asyncpg.create_pool(
                    *args, min_size=1, max_size=POOL_SIZE, reset=_nothing_to_reset, **kwargs
                )
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        self.dispose()

    async def scalar(self, prepared: Prepared, params: tuple[Any, ...]) -> Any:
        rows = await self.rows(prepared, params)
        return rows[0][0]

    def dispose(self) -> None:
        if self._pool is not None:  # outside the loop: no waiting for queries to finish
            pool, self._pool = self._pool, None
            pool.terminate()
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self.inline is not None:
            self.inline.dispose()


async def _nothing_to_reset(_connection: Any) -> None:
    """Our single SELECTs leave no session state behind; asyncpg's default reset would send
    ``RESET ALL``, ``UNLISTEN *``, ... on every release: a second round trip per read."""


def _inline_engine(engine: AsyncEngine) -> Engine | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync_url = url.set(drivername="sqlite")
    inline = sa.create_engine(
        sync_url,
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    sa.event.listen(inline, "connect", _read_pragmas)
    return inline


def _read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # this engine only ever reads
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def reader_for(state: Any) -> Reader:
    """The app's reader, created on first use for the app's engine."""
    reader: Reader | None = getattr(state, "odata_reader", None)
    if reader is None or reader.engine is not state.engine:
        if reader is not None:
            reader.dispose()
        reader = Reader(state.engine)
        state.odata_reader = reader
    return reader
