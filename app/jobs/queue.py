"""The job queue: which entries are due, who runs one, and what a run leaves behind.

The ``job_queue_entry`` row is the truth; Redis (``workers/``) only carries "run entry N
for run number R" triggers, and may lose or repeat them. Every state change here is a
conditional UPDATE keyed on the entry's ``run_count``, so a late, repeated or lost trigger
can never run an entry twice at once or change an entry a newer run owns::

    ready / on_hold_with_inactivity_timeout, start time reached
        --claim (run_count + 1, attempt + 1, claimed_until)--> in_process
    in_process --finish--> ready (recurring: next start = now + interval, or
                           on_hold_with_inactivity_timeout when the run changed nothing)
                           | finished (one-off)
    in_process --fail----> ready after rerun_delay_seconds | error once attempts are used up
    in_process --cancel--> ready at once (the worker was shut down; the attempt is not counted)
    in_process with an expired claim (its worker was killed) is due again, or error when its
        attempts are used up.

Errors a run can raise: ``JobConfigError`` (the entry cannot run as configured: no retry,
an admin must change it); anything else counts as a failed attempt and is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse.errors import DataverseError
from app.db import SessionMaker, current_actor, session_scope
from app.errors import SalesbridgeError
from app.jobs import scheduling
from app.logs import get_logger
from app.models.integration import (
    ConnectionSetup,
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings
from app.sync.errors import SyncError

log = get_logger("salesbridge.jobs")

ABANDONED_MESSAGE = (
    "The worker running this entry stopped (killed or timed out) before it finished, "
    "and its attempts are used up. Set it to ready to try again."
)
INTERRUPTED_MESSAGE = (
    "Interrupted: the worker running this sync stopped (killed or timed out) before it "
    "finished. What it committed stays; the entry's next run went on from there."
)
WAITING_STATUSES = (JobStatus.ready, JobStatus.on_hold_with_inactivity_timeout)


# Failures a run is expected to meet (they carry an admin's message): logged as one line.
EXPECTED_FAILURES = (SyncError, DataverseError, SalesbridgeError)


class JobConfigError(Exception):
    """The entry cannot run as configured (unknown kind, bad parameters): no retry."""


@dataclass(frozen=True)
class DueEntry:
    entry_id: int
    run_count: int


@dataclass(frozen=True)
class Claim:
    """One run of one entry; ``run_count`` is the entry's value after the claim."""

    entry_id: int
    run_count: int
    worker_id: str


@dataclass(frozen=True)
class RunResult:
    """What a run changed; 0 lets the entry's inactivity timeout apply."""

    changed: int


Runner = Callable[[SessionMaker, JobQueueEntry, Settings], Awaitable[RunResult]]
# A job kind's runner; raises ``JobConfigError`` for a kind this version cannot run.
RunnerLookup = Callable[[str], Runner]


def _claim_expired(now: datetime) -> ColumnElement[bool]:
    """In process, but its worker is gone (killed, or stuck past its claim)."""
    claimed_until = col(JobQueueEntry.claimed_until)
    return and_(
        col(JobQueueEntry.status) == JobStatus.in_process,
        or_(claimed_until.is_(None), claimed_until <= now),
    )


def _is_due(now: datetime) -> ColumnElement[bool]:
    start = col(JobQueueEntry.earliest_start_at)
    return or_(
        and_(col(JobQueueEntry.status).in_(WAITING_STATUSES), or_(start.is_(None), start <= now)),
        _claim_expired(now),
    )


def _mapping_busy(now: datetime) -> ColumnElement[bool]:
    """Another entry of the same mapping runs (live claim): one run per mapping at a time."""
    other = aliased(JobQueueEntry)
    return exists().where(
        col(JobQueueEntry.mapping_name) != "",
        col(other.mapping_name) == col(JobQueueEntry.mapping_name),
        col(other.id) != col(JobQueueEntry.id),
        col(other.status) == JobStatus.in_process,
        col(other.claimed_until) > now,
    )


async def _lock_mapping(session: AsyncSession, entry_id: int) -> None:
    """Serialize claims of one mapping's entries until commit (PostgreSQL).

    Under READ COMMITTED, ``_mapping_busy`` would not see a concurrent claim of another
    entry of the same mapping; after this lock it sees it committed. SQLite has one
    writer at a time already.
    """
    if (await session.connection()).dialect.name != "postgresql":
        return
    mapping = select(JobQueueEntry.mapping_name).where(col(JobQueueEntry.id) == entry_id)
    await session.exec(select(func.pg_advisory_xact_lock(func.hashtext(mapping.scalar_subquery()))))


def _audit(now: datetime) -> dict[str, Any]:
    # Bulk UPDATEs bypass the ORM flush hook that stamps these columns.
    return {"modified_at": now, "modified_by": current_actor.get()}


def _released(now: datetime) -> dict[str, Any]:
    return {"claimed_by": "", "claimed_until": None, "last_finished_at": now, **_audit(now)}


