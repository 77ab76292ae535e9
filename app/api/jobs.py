"""The job queue (integration-admin) and the sync log (read by integration users too).

Lists take the ERP API's list options (``$top``/``limit``, ``$skip``/``offset``,
``$orderby``/``sort``, ``$filter``, ``field=value``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement
from sqlmodel import select

from app.api.erp_lists import ListQueryDep, page_body, public_fields
from app.api.schemas.erp import MAX_INT
from app.api.schemas.jobs import (
    JobQueueEntryCreate,
    JobQueueEntryList,
    JobQueueEntryRead,
    JobQueueEntryUpdate,
    SyncJobErrorList,
    SyncJobErrorRead,
    SyncJobList,
    SyncJobRead,
)
from app.auth.deps import AdminUser, IntegrationUser, SessionDep
from app.erp import listing
from app.errors import NotFoundError
from app.logs import get_logger
from app.models.base import TableBase
from app.models.integration import (
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobQueueEntry,
)
from app.sync import job_queue
from workers.queue import enqueue_entry

router = APIRouter(tags=["jobs"])
log = get_logger("salesbridge.api.jobs")

ENTRIES = "/job-queue-entries"
SYNC_JOBS = "/sync-jobs"
# Bounded like the id column, so a huge id is a 422 rather than a database overflow.
EntryId = Annotated[int, Path(ge=1, le=MAX_INT)]


def _column(model: type[TableBase], name: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = sa.inspect(model).columns[name]
    return column


def _fields(model: type[TableBase], read_schema: type[BaseModel]) -> dict[str, ColumnElement[Any]]:
    fields = public_fields(model, read_schema)
    if "system_id" not in read_schema.model_fields:
        fields["id"] = _column(model, "system_id")  # the public id is the UUID
    return fields


@router.get(ENTRIES, response_model=JobQueueEntryList)
async def list_entries(
    request: Request, session: SessionDep, query: ListQueryDep, _user: AdminUser
) -> Any:
    fields = _fields(JobQueueEntry, JobQueueEntryRead)
    page = await listing.list_page(
        session,
        select(JobQueueEntry),
        fields=fields,
        query=query,
        tiebreak=[_column(JobQueueEntry, "id")],
    )
    return page_body(
        request, page, query, list_schema=JobQueueEntryList, read_schema=JobQueueEntryRead
    )


@router.post(ENTRIES, response_model=JobQueueEntryRead, status_code=status.HTTP_201_CREATED)
async def create_entry(
    session: SessionDep, body: JobQueueEntryCreate, _user: AdminUser
) -> JobQueueEntryRead:
    entry = await job_queue.create_entry(session, values=body.model_dump())
    return JobQueueEntryRead.model_validate(entry)


@router.get(ENTRIES + "/{entry_id}", response_model=JobQueueEntryRead)
async def get_entry(session: SessionDep, entry_id: EntryId, _user: AdminUser) -> JobQueueEntryRead:
    return JobQueueEntryRead.model_validate(await job_queue.get_entry_or_raise(session, entry_id))


@router.patch(ENTRIES + "/{entry_id}", response_model=JobQueueEntryRead)
async def update_entry(
    session: SessionDep, entry_id: EntryId, body: JobQueueEntryUpdate, _user: AdminUser
) -> JobQueueEntryRead:
    changes = body.model_dump(exclude_unset=True)
    entry = await job_queue.update_entry(session, entry_id=entry_id, changes=changes)
    return JobQueueEntryRead.model_validate(entry)


@router.delete(ENTRIES + "/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_entry(session: SessionDep, entry_id: EntryId, _user: AdminUser) -> None:
    await job_queue.delete_entry(session, entry_id=entry_id)


@router.post(ENTRIES + "/{entry_id}/set-on-hold", response_model=JobQueueEntryRead)
async def set_on_hold(
    session: SessionDep, entry_id: EntryId, _user: AdminUser
) -> JobQueueEntryRead:
    return JobQueueEntryRead.model_validate(await job_queue.set_on_hold(session, entry_id=entry_id))


@router.post(ENTRIES + "/{entry_id}/set-ready", response_model=JobQueueEntryRead)
async def set_ready(session: SessionDep, entry_id: EntryId, _user: AdminUser) -> JobQueueEntryRead:
    """Ready again with all its attempts (also after an error), at its planned start."""
    return JobQueueEntryRead.model_validate(await job_queue.set_ready(session, entry_id=entry_id))


@router.post(
    ENTRIES + "/{entry_id}/run-now",
    response_model=JobQueueEntryRead,
    status_code=status.HTTP_202_ACCEPTED,
)
async def run_now(
    request: Request, session: SessionDep, entry_id: EntryId, _user: AdminUser
) -> JobQueueEntryRead:
    """Ready now; a worker picks it up at once (or at the next scheduler tick)."""
    entry = await job_queue.run_now(session, entry_id=entry_id)
    await session.commit()  # the worker must find the committed row
    queue = request.app.state.queue
    if queue is not None and entry.id is not None:
        try:
            await enqueue_entry(await queue.pool(), entry_id=entry.id, run_count=entry.run_count)
        except (RedisError, OSError) as exc:
            log.warning("run_now_not_enqueued", entry_id=entry.id, reason=type(exc).__name__)
    return JobQueueEntryRead.model_validate(entry)


@router.get(SYNC_JOBS, response_model=SyncJobList)
async def list_sync_jobs(
    request: Request, session: SessionDep, query: ListQueryDep, _user: IntegrationUser
) -> Any:
    """Newest first unless sorted otherwise."""
    page = await listing.list_page(
        session,
        select(IntegrationSynchJob),
        fields=_fields(IntegrationSynchJob, SyncJobRead),
        query=query,
        tiebreak=[
            _column(IntegrationSynchJob, "started_at").desc(),
            _column(IntegrationSynchJob, "id").desc(),
        ],
    )
    return page_body(request, page, query, list_schema=SyncJobList, read_schema=SyncJobRead)


async def _sync_job_or_raise(session: SessionDep, job_id: uuid.UUID) -> IntegrationSynchJob:
    statement = select(IntegrationSynchJob).where(IntegrationSynchJob.system_id == job_id)
    job = (await session.exec(statement)).first()
    if job is None:
        msg = f"Sync job {job_id} does not exist."
        raise NotFoundError(msg)
    return job


@router.get(SYNC_JOBS + "/{job_id}", response_model=SyncJobRead)
async def get_sync_job(session: SessionDep, job_id: uuid.UUID, _user: IntegrationUser) -> Any:
    return SyncJobRead.model_validate(await _sync_job_or_raise(session, job_id))


@router.get(SYNC_JOBS + "/{job_id}/errors", response_model=SyncJobErrorList)
async def list_sync_job_errors(
    request: Request,
    session: SessionDep,
    query: ListQueryDep,
    job_id: uuid.UUID,
    _user: IntegrationUser,
) -> Any:
    await _sync_job_or_raise(session, job_id)
    statement = select(IntegrationSynchJobError).where(IntegrationSynchJobError.job_id == job_id)
    page = await listing.list_page(
        session,
        statement,
        fields=_fields(IntegrationSynchJobError, SyncJobErrorRead),
        query=query,
        tiebreak=[_column(IntegrationSynchJobError, "id")],
    )
    return page_body(
        request, page, query, list_schema=SyncJobErrorList, read_schema=SyncJobErrorRead
    )
