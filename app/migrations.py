"""Apply Alembic migrations: on app start and from ``salesbridge db upgrade``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.file_modes import make_private_sqlite

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


async def upgrade_engine(engine: AsyncEngine, *, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))

    def _upgrade(connection: object) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def upgrade_database(database_url: str, *, revision: str = "head") -> None:
    make_private_sqlite(database_url)  # a new SQLite file: 0600 in a 0700 directory
    engine = create_engine(database_url)
    try:
        await upgrade_engine(engine, revision=revision)
    finally:
        await engine.dispose()


def upgrade_database_sync(database_url: str) -> None:
    asyncio.run(upgrade_database(database_url))