async def _close_interrupted_jobs(
    session: AsyncSession, entries: ColumnElement[bool], *, now: datetime
) -> None:
    """Sync jobs a dead run left open would read as running forever: say they stopped."""
    statement = (
        update(IntegrationSynchJob)
        .where(
            col(IntegrationSynchJob.finished_at).is_(None),
            col(IntegrationSynchJob.job_queue_entry_id).in_(
                select(JobQueueEntry.id).where(entries)
            ),
        )
        .values(finished_at=now, message=INTERRUPTED_MESSAGE, **_audit(now))
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def give_up_abandoned(session: AsyncSession, *, now: datetime) -> int:
    """Entries whose worker died on their last attempt go to ``error``; returns how many."""
    abandoned = and_(
        _claim_expired(now), col(JobQueueEntry.attempt) >= col(JobQueueEntry.max_attempts)
    )
    await _close_interrupted_jobs(session, abandoned, now=now)
    statement = (
        update(JobQueueEntry)
        .where(abandoned)
        .values(status=JobStatus.error, last_error=ABANDONED_MESSAGE, **_released(now))
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount


async def find_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[DueEntry]:
    statement = (
        select(JobQueueEntry.id, JobQueueEntry.run_count)
        .where(_is_due(now))
        .order_by(col(JobQueueEntry.earliest_start_at), col(JobQueueEntry.id))
        .limit(limit)
    )
    rows = (await session.exec(statement)).all()
    return [
        DueEntry(entry_id=entry_id, run_count=run_count) for entry_id, run_count in rows if entry_id
    ]


async def claim(
    session: AsyncSession,
    *,
    entry_id: int,
    run_count: int,
    worker_id: str,
    now: datetime,
    claim_seconds: int,
) -> Claim | None:
    """Take the entry for one run, or None when it is not due or another run owns it."""
    await _lock_mapping(session, entry_id)
    statement = (
        update(JobQueueEntry)
        .where(
            col(JobQueueEntry.id) == entry_id,
            col(JobQueueEntry.run_count) == run_count,
            _is_due(now),
            col(JobQueueEntry.attempt) < col(JobQueueEntry.max_attempts),
            ~_mapping_busy(now),
        )
        .values(
            status=JobStatus.in_process,
            run_count=JobQueueEntry.run_count + 1,
            attempt=JobQueueEntry.attempt + 1,
            claimed_by=worker_id,
            claimed_until=now + timedelta(seconds=claim_seconds),
            last_started_at=now,
            **_audit(now),
        )
        .execution_options(synchronize_session=False)
    )
    if (await session.exec(statement)).rowcount != 1:
        return None
    # No run of this entry is alive now, so its open sync jobs belong to one that died.
    await _close_interrupted_jobs(session, col(JobQueueEntry.id) == entry_id, now=now)
    return Claim(entry_id=entry_id, run_count=run_count + 1, worker_id=worker_id)


def _owned_by(run: Claim) -> tuple[ColumnElement[bool], ...]:
    return (
        col(JobQueueEntry.id) == run.entry_id,
        col(JobQueueEntry.run_count) == run.run_count,
        col(JobQueueEntry.status) == JobStatus.in_process,
        col(JobQueueEntry.claimed_by) == run.worker_id,
    )


async def _update_owned(session: AsyncSession, run: Claim, values: dict[str, Any]) -> bool:
    statement = (
        update(JobQueueEntry)
        .where(*_owned_by(run))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1


def next_state_after_success(
    entry: JobQueueEntry, *, result: RunResult, now: datetime
) -> dict[str, Any]:
    if not entry.recurring:
        return {"status": JobStatus.finished}
    if result.changed == 0 and entry.inactivity_timeout_minutes > 0:
        return {
            "status": JobStatus.on_hold_with_inactivity_timeout,
            "earliest_start_at": now + timedelta(minutes=entry.inactivity_timeout_minutes),
        }
    return {
        "status": JobStatus.ready,
        "earliest_start_at": now + timedelta(minutes=entry.minutes_between_runs),
    }


async def finish(
    session: AsyncSession, *, run: Claim, entry: JobQueueEntry, result: RunResult, now: datetime
) -> bool:
    """Record a successful run; False when the run no longer owns the entry."""
    state = next_state_after_success(entry, result=result, now=now)
    return await _update_owned(
        session, run, {**state, "attempt": 0, "last_error": "", **_released(now)}
    )


async def fail(
    session: AsyncSession,
    *,
    run: Claim,
    entry: JobQueueEntry,
    message: str,
    now: datetime,
    is_retriable: bool = True,
) -> bool:
    """Retry after the rerun delay, or ``error`` when attempts are used up (or no retry helps)."""
    if is_retriable and entry.attempt < entry.max_attempts:
        state: dict[str, Any] = {
            "status": JobStatus.ready,
            "earliest_start_at": now + timedelta(seconds=entry.rerun_delay_seconds),
        }
    else:
        state = {"status": JobStatus.error}
    return await _update_owned(
        session, run, {**state, "last_error": message[:2048], **_released(now)}
    )


async def release(session: AsyncSession, *, run: Claim, now: datetime) -> bool:
    """Give a cancelled run back (worker shutdown): ready now, the attempt not counted."""
    values = {
        "status": JobStatus.ready,
        "earliest_start_at": now,
        "attempt": JobQueueEntry.attempt - 1,
        **_released(now),
    }
    return await _update_owned(session, run, values)


# Every kind that talks to the CRM: these stay on hold while the connection is disabled.
CRM_JOB_KINDS = frozenset(kind for kind in JobKind if kind != JobKind.purge_sync_log)


async def is_connection_disabled(session: AsyncSession) -> bool:
    """Set up but switched off (with no set-up at all a run fails and says so instead)."""
    setup = (await session.exec(select(ConnectionSetup))).first()
    return setup is not None and not setup.is_enabled


async def _load(sessionmaker: SessionMaker, entry_id: int) -> JobQueueEntry:
    async with sessionmaker() as session:
        entry = await session.get(JobQueueEntry, entry_id)
    if entry is None:  # deleted between the claim and now: nothing left to run
        msg = f"Job queue entry {entry_id} no longer exists."
        raise JobConfigError(msg)
    return entry


@dataclass(frozen=True)
class Outcome:
    """How a run ended: a result, or a failure message and whether a retry may help."""

    result: RunResult | None = None
    message: str = ""
    is_retriable: bool = True


async def _run(
    sessionmaker: SessionMaker,
    run: Claim,
    settings: Settings,
    timeout_seconds: int,
    runner_for: RunnerLookup,
) -> Outcome:
    try:
        entry = await _load(sessionmaker, run.entry_id)
        async with asyncio.timeout(timeout_seconds):
            return Outcome(result=await runner_for(entry.kind)(sessionmaker, entry, settings))
    except JobConfigError as exc:
        log.warning("job_failed", entry_id=run.entry_id, error=str(exc), will_retry=False)
        return Outcome(message=str(exc), is_retriable=False)
    except TimeoutError:
        message = f"The run did not finish within {timeout_seconds} s."
        log.warning("job_failed", entry_id=run.entry_id, error=message)
        return Outcome(message=message)
    except EXPECTED_FAILURES as exc:
        # The CRM unreachable, a mapping misconfigured: the message says it all, and it is
        # on the entry too. One line per failure; a traceback would repeat it 100 lines long.
        message = f"{type(exc).__name__}: {exc}"
        log.warning("job_failed", entry_id=run.entry_id, error=message[:500])
        return Outcome(message=message)
    except Exception as exc:  # noqa: BLE001 - any failure of a run is recorded on its entry
        log.exception("job_failed_unexpectedly", entry_id=run.entry_id)
        return Outcome(message=f"{type(exc).__name__}: {exc}")


async def run_claimed(
    sessionmaker: SessionMaker,
    *,
    run: Claim,
    settings: Settings,
    timeout_seconds: int,
    runner_for: RunnerLookup,
) -> JobStatus | None:
    """Run a claimed entry with the runner of its kind and record the outcome.

    Returns the entry's new status. None means the run no longer owned the entry when it
    ended (its claim expired and a newer run took over), so this run's outcome is dropped.
    """
    try:
        outcome = await _run(sessionmaker, run, settings, timeout_seconds, runner_for)
    except asyncio.CancelledError:
        async with session_scope(sessionmaker) as session:
            await release(session, run=run, now=utc_now())
        raise
    return await _record(sessionmaker, run=run, outcome=outcome)


async def _record(sessionmaker: SessionMaker, *, run: Claim, outcome: Outcome) -> JobStatus | None:
    now = utc_now()
    async with session_scope(sessionmaker) as session:
        entry = await session.get(JobQueueEntry, run.entry_id)
        if entry is None:
            return None
        if outcome.result is not None:
            is_owned = await finish(session, run=run, entry=entry, result=outcome.result, now=now)
        else:
            is_owned = await fail(
                session,
                run=run,
                entry=entry,
                message=outcome.message,
                now=now,
                is_retriable=outcome.is_retriable,
            )
        await session.refresh(entry)
        if (
            is_owned
            and entry.kind in CRM_JOB_KINDS
            and entry.status != JobStatus.finished
            and await is_connection_disabled(session)
        ):
            # Disabled while this run was going: the entry stays on hold, as disable does.
            entry.status = JobStatus.on_hold
        if is_owned and entry.status in scheduling.DONE:
            await scheduling.release_held(session, entry=entry)
    status = JobStatus(entry.status) if is_owned else None
    log.info("job_ran", entry_id=run.entry_id, run=run.run_count, status=status)
    return status
