"""Synchronization actions (integration-admin) and their progress (integration users too).

Actions only queue one-off job queue entries (``app.sync.scheduling``); workers run
them. Sync jobs and their errors are listed by ``app.api.jobs`` (``/sync-jobs``); this
router adds their progress and the deletion of old ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import Field
from redis.exceptions import RedisError

from app.api.schemas.erp import MAX_INT
from app.api.schemas.jobs import JobQueueEntryRead
from app.api.schemas.sync import (
    DeletedSyncJobs,
    DeleteOldSyncJobs,
    QueuedRuns,
    SyncJobProgress,
    SyncProgress,
)
from app.auth.deps import AdminUser, IntegrationUser, SessionDep, SessionMakerDep
from app.clock import utc_now
from app.logs import get_logger
from app.models.integration import JobKind, JobQueueEntry
from app.sync import log_purge, progress, scheduling
from workers.queue import enqueue_entry

# Bounded like the id column, so a huge id is a 422 rather than a database overflow.
EntryId = Annotated[int, Field(ge=1, le=MAX_INT)]

router = APIRouter(prefix="/sync", tags=["sync"])
log = get_logger("salesbridge.api.sync")


async def _queued(
    request: Request, session: SessionDep, entries: list[JobQueueEntry]
) -> QueuedRuns:
    """Commit, then trigger the entries that wait for nothing; the tick starts the rest."""
    await session.commit()  # the worker must find the committed rows
    queue = request.app.state.queue
    for entry in entries:
        if queue is None or entry.id is None or entry.parameters.get("after"):
            continue
        try:
            await enqueue_entry(await queue.pool(), entry_id=entry.id, run_count=entry.run_count)
        except (RedisError, OSError) as exc:  # the next scheduler tick enqueues it
            log.warning("sync_not_enqueued", entry_id=entry.id, reason=type(exc).__name__)
    return QueuedRuns(entries=[JobQueueEntryRead.model_validate(e) for e in entries])


@router.post(
    "/mappings/{name}/run", response_model=QueuedRuns, status_code=status.HTTP_202_ACCEPTED
)
async def run_mapping(
    request: Request, session: SessionDep, name: str, _user: AdminUser, *, full: bool = False
) -> QueuedRuns:
    """Queue one run of a mapping: modified records, or every record with ``?full=true``."""
    kind = JobKind.full_sync if full else JobKind.mapping_sync
    entries = await scheduling.request_runs(session, kind=kind, names=[name])
    return await _queued(request, session, entries)


@router.post("/full", response_model=QueuedRuns, status_code=status.HTTP_202_ACCEPTED)
async def full_sync(request: Request, session: SessionDep, _user: AdminUser) -> QueuedRuns:
    """Full synchronization of every scheduled mapping, each after its dependencies."""
    entries = await scheduling.request_runs(session, kind=JobKind.full_sync)
    return await _queued(request, session, entries)


@router.post("/modified", response_model=QueuedRuns, status_code=status.HTTP_202_ACCEPTED)
async def sync_modified(request: Request, session: SessionDep, _user: AdminUser) -> QueuedRuns:
    """Synchronize modified records: every scheduled mapping once now, in dependency order."""
    entries = await scheduling.request_runs(session, kind=JobKind.mapping_sync)
    return await _queued(request, session, entries)


@router.get("/progress", response_model=SyncProgress)
async def sync_progress(
    session: SessionDep,
    _user: IntegrationUser,
    job_queue_entry_id: Annotated[list[EntryId] | None, Query()] = None,
) -> SyncProgress:
    """Sync jobs still running (optionally of some entries): records done / total."""
    running = await progress.running_jobs(session, entry_ids=job_queue_entry_id)
    return SyncProgress(items=[SyncJobProgress.model_validate(p) for p in running])


@router.post("/jobs/delete-old", response_model=DeletedSyncJobs)
async def delete_old_sync_jobs(
    sessionmaker: SessionMakerDep, body: DeleteOldSyncJobs, _user: AdminUser
) -> DeletedSyncJobs:
    """Delete sync jobs (with their errors) started more than N days ago, in short batches."""
    parameters = log_purge.PurgeParameters(older_than_days=body.older_than_days)
    deleted = await log_purge.purge_sync_log(sessionmaker, parameters=parameters, now=utc_now())
    return DeletedSyncJobs(deleted=deleted)
