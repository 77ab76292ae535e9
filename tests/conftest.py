"""Suite-wide fixtures: real databases (SQLite and PostgreSQL), real Redis, the real app.

Each database is migrated with Alembic once per run; each test starts from empty tables
(a TRUNCATE / DELETE of every table), so tests may commit, run workers in other
processes and race each other, and still never see another test's rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import app.models.all_tables  # noqa: F401 - every table registered
from app.db import SessionMaker, create_engine, create_sessionmaker
from app.main import create_app
from app.migrations import upgrade_database
from app.settings import Settings
from tests.fixtures import services

pytest_plugins: list[str] = ["tests.fixtures.sandbox"]

_configure_structlog = structlog.configure


def _configure_without_logger_cache(**settings: object) -> None:
    # The CLI tests run commands in this process, and those configure logging with
    # cache_logger_on_first_use: a logger used once would then keep its processors, and
    # structlog.testing.capture_logs in a later test would see nothing.
    _configure_structlog(**{**settings, "cache_logger_on_first_use": False})  # type: ignore[arg-type]


structlog.configure = _configure_without_logger_cache


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Commands run in this process (typer's runner) configure logging onto a stream that
    is closed after the test; later tests must not inherit that handler."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers, root.level = saved


_POSTGRES_URL = services.postgres_url()
BACKENDS = ["sqlite", "postgres"] if _POSTGRES_URL else ["sqlite"]


def pytest_report_header() -> str:
    return f"salesbridge database backends: {', '.join(BACKENDS)}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from services.redis_url()


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("salesbridge")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, session_tmp: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{session_tmp / 'test.db'}"
        asyncio.run(upgrade_database(url))
        yield url
        return
    assert _POSTGRES_URL is not None
    url = asyncio.run(services.create_run_database(_POSTGRES_URL))
    asyncio.run(upgrade_database(url))
    yield url
    asyncio.run(services.drop_run_database(_POSTGRES_URL, url))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table, children first.

    One DELETE script rather than TRUNCATE: on PostgreSQL, TRUNCATE of ~35 small tables
    costs about a second (file work per table), DELETE of nearly empty ones a few ms.
    """
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    script = "; ".join(f'DELETE FROM "{name}"' for name in tables)  # noqa: S608
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute(script)  # type: ignore[union-attr]
        else:
            for name in tables:
                await connection.execute(text(f'DELETE FROM "{name}"'))  # noqa: S608


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> SessionMaker:
    await truncate_all(engine)
    return create_sessionmaker(engine)


@pytest.fixture
async def session(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """A session for arranging and checking data; commit yourself before calling the app."""
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        login_max_failures=5,
        # The sandbox CRM listens on 127.0.0.1, which the service refuses to connect to by
        # default; tests of that rule (tests/connection/test_outbound_addresses.py) turn
        # it off again.
        allow_private_crm_addresses=True,
    )


@pytest.fixture
async def app(settings: Settings, sessionmaker: SessionMaker) -> AsyncIterator[FastAPI]:
    application = create_app(settings, should_migrate=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
