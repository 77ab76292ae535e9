"""``run_mapping``: one run of one mapping, both directions, logged and finalized.

A bidirectional mapping runs ERP -> CRM first, then CRM -> ERP. Each
direction writes one ``integration_synch_job`` row. The signpost (the run's start time)
is fixed before anything is read; each side's watermark advances per committed page and
is finalized at the end to the newest modified-on read, never past the signpost and never
backwards. A full synchronization reads every row (not only coupled ones, from no
watermark) and leaves the watermarks where an incremental run would.

Errors: ``SkippableRecordError`` never leaves a page (it fails one record);
``FatalSyncError`` / ``RetriableSyncError`` stop the run, are written on the job row and
raised, so the job queue entry records them (and retries the retriable ones).
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.logs import get_logger
from app.mappings import option_mappings
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationFieldMapping,
    IntegrationTableMapping,
    JobQueueEntry,
)
from app.settings import Settings
from app.sync import crm_rules, from_crm, log, notified_changes, progress, to_crm, transfer
from app.sync.crm_client import build_crm_client
from app.sync.errors import FatalSyncError, SyncError
from app.sync.sync_pass import (
    NO_HOOKS,
    MappingHookTable,
    MappingRunResult,
    Progress,
    RunOptions,
    SyncPass,
    store_watermark,
)

logger = get_logger("salesbridge.sync.runner")


def directions_of(mapping: IntegrationTableMapping) -> list[Direction]:
    if mapping.direction == Direction.bidirectional:
        return [Direction.to_crm, Direction.from_crm]
    return [Direction(mapping.direction)]


async def _load(
    session: AsyncSession, crm: DataverseClient, name: str, options: RunOptions
) -> tuple[IntegrationTableMapping, list[transfer.FieldRule], crm_rules.CrmContext]:
    mapping = (
        await session.exec(
            select(IntegrationTableMapping).where(IntegrationTableMapping.name == name)
        )
    ).first()
    if mapping is None:
        msg = f"There is no integration table mapping named {name!r}."
        raise FatalSyncError(msg)
    field_rows = await session.exec(
        select(IntegrationFieldMapping).where(IntegrationFieldMapping.mapping_name == name)
    )
    setup = (await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))).first()
    if setup is None:
        msg = "The Dynamics 365 Sales connection is not set up."
        raise FatalSyncError(msg)
    needs_price_list = (
        mapping.integration_table == "product" and mapping.direction != Direction.from_crm
    )
    context = await crm_rules.prepare(
        session, crm, setup, company_name=options.company_name, needs_price_list=needs_price_list
    )
    option_tables = await option_mappings.load_option_tables(session)
    return mapping, transfer.rules_from(field_rows, option_tables), context


async def _run_direction(run: SyncPass) -> log.Counters:
    runner = to_crm.run_pass if run.direction == Direction.to_crm else from_crm.run_pass
    message = ""
    is_complete = False
    try:
        counters = await runner(run)
        is_complete = True
    except SyncError as exc:
        message = exc.admin_message
        raise
    finally:
        async with session_scope(run.sessionmaker) as session:
            # Only a pass that ended may move the watermark to the newest row it read: one
            # cut short (timeout, cancel, database error) read pages it never recorded.
            if is_complete:
                column = (
                    "erp_modified_watermark"
                    if run.direction == Direction.to_crm
                    else "crm_modified_watermark"
                )
                newest = run.newest_erp if run.direction == Direction.to_crm else run.newest_crm
                await store_watermark(session, run, column, [newest])
                if run.notified is not None:  # read, by id or by the watermark pass
                    await notified_changes.consume(
                        session, run.mapping, run.notified, now=utc_now()
                    )
            await log.finish_job(session, job_id=run.job_id, finished_at=utc_now(), message=message)
    return counters


async def run_mapping(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    mapping_name: str,
    hooks: MappingHookTable,
    options: RunOptions | None = None,
) -> MappingRunResult:
    """Run one mapping in its direction(s); see the module docstring for the rules.

    ``hooks``: the mapping hooks by ERP table name (``app.catalog.MAPPING_HOOKS``); the
    mapping's table's hooks join each pass.
    """
    options = options or RunOptions()
    token = current_actor.set(SYNC_ACTOR)
    try:
        signpost = utc_now()  # fixed before anything is read
        async with session_scope(sessionmaker) as session:
            mapping, rules, context = await _load(session, crm, mapping_name, options)
        result = MappingRunResult(mapping_name)
        mapping_hooks = hooks.get(mapping.table_name, NO_HOOKS)
        for direction in directions_of(mapping):
            if options.only_direction not in (None, direction):
                continue
            async with session_scope(sessionmaker) as session:
                job = await log.start_job(
                    session, mapping_name=mapping_name, direction=direction,
                    started_at=signpost, job_queue_entry_id=options.job_queue_entry_id,
                )  # fmt: skip
                if direction == Direction.to_crm and options.erp_ids is not None:
                    job.total_records = len(options.erp_ids)
                elif direction == Direction.to_crm:
                    job.total_records = await progress.count_erp_candidates(
                        session, mapping, watermark=None if options.is_full else
                        mapping.erp_modified_watermark,
                        only_coupled=mapping.synch_only_coupled_records and not options.is_full,
                    )  # fmt: skip
            run = SyncPass(
                sessionmaker, crm, mapping, rules, context, direction, job.system_id, signpost,
                options, mapping_hooks,
                erp_watermark=None if options.is_full else mapping.erp_modified_watermark,
                crm_watermark=None if options.is_full else mapping.crm_modified_watermark,
            )  # fmt: skip
            result.job_ids[direction] = job.system_id
            result.counters[direction] = await _run_direction(run)
        await mapping_hooks.after_run(
            sessionmaker, crm, hooks=hooks, options=options, result=result
        )
        logger.info("mapping_synchronized", mapping=mapping_name, activity=result.activity)
        return result
    finally:
        current_actor.reset(token)


async def run_queue_entry(
    sessionmaker: SessionMaker, *, mapping_name: str, is_full: bool, entry_id: int | None,
    settings: Settings, hooks: MappingHookTable, on_progress: Progress | None = None,
) -> int:  # fmt: skip
    """A job queue entry's run: the CRM client from the setup row; returns the activity."""
    async with session_scope(sessionmaker) as session:
        setup = (
            await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))
        ).first()
        entry = None if entry_id is None else await session.get(JobQueueEntry, entry_id)
    if setup is None or not setup.is_enabled:
        msg = "The Dynamics 365 Sales connection is not enabled; enable it to synchronize."
        raise FatalSyncError(msg)
    # A queued run may read only the notified CRM records; the watermark pass still runs
    # once per the entry's period. A run from the CLI (no entry) is a watermark pass.
    period = None if entry is None else timedelta(minutes=max(entry.minutes_between_runs, 1))
    options = RunOptions(
        is_full=is_full, job_queue_entry_id=entry_id, company_name=settings.company_name,
        on_progress=on_progress, use_notifications=entry is not None,
        watermark_pass_after=period,
    )  # fmt: skip
    async with build_crm_client(settings, setup, interactive=False) as crm:
        result = await run_mapping(
            sessionmaker, crm, mapping_name=mapping_name, hooks=hooks, options=options
        )
    return result.activity
