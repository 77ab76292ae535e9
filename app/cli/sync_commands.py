"""``salesbridge sync run | full | status``: synchronize now, and see the job queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.runtime import fail, run, say, settings
from app.command_lines import command_line

if TYPE_CHECKING:
    from app.cli.sync_console import RunSummary
    from app.demo.first_sync import Queued, Snapshot

sync_cli = typer.Typer(help="Synchronization with Dynamics 365 Sales.", no_args_is_help=True)

NO_WORKER_HINT_SECONDS = 30.0


@sync_cli.command("run")
def sync_run(
    mapping: Annotated[
        str,
        typer.Argument(
            metavar="MAPPING", help="The mapping, e.g. ITEM-PRODUCT (see `mapping list`)."
        ),
    ],
    *,
    full: Annotated[
        bool, typer.Option("--full", help="Every record, not only modified ones.")
    ] = False,
) -> None:
    """Run one mapping now, in this process.

    No worker needed; a progress bar shows the records done.

    Refused while a worker runs the same mapping. To queue a run on the workers instead,
    POST /api/v1/sync/mappings/{name}/run.
    """
    from rich.console import Console

    from app.cli import sync_console
    from app.db import create_engine, create_sessionmaker

    config = settings()
    err = Console(stderr=True)

    async def go() -> RunSummary:
        engine = create_engine(config.database_url)
        try:
            return await sync_console.run_with_progress(
                create_sessionmaker(engine), config, mapping_name=mapping, is_full=full,
                console=err,
            )  # fmt: skip
        finally:
            await engine.dispose()

    err.print(sync_console.summary_table(run(go())))


@sync_cli.command("full")
def sync_full(
    *,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow it with progress bars until it ends.")
    ] = True,
) -> None:
    """Queue a full synchronization and follow it.

    Every mapping, in dependency order, on the workers.

    A running `serve` (or `worker`) on the same database runs it. Exit code 1 when a
    mapping ends with an error.
    """
    from rich.console import Console

    from app.db import create_engine, create_sessionmaker
    from app.demo import first_sync

    config = settings()
    err = Console(stderr=True)
    if not _is_a_worker_known(config):
        say(
            "No `serve` is running with this data dir, so nothing runs the queued work until "
            f"one starts (`{command_line('serve')}`); queuing without waiting."
        )
        wait = False

    async def go() -> tuple[Queued, Snapshot | None]:
        engine = create_engine(config.database_url)
        try:
            sessionmaker = create_sessionmaker(engine)
            queued = await first_sync.queue_full_sync(sessionmaker)
            if queued.refused or not queued.entry_ids or not wait:
                return queued, None
            return queued, await first_sync.follow(sessionmaker, queued.entry_ids, err)
        finally:
            await engine.dispose()

    queued, snapshot = run(go())
    if queued.refused:
        fail(f"No full synchronization now: {queued.refused}")
    if not queued.entry_ids:
        fail(f"There is nothing to synchronize: set up the connection first "
             f"(`{command_line('connection setup')}`).")  # fmt: skip
    if snapshot is None:
        say(f"Queued a full synchronization ({len(queued.entry_ids)} mappings); "
            f"`{command_line('sync status')}` shows how it goes.")  # fmt: skip
        return
    err.print(first_sync.summary_table(snapshot))
    failed = first_sync.failed_entries(snapshot)
    for entry in failed:
        say(f"{entry.mapping_name} ended with an error: {entry.last_error[:300]}")
    if failed:
        raise typer.Exit(1)
    say("The full synchronization has finished.")


def _is_a_worker_known(config: Any) -> bool:
    """With a Redis URL, workers may run anywhere; else only a serve on this data dir."""
    from app.embedded_redis import find_running

    return bool(config.redis_url) or find_running(config.data_dir) is not None


@sync_cli.command("status")
def sync_status(
    *,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column and whole error messages.")
    ] = False,
) -> None:
    """Show the job queue (state, next start, errors) and whether CRM change notifications
    arrive."""
    from rich.console import Console

    from app.cli import sync_console
    from app.db import create_engine, create_sessionmaker

    config = settings()
    console = Console(width=max(Console().width, 160)) if wide else Console()

    async def load() -> Any:
        engine = create_engine(config.database_url)
        try:
            sessionmaker = create_sessionmaker(engine)
            table = await sync_console.status_table(sessionmaker, is_wide=wide, width=console.width)
            return table, await sync_console.load_notifications(sessionmaker)
        finally:
            await engine.dispose()

    table, notifications = run(load())
    console.print(table)
    for line in sync_console.notification_lines(notifications, is_wide=wide):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not table.row_count:
        say(
            f"The job queue is empty: set up the connection (`{command_line('connection setup')}`)."
        )
        return
    say(sync_console.LEGEND)
