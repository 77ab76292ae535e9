"""Three worker processes on one Redis and one PostgreSQL database, racing for every entry.

A full sync, then waves in which every recurring entry is due at once and its trigger is
delivered three times (the tick's, plus two under other job ids, as a repeated or
duplicated delivery would be). Every entry must run, each due run exactly once, and no
two runs of one entry, or of one mapping, may overlap in time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from arq.connections import ArqRedis
from sqlalchemy import update
from sqlmodel import col, select

from app.clock import as_utc, utc_now
from app.db import SessionMaker, session_scope
from app.models.integration import ConnectionSetup, IntegrationSynchJob, JobQueueEntry, JobStatus
from tests.conftest import BACKENDS
from tests.fixtures.sandbox import RunningSandbox
from tests.reliability import company, consistency
from tests.reliability.conftest import (
    all_entries,
    assert_consistent,
    queue_full_sync,
    wait_at_rest,
)
from tests.workers.conftest import SALESBRIDGE_WORKER, WorkerProcess, wait_for
from workers.queue import QUEUE_NAME

WORKERS = 3
WAVES = 2
SIZE = company.Size(items=800, customers=80)

Interval = tuple[datetime, datetime]


async def _run_intervals(sessionmaker: SessionMaker) -> dict[int, list[Interval]]:
    """Per entry, each run's span: a run's jobs (one per direction) share its start."""
    async with sessionmaker() as session:
        rows = list(await session.exec(select(IntegrationSynchJob)))
    runs: dict[tuple[int, datetime], datetime] = {}
    for job in rows:
        assert job.finished_at is not None and job.started_at is not None, job
        assert job.job_queue_entry_id is not None
        key = (job.job_queue_entry_id, as_utc(job.started_at))
        runs[key] = max(runs.get(key, as_utc(job.finished_at)), as_utc(job.finished_at))
    by_entry: dict[int, list[Interval]] = defaultdict(list)
    for (entry_id, start), end in runs.items():
        by_entry[entry_id].append((start, end))
    return by_entry


def _overlaps(intervals: list[Interval]) -> list[tuple[Interval, Interval]]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


async def _make_recurring_due(sessionmaker: SessionMaker) -> dict[int, int]:
    """Every recurring entry due now; returns their run counts before the wave."""
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.recurring))
            .values(status=JobStatus.ready, earliest_start_at=utc_now() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
    return {e.id: e.run_count for e in await all_entries(sessionmaker) if e.recurring and e.id}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgres"], indirect=True)
async def test_three_workers_run_every_entry_once_and_never_alongside_itself(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, connected: ConnectionSetup,
    arq_pool: ArqRedis, start_worker: Callable[[list[str]], WorkerProcess],
) -> None:  # fmt: skip
    await company.seed(sessionmaker, SIZE)
    baseline = consistency.baseline_of(sandbox)
    full = await queue_full_sync(sessionmaker)  # before any worker runs a recurring entry
    workers = [start_worker(SALESBRIDGE_WORKER) for _ in range(WORKERS)]
    for worker in workers:
        await worker.wait_started("worker_started")

    def logs() -> str:
        return "\n".join(w.output[-3000:] for w in workers)

    await wait_at_rest(sessionmaker, full, timeout=300, details=logs)
    for _ in range(WAVES):
        before = await _make_recurring_due(sessionmaker)
        for entry_id, run_count in before.items():
            for copy in ("a", "b"):  # the same run delivered twice more
                await arq_pool.enqueue_job("run_entry", entry_id, run_count,
                                           _job_id=f"dup-{copy}:{entry_id}:{run_count}",
                                           _queue_name=QUEUE_NAME)  # fmt: skip

        async def wave_done(before: dict[int, int] = before) -> bool:
            entries = {e.id: e for e in await all_entries(sessionmaker)}
            return all(entries[i].run_count > n and entries[i].status != JobStatus.in_process
                       for i, n in before.items())  # fmt: skip

        await wait_for(wave_done, timeout=120, what="every recurring entry to run", details=logs)
        after = {e.id: e.run_count for e in await all_entries(sessionmaker)}
        assert {i: after[i] - n for i, n in before.items()} == dict.fromkeys(before, 1)

    entries = await all_entries(sessionmaker)
    assert all(e.status != JobStatus.error for e in entries), [e.last_error for e in entries]
    intervals = await _run_intervals(sessionmaker)
    by_mapping: dict[str, list[Interval]] = defaultdict(list)
    for entry in entries:
        assert entry.id in intervals, f"{entry.mapping_name} never ran"
        assert not _overlaps(intervals[entry.id]), (entry.mapping_name, intervals[entry.id])
        by_mapping[entry.mapping_name] += intervals[entry.id]
    for mapping, spans in by_mapping.items():
        assert not _overlaps(spans), (mapping, _overlaps(spans))
    ran_on = {w.process.pid for w in workers if "job_ran" in w.output}
    print(f"scale-out: {len(entries)} entries, {sum(map(len, intervals.values()))} runs, "
          f"on {len(ran_on)} of {WORKERS} workers")  # fmt: skip  # noqa: T201
    assert len(ran_on) >= 2, logs()  # the work was shared out
    snap = await consistency.snapshot(sessionmaker, sandbox)
    assert_consistent(consistency.problems_at_rest(snap, baseline=baseline), "scale-out")
