"""The job queue's state machine in the database (app.jobs.queue), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from app import catalog
from app.clock import as_utc, utc_now
from app.db import SessionMaker, session_scope
from app.jobs import queue
from app.models.integration import (
    ConnectionSetup,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings
from tests.workers.factories import create_entry, create_sync_log

WORKER = "test-host:1"


async def _claim(
    sessionmaker: SessionMaker,
    entry: JobQueueEntry,
    *,
    run_count: int | None = None,
    worker_id: str = WORKER,
    claim_seconds: int = 60,
) -> queue.Claim | None:
    assert entry.id is not None
    async with session_scope(sessionmaker) as session:
        return await queue.claim(
            session,
            entry_id=entry.id,
            run_count=entry.run_count if run_count is None else run_count,
            worker_id=worker_id,
            now=utc_now(),
            claim_seconds=claim_seconds,
        )


async def _reload(sessionmaker: SessionMaker, entry: JobQueueEntry) -> JobQueueEntry:
    async with sessionmaker() as session:
        fresh = await session.get(JobQueueEntry, entry.id)
    assert fresh is not None
    return fresh


async def _count(sessionmaker: SessionMaker, model: type) -> int:
    async with sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_find_due_picks_what_is_due_and_nothing_else(sessionmaker: SessionMaker) -> None:
    now = utc_now()
    async with sessionmaker() as session:
        due_ready = await create_entry(session)
        due_waking = await create_entry(session, status=JobStatus.on_hold_with_inactivity_timeout)
        abandoned = await create_entry(
            session, status=JobStatus.in_process, claimed_until=now - timedelta(seconds=1)
        )
        await create_entry(session, earliest_start_at=now + timedelta(minutes=5))
        await create_entry(session, status=JobStatus.on_hold)
        await create_entry(session, status=JobStatus.finished)
        await create_entry(session, status=JobStatus.error)
        await create_entry(
            session, status=JobStatus.in_process, claimed_until=now + timedelta(minutes=1)
        )
        due = await queue.find_due(session, now=now)
    assert {d.entry_id for d in due} == {due_ready.id, due_waking.id, abandoned.id}


async def test_only_one_claim_wins_and_a_stale_run_count_claims_nothing(
    sessionmaker: SessionMaker,
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session)
    first, second = await asyncio.gather(
        _claim(sessionmaker, entry, worker_id="a:1"), _claim(sessionmaker, entry, worker_id="b:2")
    )
    claims = [c for c in (first, second) if c is not None]
    assert len(claims) == 1
    fresh = await _reload(sessionmaker, entry)
    assert fresh.status == JobStatus.in_process
    assert (fresh.run_count, fresh.attempt) == (1, 1)
    assert fresh.claimed_by == claims[0].worker_id
    assert await _claim(sessionmaker, entry, run_count=1) is None  # claimed, not expired


async def test_successful_one_off_run_finishes_and_purges_old_logs(
    sessionmaker: SessionMaker,
    settings: Settings,
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session, parameters={"older_than_days": 30, "batch_size": 2})
        await create_sync_log(session, old=5, young=2, errors_each=2)
    run = await _claim(sessionmaker, entry)
    assert run is not None
    status = await catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=30)
    assert status == JobStatus.finished
    fresh = await _reload(sessionmaker, entry)
    assert (fresh.attempt, fresh.last_error, fresh.claimed_by) == (0, "", "")
    assert fresh.claimed_until is None and fresh.last_finished_at is not None
    assert await _count(sessionmaker, IntegrationSynchJob) == 2
    assert await _count(sessionmaker, IntegrationSynchJobError) == 4


async def test_recurring_entry_is_rescheduled_or_rests_when_idle(
    sessionmaker: SessionMaker,
    settings: Settings,
) -> None:
    async with sessionmaker() as session:
        busy = await create_entry(session, recurring=True, minutes_between_runs=30)
        idle = await create_entry(
            session, recurring=True, minutes_between_runs=30, inactivity_timeout_minutes=120
        )
        await create_sync_log(session, old=1, young=0)
    for entry in (busy, idle):  # the first run deletes the old log row, the second finds none
        run = await _claim(sessionmaker, entry)
        assert run is not None
        await catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=30)
    busy, idle = await _reload(sessionmaker, busy), await _reload(sessionmaker, idle)
    assert busy.status == JobStatus.ready
    assert busy.earliest_start_at is not None and busy.last_finished_at is not None
    assert as_utc(busy.earliest_start_at) - as_utc(busy.last_finished_at) == timedelta(minutes=30)
    assert idle.status == JobStatus.on_hold_with_inactivity_timeout
    assert idle.earliest_start_at is not None and idle.last_finished_at is not None
    assert as_utc(idle.earliest_start_at) - as_utc(idle.last_finished_at) == timedelta(hours=2)


async def test_failures_retry_after_the_rerun_delay_then_end_in_error(
    sessionmaker: SessionMaker,
    settings: Settings,
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session, max_attempts=2, rerun_delay_seconds=45)
    run = await _claim(sessionmaker, entry)
    assert run is not None
    async with session_scope(sessionmaker) as session:
        loaded = await session.get(JobQueueEntry, entry.id)
        assert loaded is not None
        now = utc_now()
        assert await queue.fail(session, run=run, entry=loaded, message="CRM said 503", now=now)
    fresh = await _reload(sessionmaker, entry)
    assert (fresh.status, fresh.attempt, fresh.last_error) == (JobStatus.ready, 1, "CRM said 503")
    assert fresh.earliest_start_at is not None
    assert as_utc(fresh.earliest_start_at) - now == timedelta(seconds=45)
    async with session_scope(sessionmaker) as session:  # due again now, for the second attempt
        fresh.earliest_start_at = utc_now() - timedelta(seconds=1)
        session.add(fresh)
    run = await _claim(sessionmaker, fresh)
    assert run is not None
    async with session_scope(sessionmaker) as session:
        loaded = await session.get(JobQueueEntry, entry.id)
        assert loaded is not None
        await queue.fail(
            session, run=run, entry=loaded, message="CRM said 503 again", now=utc_now()
        )
    fresh = await _reload(sessionmaker, entry)
    assert (fresh.status, fresh.attempt) == (JobStatus.error, 2)
    assert fresh.last_error == "CRM said 503 again"
    assert await _claim(sessionmaker, fresh) is None


async def test_a_kind_that_cannot_run_goes_to_error_without_retries(
    sessionmaker: SessionMaker,
    settings: Settings,
) -> None:
    async with sessionmaker() as session:
        # A kind this version has no runner for (say, written by a newer version).
        unknown = await create_entry(session, kind="retired_kind", max_attempts=5)
        bad = await create_entry(session, parameters={"older_than_days": "soon"})
    for entry in (unknown, bad):
        run = await _claim(sessionmaker, entry)
        assert run is not None
        assert (
            await catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=30)
            == JobStatus.error
        )
    unknown, bad = await _reload(sessionmaker, unknown), await _reload(sessionmaker, bad)
    assert "cannot run yet" in unknown.last_error and unknown.attempt == 1
    assert "older_than_days" in bad.last_error


async def test_a_run_over_its_time_fails_and_is_retried_later(
    sessionmaker: SessionMaker, settings: Settings
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session, parameters={"batch_size": 1, "pause_seconds": 5})
        await create_sync_log(session, old=3, young=0, errors_each=0)
    run = await _claim(sessionmaker, entry)
    assert run is not None
    assert (
        await catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=1)
        == JobStatus.ready
    )
    fresh = await _reload(sessionmaker, entry)
    assert fresh.last_error == "The run did not finish within 1 s."
    assert fresh.attempt == 1
    assert await _count(sessionmaker, IntegrationSynchJob) == 2  # the first batch is kept


async def test_a_cancelled_run_gives_its_entry_back_at_once(
    sessionmaker: SessionMaker, settings: Settings
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session, parameters={"batch_size": 1, "pause_seconds": 30})
        await create_sync_log(session, old=2, young=0, errors_each=0)
    run = await _claim(sessionmaker, entry)
    assert run is not None
    task = asyncio.create_task(
        catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=60)
    )
    while await _count(sessionmaker, IntegrationSynchJob) == 2:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    fresh = await _reload(sessionmaker, entry)
    assert (fresh.status, fresh.attempt, fresh.claimed_by) == (JobStatus.ready, 0, "")
    async with sessionmaker() as session:
        assert [d.entry_id for d in await queue.find_due(session, now=utc_now())] == [entry.id]


async def test_an_abandoned_claim_is_taken_over_or_given_up(sessionmaker: SessionMaker) -> None:
    gone = utc_now() - timedelta(seconds=1)
    async with sessionmaker() as session:
        retry = await create_entry(
            session, status=JobStatus.in_process, claimed_until=gone, attempt=1, run_count=1
        )
        spent = await create_entry(
            session, status=JobStatus.in_process, claimed_until=gone, attempt=3, run_count=3
        )
    async with session_scope(sessionmaker) as session:
        assert await queue.give_up_abandoned(session, now=utc_now()) == 1
    spent = await _reload(sessionmaker, spent)
    assert spent.status == JobStatus.error and "attempts are used up" in spent.last_error
    run = await _claim(sessionmaker, retry, worker_id="other:2")
    assert run is not None and run.run_count == 2
    fresh = await _reload(sessionmaker, retry)
    assert (fresh.claimed_by, fresh.attempt) == ("other:2", 2)


async def test_a_superseded_run_cannot_record_its_outcome(
    sessionmaker: SessionMaker, settings: Settings
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(session)
    first = await _claim(sessionmaker, entry, claim_seconds=0)
    assert first is not None
    second = await _claim(sessionmaker, entry, run_count=first.run_count, worker_id="b:2")
    assert second is not None
    assert (
        await catalog.run_entry(sessionmaker, settings=settings, run=first, timeout_seconds=30)
        is None
    )
    fresh = await _reload(sessionmaker, entry)
    assert (fresh.status, fresh.claimed_by, fresh.run_count) == (JobStatus.in_process, "b:2", 2)


async def test_a_crm_entry_that_ends_while_the_connection_is_disabled_stays_on_hold(
    sessionmaker: SessionMaker, settings: Settings
) -> None:
    async with sessionmaker() as session:
        entry = await create_entry(
            session, kind=JobKind.mapping_sync, mapping_name="CURRENCY", max_attempts=5
        )
    run = await _claim(sessionmaker, entry)
    assert run is not None
    # An admin disables the connection while the run is going.
    async with session_scope(sessionmaker) as session:
        session.add(ConnectionSetup(is_enabled=False, disable_reason="maintenance"))
    status = await catalog.run_entry(sessionmaker, settings=settings, run=run, timeout_seconds=30)
    assert status == JobStatus.on_hold
    fresh = await _reload(sessionmaker, entry)
    assert fresh.status == JobStatus.on_hold and fresh.claimed_by == ""
    assert await _claim(sessionmaker, fresh) is None
