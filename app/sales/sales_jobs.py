"""Job queue runners of the sales document jobs (auto create orders, process quotes).

Both need what every codeunit-style job needs (``crm_jobs.open_crm``: the enabled
connection, a CRM client, the sync's actor) plus the CRM base currency, because a CRM
document in it is in LCY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from app.db import SessionMaker, session_scope
from app.jobs import crm_jobs
from app.jobs.queue import JobConfigError, RunResult
from app.models.integration import ConnectionSetup, JobQueueEntry
from app.sales import sales_orders, sales_quotes
from app.settings import Settings
from app.sync import crm_rules
from app.sync.errors import FatalSyncError

if TYPE_CHECKING:
    from app.dataverse import DataverseClient


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


DocumentJob = Callable[
    [SessionMaker, "DataverseClient", Settings, crm_rules.CrmContext, int | None], Awaitable[int]
]


async def _run(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings, job: DocumentJob
) -> RunResult:
    try:
        async with crm_jobs.open_crm(sessionmaker, settings) as opened:
            context = await crm_context(sessionmaker, opened.crm, opened.setup, settings)
            changed = await job(sessionmaker, opened.crm, settings, context, entry.id)
    except FatalSyncError as exc:
        raise JobConfigError(exc.admin_message) from exc
    return RunResult(changed=changed)


async def _create_orders(
    sessionmaker: SessionMaker, crm: DataverseClient, settings: Settings,
    context: crm_rules.CrmContext, entry_id: int | None,
) -> int:  # fmt: skip
    results = await sales_orders.create_all(
        sessionmaker, crm, settings=settings, base_currency_id=context.base_currency_id,
        job_queue_entry_id=entry_id,
    )  # fmt: skip
    return len(results)


async def _process_quotes(
    sessionmaker: SessionMaker, crm: DataverseClient, settings: Settings,
    context: crm_rules.CrmContext, entry_id: int | None,
) -> int:  # fmt: skip
    counters = await sales_quotes.process_all(
        sessionmaker, crm, settings=settings, base_currency_id=context.base_currency_id,
        job_queue_entry_id=entry_id,
    )  # fmt: skip
    return counters.activity


async def run_auto_create_sales_orders(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> RunResult:
    return await _run(sessionmaker, entry, settings, _create_orders)


async def run_auto_process_sales_quotes(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> RunResult:
    return await _run(sessionmaker, entry, settings, _process_quotes)
