"""``salesbridge``: serve, worker, sandbox, init, db, user and key commands.

Secrets a command creates (passwords, access keys) go to stdout alone, so scripts can
capture them; everything said to people goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import user_keys, users
from app.clock import utc_now
from app.db import create_engine, create_sessionmaker, session_scope
from app.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_running
from app.errors import ConflictError, SalesbridgeError
from app.logs import configure_logging
from app.migrations import schema_is_current, upgrade_database_sync, upgrade_in_child_process
from app.models.security import Role
from app.settings import Settings, get_settings

T = TypeVar("T")

cli = typer.Typer(
    name="salesbridge",
    help="Salesbridge: ERP <-> Dynamics 365 Sales bridge (API, job queue workers, sandbox).",
    no_args_is_help=True,
    add_completion=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
user_cli = typer.Typer(help="Users and their roles.", no_args_is_help=True)
key_cli = typer.Typer(help="Web service access keys (shown once).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
cli.add_typer(key_cli, name="key")
sync_cli = typer.Typer(help="Synchronization with Dynamics 365 Sales.", no_args_is_help=True)
cli.add_typer(sync_cli, name="sync")

FIRST_ADMIN = "admin"
SANDBOX_PORT = 8100
DEMO_HINT = (
    "New here? `salesbridge demo` (or `bin/serve demo`) runs the service beside a sandbox CRM "
    "with a sample company and a first full sync; see docs/demo.md.\n"
)


def main() -> None:
    cli()


@cli.callback()
def _before_any_command() -> None:
    # Log lines go to stderr in the configured format, never into a secret on stdout.
    configure(get_settings())


def configure(settings: Settings) -> None:
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if logging.getLogger().level > logging.DEBUG:
        # Alembic's per-step notes and arq's line per tick drown what matters; our own
        # log lines say what ran.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("arq.worker").setLevel(logging.WARNING)


def say(message: str) -> None:
    typer.echo(message, err=True)


def fail(message: str) -> NoReturn:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known errors become one clear line and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except (SalesbridgeError, EmbeddedRedisError) as exc:
        fail(str(exc))
    except DBAPIError as exc:
        fail(f"{exc.orig} (is the schema up to date? run `salesbridge db upgrade`)")


@contextlib.asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One committed unit of work against the configured database."""
    engine = create_engine(settings.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def upgrade_or_fail(settings: Settings, *, for_server: bool = False) -> None:
    """Apply the migrations; an unreachable or broken database is one clear line.

    ``for_server``: only when the schema is behind, and in a child process, so the server
    that follows never loads Alembic (its memory stays what serving needs)."""
    try:
        if not for_server:
            upgrade_database_sync(settings.database_url)
        elif not schema_is_current(settings.database_url):
            upgrade_in_child_process(settings.database_url)
    except (DBAPIError, OSError, subprocess.CalledProcessError) as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        fail(f"Could not upgrade the database {where}: {exc}")


def new_password() -> str:
    return secrets.token_urlsafe(18)


# --- first user ---------------------------------------------------------------------------


async def create_first_admin(settings: Settings, *, user_name: str = FIRST_ADMIN) -> str | None:
    """The first integration-admin with a generated password, or None when users exist."""
    password = new_password()
    try:
        async with open_session(settings) as session:
            if await users.count_users(session) > 0:
                return None
            await users.create_user(
                session, user_name=user_name, roles=[Role.integration_admin], password=password
            )
    except (ConflictError, IntegrityError):
        return None  # another process created the first user at the same moment
    return password


def announce_first_admin(settings: Settings, user_name: str, password: str) -> None:
    say(
        f"\nCreated the first user '{user_name}' (integration-admin). Its password, shown "
        f"only now:\n\n    {password}\n\nSign in: POST {settings.public_url}/api/v1/auth/token "
        f"(form fields username, password). Lost it? `salesbridge user reset-password "
        f"{user_name}`.\n"
    )


@cli.command()
def init(
    user_name: Annotated[str, typer.Option(help="Name of the first user.")] = FIRST_ADMIN,
) -> None:
    """Create the database and the first integration-admin (only when no user exists)."""
    settings = get_settings()
    upgrade_or_fail(settings)
    password = run(create_first_admin(settings, user_name=user_name))
    if password is None:
        fail("Salesbridge has users already; add more with `salesbridge user create`.")
    say(f"Created user '{user_name}' (integration-admin). Its password, shown only now:")
    typer.echo(password)


# --- serve / worker / sandbox --------------------------------------------------------------


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signal.SIGTERM)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """The API, one job queue worker and (without SALESBRIDGE_REDIS_URL) an embedded Redis."""
    from app.service import run_service

    if (ssl_certfile is None) != (ssl_keyfile is None):
        fail("Give both --ssl-certfile and --ssl-keyfile, or neither.")
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    configure(settings)
    # Until uvicorn takes the signals over, SIGTERM unwinds like Ctrl-C (Redis is stopped).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    upgrade_or_fail(settings, for_server=True)
    password = run(create_first_admin(settings))
    if password is not None:
        announce_first_admin(settings, FIRST_ADMIN, password)
        say(DEMO_HINT)
    with contextlib.ExitStack() as stack:
        settings = with_embedded_redis(stack, settings)
        asyncio.run(run_service(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile))


