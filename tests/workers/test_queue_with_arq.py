"""The tick and run_entry tasks with real arq workers and real Redis.

Processes race and die here on purpose: the database must keep every entry run exactly
once per due time, whatever Redis delivers.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import func
from sqlmodel import select

from app.db import SessionMaker, session_scope
from app.models.integration import IntegrationSynchJob, JobQueueEntry, JobStatus
from app.settings import Settings
from tests.workers.conftest import (
    ARQ_WORKER,
    SALESBRIDGE_WORKER,
    WorkerProcess,
    run_burst_worker,
    wait_for,
)
from tests.workers.factories import create_entry, create_sync_log
from workers import tasks
from workers.queue import QUEUE_NAME, enqueue_entry


async def _entry(sessionmaker: SessionMaker, entry_id: int | None) -> JobQueueEntry:
    async with sessionmaker() as session:
        entry = await session.get(JobQueueEntry, entry_id)
    assert entry is not None
    return entry


def _columns(entry: JobQueueEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in JobQueueEntry.model_fields}


async def _sync_jobs(sessionmaker: SessionMaker) -> int:
    async with sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(IntegrationSynchJob))).one()


async def _set_ready(sessionmaker: SessionMaker, entry_id: int | None) -> None:
    async with session_scope(sessionmaker) as session:
        entry = await session.get(JobQueueEntry, entry_id)
        assert entry is not None
        entry.status = JobStatus.ready
        session.add(entry)


async def _queue_is_idle(pool: ArqRedis) -> bool:
    """No run_entry delivery queued or running (the workers' own tick jobs aside)."""
    queued = await pool.zrange(QUEUE_NAME, 0, -1)
    running = await pool.keys("arq:in-progress:*")
    ticks = [key for key in [*queued, *running] if b"tick:" in key]
    return len(ticks) == len(queued) + len(running)


async def test_tick_enqueues_a_due_entry_once_and_a_worker_runs_it(
    sessionmaker: SessionMaker,
    queue_settings: Settings,
    arq_pool: ArqRedis,
    tick_ctx: dict[str, Any],
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session)
        await create_entry(session, status=JobStatus.on_hold)
        await create_sync_log(session, old=2, young=1)
    assert await tasks.tick(tick_ctx) == 1
    assert await tasks.tick(tick_ctx) == 0  # already queued: a second tick adds nothing
    assert await arq_pool.zcard(QUEUE_NAME) == 1
    assert await run_burst_worker(queue_settings) == 1
    fresh = await _entry(sessionmaker, entry.id)
    assert (fresh.status, fresh.run_count) == (JobStatus.finished, 1)
    assert await _sync_jobs(sessionmaker) == 1


async def test_after_redis_loses_everything_the_next_tick_enqueues_again(
    sessionmaker: SessionMaker,
    queue_settings: Settings,
    arq_pool: ArqRedis,
    tick_ctx: dict[str, Any],
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session)
    assert await tasks.tick(tick_ctx) == 1
    await arq_pool.flushdb()
    assert await arq_pool.zcard(QUEUE_NAME) == 0
    assert await tasks.tick(tick_ctx) == 1
    assert await run_burst_worker(queue_settings) == 1
    fresh = await _entry(sessionmaker, entry.id)
    assert (fresh.status, fresh.run_count) == (JobStatus.finished, 1)


async def test_a_second_delivery_of_a_finished_run_changes_nothing(
    sessionmaker: SessionMaker,
    queue_settings: Settings,
    arq_pool: ArqRedis,
    tick_ctx: dict[str, Any],
) -> None:
    async with sessionmaker() as session:
        one_off = await create_entry(session)
        recurring = await create_entry(session, recurring=True, minutes_between_runs=1)
    assert await tasks.tick(tick_ctx) == 2
    await run_burst_worker(queue_settings)
    before = [_columns(await _entry(sessionmaker, e.id)) for e in (one_off, recurring)]
    assert [row["status"] for row in before] == [JobStatus.finished, JobStatus.ready]
    for entry in (one_off, recurring):
        assert entry.id is not None
        assert await enqueue_entry(arq_pool, entry_id=entry.id, run_count=0)
    assert await run_burst_worker(queue_settings) == 2  # both delivered, both did nothing
    after = [_columns(await _entry(sessionmaker, e.id)) for e in (one_off, recurring)]
    assert after == before


async def test_two_worker_processes_racing_run_an_entry_exactly_once(
    sessionmaker: SessionMaker,
    arq_pool: ArqRedis,
    start_worker: Callable[[list[str]], WorkerProcess],
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session, status=JobStatus.on_hold)
        await create_sync_log(session, old=3, young=1)
    workers = [start_worker(SALESBRIDGE_WORKER), start_worker(SALESBRIDGE_WORKER)]
    for worker in workers:
        await worker.wait_started("worker_started")
    await _set_ready(sessionmaker, entry.id)
    # Besides the ticks of both workers, deliver the same run twice more under other job
    # ids, so the workers also race in the database claim, not only in arq.
    for job_id in ("duplicate-a", "duplicate-b"):
        await arq_pool.enqueue_job("run_entry", entry.id, 0, _job_id=job_id, _queue_name=QUEUE_NAME)

    async def is_finished() -> bool:
        return (await _entry(sessionmaker, entry.id)).status == JobStatus.finished

    def logs() -> str:
        return "\n".join(worker.output for worker in workers)

    await wait_for(is_finished, timeout=30, what="the entry to finish", details=logs)
    await wait_for(
        lambda: _queue_is_idle(arq_pool), timeout=30, what="all deliveries to end", details=logs
    )
    fresh = await _entry(sessionmaker, entry.id)
    assert (fresh.run_count, fresh.attempt, fresh.last_error) == (1, 0, ""), logs()
    assert await _sync_jobs(sessionmaker) == 1
    assert logs().count("job_ran") == 1, logs()
    assert logs().count("entry_not_claimed") >= 1, logs()  # a duplicate lost the claim race


async def test_a_run_whose_worker_is_killed_runs_again_on_another_worker(
    sessionmaker: SessionMaker,
    arq_pool: ArqRedis,
    start_worker: Callable[[list[str]], WorkerProcess],
) -> None:
    parameters = {"older_than_days": 30, "batch_size": 1, "pause_seconds": 1}
    async with sessionmaker() as session:
        entry = await create_entry(session, status=JobStatus.on_hold, parameters=parameters)
        await create_sync_log(session, old=4, young=1, errors_each=1)
    workers = [start_worker(SALESBRIDGE_WORKER), start_worker(ARQ_WORKER)]
    await workers[0].wait_started("worker_started")
    await workers[1].wait_started("Starting worker")
    await _set_ready(sessionmaker, entry.id)

    async def first_batch_done() -> bool:
        return await _sync_jobs(sessionmaker) < 5

    def logs() -> str:
        return "\n".join(worker.output for worker in workers)

    await wait_for(first_batch_done, timeout=30, what="the first purge batch", details=logs)
    running = await _entry(sessionmaker, entry.id)
    assert running.status == JobStatus.in_process
    victim = int(running.claimed_by.rsplit(":", 1)[1])
    assert victim in {worker.process.pid for worker in workers}
    os.kill(victim, signal.SIGKILL)

    async def is_finished() -> bool:
        return (await _entry(sessionmaker, entry.id)).status == JobStatus.finished

    await wait_for(is_finished, timeout=60, what="the surviving worker's run", details=logs)
    fresh = await _entry(sessionmaker, entry.id)
    assert (fresh.run_count, fresh.attempt, fresh.last_error) == (2, 0, "")
    assert await _sync_jobs(sessionmaker) == 1  # the young one; all old ones are gone
