"""The sync log: ``integration_synch_job`` rows with counters, one error row per failed record.

One job row per direction per run. Counters are added per page in the
page's own transaction, so the log always matches what was committed. A coupling that
fails with the same message in two consecutive jobs of one direction becomes skipped
(BC's ``IsSameFailureRepeatedTwice``); an administrator restores it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import current_actor
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    SynchResult,
)
from app.sync.conflicts import SyncAction

MESSAGE_LENGTH = 2048


@dataclass
class Counters:
    inserted: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    coupled: int = 0
    uncoupled: int = 0

    def count(self, action: SyncAction) -> None:
        name = {
            SyncAction.insert: "inserted",
            SyncAction.modify: "modified",
            SyncAction.unchanged: "unchanged",
            SyncAction.skip: "skipped",
            SyncAction.fail: "failed",
            SyncAction.uncouple: "uncoupled",
        }.get(action)
        if name is not None:
            setattr(self, name, getattr(self, name) + 1)

    def merge(self, other: Counters) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def activity(self) -> int:
        """What the inactivity timeout looks at: unchanged and skipped are not activity."""
        return self.inserted + self.modified + self.deleted + self.failed

    @property
    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(self))


async def start_job(
    session: AsyncSession,
    *,
    mapping_name: str,
    direction: Direction,
    started_at: datetime,
    job_queue_entry_id: int | None = None,
) -> IntegrationSynchJob:
    job = IntegrationSynchJob(
        mapping_name=mapping_name,
        direction=direction,
        started_at=started_at,
        job_queue_entry_id=job_queue_entry_id,
    )
    session.add(job)
    await session.flush()
    return job


async def add_counters(session: AsyncSession, *, job_id: uuid.UUID, counters: Counters) -> None:
    """Add a page's counters to the job row (a relative UPDATE: pages never overwrite)."""
    values = {
        field.name: getattr(IntegrationSynchJob, field.name) + getattr(counters, field.name)
        for field in fields(counters)
        if getattr(counters, field.name)
    }
    if not values:
        return
    statement = (
        update(IntegrationSynchJob)
        .where(col(IntegrationSynchJob.system_id) == job_id)
        .values(**values, modified_at=utc_now(), modified_by=current_actor.get())
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def finish_job(
    session: AsyncSession, *, job_id: uuid.UUID, finished_at: datetime, message: str = ""
) -> None:
    statement = (
        update(IntegrationSynchJob)
        .where(col(IntegrationSynchJob.system_id) == job_id)
        .values(
            finished_at=finished_at,
            message=message[:MESSAGE_LENGTH],
            modified_at=utc_now(),
            modified_by=current_actor.get(),
        )
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


@dataclass(frozen=True)
class RecordError:
    source_table: str
    source_id: str
    destination_table: str
    destination_id: str
    message: str
    detail: str = ""


def log_error(session: AsyncSession, *, job_id: uuid.UUID, error: RecordError) -> None:
    session.add(
        IntegrationSynchJobError(
            job_id=job_id,
            source_table=error.source_table,
            source_id=error.source_id[:100],
            destination_table=error.destination_table,
            destination_id=error.destination_id[:100],
            message=error.message[:MESSAGE_LENGTH],
            detail=error.detail,
            at=utc_now(),
        )
    )


def _last_job_and_result(
    coupling: IntegrationRecord, direction: Direction
) -> tuple[uuid.UUID | None, SynchResult | None]:
    if direction == Direction.to_crm:
        return coupling.last_synch_crm_job_id, coupling.last_synch_crm_result
    return coupling.last_synch_job_id, coupling.last_synch_result


async def _failed_the_same_before(
    session: AsyncSession, coupling: IntegrationRecord, *, direction: Direction, message: str
) -> bool:
    previous_job, previous_result = _last_job_and_result(coupling, direction)
    if previous_job is None or previous_result != SynchResult.failure:
        return False
    source_id = str(coupling.integration_id if direction == Direction.to_crm else coupling.crm_id)
    statement = (
        select(IntegrationSynchJobError.message)
        .where(
            IntegrationSynchJobError.job_id == previous_job,
            IntegrationSynchJobError.source_id == source_id,
        )
        .order_by(col(IntegrationSynchJobError.id).desc())
        .limit(1)
    )
    previous = (await session.exec(statement)).first()
    return previous == message[:MESSAGE_LENGTH]


async def mark_failed(
    session: AsyncSession,
    coupling: IntegrationRecord,
    *,
    direction: Direction,
    job_id: uuid.UUID,
    message: str,
) -> bool:
    """Record a failure on the coupling; True when it is now skipped (same error twice)."""
    is_repeated = await _failed_the_same_before(
        session, coupling, direction=direction, message=message
    )
    if direction == Direction.to_crm:
        coupling.last_synch_crm_result = SynchResult.failure
        coupling.last_synch_crm_job_id = job_id
    else:
        coupling.last_synch_result = SynchResult.failure
        coupling.last_synch_job_id = job_id
    if is_repeated:
        coupling.skipped = True
    return is_repeated


def _later(stored: datetime | None, new: datetime | None) -> datetime | None:
    if new is None:
        return stored
    if stored is None or new > stored:
        return new
    return stored


def mark_succeeded(
    coupling: IntegrationRecord,
    *,
    direction: Direction,
    job_id: uuid.UUID,
    erp_modified_at: datetime | None,
    crm_modified_on: datetime | None,
) -> None:
    """Store both sides' modified-on (only forward) and the direction's result."""
    coupling.last_synch_modified_on = _later(coupling.last_synch_modified_on, erp_modified_at)
    coupling.last_synch_crm_modified_on = _later(
        coupling.last_synch_crm_modified_on, crm_modified_on
    )
    if direction == Direction.to_crm:
        coupling.last_synch_crm_result = SynchResult.success
        coupling.last_synch_crm_job_id = job_id
    else:
        coupling.last_synch_result = SynchResult.success
        coupling.last_synch_job_id = job_id
