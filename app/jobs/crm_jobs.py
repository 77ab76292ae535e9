"""What the codeunit-style jobs (order status, notes, item availability) share.

- ``open_crm``: the enabled connection, a CRM client for it and the integration user
  (whose CRM changes are never read back), or ``JobConfigError`` saying what to fix;
- ``JobLog``: the run's ``integration_synch_job`` row. BC logs these codeunits by codeunit,
  not by a mapping, so the row carries the job's own name (``SALES ORDER STATUS``, ...);
- the synch time: BC keeps it in its ``CRM Synch Status`` table; here it is the start of
  the job's newest successful log row (``last_success_start``), so no table is added and
  no queue row is written. A purged log only makes the next run read more: every job
  compares with what the CRM or the couplings already hold before writing.

Runs set ``current_actor`` to the sync's actor, so ERP rows a job writes are told apart
from people's changes exactly as the sync engine's are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.dataverse import DataverseClient
from app.dataverse.errors import DataverseError, FailureKind
from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.errors import NotConfiguredError
from app.jobs.queue import JobConfigError
from app.models.integration import ConnectionSetup, Direction, IntegrationSynchJob
from app.settings import Settings
from app.sync import log
from app.sync.crm_client import build_crm_client
from app.sync.errors import RetriableSyncError


@dataclass
class CrmJob:
    setup: ConnectionSetup
    crm: DataverseClient
    integration_user_id: uuid.UUID


async def _enabled_setup(sessionmaker: SessionMaker) -> ConnectionSetup:
    async with sessionmaker() as session:
        statement = select(ConnectionSetup).order_by(col(ConnectionSetup.id))
        setup = (await session.exec(statement)).first()
    if setup is None or not setup.is_enabled:
        msg = "The Dynamics 365 Sales connection is not enabled; enable it to run this job."
        raise JobConfigError(msg)
    return setup


def raise_for_crm(exc: DataverseError, *, action: str) -> None:
    """A Dataverse error that stops the run: config ones need an admin, others a retry."""
    message = f"Could not {action}: {exc.message}"
    if exc.failure_kind == FailureKind.config:
        raise JobConfigError(message) from exc
    raise RetriableSyncError(message) from exc


@asynccontextmanager
async def open_crm(sessionmaker: SessionMaker, settings: Settings) -> AsyncIterator[CrmJob]:
    setup = await _enabled_setup(sessionmaker)
    try:
        client = build_crm_client(settings, setup, interactive=False)
    except NotConfiguredError as exc:
        raise JobConfigError(str(exc)) from exc
    token = current_actor.set(SYNC_ACTOR)
    try:
        async with client as crm:
            user_id = setup.integration_user_id
            if user_id is None:
                try:
                    user_id = (await crm.whoami()).user_id
                except DataverseError as exc:
                    raise_for_crm(exc, action="identify the integration user")
                    raise  # unreachable: raise_for_crm raised
            yield CrmJob(setup, crm, user_id)
    finally:
        current_actor.reset(token)


@dataclass
class JobLog:
    """One run's sync log row and its counters (added as pages commit)."""

    job_id: uuid.UUID
    counters: log.Counters = field(default_factory=log.Counters)

    @classmethod
    async def start(
        cls, sessionmaker: SessionMaker, *, name: str, direction: Direction, entry_id: int | None
    ) -> JobLog:
        async with session_scope(sessionmaker) as session:
            job = await log.start_job(
                session,
                mapping_name=name,
                direction=direction,
                started_at=utc_now(),
                job_queue_entry_id=entry_id,
            )
        return cls(job.system_id)

    async def add(self, session: AsyncSession, counters: log.Counters) -> None:
        await log.add_counters(session, job_id=self.job_id, counters=counters)
        self.counters.merge(counters)

    def error(self, session: AsyncSession, error: log.RecordError) -> None:
        log.log_error(session, job_id=self.job_id, error=error)

    async def finish(self, sessionmaker: SessionMaker, *, message: str = "") -> None:
        """Close the row; an empty message marks the run as complete (its start is then
        the next run's synch time)."""
        async with session_scope(sessionmaker) as session:
            await log.finish_job(
                session, job_id=self.job_id, finished_at=utc_now(), message=message
            )


@asynccontextmanager
async def logged_run(
    sessionmaker: SessionMaker, *, name: str, direction: Direction, entry_id: int | None
) -> AsyncIterator[JobLog]:
    """A log row for the block: closed with no message when it ends normally, with the
    error when it raises (so an unfinished run never becomes the next synch time)."""
    joblog = await JobLog.start(sessionmaker, name=name, direction=direction, entry_id=entry_id)
    message = ""
    try:
        yield joblog
    except BaseException as exc:
        message = f"The run stopped: {exc or type(exc).__name__}"
        raise
    finally:
        await joblog.finish(sessionmaker, message=message)


async def last_success_start(
    session: AsyncSession, *, name: str, direction: Direction
) -> datetime | None:
    """When the newest run that finished without a message started (its read's bound)."""
    statement = (
        select(IntegrationSynchJob.started_at)
        .where(
            IntegrationSynchJob.mapping_name == name,
            IntegrationSynchJob.direction == direction,
            col(IntegrationSynchJob.finished_at).is_not(None),
            IntegrationSynchJob.message == "",
        )
        .order_by(col(IntegrationSynchJob.started_at).desc())
        .limit(1)
    )
    found = (await session.exec(statement)).first()
    return as_utc(found) if found is not None else None
