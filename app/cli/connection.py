"""``salesbridge connection ...`` and ``salesbridge mapping list``: the CRM connection set-up.

``connection setup`` runs the whole assisted setup (the same steps as the REST API's),
against the database a running ``serve`` uses: once it has finished, that serve's worker
runs the new job queue entries. ``--sandbox`` fills in the local sandbox's address and
well-known credentials.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.runtime import fail, open_session, plural, run, say, settings
from app.command_lines import command_line

if TYPE_CHECKING:
    from app.connection.connection_setup import ConnectionTestResult
    from app.models.integration import AssistedSetup

connection_cli = typer.Typer(help="The connection to Dynamics 365 Sales.", no_args_is_help=True)
mapping_cli = typer.Typer(help="Integration table mappings.", no_args_is_help=True)

SANDBOX_PORT = 8100
SANDBOX_PORT_VARIABLE = "SALESBRIDGE_SANDBOX_PORT"
# The sandbox's well-known defaults (app/sandbox/config.py); the CLI may name them, the
# service may not import the sandbox.
SANDBOX_TENANT = "sandbox-tenant"
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's public default
SECRET_VARIABLE = "SALESBRIDGE_CRM_CLIENT_SECRET"  # noqa: S105 - a variable's name


def sandbox_port() -> int:
    return int(os.environ.get(SANDBOX_PORT_VARIABLE) or SANDBOX_PORT)


def sandbox_setup_arguments(base_url: str, token_url: str, client_id: str, secret: str) -> str:
    """The ``connection setup`` arguments that point a service at a sandbox, in full."""
    return (
        f"connection setup --crm-url {base_url} --token-url {token_url} "
        f"--client-id {client_id} --client-secret {secret}"
    )


def _text(value: str | None) -> str:
    return value or ""


@connection_cli.command("setup")
def connection_setup(
    crm_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The Dynamics 365 Sales URL, e.g. https://contoso.crm4.dynamics.com.",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Application (client) id of the app registration."),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            metavar="SECRET",
            envvar=SECRET_VARIABLE,
            show_envvar=True,
            show_default=False,
            help="The app registration's client secret (asked for when not given).",
        ),
    ] = None,
    tenant_id: Annotated[
        str | None, typer.Option(metavar="ID", help="Directory (tenant) id; or give --token-url.")
    ] = None,
    token_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="OAuth token endpoint, instead of the tenant's."),
    ] = None,
    odata_user: Annotated[
        str, typer.Option(metavar="USER", help="User the CRM reads item availability as.")
    ] = "crm",
    odata_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="OData URL the CRM uses [this service's public URL].",
            show_default=False,
        ),
    ] = None,
    *,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help=f"The sandbox on this machine (port ${SANDBOX_PORT_VARIABLE} or {SANDBOX_PORT}) "
            "with its default credentials.",
        ),
    ] = False,
    skip_solution: Annotated[
        bool, typer.Option("--skip-solution", help="Do not deploy the integration solution.")
    ] = False,
) -> None:
    """Connect to Dynamics 365 Sales (or the sandbox).

    Runs the assisted setup: tests the connection, deploys the integration solution,
    publishes item availability, enables the connection and creates the default mappings
    and job queue entries. docs/setup.md has the recipes.
    """
    from app.connection.one_step_setup import ConnectAnswers, connect

    if sandbox:
        base = f"http://127.0.0.1:{sandbox_port()}"
        crm_url = crm_url or base
        token_url = token_url or f"{crm_url}/{SANDBOX_TENANT}/oauth2/v2.0/token"
        client_id = client_id or SANDBOX_CLIENT_ID
        client_secret = client_secret or SANDBOX_CLIENT_SECRET
    if not crm_url or not client_id:
        fail("Give --crm-url and --client-id (or --sandbox for the local sandbox).")
    if not (tenant_id or token_url):
        fail("Give --tenant-id (or --token-url).")
    if not client_secret:
        client_secret = typer.prompt("Client secret", hide_input=True)
    answers = ConnectAnswers(
        server_address=crm_url, client_id=client_id, client_secret=_text(client_secret),
        tenant_id=_text(tenant_id), token_url=_text(token_url), odata_url=_text(odata_url),
        odata_user_name=odata_user, is_solution_imported=not skip_solution,
    )  # fmt: skip
    config = settings()

    async def go() -> AssistedSetup:
        async with open_session(config) as session:
            return await connect(session, config, answers=answers)

    _report_setup(run(go()), crm_url)


def _report_setup(flow: AssistedSetup, crm_url: str) -> None:
    result = flow.result or {}
    say(f"Connected to {crm_url} (integration user {result.get('integration_user_id')}).")
    deployed = result.get("solution")
    if deployed:
        say(f"  Integration solution {deployed['solution_action']}; roles: "
            f"{', '.join(deployed['roles'])}.")  # fmt: skip
    mappings = result.get("mappings") or []
    entries = int(result.get("job_queue_entries") or 0)
    jobs = plural(entries, "job queue entry", "job queue entries")
    say(f"  {plural(len(mappings), 'mapping')} and {jobs} created; a running serve's worker "
        "starts them now.")  # fmt: skip
    say(f"  Item availability published as user '{flow.answers.get('odata_user_name')}' "
        f"at {flow.answers.get('odata_url')}.")  # fmt: skip
    webhook = result.get("webhook") or {}
    if webhook.get("registered"):
        say(f"  CRM change notifications registered ({webhook['steps']} steps) to "
            f"{webhook['url']}.")  # fmt: skip
    elif webhook:
        say(f"  CRM change notifications not registered: {webhook['reason']}")
    say("Next:")
    say(f"  {command_line('connection test')}")
    say(f"  {command_line('sync full')}        (a full synchronization, with a progress bar)")


@connection_cli.command("test")
def connection_test() -> None:
    """Test the connection: token, WhoAmI, version.

    Exit code 1 when a step fails.
    """
    from app.connection.connection_check import test_connection

    config = settings()

    async def go() -> ConnectionTestResult:
        async with open_session(config) as session:
            return await test_connection(session, config)

    result = run(go())
    for step in result.steps:
        typer.echo(f"{'ok  ' if step.ok else 'FAIL'}  {step.name:<13} {step.detail}")
    if not result.ok:
        fail(f"The connection test failed at {result.first_failure()}")
    say("The connection works.")


@connection_cli.command("status")
def connection_status() -> None:
    """Show the connection (never a secret)."""
    from app.connection.connection_setup import get_connection_setup

    config = settings()

    async def load() -> list[tuple[str, str]]:
        async with open_session(config) as session:
            setup = await get_connection_setup(session, config)
        return [
            ("CRM URL", setup.server_address or "(not set)"),
            ("Connection", "enabled" if setup.is_enabled else
             f"disabled{f' ({setup.disable_reason})' if setup.disable_reason else ''}"),
            ("Sign-in", str(setup.authentication_type)),
            ("Tenant / token URL", setup.tenant_id or setup.token_url or "(not set)"),
            ("Client id", setup.client_id or "(not set)"),
            ("Client secret", "set" if setup.client_secret_encrypted else "(not set)"),
            ("Integration user", str(setup.integration_user_id or "(not tested yet)")),
            ("Solution", "deployed" if setup.is_solution_installed else "not deployed"),
            ("Item availability", f"{setup.odata_url} as '{setup.odata_user_name}'"
             if setup.item_availability_enabled else "not published"),
        ]  # fmt: skip

    rows = run(load())
    for label, value in rows:
        typer.echo(f"{label + ':':<20} {value}")
    if not rows[0][1].startswith("http"):
        say(f"Not connected yet: `{command_line('connection setup --help')}` (docs/setup.md).")


@mapping_cli.command("list")
def mapping_list() -> None:
    """List the table mappings and their jobs."""
    from sqlmodel import col, select

    from app.cli.sync_console import state_of
    from app.mappings.table_mappings import list_mappings
    from app.models.integration import JobKind, JobQueueEntry

    async def load() -> list[tuple[str, str, str, str, str]]:
        async with open_session(settings()) as session:
            mappings = await list_mappings(session)
            entries = await session.exec(
                select(JobQueueEntry).where(
                    col(JobQueueEntry.kind) == JobKind.mapping_sync,
                    col(JobQueueEntry.recurring).is_(True),
                )
            )
            jobs = {entry.mapping_name: state_of(entry) for entry in entries}
        return [
            (m.name, m.table_name, m.integration_table, str(m.direction), jobs.get(m.name, "-"))
            for m in mappings
        ]

    rows = run(load())
    if not rows:
        say(no_mappings_hint())
        return
    headers = ("NAME", "ERP TABLE", "CRM TABLE", "DIRECTION", "JOB")
    widths = [max(len(row[i]) for row in (*rows, headers)) for i in range(5)]
    for row in (headers, *rows):
        typer.echo(
            "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        )


def no_mappings_hint() -> str:
    return (
        "There are no mappings yet: they are created when the CRM connection is set up "
        f"(`{command_line('connection setup')}`, docs/setup.md), or again with their defaults "
        "by POST /api/v1/mappings/reset-defaults."
    )


def _value(text: str) -> Any:
    """A FIELD=VALUE value: a JSON number, true, false or null as such, else the text."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, bool | int | float) else text


