"""Wake-up: a resting mapping entry runs soon after its data changed.

Checked by the scheduler tick rather than hooked into every ERP write: one indexed
``EXISTS (modified_at > last start)`` per waiting mapping entry per tick sees changes
made by any process (the API, the CLI, another worker) and adds nothing to the hot path.
Rows written by the sync itself (``modified_by`` is the sync actor) do not wake anything,
or every CRM -> ERP run would wake its own entry. A ``dataverse_entity_change`` row wakes
the entries whose mapping reads that CRM entity and has not consumed it yet; the tick only
wakes, the mapping's run consumes the rows (``app.sync.notified_changes``), so a run that
fails leaves them for the next one.

Only entries that wait (``ready`` / ``on_hold_with_inactivity_timeout``) with a planned
start later than now + the delay move; the UPDATE is conditional on that, so ticks of
several workers, or the same change seen twice, change nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import ColumnElement, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SYNC_ACTOR, current_actor
from app.jobs.queue import WAITING_STATUSES
from app.logs import get_logger
from app.models.integration import (
    DataverseEntityChange,
    Direction,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.sync import erp_tables, notified_changes
from app.sync.errors import FatalSyncError

log = get_logger("salesbridge.wakeup")

WAKE_UP_DELAY_SECONDS = 30


async def _erp_changed(
    session: AsyncSession, mapping: IntegrationTableMapping, since: datetime | None
) -> bool:
    if mapping.direction == Direction.from_crm:
        return False
    try:
        model = erp_tables.model_for(mapping.table_name)
    except FatalSyncError:
        return False  # the run itself reports the bad table
    modified_at = erp_tables.column(model, "modified_at")
    statement = select(sa.literal(1)).where(erp_tables.column(model, "modified_by") != SYNC_ACTOR)
    if since is not None:
        statement = statement.where(modified_at > since)
    return (await session.exec(statement.limit(1))).first() is not None


async def _pending_crm_entities(session: AsyncSession) -> set[str]:
    statement = select(DataverseEntityChange.entity_name).where(
        col(DataverseEntityChange.processed_at).is_(None)
    )
    return set((await session.exec(statement.distinct())).all())


async def _crm_changed(
    session: AsyncSession, mapping: IntegrationTableMapping, pending: set[str]
) -> bool:
    if mapping.direction == Direction.to_crm or mapping.integration_table not in pending:
        return False
    return await notified_changes.has_unread(session, mapping)


async def move_entry_to(
    session: AsyncSession,
    entry: JobQueueEntry,
    *,
    start: datetime,
    condition: ColumnElement[bool] | None = None,
) -> bool:
    """Move a resting entry to start at ``start`` if that is earlier than planned (and
    ``condition`` holds); conditional on the entry being as read, so two wakers never
    move it twice. True when this call moved it."""
    statement = (
        update(JobQueueEntry)
        .where(
            col(JobQueueEntry.id) == entry.id,
            col(JobQueueEntry.run_count) == entry.run_count,
            col(JobQueueEntry.status).in_(WAITING_STATUSES),
            col(JobQueueEntry.earliest_start_at) > start,
            *(() if condition is None else (condition,)),
        )
        .values(
            status=JobStatus.ready,
            earliest_start_at=start,
            modified_at=start,
            modified_by=current_actor.get(),
        )
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1


async def _resting_entries(
    session: AsyncSession, start: datetime
) -> list[tuple[JobQueueEntry, IntegrationTableMapping]]:
    statement = (
        select(JobQueueEntry, IntegrationTableMapping)
        .join(
            IntegrationTableMapping,
            col(IntegrationTableMapping.name) == col(JobQueueEntry.mapping_name),
        )
        .where(
            col(JobQueueEntry.kind) == JobKind.mapping_sync,
            col(JobQueueEntry.recurring).is_(True),
            col(JobQueueEntry.status).in_(WAITING_STATUSES),
            col(JobQueueEntry.earliest_start_at) > start,
        )
    )
    return [(entry, mapping) for entry, mapping in (await session.exec(statement)).all()]


async def wake_changed_entries(
    session: AsyncSession, *, now: datetime, delay_seconds: int = WAKE_UP_DELAY_SECONDS
) -> int:
    """Move resting entries whose data changed to start at now + delay; returns how many."""
    start = now + timedelta(seconds=delay_seconds)
    crm_changed = await _pending_crm_entities(session)  # one query, then per mapping
    woken = 0
    for entry, mapping in await _resting_entries(session, start):
        changed = await _crm_changed(session, mapping, crm_changed) or await _erp_changed(
            session, mapping, entry.last_started_at
        )
        if changed and await move_entry_to(session, entry, start=start):
            woken += 1
            log.info("entry_woken", entry_id=entry.id, mapping=mapping.name)
    return woken
