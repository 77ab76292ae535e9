"""A run killed mid-way leaves its sync jobs open; the entry's next claim (or giving the
entry up) closes them as interrupted, so they no longer read as running."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.jobs import queue
from app.models.integration import Direction, IntegrationSynchJob, JobQueueEntry, JobStatus
from app.sync import progress
from tests.workers.factories import create_entry


async def _killed_run(session: AsyncSession, **overrides: object) -> tuple[int, int]:
    """An entry in process whose claim ran out, with the open job of its dead run."""
    now = utc_now()
    entry = await create_entry(
        session, status=JobStatus.in_process, run_count=1, attempt=1, claimed_by="gone:1",
        claimed_until=now - timedelta(seconds=1), **overrides,
    )  # fmt: skip
    assert entry.id is not None
    job = IntegrationSynchJob(mapping_name="ITEM-PRODUCT", direction=Direction.to_crm,
                              started_at=now - timedelta(minutes=1), job_queue_entry_id=entry.id,
                              inserted=7)  # fmt: skip
    session.add(job)
    await session.commit()
    assert job.id is not None
    return entry.id, job.id


async def _job(sessionmaker: SessionMaker, job_id: int) -> IntegrationSynchJob:
    async with sessionmaker() as session:
        job = await session.get(IntegrationSynchJob, job_id)
    assert job is not None
    return job


async def test_the_next_claim_closes_the_dead_runs_jobs(
    session: AsyncSession, sessionmaker: SessionMaker
) -> None:
    entry_id, job_id = await _killed_run(session)
    other_entry, other_job = await _killed_run(session)
    async with session_scope(sessionmaker) as claiming:
        run = await queue.claim(claiming, entry_id=entry_id, run_count=1, worker_id="w:2",
                               now=utc_now(), claim_seconds=60)  # fmt: skip
    assert run is not None
    closed = await _job(sessionmaker, job_id)
    assert closed.finished_at is not None and closed.message == queue.INTERRUPTED_MESSAGE
    assert closed.inserted == 7  # what the dead run committed stays counted
    untouched = await _job(sessionmaker, other_job)  # another entry's: not this claim's
    assert untouched.finished_at is None
    async with sessionmaker() as reading:
        running = await progress.running_jobs(reading, entry_ids=[entry_id])
    assert running == []


async def test_giving_an_abandoned_entry_up_closes_its_jobs(
    session: AsyncSession, sessionmaker: SessionMaker
) -> None:
    entry_id, job_id = await _killed_run(session, max_attempts=1)
    async with session_scope(sessionmaker) as ticking:
        assert await queue.give_up_abandoned(ticking, now=utc_now()) == 1
    async with sessionmaker() as reading:
        entry = await reading.get(JobQueueEntry, entry_id)
    assert entry is not None and entry.status == JobStatus.error
    closed = await _job(sessionmaker, job_id)
    assert closed.finished_at is not None and closed.message == queue.INTERRUPTED_MESSAGE
