"""Redis losing its triggers mid-run (flushed, or restarted without persistence), and
deliveries repeated by arq: the database says what is due, so nothing is lost or done twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlmodel import func, select

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.jobs import queue, scheduling
from app.models.integration import (
    ConnectionSetup,
    IntegrationRecord,
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.reliability import company, consistency
from tests.reliability.conftest import (
    OwnRedis,
    all_entries,
    assert_consistent,
    queue_full_sync,
    wait_at_rest,
)
from tests.workers.conftest import SALESBRIDGE_WORKER, WorkerProcess, wait_for
from workers import tasks
from workers.queue import QUEUE_NAME, create_queue_pool, entry_job_id

SIZE = company.Size(items=200, customers=20)


async def _queued_ids(pool: ArqRedis) -> set[str]:
    return {key.decode() for key in await pool.zrange(QUEUE_NAME, 0, -1)}


async def _startable_due(sessionmaker: SessionMaker) -> set[str]:
    async with sessionmaker() as session:
        due = await queue.find_due(session, now=utc_now())
        startable = await scheduling.startable(session, [d.entry_id for d in due])
    return {entry_job_id(d.entry_id, d.run_count) for d in due if d.entry_id in startable}


async def _one_tick_requeues_what_is_due(sessionmaker: SessionMaker, pool: ArqRedis) -> set[str]:
    """After Redis lost everything: one tick puts back a trigger for every due entry.

    The worker goes on meanwhile, so an entry due before the tick may already have been
    picked up and claimed (its run number moved on) instead of waiting in the queue.
    """
    due = await _startable_due(sessionmaker)
    await tasks.tick({"redis": pool, "sessionmaker": sessionmaker})
    queued = await _queued_ids(pool)
    runs = {e.id: e.run_count for e in await all_entries(sessionmaker)}
    lost = {
        job_id for job_id in due - queued
        if runs[int(job_id.split(":")[1])] <= int(job_id.split(":")[2])
    }  # fmt: skip
    assert not lost, f"due entries not re-enqueued by one tick: {lost}"
    return due


async def _requests_reached(sandbox: RunningSandbox, count: int) -> bool:
    return sandbox.state.counters.total_requests >= count


async def test_redis_flushed_mid_run_loses_nothing(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, connected: ConnectionSetup,
    arq_pool: ArqRedis, start_worker: Callable[[list[str]], WorkerProcess],
) -> None:  # fmt: skip
    await company.seed(sessionmaker, SIZE)
    baseline = consistency.baseline_of(sandbox)
    entry_ids = await queue_full_sync(sessionmaker)  # before the worker runs anything else
    worker = start_worker(SALESBRIDGE_WORKER)
    await worker.wait_started("worker_started")
    await wait_for(lambda: _requests_reached(sandbox, 8), timeout=60, what="the sync to start",
                   details=lambda: worker.output)  # fmt: skip
    await arq_pool.flushdb()
    requeued = await _one_tick_requeues_what_is_due(sessionmaker, arq_pool)
    print(f"queue faults: flushed; {len(requeued)} due entries re-enqueued by one tick")  # noqa: T201
    await wait_at_rest(sessionmaker, entry_ids, timeout=120, details=lambda: worker.output)
    snap = await consistency.snapshot(sessionmaker, sandbox)
    assert_consistent(consistency.problems_at_rest(snap, baseline=baseline), "after a flush")


@pytest.mark.slow
async def test_redis_restarted_mid_run_loses_nothing(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, connected: ConnectionSetup,
    queue_settings: Settings, own_redis: OwnRedis,
    start_worker: Callable[[list[str]], WorkerProcess],
) -> None:  # fmt: skip
    await company.seed(sessionmaker, SIZE)
    baseline = consistency.baseline_of(sandbox)
    queue_settings.redis_url = own_redis.url  # the workers start with these settings
    entry_ids = await queue_full_sync(sessionmaker)  # before the worker runs anything else
    worker = start_worker(SALESBRIDGE_WORKER)
    await worker.wait_started("worker_started")
    await wait_for(lambda: _requests_reached(sandbox, 8), timeout=60, what="the sync to start",
                   details=lambda: worker.output)  # fmt: skip
    own_redis.stop()
    await asyncio.sleep(1.5)  # the worker meets a dead Redis for at least one tick
    own_redis.start()
    pool = await create_queue_pool(queue_settings)
    try:
        requeued = await _one_tick_requeues_what_is_due(sessionmaker, pool)
    finally:
        await pool.aclose()
    print(f"queue faults: restarted; {len(requeued)} due entries re-enqueued by one tick")  # noqa: T201
    await wait_at_rest(sessionmaker, entry_ids, timeout=120, details=lambda: worker.output)
    assert worker.process.poll() is None, worker.output  # the worker rode out the outage
    assert "redis_lost" in worker.output, worker.output  # ... and noticed it
    snap = await consistency.snapshot(sessionmaker, sandbox)
    assert_consistent(consistency.problems_at_rest(snap, baseline=baseline), "after a restart")


async def _state(sessionmaker: SessionMaker) -> dict[str, Any]:
    async with sessionmaker() as session:
        couplings = list(await session.exec(select(IntegrationRecord)))
        job_rows = (await session.exec(select(func.count()).select_from(IntegrationSynchJob))).one()
    entries = [{n: getattr(e, n) for n in JobQueueEntry.model_fields}
               for e in await all_entries(sessionmaker)]  # fmt: skip
    rows = [{n: getattr(c, n) for n in IntegrationRecord.model_fields} for c in couplings]
    return {"couplings": rows, "jobs": job_rows,
            "entries": entries}  # fmt: skip


async def test_a_sync_delivered_twice_changes_nothing_the_second_time(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, connected: ConnectionSetup,
    queue_settings: Settings,
) -> None:  # fmt: skip
    await company.seed(sessionmaker, company.Size(items=30, customers=5))
    async with session_scope(sessionmaker) as session:
        (entry,) = await scheduling.request_runs(
            session, kind=JobKind.full_sync, names=["UNIT OF MEASURE"]
        )
        await session.flush()
        assert entry.id is not None
        entry_id, run_count = entry.id, entry.run_count
    ctx = {"settings": queue_settings, "sessionmaker": sessionmaker, "worker_id": "test:1"}
    # arq at-least-once: the same trigger delivered twice at once, then once more later.
    first = await asyncio.gather(
        tasks.run_entry(ctx, entry_id, run_count), tasks.run_entry(ctx, entry_id, run_count)
    )
    assert sorted(first) == ["finished", "not claimed"]
    before = await _state(sessionmaker)
    crm_before = {name: sorted(rows) for name, rows in consistency.crm_rows(sandbox).items()}
    requests = sandbox.state.counters.total_requests
    assert await tasks.run_entry(ctx, entry_id, run_count) == "not claimed"
    assert await _state(sessionmaker) == before
    crm_after = {name: sorted(rows) for name, rows in consistency.crm_rows(sandbox).items()}
    assert crm_after == crm_before
    assert sandbox.state.counters.total_requests == requests  # not even a read
    assert len(sandbox.state.rows("uomschedules")) == len(company.UNITS)
