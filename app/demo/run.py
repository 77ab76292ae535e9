"""``salesbridge demo``: sandbox, sample company, assisted setup, first full sync, serve.

The caller (``app.cli``) has migrated the database, created the first admin and started
Redis, as for ``serve``. Everything before the service starts runs here in this process;
the full synchronization then runs on the embedded worker, like any queued sync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from app.auth import user_keys
from app.db import SessionMaker, create_engine, create_sessionmaker, session_scope
from app.demo import connect, first_sync, instructions
from app.demo.sample_company import load_sample_company
from app.demo.sandbox_thread import RunningSandbox, serve_sandbox
from app.logs import get_logger
from app.ports import bind, local_url
from app.service import run_service
from app.settings import Settings

log = get_logger("salesbridge.demo")

SANDBOX_HOST = "127.0.0.1"  # the stand-in CRM is for this machine only
DEMO_TICK_SECONDS = 1
DEMO_LOG_LEVEL = "WARNING"
SERVICE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class DemoOptions:
    sandbox_port: int
    sandbox_db: Path | None  # None: in memory


def demo_settings(settings: Settings) -> Settings:
    """The demo's defaults where nothing is configured.

    Private CRM addresses allowed, for the sandbox. A 1 s scheduler tick: each dependency
    level of the first full sync waits for a tick, and the demo should not sit idle 5 s
    between them. Logs at WARNING: at INFO every
    request to the sandbox and every job run prints a line, and the lines that matter to
    a newcomer (the bar, the curl) would scroll away.
    """
    defaults = {"scheduler_tick_seconds": DEMO_TICK_SECONDS, "log_level": DEMO_LOG_LEVEL}
    unset = {
        name: value for name, value in defaults.items() if name not in settings.model_fields_set
    }
    # Always: the demo's CRM is the sandbox on this machine (SANDBOX_HOST), an address the
    # service otherwise refuses to send CRM credentials to.
    return settings.model_copy(update={**unset, "allow_private_crm_addresses": True})


def say(message: str) -> None:
    typer.echo(message, err=True)


async def run_demo(settings: Settings, options: DemoOptions) -> None:
    # Checked before the setup work: uvicorn would only find out after all of it.
    bind(settings.host, settings.port, what="service", option="--port").close()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        with serve_sandbox(
            host=SANDBOX_HOST, port=options.sandbox_port, db_path=options.sandbox_db
        ) as sandbox:
            where = "in memory" if options.sandbox_db is None else f"in {options.sandbox_db}"
            say(f"Sandbox CRM (Dataverse Web API stand-in) on {sandbox.base_url}, data {where}.")
            await _prepare(sessionmaker, settings, sandbox)
            queued = await first_sync.queue_full_sync(sessionmaker)
            if queued.refused:
                say(f"No full synchronization this time: {queued.refused}")
            else:
                what = "Queued a" if queued.is_new else "Following the unfinished"
                say(f"{what} full synchronization ({len(queued.entry_ids)} mappings).")
            steps = _after_start(sessionmaker, settings, sandbox, queued.entry_ids)
            await _serve_while(settings, steps)
    finally:
        await engine.dispose()


async def _prepare(sessionmaker: SessionMaker, settings: Settings, sandbox: RunningSandbox) -> None:
    async with session_scope(sessionmaker) as session:
        added = await load_sample_company(session)
    if any(added.values()):
        counts = ", ".join(_count(n, label) for label, n in added.items())
        say(f"Loaded the sample company: {counts}")
    else:
        say("The sample company is loaded already; nothing added.")
    connected = await connect.connect(sessionmaker, settings, sandbox)
    if connected.is_reused:
        say("Reusing the enabled connection to the sandbox.")
    else:
        say("Assisted setup finished: connection to the sandbox enabled, default mappings "
            "and job queue entries created, integration solution deployed.")  # fmt: skip
    coupled = await connect.couple_salespeople(sessionmaker, settings)
    if coupled:
        say(f"Coupled {_count(coupled, 'salespeople')} to sandbox CRM users (match on e-mail).")


# The labels of load_sample_company are plural; one row reads "1 currency", not "1 currencies".
_SINGULAR = {"units of measure": "unit of measure", "currencies": "currency",
             "salespeople": "salesperson", "customer price groups": "customer price group",
             "items": "item", "resources": "resource", "customers": "customer",
             "contacts": "contact", "sales prices": "sales price",
             "item ledger entries": "item ledger entry"}  # fmt: skip


def _count(count: int, label: str) -> str:
    return f"{count} {_SINGULAR.get(label, label) if count == 1 else label}"


async def _serve_while(settings: Settings, steps: Coroutine[Any, Any, None]) -> None:
    """Serve until Ctrl-C; ``steps`` run beside the service and are cut short by a stop."""
    service = asyncio.create_task(run_service(settings))
    task = asyncio.create_task(steps)
    await asyncio.wait({service, task}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    elif not task.cancelled() and (error := task.exception()) is not None:
        # The service stays up so the admin can look at what went wrong.
        log.error("demo_step_failed", exc_info=error)
        say(f"The demo could not finish its first sync: {error}. The service keeps running.")
    await service


async def _after_start(
    sessionmaker: SessionMaker, settings: Settings, sandbox: RunningSandbox, entry_ids: list[int]
) -> None:
    if entry_ids:
        console = Console(stderr=True)
        snapshot = await first_sync.follow(sessionmaker, entry_ids, console)
        console.print(first_sync.summary_table(snapshot))
        for entry in first_sync.failed_entries(snapshot):
            say(f"{entry.mapping_name} ended with an error: {entry.last_error[:200]}")
        if any(job.failed for job in snapshot.jobs):
            say("Some records failed: GET /api/v1/sync-jobs/{id}/errors says why.")
    await _wait_until_serving(settings)
    async with session_scope(sessionmaker) as session:
        _row, key = await user_keys.create_key(session, settings, user_name=connect.ODATA_USER)
    say(instructions.ready_text(settings, sandbox, key))


async def _wait_until_serving(settings: Settings) -> None:
    """The worker can finish before uvicorn listens; the printed URLs must answer."""
    url = f"{local_url(settings.host, settings.port)}/healthz"  # not via a proxy
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = asyncio.get_running_loop().time() + SERVICE_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
