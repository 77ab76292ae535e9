"""``salesbridge``: the root command, serve, demo, worker, sandbox, init, db and token.

The other groups live beside it (``users``: user and key; ``connection``: connection and
mapping; ``sync_commands``: sync). Every import of the service's own code happens inside
the command that needs it, so ``--help``, ``--version`` and the quick commands start fast.
Secrets a command creates go to stdout alone; everything said to people goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.connection import (
    SANDBOX_PORT,
    SANDBOX_PORT_VARIABLE,
    connection_cli,
    crm_edit,
    mapping_cli,
    sandbox_setup_arguments,
)
from app.cli.first_admin import FIRST_ADMIN, announce_first_admin, create_first_admin
from app.cli.runtime import (
    configure,
    fail,
    guarded,
    run,
    run_server_loop,
    say,
    settings,
    upgrade_or_fail,
)
from app.cli.sync_commands import sync_cli
from app.cli.users import key_cli, user_cli
from app.command_lines import command_line

if TYPE_CHECKING:
    import contextlib
    from types import FrameType

    from app.sandbox.config import SandboxConfig
    from app.settings import Settings

cli = typer.Typer(
    name="salesbridge",
    help="Salesbridge: ERP <-> Dynamics 365 Sales bridge (API, job queue workers, sandbox).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain help: rich's panels print a "<bool>" type beside every flag, and cost an import.
    rich_markup_mode=None,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
cli.add_typer(key_cli, name="key")
cli.add_typer(connection_cli, name="connection")
cli.add_typer(mapping_cli, name="mapping")
cli.add_typer(sync_cli, name="sync")
cli.command("crm-edit")(crm_edit)

HostOption = Annotated[
    str | None, typer.Option(metavar="ADDRESS", help="Address to listen on [127.0.0.1].")
]
PortOption = Annotated[int | None, typer.Option(metavar="PORT", help="Port to listen on [8000].")]
SandboxPortOption = Annotated[
    int, typer.Option(metavar="PORT", envvar=SANDBOX_PORT_VARIABLE, help="Port of the sandbox CRM.")
]


def demo_hint() -> str:
    return (
        f"New here? `{command_line('demo')}` runs the service beside a sandbox CRM with a "
        "sample company and a first full sync; see docs/demo.md.\n"
    )


def main() -> None:
    cli()


def _print_version(is_asked: bool) -> None:  # noqa: FBT001 - typer's callback signature
    if is_asked:
        from importlib.metadata import version

        typer.echo(f"salesbridge {version('salesbridge')}")
        raise typer.Exit


@cli.callback()
def _before_any_command(
    *,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:  # fmt: skip
    # Log lines go to stderr in the configured format, never into a secret on stdout.
    del show_version
    configure(settings())


# --- first user ---------------------------------------------------------------------------


@cli.command()
def init(
    user_name: Annotated[
        str, typer.Option(metavar="NAME", help="Name of the first user.")
    ] = FIRST_ADMIN,
) -> None:
    """Create the database and the first admin.

    Only when there is no user yet; prints the password once.
    """
    config = settings()
    upgrade_or_fail(config)
    password = run(create_first_admin(config, user_name=user_name))
    if password is None:
        fail(f"Salesbridge has users already; add more with `{command_line('user create')}`.")
    say(f"Created user '{user_name}' (integration-admin). Its password, shown only now:")
    typer.echo(password)


# --- serve / demo / worker / sandbox -------------------------------------------------------


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    import signal

    raise SystemExit(128 + signal.SIGTERM)


def _settings_with(host: str | None, port: int | None) -> Settings:
    from app.settings import Settings

    overrides: dict[str, Any] = {"host": host, "port": port}
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def _check_port(config: Settings) -> None:
    """Before migrations, Redis and the worker: a port in use is one line naming --port."""
    from app.ports import bind

    bind(config.host, config.port, what="service", option="--port").close()


@cli.command()
def serve(
    host: HostOption = None,
    port: PortOption = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(metavar="FILE", help="TLS certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(metavar="FILE", help="TLS private key (PEM).")
    ] = None,
) -> None:
    """Run the service: API, OData, a worker.

    Without SALESBRIDGE_REDIS_URL it also runs an embedded Redis in the data dir.
    """
    import contextlib
    import signal

    from app.service import run_service

    if (ssl_certfile is None) != (ssl_keyfile is None):
        fail("Give both --ssl-certfile and --ssl-keyfile, or neither.")
    config = _settings_with(host, port)
    configure(config)
    guarded(lambda: _check_port(config))
    # Until uvicorn takes the signals over, SIGTERM unwinds like Ctrl-C (Redis is stopped).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    upgrade_or_fail(config, for_server=True)
    password = run(create_first_admin(config))
    if password is not None:
        announce_first_admin(config, FIRST_ADMIN, password)
        say(demo_hint())
    scheme = "https" if ssl_certfile is not None else "http"
    say(console_line(config, scheme=scheme))
    with contextlib.ExitStack() as stack:
        config = with_embedded_redis(stack, config)
        run_server_loop(run_service(config, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile))


def console_line(settings: Settings, *, scheme: str = "http") -> str:
    """Where people go: the web console (and the API's pages)."""
    base = settings.public_url.rstrip("/")
    if "public_url" not in settings.model_fields_set and scheme == "https":
        base = base.replace("http://", "https://", 1)
    return f"Salesbridge web console: {base}/   (API pages: {base}/docs)"


def with_embedded_redis(stack: contextlib.ExitStack, config: Settings) -> Settings:
    """Without SALESBRIDGE_REDIS_URL: start the embedded Redis (stopped with ``stack``)."""
    from app.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    if not config.uses_embedded_redis:
        return config
    try:
        embedded = stack.enter_context(EmbeddedRedis(config.data_dir))
    except EmbeddedRedisError as exc:
        fail(str(exc))
    return config.model_copy(update={"redis_url": embedded.url})


@cli.command()
def demo(
    host: HostOption = None,
    port: PortOption = None,
    sandbox_port: SandboxPortOption = SANDBOX_PORT,
    *,
    sandbox_memory: Annotated[
        bool, typer.Option("--sandbox-memory", help="Keep the sandbox CRM's data in memory only.")
    ] = False,
) -> None:
    """Try it all: service, sandbox CRM, sample data.

    Serves beside a sandbox CRM with a sample company, the assisted setup and a first
    full synchronization.
    """
    import contextlib
    import signal

    from app.demo.run import DemoOptions, demo_settings, run_demo

    config = demo_settings(_settings_with(host, port))
    configure(config)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # as in serve: unwind, stop Redis
    upgrade_or_fail(config)
    password = run(create_first_admin(config))
    if password is not None:
        announce_first_admin(config, FIRST_ADMIN, password)
    sandbox_db = None if sandbox_memory else config.data_dir / "sandbox.db"
    with contextlib.ExitStack() as stack:
        config = with_embedded_redis(stack, config)
        run(run_demo(config, DemoOptions(sandbox_port=sandbox_port, sandbox_db=sandbox_db)))


@cli.command()
def worker() -> None:
    """Run one more job queue worker.

    On SALESBRIDGE_REDIS_URL, or on the embedded Redis of a serve with the same data dir.
    """

    from app.embedded_redis import find_running
    from workers.settings import run_worker

    config = settings()
    if not config.redis_url:
        url = find_running(config.data_dir)
        if url is None:
            fail(
                "No Redis: set SALESBRIDGE_REDIS_URL, or start "
                f"`{command_line('serve')}` with the same SALESBRIDGE_DATA_DIR first (the "
                "worker then uses its embedded Redis)."
            )
        config = config.model_copy(update={"redis_url": url})
    run_server_loop(run_worker(config))


@cli.command()
def sandbox(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: SandboxPortOption = SANDBOX_PORT,
    db: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="SQLite file for the sandbox's data [<data dir>/sandbox.db].",
            show_default=False,
        ),
    ] = None,
    *,
    memory: Annotated[bool, typer.Option("--memory", help="Keep the data in memory only.")] = False,
) -> None:
    """Run a sandbox CRM (a Dataverse stand-in).

    Prints its URLs, credentials and the command that connects a running serve to it.
    """
    from app.sandbox.server import serve as serve_sandbox

    if memory and db is not None:
        fail("Give --db or --memory, not both.")
    db_path = None if memory else (db or settings().data_dir / "sandbox.db")
    where = "in memory only" if db_path is None else f"in {db_path}"

    def announce(base_url: str, config: SandboxConfig) -> None:
        say(sandbox_banner(base_url, config, where))

    guarded(lambda: serve_sandbox(host=host, port=port, db_path=db_path, announce=announce))


