"""The sync log a page at a time, newest first, by keyset (``id``), never by offset.

A run's status is decided here, once: running (not finished), failed (a synchronization
run that stopped with a message), with errors (finished, some records failed), or
succeeded. Filters use the same rule as SQL, so a filtered page and the badge agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.integration import (
    Direction,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    SynchJobType,
)

MAX_PAGE_SIZE = 200


class RunStatus(StrEnum):
    running = "running"
    failed = "failed"
    with_errors = "with_errors"
    succeeded = "succeeded"


def run_status(job: IntegrationSynchJob) -> RunStatus:
    if job.finished_at is None:
        return RunStatus.running
    if job.type == SynchJobType.synchronization and job.message:
        return RunStatus.failed
    if job.failed:
        return RunStatus.with_errors
    return RunStatus.succeeded


def _status_clause(status: RunStatus) -> Any:
    job = IntegrationSynchJob
    finished = col(job.finished_at).is_not(None)
    stopped = sa.and_(col(job.type) == SynchJobType.synchronization, col(job.message) != "")
    clauses = {
        RunStatus.running: col(job.finished_at).is_(None),
        RunStatus.failed: sa.and_(finished, stopped),
        RunStatus.with_errors: sa.and_(finished, sa.not_(stopped), col(job.failed) > 0),
        RunStatus.succeeded: sa.and_(finished, sa.not_(stopped), col(job.failed) == 0),
    }
    return clauses[status]


@dataclass(frozen=True)
class RunFilter:
    mapping_name: str | None = None
    direction: Direction | None = None
    status: RunStatus | None = None
    started_from: datetime | None = None
    started_until: datetime | None = None


@dataclass(frozen=True)
class RunsPage:
    runs: list[IntegrationSynchJob]
    next_after: int | None  # the keyset of the next page, None on the last


async def list_runs(
    session: AsyncSession, *, filters: RunFilter, after: int | None = None, limit: int = 50
) -> RunsPage:
    """Runs matching the filters, newest first, after the keyset ``after`` (an id)."""
    job = IntegrationSynchJob
    statement = select(job)
    if filters.mapping_name:
        statement = statement.where(job.mapping_name == filters.mapping_name)
    if filters.direction is not None:
        statement = statement.where(job.direction == filters.direction)
    if filters.status is not None:
        statement = statement.where(_status_clause(filters.status))
    if filters.started_from is not None:
        statement = statement.where(col(job.started_at) >= filters.started_from)
    if filters.started_until is not None:
        statement = statement.where(col(job.started_at) < filters.started_until)
    if after is not None:
        statement = statement.where(col(job.id) < after)
    size = min(limit, MAX_PAGE_SIZE)
    rows = list(await session.exec(statement.order_by(col(job.id).desc()).limit(size + 1)))
    has_more = len(rows) > size
    return RunsPage(runs=rows[:size], next_after=rows[size - 1].id if has_more else None)


async def get_run(session: AsyncSession, job_id: uuid.UUID) -> IntegrationSynchJob | None:
    return (await session.exec(select(IntegrationSynchJob).where(
        IntegrationSynchJob.system_id == job_id))).first()  # fmt: skip


@dataclass(frozen=True)
class ErrorsPage:
    errors: list[IntegrationSynchJobError]
    next_after: int | None


async def list_run_errors(
    session: AsyncSession, *, job_id: uuid.UUID, after: int | None = None, limit: int = 50
) -> ErrorsPage:
    """A run's per-record errors in the order they happened, after the keyset ``after``."""
    error = IntegrationSynchJobError
    statement = select(error).where(error.job_id == job_id)
    if after is not None:
        statement = statement.where(col(error.id) > after)
    size = min(limit, MAX_PAGE_SIZE)
    rows = list(await session.exec(statement.order_by(col(error.id)).limit(size + 1)))
    has_more = len(rows) > size
    return ErrorsPage(errors=rows[:size], next_after=rows[size - 1].id if has_more else None)
