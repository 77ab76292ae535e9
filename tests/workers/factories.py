"""Rows for job queue tests: entries and sync log jobs with their errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.models.integration import (
    Direction,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobKind,
    JobQueueEntry,
    JobStatus,
)


async def create_entry(session: AsyncSession, **overrides: Any) -> JobQueueEntry:
    values: dict[str, Any] = {
        "kind": JobKind.purge_sync_log,
        "description": "Purge sync log",
        "status": JobStatus.ready,
        "recurring": False,
        "earliest_start_at": utc_now() - timedelta(seconds=1),
        "max_attempts": 3,
        "rerun_delay_seconds": 30,
        "parameters": {"older_than_days": 30},
    }
    entry = JobQueueEntry(**{**values, **overrides})
    session.add(entry)
    await session.commit()
    await session.refresh(entry)
    return entry


async def create_sync_job(
    session: AsyncSession,
    *,
    started_at: datetime,
    errors: int = 0,
    mapping_name: str = "ITEM-PRODUCT",
) -> IntegrationSynchJob:
    job = IntegrationSynchJob(
        mapping_name=mapping_name, direction=Direction.to_crm, started_at=started_at, failed=errors
    )
    session.add(job)
    await session.flush()
    for number in range(errors):
        session.add(
            IntegrationSynchJobError(job_id=job.system_id, message=f"error {number}", at=started_at)
        )
    await session.commit()
    return job


async def create_sync_log(
    session: AsyncSession, *, old: int, young: int, errors_each: int = 1
) -> None:
    """``old`` jobs from 40 days ago and ``young`` from an hour ago, each with errors."""
    now = utc_now()
    for _ in range(old):
        await create_sync_job(session, started_at=now - timedelta(days=40), errors=errors_each)
    for _ in range(young):
        await create_sync_job(session, started_at=now - timedelta(hours=1), errors=errors_each)
