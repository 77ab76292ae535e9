"""One-off synchronizations on the job queue: full sync, "synchronize modified records".

A request creates one-off job queue entries (never runs anything itself); workers run
them. Order comes from the mappings' dependency filters: an entry's ``parameters.after``
lists the one-off entries of the mappings it depends on, and the tick does not start it
while one of those still waits or runs (a dependency that ended in ``error`` releases it:
its records then fail one by one, "unit of measure PCS is not coupled", and are retried
next run). A full synchronization puts the mapping's recurring entry on hold
(``parameters.held_entry``) and sets it ready again when the full run has ended.
Two runs of one mapping never overlap: ``app.jobs.queue.claim`` refuses an entry while
another entry of the same mapping is in process, and the tick starts one per mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import current_actor, lock_until_commit
from app.errors import ConflictError, NotFoundError
from app.models.integration import IntegrationTableMapping, JobKind, JobQueueEntry, JobStatus

DEPENDENCY_ORDER = (
    "SALESPEOPLE",
    "CURRENCY",
    "UNIT OF MEASURE",
    "CUSTOMER",
    "CONTACT",
    "ITEM-PRODUCT",
    "RESOURCE-PRODUCT",
)
DONE = (JobStatus.finished, JobStatus.error)
ONE_OFF_KINDS = (JobKind.full_sync, JobKind.mapping_sync)


def dependencies_of(mapping: IntegrationTableMapping) -> list[str]:
    return [name.strip() for name in mapping.dependency_filter.split("|") if name.strip()]


def in_dependency_order(
    mappings: Sequence[IntegrationTableMapping],
) -> list[IntegrationTableMapping]:
    """The spec's order first, then the rest; a mapping always after its dependencies."""

    def rank(mapping: IntegrationTableMapping) -> tuple[int, str]:
        known = mapping.name in DEPENDENCY_ORDER
        return (
            DEPENDENCY_ORDER.index(mapping.name) if known else len(DEPENDENCY_ORDER),
            mapping.name,
        )

    pending = sorted(mappings, key=rank)
    names = {m.name for m in pending}
    placed: list[IntegrationTableMapping] = []
    while pending:
        done = {m.name for m in placed}
        ready = next(
            (m for m in pending if all(d in done or d not in names for d in dependencies_of(m))),
            pending[0],  # a dependency cycle: keep the rank order rather than stop
        )
        placed.append(ready)
        pending.remove(ready)
    return placed


async def _synced_mappings(
    session: AsyncSession, names: Sequence[str] | None
) -> list[IntegrationTableMapping]:
    """Mappings that have a recurring sync entry (or the named ones, which must exist)."""
    statement = select(IntegrationTableMapping)
    if names is None:
        scheduled = select(JobQueueEntry.mapping_name).where(
            col(JobQueueEntry.kind) == JobKind.mapping_sync, col(JobQueueEntry.recurring).is_(True)
        )
        statement = statement.where(col(IntegrationTableMapping.name).in_(scheduled))
    else:
        statement = statement.where(col(IntegrationTableMapping.name).in_(names))
    mappings = list(await session.exec(statement))
    missing = sorted(set(names or ()) - {m.name for m in mappings})
    if missing:
        msg = f"Mapping {missing[0]!r} does not exist."
        raise NotFoundError(msg)
    return in_dependency_order(mappings)


async def _recurring_entry(session: AsyncSession, mapping_name: str) -> JobQueueEntry | None:
    statement = select(JobQueueEntry).where(
        col(JobQueueEntry.kind) == JobKind.mapping_sync,
        col(JobQueueEntry.recurring).is_(True),
        col(JobQueueEntry.mapping_name) == mapping_name,
    )
    return (await session.exec(statement)).first()


async def _refuse_if_pending(session: AsyncSession, kind: JobKind, names: list[str]) -> None:
    statement = select(JobQueueEntry).where(
        col(JobQueueEntry.kind) == kind,
        col(JobQueueEntry.recurring).is_(False),
        col(JobQueueEntry.mapping_name).in_(names),
        col(JobQueueEntry.status).not_in(DONE),
    )
    pending = (await session.exec(statement)).first()
    if pending is not None:
        msg = (
            f"A {kind} of {pending.mapping_name} is already queued (job queue entry "
            f"{pending.id}, {pending.status}); wait for it to end."
        )
        raise ConflictError(msg)