def with_embedded_redis(stack: contextlib.ExitStack, settings: Settings) -> Settings:
    """Without SALESBRIDGE_REDIS_URL: start the embedded Redis (stopped with ``stack``)."""
    if not settings.uses_embedded_redis:
        return settings
    try:
        embedded = stack.enter_context(EmbeddedRedis(settings.data_dir))
    except EmbeddedRedisError as exc:
        fail(str(exc))
    return settings.model_copy(update={"redis_url": embedded.url})


@cli.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address of the service [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the service [8000].")] = None,
    sandbox_port: Annotated[int, typer.Option(help="Port of the sandbox CRM.")] = SANDBOX_PORT,
    *,
    sandbox_memory: Annotated[
        bool, typer.Option("--sandbox-memory", help="Keep the sandbox CRM's data in memory only.")
    ] = False,
) -> None:
    """Try it: serve beside a sandbox CRM with a sample company and a first full sync."""
    from app.demo.run import DemoOptions, demo_settings, run_demo

    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = demo_settings(
        Settings(**{name: value for name, value in overrides.items() if value is not None})
    )
    configure(settings)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # as in serve: unwind, stop Redis
    upgrade_or_fail(settings)
    password = run(create_first_admin(settings))
    if password is not None:
        announce_first_admin(settings, FIRST_ADMIN, password)
    sandbox_db = None if sandbox_memory else settings.data_dir / "sandbox.db"
    with contextlib.ExitStack() as stack:
        settings = with_embedded_redis(stack, settings)
        run(run_demo(settings, DemoOptions(sandbox_port=sandbox_port, sandbox_db=sandbox_db)))


@cli.command()
def worker() -> None:
    """One job queue worker (SALESBRIDGE_REDIS_URL, or the embedded Redis of a running serve)."""
    from workers.settings import run_worker

    settings = get_settings()
    if not settings.redis_url:
        url = find_running(settings.data_dir)
        if url is None:
            fail(
                "No Redis: set SALESBRIDGE_REDIS_URL, or start `salesbridge serve` with the same "
                "SALESBRIDGE_DATA_DIR first (the worker then uses its embedded Redis)."
            )
        settings = settings.model_copy(update={"redis_url": url})
    asyncio.run(run_worker(settings))


@cli.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = SANDBOX_PORT,
    db: Annotated[Path | None, typer.Option(help="SQLite file for the sandbox's data.")] = None,
    *,
    memory: Annotated[bool, typer.Option("--memory", help="Keep the data in memory only.")] = False,
) -> None:
    """A Dataverse-compatible sandbox server (stands in for Dynamics 365 Sales)."""
    from app.sandbox.server import serve as serve_sandbox

    if memory and db is not None:
        fail("Give --db or --memory, not both.")
    settings = get_settings()
    db_path = None if memory else (db or settings.data_dir / "sandbox.db")
    serve_sandbox(host=host, port=port, db_path=db_path)


# --- db ------------------------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database on first use)."""
    upgrade_or_fail(get_settings())
    say("The database schema is up to date.")


# --- users ---------------------------------------------------------------------------------

RolesOption = Annotated[
    list[Role], typer.Option("--role", help="A role (repeat for several).", show_default=False)
]


@user_cli.command("create")
def user_create(
    user_name: Annotated[str, typer.Argument(help="The user name.")],
    roles: RolesOption,
    full_name: Annotated[str, typer.Option(help="Full name.")] = "",
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    *,
    key_only: Annotated[
        bool, typer.Option("--key-only", help="No password: sign in with access keys only.")
    ] = False,
) -> None:
    """Create a user; prints a generated password once (unless --key-only)."""
    password = None if key_only else new_password()

    async def create() -> None:
        async with open_session(get_settings()) as session:
            await users.create_user(
                session,
                user_name=user_name,
                roles=roles,
                password=password,
                full_name=full_name,
                email=email,
            )

    run(create())
    roles_text = ", ".join(role.value for role in roles)
    if password is None:
        say(f"Created user '{user_name}' ({roles_text}); give it a key: `salesbridge key new`.")
        return
    say(f"Created user '{user_name}' ({roles_text}). Its password, shown only now:")
    typer.echo(password)


