"""The wiring, in one place: which runner runs each job kind, which hooks each mapping's
synchronization runs.

The job queue (``app.jobs.queue``) and the engine (``app.sync.runner``) import no job kind
and no mapping hook; this module, above both and above the job kinds (``app.sales``),
hands them the tables below. Nothing registers itself on import: adding a job kind or a
mapping hook means adding a line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.jobs import log_purge, queue
from app.models.integration import JobKind, JobQueueEntry, JobStatus
from app.sales import customer_statistics, item_availability, notes_sync, order_status, sales_jobs
from app.sales.order_sync import OrderHooks
from app.sales.posted_invoices import PostedInvoiceHooks
from app.settings import Settings
from app.sync import runner
from app.sync.contact_rules import ContactHooks
from app.sync.errors import FatalSyncError
from app.sync.sync_pass import MappingHooks, MappingRunResult, Progress, RunOptions

_ORDERS = OrderHooks()
_POSTED_INVOICES = PostedInvoiceHooks()

# ERP table name -> the hooks its mappings' passes run (the rest run none).
MAPPING_HOOKS: Mapping[str, MappingHooks] = {
    "contact": ContactHooks(),
    "sales_header": _ORDERS,
    "sales_line": _ORDERS,
    "sales_invoice_header": _POSTED_INVOICES,
    "sales_invoice_line": _POSTED_INVOICES,
}


async def run_mapping(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    mapping_name: str,
    options: RunOptions | None = None,
) -> MappingRunResult:
    """``app.sync.runner.run_mapping`` with every mapping's hooks."""
    return await runner.run_mapping(
        sessionmaker, crm, mapping_name=mapping_name, hooks=MAPPING_HOOKS, options=options
    )


async def run_queue_entry(
    sessionmaker: SessionMaker, *, mapping_name: str, is_full: bool, entry_id: int | None,
    settings: Settings, on_progress: Progress | None = None,
) -> int:  # fmt: skip
    """``app.sync.runner.run_queue_entry`` with every mapping's hooks."""
    return await runner.run_queue_entry(
        sessionmaker, mapping_name=mapping_name, is_full=is_full, entry_id=entry_id,
        settings=settings, hooks=MAPPING_HOOKS, on_progress=on_progress,
    )  # fmt: skip


async def _run_mapping_entry(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> queue.RunResult:
    """A mapping's synchronization (``full_sync``: every row, not only coupled ones)."""
    try:
        activity = await run_queue_entry(
            sessionmaker,
            mapping_name=entry.mapping_name,
            is_full=entry.kind == JobKind.full_sync,
            entry_id=entry.id,
            settings=settings,
        )
    except FatalSyncError as exc:
        raise queue.JobConfigError(exc.admin_message) from exc
    return queue.RunResult(changed=activity)


RUNNERS: Mapping[str, queue.Runner] = {
    JobKind.purge_sync_log: log_purge.run_job,
    JobKind.mapping_sync: _run_mapping_entry,
    JobKind.full_sync: _run_mapping_entry,
    JobKind.customer_statistics: customer_statistics.run_job,
    JobKind.auto_create_sales_orders: sales_jobs.run_auto_create_sales_orders,
    JobKind.auto_process_sales_quotes: sales_jobs.run_auto_process_sales_quotes,
    JobKind.order_status: order_status.run,
    JobKind.notes: notes_sync.run,
    JobKind.item_availability: item_availability.run,
}


def can_run(kind: JobKind | str) -> bool:
    return kind in RUNNERS


def runner_for(kind: JobKind | str) -> queue.Runner:
    runner_of_kind = RUNNERS.get(kind)  # rows load the kind as plain text; StrEnum keys match
    if runner_of_kind is None:
        msg = f"Job kind {str(kind)!r} cannot run yet in this version of Salesbridge."
        raise queue.JobConfigError(msg)
    return runner_of_kind


async def run_entry(
    sessionmaker: SessionMaker, *, run: queue.Claim, settings: Settings, timeout_seconds: int
) -> JobStatus | None:
    """Run a claimed job queue entry with its kind's runner (``queue.run_claimed``)."""
    return await queue.run_claimed(
        sessionmaker, run=run, settings=settings, timeout_seconds=timeout_seconds,
        runner_for=runner_for,
    )  # fmt: skip
