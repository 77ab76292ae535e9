"""Apply Alembic migrations: on app start and from ``salesbridge db upgrade``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine

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

    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    # SQLite alters a column by rebuilding its table (Alembic's batch mode), and dropping a
    # table that other rows reference fails while foreign keys are enforced; the pragma is
    # ignored inside a transaction, so it is switched off around it and the references are
    # checked before the commit instead.
    async with engine.connect() as connection:
        await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.commit()
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade)
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    msg = f"the migration left rows with broken references: {broken[:5]}"
                    raise RuntimeError(msg)
        finally:
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            await connection.commit()


async def upgrade_database(database_url: str, *, revision: str = "head") -> None:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    try:
        await upgrade_engine(engine, revision=revision)
    finally:
        await engine.dispose()


def upgrade_database_sync(database_url: str) -> None:
    asyncio.run(upgrade_database(database_url))
