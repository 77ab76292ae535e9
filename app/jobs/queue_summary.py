"""The job queue at a glance: how many entries run, failed, wait on hold, and what is next."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.jobs.scheduling import DONE
from app.models.integration import JobQueueEntry, JobStatus


@dataclass(frozen=True)
class QueueSummary:
    running: int
    failed: int
    on_hold: int
    ready: int
    next_entry: JobQueueEntry | None  # the ready entry that starts first


async def summarize_queue(session: AsyncSession) -> QueueSummary:
    statement = select(JobQueueEntry.status, func.count()).group_by(col(JobQueueEntry.status))
    counts = {str(status): int(count) for status, count in await session.exec(statement)}
    upcoming = (
        select(JobQueueEntry)
        .where(JobQueueEntry.status == JobStatus.ready)
        .order_by(col(JobQueueEntry.earliest_start_at), col(JobQueueEntry.id))
        .limit(1)
    )
    return QueueSummary(
        running=counts.get(JobStatus.in_process, 0),
        failed=counts.get(JobStatus.error, 0),
        on_hold=counts.get(JobStatus.on_hold, 0)
        + counts.get(JobStatus.on_hold_with_inactivity_timeout, 0),
        ready=counts.get(JobStatus.ready, 0),
        next_entry=(await session.exec(upcoming)).first(),
    )


@dataclass(frozen=True)
class EntriesState:
    entries: list[JobQueueEntry]

    @property
    def is_done(self) -> bool:
        return all(entry.status in DONE for entry in self.entries)

    @property
    def failed(self) -> list[JobQueueEntry]:
        return [entry for entry in self.entries if entry.status == JobStatus.error]


async def entries_state(session: AsyncSession, entry_ids: list[int]) -> EntriesState:
    """Where some entries stand (a full synchronization's, say), in id order."""
    statement = (
        select(JobQueueEntry)
        .where(col(JobQueueEntry.id).in_(entry_ids))
        .order_by(col(JobQueueEntry.id))
    )
    return EntriesState(list(await session.exec(statement)))
