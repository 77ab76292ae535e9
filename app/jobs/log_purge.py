"""Purge old sync logs: ``integration_synch_job`` rows older than N days, with their errors,
and CRM change notifications processed more than N days ago.

It deletes in batches, each its own short transaction, so a large purge never holds a
long write lock (SQLite has one writer) and a purge stopped half-way keeps what it did:
running it again simply deletes the rest.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, delete, or_
from sqlmodel import col, select

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.jobs.queue import JobConfigError, RunResult
from app.logs import get_logger
from app.models.integration import IntegrationSynchJob, IntegrationSynchJobError, JobQueueEntry
from app.settings import Settings
from app.sync import notified_changes

log = get_logger("salesbridge.log_purge")


class PurgeParameters(BaseModel):
    """The ``parameters`` of a ``purge_sync_log`` job queue entry."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(default=30, ge=0, le=36_500)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    pause_seconds: float = Field(
        default=0,
        ge=0,
        le=60,
        description="Pause between batches, to leave the database to others.",
    )


def _older_than(cutoff: datetime) -> ColumnElement[bool]:
    started_at = col(IntegrationSynchJob.started_at)
    return or_(
        started_at < cutoff,
        and_(started_at.is_(None), col(IntegrationSynchJob.created_at) < cutoff),
    )


async def _delete_batch(sessionmaker: SessionMaker, *, cutoff: datetime, batch_size: int) -> int:
    async with session_scope(sessionmaker) as session:
        statement = (
            select(IntegrationSynchJob.system_id)
            .where(_older_than(cutoff))
            .order_by(col(IntegrationSynchJob.id))
            .limit(batch_size)
        )
        ids: list[uuid.UUID] = list((await session.exec(statement)).all())
        if not ids:
            return 0
        # Explicit, not ON DELETE CASCADE: the result must not depend on the backend's FK mode.
        await session.exec(
            delete(IntegrationSynchJobError).where(col(IntegrationSynchJobError.job_id).in_(ids))
        )
        await session.exec(
            delete(IntegrationSynchJob).where(col(IntegrationSynchJob.system_id).in_(ids))
        )
    return len(ids)


async def purge_notifications(
    sessionmaker: SessionMaker, *, parameters: PurgeParameters, now: datetime
) -> int:
    """Delete CRM change notifications processed before now - N days, in batches."""
    cutoff = now - timedelta(days=parameters.older_than_days)
    total = 0
    while True:
        async with session_scope(sessionmaker) as session:
            deleted = await notified_changes.purge_processed(
                session, before=cutoff, limit=parameters.batch_size
            )
        total += deleted
        if deleted < parameters.batch_size:
            break
        await asyncio.sleep(parameters.pause_seconds)
    if total:
        log.info("notifications_purged", deleted=total, cutoff=cutoff.isoformat())
    return total


async def purge_sync_log(
    sessionmaker: SessionMaker, *, parameters: PurgeParameters, now: datetime
) -> int:
    """Delete sync jobs (and their errors) started before now - N days; returns how many.
    Processed CRM change notifications as old go too (not counted: they are no log)."""
    cutoff = now - timedelta(days=parameters.older_than_days)
    total = 0
    while True:
        deleted = await _delete_batch(sessionmaker, cutoff=cutoff, batch_size=parameters.batch_size)
        total += deleted
        if deleted < parameters.batch_size:
            break
        await asyncio.sleep(parameters.pause_seconds)
    log.info("sync_log_purged", deleted=total, cutoff=cutoff.isoformat())
    await purge_notifications(sessionmaker, parameters=parameters, now=now)
    return total


async def run_job(
    sessionmaker: SessionMaker, entry: JobQueueEntry, _settings: Settings
) -> RunResult:
    try:
        parameters = PurgeParameters.model_validate(entry.parameters)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        msg = f"Invalid parameters for {entry.kind}: {where}: {first['msg']}."
        raise JobConfigError(msg) from exc
    deleted = await purge_sync_log(sessionmaker, parameters=parameters, now=utc_now())
    return RunResult(changed=deleted)