@user_cli.command("list")
def user_list() -> None:
    """List users with their roles and state."""

    async def load() -> list[tuple[str, str, str, str]]:
        async with open_session(get_settings()) as session:
            return [
                (u.user_name, u.roles, str(u.state), u.full_name)
                for u in await users.list_users(session)
            ]

    rows = run(load())
    width = max([len(row[0]) for row in rows] + [9])
    typer.echo(f"{'USER NAME':<{width}}  {'STATE':<8}  ROLES")
    for user_name, roles, state, full_name in rows:
        suffix = f"  ({full_name})" if full_name else ""
        typer.echo(f"{user_name:<{width}}  {state:<8}  {roles}{suffix}")


@user_cli.command("disable")
def user_disable(user_name: Annotated[str, typer.Argument(help="The user name.")]) -> None:
    """Disable a user: sign-in, tokens and access keys stop working at once."""

    async def disable() -> None:
        async with open_session(get_settings()) as session:
            await users.disable_user(session, user_name=user_name)

    run(disable())
    say(f"Disabled user '{user_name}'.")


@user_cli.command("enable")
def user_enable(user_name: Annotated[str, typer.Argument(help="The user name.")]) -> None:
    """Enable a disabled user again."""

    async def enable() -> None:
        async with open_session(get_settings()) as session:
            await users.enable_user(session, user_name=user_name)

    run(enable())
    say(f"Enabled user '{user_name}'.")


@user_cli.command("reset-password")
def user_reset_password(user_name: Annotated[str, typer.Argument(help="The user name.")]) -> None:
    """Give a user a new generated password; prints it once."""
    password = new_password()

    async def reset() -> None:
        async with open_session(get_settings()) as session:
            await users.set_password(session, user_name=user_name, password=password)

    run(reset())
    say(f"New password for '{user_name}', shown only now:")
    typer.echo(password)


# --- access keys ---------------------------------------------------------------------------

ExpiryOption = Annotated[
    int | None, typer.Option(min=1, help="Days until the key expires (default: never).")
]


def _issue_key(user_name: str, expires_in_days: int | None, *, is_rotation: bool) -> None:
    settings = get_settings()
    expires_at = utc_now() + timedelta(days=expires_in_days) if expires_in_days else None
    issue = user_keys.rotate_key if is_rotation else user_keys.create_key

    async def create() -> str:
        async with open_session(settings) as session:
            _row, key = await issue(session, settings, user_name=user_name, expires_at=expires_at)
        return key

    key = run(create())
    what = "replaces all earlier keys" if is_rotation else "works next to any earlier keys"
    say(f"New access key for '{user_name}' ({what}), shown only now:")
    typer.echo(key)


@key_cli.command("new")
def key_new(
    user_name: Annotated[str, typer.Argument(help="The user name.")],
    expires_in_days: ExpiryOption = None,
) -> None:
    """Issue an access key for a user; prints it once."""
    _issue_key(user_name, expires_in_days, is_rotation=False)


@key_cli.command("rotate")
def key_rotate(
    user_name: Annotated[str, typer.Argument(help="The user name.")],
    expires_in_days: ExpiryOption = None,
) -> None:
    """Revoke a user's keys and issue one new key; prints it once."""
    _issue_key(user_name, expires_in_days, is_rotation=True)


@key_cli.command("revoke")
def key_revoke(user_name: Annotated[str, typer.Argument(help="The user name.")]) -> None:
    """Revoke every access key of a user."""

    async def revoke() -> int:
        async with open_session(get_settings()) as session:
            return await user_keys.revoke_keys(session, user_name=user_name)

    count = run(revoke())
    say(f"Revoked {count} access key(s) of '{user_name}'.")


@sync_cli.command("run")
def sync_run(
    mapping: Annotated[str, typer.Argument(help="The mapping, e.g. 'ITEM-PRODUCT'.")],
    *,
    full: Annotated[
        bool, typer.Option("--full", help="Every record, not only modified ones.")
    ] = False,
) -> None:
    """Run one mapping now IN THIS PROCESS (no worker needed), with a progress bar.

    Refused while a worker runs the same mapping. To queue a run on the workers instead,
    POST /api/v1/sync/mappings/{name}/run.
    """
    from rich.console import Console

    from app.sync import console

    settings = get_settings()
    err = Console(stderr=True)

    async def go() -> console.RunSummary:
        engine = create_engine(settings.database_url)
        try:
            return await console.run_with_progress(
                create_sessionmaker(engine),
                settings,
                mapping_name=mapping,
                is_full=full,
                console=err,
            )
        finally:
            await engine.dispose()

    err.print(console.summary_table(run(go())))


@sync_cli.command("status")
def sync_status() -> None:
    """Job queue entries (status, next start, last error) and running syncs' progress."""
    from rich.console import Console

    from app.sync import console

    settings = get_settings()

    async def load() -> Any:
        engine = create_engine(settings.database_url)
        try:
            return await console.status_table(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    Console().print(run(load()))
