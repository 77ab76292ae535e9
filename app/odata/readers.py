"""How the service runs its (read-only) statements: async for PostgreSQL, inline for SQLite.

With aiosqlite every statement is a hand-off to its worker thread and back; measured in
bench/odata.py that hop, not SQLite, dominated a key lookup (docs/odata.md). An indexed
SQLite read takes tens of microseconds, less than the hop, so on SQLite the service reads
through a synchronous engine on the event loop thread. Page sizes are capped
(``ODATA_MAX_PAGE_SIZE``), which bounds how long one read can hold the loop. In WAL mode
readers never wait for writers. PostgreSQL (and in-memory SQLite, which cannot be shared
between engines) keep the async engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


class Reader:
    """Runs SELECTs; ``rows``/``first``/``scalar`` each use one statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.inline: Engine | None = _inline_engine(engine)

    async def rows(self, statement: Any) -> Sequence[Sequence[Any]]:
        if self.inline is not None:
            with self.inline.connect() as connection:
                found: Sequence[Sequence[Any]] = connection.execute(statement).all()
                return found
        async with self.engine.connect() as connection:
            result = await connection.execute(statement)
            rows: Sequence[Sequence[Any]] = result.all()
            return rows

    async def first(self, statement: Any) -> Sequence[Any] | None:
        rows = await self.rows(statement.limit(1))
        return rows[0] if rows else None

    async def scalar(self, statement: Any) -> Any:
        rows = await self.rows(statement)
        return rows[0][0]

    def dispose(self) -> None:
        if self.inline is not None:
            self.inline.dispose()


def _inline_engine(engine: AsyncEngine) -> Engine | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync_url = url.set(drivername="sqlite")
    inline = sa.create_engine(
        sync_url,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=4,
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