def crm_edit(
    entity_set: Annotated[
        str, typer.Argument(metavar="TABLE", help="The CRM table's entity set, e.g. accounts.")
    ],
    record: Annotated[
        str, typer.Argument(metavar="RECORD", help="The row's id, or its name (primary name).")
    ],
    changes: Annotated[
        list[str],
        typer.Argument(metavar="FIELD=VALUE...", help="Columns to set, e.g. telephone1=555."),
    ],
    as_user: Annotated[
        str, typer.Option("--as", metavar="EMAIL", help="The CRM user who makes the change.")
    ],
) -> None:
    """Change a CRM row as one of the CRM's users (a salesperson), not as the integration.

    Shows the CRM -> ERP half of the integration: the row is stamped with that person, and
    the mappings that read the table bring the change to the ERP, within seconds when the
    CRM's change notifications are registered, else at their next run.
    """
    from app.connection.person_edits import PersonEdit, edit_as_user

    values: dict[str, Any] = {}
    for change in changes:
        field, separator, text = change.partition("=")
        if not separator or not field:
            fail(f"Write each change as FIELD=VALUE, not {change!r}.")
        values[field] = _value(text)
    config = settings()

    async def go() -> tuple[PersonEdit, bool]:
        from app.connection.webhook_registration import current_report

        async with open_session(config) as session:
            done = await edit_as_user(
                session, config, entity_set=entity_set, record=record, changes=values,
                user_email=as_user,
            )  # fmt: skip
            return done, config.webhooks_enabled and (await current_report(session)).registered

    done, is_notified = run(go())
    fields = ", ".join(f"{name}={value!r}" for name, value in done.changes.items())
    say(f"Changed {entity_set}({done.record_id}) in the CRM as {as_user}: {fields}.")
    when = "within seconds (the CRM notifies Salesbridge)" if is_notified else "at its next run"
    for mapping in done.mappings:
        say(f"  {mapping} brings it to the ERP {when}; now: "
            f"`{command_line(f'sync run {mapping}')}`")  # fmt: skip
