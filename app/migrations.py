"""Apply Alembic migrations: on app start and from ``salesbridge db upgrade``.

Alembic (and Mako, and every migration) is imported only to migrate. ``salesbridge serve``
asks ``schema_is_current`` first, from the ``alembic_version`` row and the revision ids in
the version files' text, and migrates in a child process when it is not (``python -m
app.migrations``), so the long-running server never holds Alembic in memory.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.file_modes import make_private_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "migrations" / "versions"
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


async def upgrade_engine(engine: AsyncEngine, *, revision: str = "head") -> None:
    from alembic import command

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
    make_private_sqlite(database_url)  # a new SQLite file: 0600 in a 0700 directory
    engine = create_engine(database_url)
    try:
        await upgrade_engine(engine, revision=revision)
    finally:
        await engine.dispose()


def upgrade_database_sync(database_url: str) -> None:
    asyncio.run(upgrade_database(database_url))


def head_revisions() -> frozenset[str]:
    """The revisions no other revision builds on, from the version files' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text()
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents)


async def current_revisions(database_url: str) -> frozenset[str]:
    """What ``alembic_version`` holds; empty for a database never migrated."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(str(row[0]) for row in rows)
    except DBAPIError:
        return frozenset()  # no such table (a new database) or no database file yet
    finally:
        await engine.dispose()


def schema_is_current(database_url: str) -> bool:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return False
    return asyncio.run(current_revisions(database_url)) == head_revisions()


def upgrade_in_child_process(database_url: str) -> None:
    """``upgrade_database`` in a fresh interpreter (its memory goes when it ends);
    ``subprocess.CalledProcessError`` if it fails (its output went to stderr)."""
    environment = {**os.environ, "SALESBRIDGE_DATABASE_URL": database_url}
    subprocess.run(  # noqa: S603 - this interpreter, this module, no shell
        [sys.executable, "-m", "app.migrations"], env=environment, check=True
    )


if __name__ == "__main__":
    upgrade_database_sync(os.environ["SALESBRIDGE_DATABASE_URL"])