async def _hold(session: AsyncSession, entry: JobQueueEntry) -> int | None:
    """Put a recurring entry on hold for a full sync; 409 while it runs.

    The UPDATE is conditional on the state read: a worker may claim the entry in between,
    and overwriting its ``in_process`` would let the full sync run beside it.
    """
    busy = f"{entry.mapping_name} is synchronizing now; start the full synchronization after it."
    if entry.status == JobStatus.in_process:
        raise ConflictError(busy)
    if entry.status == JobStatus.on_hold:
        return None  # held by an administrator: theirs to release
    now = utc_now()
    result = await session.exec(
        update(JobQueueEntry)
        .where(
            col(JobQueueEntry.id) == entry.id,
            col(JobQueueEntry.status) == entry.status,
            col(JobQueueEntry.run_count) == entry.run_count,
        )
        .values(status=JobStatus.on_hold, modified_at=now, modified_by=current_actor.get())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        raise ConflictError(busy)
    await session.refresh(entry)
    return entry.id


def _one_off(kind: JobKind, mapping: IntegrationTableMapping, **parameters: Any) -> JobQueueEntry:
    label = "full synchronization" if kind == JobKind.full_sync else "synchronize modified records"
    return JobQueueEntry(
        kind=kind,
        mapping_name=mapping.name,
        description=f"{mapping.name} - {label}",
        recurring=False,
        status=JobStatus.ready,
        earliest_start_at=utc_now(),
        max_attempts=3,
        rerun_delay_seconds=30,
        parameters=parameters,
    )


async def request_runs(
    session: AsyncSession, *, kind: JobKind, names: Sequence[str] | None = None
) -> list[JobQueueEntry]:
    """Queue one-off runs (``full_sync`` or ``mapping_sync``) of mappings, in dependency order.

    Requests are serialized so that two at once cannot both pass the "already queued" check.
    """
    await lock_until_commit(session, "request_runs", table=JobQueueEntry)
    mappings = await _synced_mappings(session, names)
    await _refuse_if_pending(session, kind, [m.name for m in mappings])
    created: dict[str, JobQueueEntry] = {}
    for mapping in mappings:
        after = [created[d].id for d in dependencies_of(mapping) if d in created]
        held: int | None = None
        recurring = await _recurring_entry(session, mapping.name)
        if kind == JobKind.full_sync and recurring is not None:
            held = await _hold(session, recurring)
        entry = _one_off(kind, mapping, after=after, held_entry=held)
        session.add(entry)
        await session.flush()  # its id is a later entry's dependency
        created[mapping.name] = entry
    return list(created.values())


async def release_held(session: AsyncSession, *, entry: JobQueueEntry) -> None:
    """After a full sync ended: its mapping's recurring entry is ready again (if still held)."""
    held = entry.parameters.get("held_entry") if entry.kind == JobKind.full_sync else None
    if not isinstance(held, int):
        return
    now = utc_now()
    await session.exec(
        update(JobQueueEntry)
        .where(col(JobQueueEntry.id) == held, col(JobQueueEntry.status) == JobStatus.on_hold)
        .values(
            status=JobStatus.ready,
            attempt=0,
            earliest_start_at=now,
            modified_at=now,
            modified_by=current_actor.get(),
        )
        .execution_options(synchronize_session=False)
    )


async def startable(session: AsyncSession, entry_ids: Sequence[int]) -> set[int]:
    """Of due entries, those that may start now: dependencies ended, mapping not busy.

    At most one entry per mapping (the earliest id), none for a mapping in process.
    """
    if not entry_ids:
        return set()
    due = list(
        await session.exec(select(JobQueueEntry).where(col(JobQueueEntry.id).in_(entry_ids)))
    )
    waits_for = {d for e in due for d in e.parameters.get("after") or () if isinstance(d, int)}
    open_ids = set()
    if waits_for:
        open_ids = set(
            (
                await session.exec(
                    select(JobQueueEntry.id).where(
                        col(JobQueueEntry.id).in_(waits_for), col(JobQueueEntry.status).not_in(DONE)
                    )
                )
            ).all()
        )
    busy = set(
        (
            await session.exec(
                select(JobQueueEntry.mapping_name).where(
                    col(JobQueueEntry.status) == JobStatus.in_process,
                    col(JobQueueEntry.mapping_name) != "",
                )
            )
        ).all()
    )
    chosen: set[int] = set()
    for entry in sorted(due, key=lambda e: e.id or 0):
        if entry.id is None or open_ids & set(entry.parameters.get("after") or ()):
            continue
        if entry.mapping_name and entry.status != JobStatus.in_process:
            if entry.mapping_name in busy:
                continue
            busy.add(entry.mapping_name)
        chosen.add(entry.id)
    return chosen
