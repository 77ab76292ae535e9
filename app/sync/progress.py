"""Progress of sync jobs: records done / total, readable while a run goes on.

Done is the sum of a job row's counters, which the engine adds per committed page.
Total is counted once when an ERP -> CRM direction starts (one indexed COUNT over the
same rows the pass reads: failed couplings, then rows modified after the watermark); a
CRM -> ERP direction leaves it unknown (None), since counting there would cost the CRM
a full extra query per run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.integration import (
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationTableMapping,
    JobQueueEntry,
    JobStatus,
)
from app.sync import erp_tables, watermarks


async def count_erp_candidates(
    session: AsyncSession,
    mapping: IntegrationTableMapping,
    *,
    watermark: datetime | None,
    only_coupled: bool,
) -> int:
    """How many ERP rows an ERP -> CRM pass will read (the failed ones may be counted twice)."""
    model = erp_tables.model_for(mapping.table_name)
    system_id = erp_tables.column(model, "system_id")
    coupling = sa.and_(
        col(IntegrationRecord.table_name) == mapping.table_name,
        col(IntegrationRecord.integration_id) == system_id,
    )
    statement = select(func.count()).select_from(model)
    statement = statement.outerjoin(IntegrationRecord, coupling)
    clause = erp_tables.filter_clause(mapping.table_name, mapping.table_filter)
    if clause is not None:
        statement = statement.where(clause)
    if only_coupled:
        statement = statement.where(col(IntegrationRecord.id).is_not(None))
    failed = statement.where(erp_tables.failed_to_crm())
    lower = watermarks.read_from(watermark)
    if lower is not None:
        statement = statement.where(erp_tables.column(model, "modified_at") > lower)
    return int((await session.exec(statement)).one()) + int((await session.exec(failed)).one())


async def set_total(session: AsyncSession, *, job_id: uuid.UUID, total: int) -> None:
    await session.exec(
        update(IntegrationSynchJob)
        .where(col(IntegrationSynchJob.system_id) == job_id)
        .values(total_records=total)
        .execution_options(synchronize_session=False)
    )


def records_done(job: IntegrationSynchJob) -> int:
    return job.inserted + job.modified + job.deleted + job.unchanged + job.skipped + job.failed


@dataclass(frozen=True)
class JobProgress:
    job_id: uuid.UUID
    mapping_name: str
    direction: str
    job_queue_entry_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    done: int
    total: int | None


def progress_of(job: IntegrationSynchJob) -> JobProgress:
    done = records_done(job)
    total = None if job.total_records is None else max(job.total_records, done)
    return JobProgress(
        job_id=job.system_id, mapping_name=job.mapping_name, direction=str(job.direction),
        job_queue_entry_id=job.job_queue_entry_id, started_at=job.started_at,
        finished_at=job.finished_at, done=done, total=total,
    )  # fmt: skip


async def running_jobs(
    session: AsyncSession, *, entry_ids: list[int] | None = None
) -> list[JobProgress]:
    """Sync jobs not finished yet (optionally of some job queue entries), oldest first.

    A job whose entry is no longer in process was cut short (its worker was killed): not
    running, so not listed. Jobs of no entry (``salesbridge sync run``) are listed.
    """
    entry = sa.and_(
        col(JobQueueEntry.id) == col(IntegrationSynchJob.job_queue_entry_id),
        col(JobQueueEntry.status) != JobStatus.in_process,
    )
    statement = (
        select(IntegrationSynchJob)
        .outerjoin(JobQueueEntry, entry)
        .where(col(IntegrationSynchJob.finished_at).is_(None), col(JobQueueEntry.id).is_(None))
    )
    if entry_ids is not None:
        statement = statement.where(col(IntegrationSynchJob.job_queue_entry_id).in_(entry_ids))
    statement = statement.order_by(col(IntegrationSynchJob.started_at), col(IntegrationSynchJob.id))
    return [progress_of(job) for job in await session.exec(statement)]
