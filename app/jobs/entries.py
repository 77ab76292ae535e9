"""The job queue as an administrator changes it: create, edit, hold, ready, run now, delete.

Status changes are conditional UPDATEs on the status and run number the caller saw, like
the workers' own (``app.jobs.queue``), so an administrator and a worker claiming the same
entry at the same moment never overwrite each other: one of them gets a clear 409.
A running entry (claimed, claim not expired) keeps its status until its run ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.db import current_actor
from app.errors import ConflictError, NotFoundError, ValidationFailedError
from app.jobs import log_purge
from app.mappings.table_mappings import get_mapping
from app.models.integration import JobKind, JobQueueEntry, JobStatus

PARAMETER_MODELS: dict[str, type[pydantic.BaseModel]] = {
    JobKind.purge_sync_log: log_purge.PurgeParameters
}
MAPPING_KINDS = frozenset(
    {JobKind.mapping_sync, JobKind.full_sync, JobKind.coupling, JobKind.uncoupling}
)


async def get_entry_or_raise(session: AsyncSession, entry_id: int) -> JobQueueEntry:
    entry = await session.get(JobQueueEntry, entry_id)
    if entry is None:
        msg = f"Job queue entry {entry_id} does not exist."
        raise NotFoundError(msg)
    return entry


def is_running(entry: JobQueueEntry, *, now: datetime) -> bool:
    return (
        entry.status == JobStatus.in_process
        and entry.claimed_until is not None
        and as_utc(entry.claimed_until) > now
    )


def _check_parameters(kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
    model = PARAMETER_MODELS.get(kind)
    if model is None:
        return parameters
    try:
        return model.model_validate(parameters).model_dump(exclude_unset=True)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(["parameters", *map(str, e["loc"])]), "message": e["msg"]}
            for e in exc.errors()
        ]
        msg = f"Invalid parameters for a {kind} entry."
        raise ValidationFailedError(msg, errors=errors) from exc


async def _check_entry(session: AsyncSession, entry: JobQueueEntry) -> None:
    entry.parameters = _check_parameters(entry.kind, entry.parameters)
    if entry.kind in MAPPING_KINDS and not entry.mapping_name:
        msg = f"A {entry.kind} entry needs a mapping_name."
        raise ValidationFailedError(msg, errors=[{"field": "mapping_name", "message": msg}])
    if entry.mapping_name and await get_mapping(session, entry.mapping_name) is None:
        msg = f"Mapping {entry.mapping_name!r} does not exist."
        raise ValidationFailedError(msg, errors=[{"field": "mapping_name", "message": msg}])


async def create_entry(session: AsyncSession, *, values: dict[str, Any]) -> JobQueueEntry:
    entry = JobQueueEntry(**values)
    if entry.earliest_start_at is None:
        entry.earliest_start_at = utc_now()
    await _check_entry(session, entry)
    session.add(entry)
    await session.flush()
    return entry


async def update_entry(
    session: AsyncSession, *, entry_id: int, changes: dict[str, Any]
) -> JobQueueEntry:
    """Settings of an entry; a running entry's next start is set by its run's end."""
    entry = await get_entry_or_raise(session, entry_id)
    for name, value in changes.items():
        setattr(entry, name, value)
    await _check_entry(session, entry)
    session.add(entry)
    await session.flush()
    return entry


async def _change_status(
    session: AsyncSession, entry: JobQueueEntry, *, action: str, values: dict[str, Any]
) -> JobQueueEntry:
    now = utc_now()
    if is_running(entry, now=now):
        msg = (
            f"Job queue entry {entry.id} is running (claimed by {entry.claimed_by}); "
            f"{action} it when the run has ended."
        )
        raise ConflictError(msg)
    statement = (
        update(JobQueueEntry)
        .where(
            col(JobQueueEntry.id) == entry.id,
            col(JobQueueEntry.run_count) == entry.run_count,
            col(JobQueueEntry.status) == entry.status,
        )
        .values(
            claimed_by="",
            claimed_until=None,
            modified_at=now,
            modified_by=current_actor.get(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if (await session.exec(statement)).rowcount != 1:
        msg = f"Job queue entry {entry.id} changed meanwhile (a worker took it); try again."
        raise ConflictError(msg)
    await session.refresh(entry)
    return entry


async def set_on_hold(session: AsyncSession, *, entry_id: int) -> JobQueueEntry:
    entry = await get_entry_or_raise(session, entry_id)
    return await _change_status(session, entry, action="hold", values={"status": JobStatus.on_hold})


async def set_ready(
    session: AsyncSession, *, entry_id: int, start_at: datetime | None = None
) -> JobQueueEntry:
    """Ready with all attempts again (after an error, too); starts at ``start_at`` or as planned."""
    entry = await get_entry_or_raise(session, entry_id)
    values: dict[str, Any] = {"status": JobStatus.ready, "attempt": 0}
    if start_at is not None or entry.earliest_start_at is None:
        values["earliest_start_at"] = start_at or utc_now()
    return await _change_status(session, entry, action="set ready", values=values)


async def run_now(session: AsyncSession, *, entry_id: int) -> JobQueueEntry:
    return await set_ready(session, entry_id=entry_id, start_at=utc_now())


async def delete_entry(session: AsyncSession, *, entry_id: int) -> None:
    entry = await get_entry_or_raise(session, entry_id)
    if is_running(entry, now=utc_now()):
        msg = f"Job queue entry {entry_id} is running; delete it when the run has ended."
        raise ConflictError(msg)
    await session.delete(entry)
    await session.flush()