ALLOW_LOCAL_CRM = "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES"


def sandbox_banner(base_url: str, config: SandboxConfig, where: str) -> str:
    token_url = f"{base_url}/{config.tenant_id}/oauth2/v2.0/token"
    connect = sandbox_setup_arguments(base_url, token_url, config.client_id, config.client_secret)
    return f"""
Sandbox CRM (a Dataverse Web API stand-in) is running, its data {where}.

  Web API     {base_url}/api/data/v{config.api_version}/
  Token URL   {token_url}
  Tenant      {config.tenant_id}
  Client id   {config.client_id}
  Secret      {config.client_secret}

It listens on this machine: the service must be started with
{ALLOW_LOCAL_CRM}=true (it refuses a CRM on a private address otherwise).
Point a running `serve` at it: paste this in another terminal, in the checkout:

  {ALLOW_LOCAL_CRM}=true {command_line(connect)}

Then `{ALLOW_LOCAL_CRM}=true {command_line("connection test")}` and
`{command_line("sync full")}` (docs/setup.md). Ctrl-C stops the sandbox.
"""


# --- db, token -----------------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database on first use)."""
    upgrade_or_fail(settings())
    say("The database schema is up to date.")


@cli.command()
def token(
    user_name: Annotated[str, typer.Argument(metavar="USER", help="The user.")] = FIRST_ADMIN,
) -> None:
    """Print a bearer token for a user.

    For curl: TOKEN=$(bin/salesbridge token admin); -H "Authorization: Bearer $TOKEN".
    """
    from app.auth import tokens, users

    config = settings()

    async def issue() -> tuple[str, int]:
        from app.cli.runtime import open_session
        from app.errors import ForbiddenError
        from app.models.security import UserState

        async with open_session(config) as session:
            user = await users.get_user_or_raise(session, user_name=user_name)
            if user.state != UserState.enabled:
                msg = f"User {user.user_name!r} is disabled."
                raise ForbiddenError(msg)
            roles = sorted(role.value for role in user.role_set)
            return tokens.create_access_token(
                config,
                subject=user.user_name,
                roles=roles,
                version=user.token_version,
                key_id=None,
            )

    access_token, lifetime = run(issue())
    say(f"A bearer token for '{user_name}', valid {lifetime // 60} minutes:")
    typer.echo(access_token)
