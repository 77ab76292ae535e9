"""What every command shares: messages on stderr, one clear line per known error, a session.

Imports stay inside the functions: ``salesbridge --help`` and the quick commands must not
pay for the ORM, the web framework or the sync engine (docs/decisions.md, "CLI start-up").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from app.settings import Settings

T = TypeVar("T")


def say(message: str) -> None:
    typer.echo(message, err=True)


def fail(message: str) -> NoReturn:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 key``, ``2 keys``, ``1 currency``, ``3 currencies``."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {plural_form or singular + 's'}"


def configure(settings: Settings) -> None:
    import logging

    from app.logs import configure_logging

    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if logging.getLogger().level > logging.DEBUG:
        # Alembic's per-step notes and arq's line per tick drown what matters; our own
        # log lines say what ran.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("arq.worker").setLevel(logging.WARNING)


def settings() -> Settings:
    from app.settings import get_settings

    return get_settings()


def guarded(call: Callable[[], T]) -> T:
    """Call; known errors become one clear line and exit code 1."""
    import sys

    from sqlalchemy.exc import DBAPIError

    from app.command_lines import command_line
    from app.errors import SalesbridgeError

    try:
        return call()
    except SalesbridgeError as exc:
        fail(str(exc))
    except DBAPIError as exc:
        fail(f"{exc.orig} (is the schema up to date? run `{command_line('db upgrade')}`)")
    except RuntimeError as exc:
        # Only commands that start Redis import it (psutil and redis cost a quarter second).
        embedded = sys.modules.get("app.embedded_redis")
        if embedded is not None and isinstance(exc, embedded.EmbeddedRedisError):
            fail(str(exc))
        raise


def run_server_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process's loop (serve, worker) on uvloop when it is installed, as
    ``uvicorn.run`` would. ``asyncio.run`` takes the standard loop, on which an OData key
    lookup served by ``serve`` cost about twice what it cost under ``uvicorn.run``
    (docs/odata.md)."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; a plain install runs the standard loop
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coroutine)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known errors become one clear line and exit code 1."""
    import asyncio

    return guarded(lambda: asyncio.run(coroutine))


@contextlib.asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One committed unit of work against the configured database."""
    from app.db import create_engine, create_sessionmaker, session_scope

    engine = create_engine(settings.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def upgrade_or_fail(settings: Settings, *, for_server: bool = False) -> None:
    """Apply the migrations; an unreachable or broken database is one clear line.

    Before anything opens it, the data dir is made 0700 and a SQLite database 0600.
    ``for_server``: only when the schema is behind, and in a child process, so the server
    that follows never loads Alembic (its memory stays what serving needs)."""
    import subprocess

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from app.file_modes import make_data_files_private
    from app.migrations import schema_is_current, upgrade_database_sync, upgrade_in_child_process

    try:
        make_data_files_private(settings.data_dir, settings.database_url)
        if not for_server:
            upgrade_database_sync(settings.database_url)
        elif not schema_is_current(settings.database_url):
            upgrade_in_child_process(settings.database_url)
    except (DBAPIError, OSError, subprocess.CalledProcessError) as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        fail(f"Could not upgrade the database {where}: {exc}")
