"""Job queue runners of the sales document jobs (auto create orders, process quotes).

Both need the enabled connection, a CRM client and the CRM base currency (a CRM document
in it is in LCY). ``app.sync.jobs`` imports this module for ``RUNNERS``, so the job
queue's types are imported here only when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import col, select

from app.db import SessionMaker, current_actor, session_scope
from app.models.integration import ConnectionSetup, JobQueueEntry
from app.settings import Settings
from app.sync import crm_rules, sales_orders, sales_quotes
from app.sync.crm_client import build_crm_client
from app.sync.errors import FatalSyncError
from app.sync.runner import SYNC_ACTOR

if TYPE_CHECKING:
    from app.dataverse import DataverseClient
    from app.sync.jobs import RunResult


async def _setup(sessionmaker: SessionMaker) -> ConnectionSetup:
    async with sessionmaker() as session:
        setup = (
            await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))
        ).first()
    if setup is None or not setup.is_enabled:
        msg = "The Dynamics 365 Sales connection is not enabled; enable it to run this job."
        raise FatalSyncError(msg)
    return setup


async def crm_context(
    sessionmaker: SessionMaker, crm: DataverseClient, setup: ConnectionSetup, settings: Settings
) -> crm_rules.CrmContext:
    """The integration user and the CRM base currency (found once, kept in the setup)."""
    async with session_scope(sessionmaker) as session:
        stored = await session.get(ConnectionSetup, setup.id)
        assert stored is not None  # noqa: S101 - read a moment ago; setups are never deleted
        return await crm_rules.prepare(
            session, crm, stored, company_name=settings.company_name, needs_price_list=False
        )


async def run_auto_create_sales_orders(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> RunResult:
    from app.sync.jobs import JobConfigError, RunResult

    token = current_actor.set(SYNC_ACTOR)
    try:
        setup = await _setup(sessionmaker)
        async with build_crm_client(settings, setup, interactive=False) as crm:
            context = await crm_context(sessionmaker, crm, setup, settings)
            results = await sales_orders.create_all(
                sessionmaker, crm, settings=settings, base_currency_id=context.base_currency_id,
                job_queue_entry_id=entry.id,
            )  # fmt: skip
    except FatalSyncError as exc:
        raise JobConfigError(exc.admin_message) from exc
    finally:
        current_actor.reset(token)
    return RunResult(changed=len(results))


async def run_auto_process_sales_quotes(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> RunResult:
    from app.sync.jobs import JobConfigError, RunResult

    token = current_actor.set(SYNC_ACTOR)
    try:
        setup = await _setup(sessionmaker)
        async with build_crm_client(settings, setup, interactive=False) as crm:
            context = await crm_context(sessionmaker, crm, setup, settings)
            counters = await sales_quotes.process_all(
                sessionmaker, crm, settings=settings, base_currency_id=context.base_currency_id,
                job_queue_entry_id=entry.id,
            )  # fmt: skip
    except FatalSyncError as exc:
        raise JobConfigError(exc.admin_message) from exc
    finally:
        current_actor.reset(token)
    return RunResult(changed=counters.activity)
