"""CRM change notifications (``dataverse_entity_change`` rows) as a CRM -> ERP run sees them.

The receiver stores one row per delivery; the run of a mapping that reads that CRM table
takes the rows received before it started (``take``) and, when they are few and all name
their record, reads just those records instead of everything modified since the
watermark. Once the run's pass ended, the rows are consumed (``consume``, in the commit
that stores the watermark), whichever pass ran: a watermark pass reads every change up to
its start, notified or not.

A row is ``processed`` when every mapping that reads its table consumed it. Most tables
are read by one mapping, which then marks exactly the rows it took. A table read by
several (``product``: ITEM-PRODUCT and RESOURCE-PRODUCT) needs each mapping's own
position: a ``synch_cursor`` row per mapping holds the receive time its last run
consumed up to; the mapping takes unprocessed rows received after it (less a small
overlap, for a delivery stored a moment before another mapping's run committed), and
rows are processed once every reader's position passed them.

A lost or late notification only waits for the periodic watermark pass: nothing here
moves a watermark.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.db import current_actor
from app.logs import get_logger
from app.models.integration import (
    DataverseEntityChange,
    Direction,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    SynchCursor,
)

log = get_logger("salesbridge.sync.notified")

# At most this many notified records are read by id; more, and the watermark pass (one
# query for everything modified since) costs fewer requests than reading them 50 at a time.
MAX_NOTIFIED_RECORDS = 100
# How far before a mapping's position it still takes rows, on tables several mappings read.
CURSOR_OVERLAP = timedelta(seconds=2)
CURSOR_PREFIX = "crm-changes:"
MESSAGES = ("Create", "Update", "Delete")


def cursor_name(mapping: IntegrationTableMapping) -> str:
    return f"{CURSOR_PREFIX}{mapping.id}"


def _micros(moment: datetime) -> int:
    delta = as_utc(moment) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


async def reading_mappings(session: AsyncSession, entity: str) -> list[IntegrationTableMapping]:
    """The scheduled mappings (a recurring sync entry) that bring this CRM table to the ERP."""
    scheduled = select(JobQueueEntry.mapping_name).where(
        col(JobQueueEntry.kind) == JobKind.mapping_sync, col(JobQueueEntry.recurring).is_(True)
    )
    statement = (
        select(IntegrationTableMapping)
        .where(
            col(IntegrationTableMapping.integration_table) == entity,
            col(IntegrationTableMapping.direction) != Direction.to_crm,
            col(IntegrationTableMapping.name).in_(scheduled),
        )
        .order_by(col(IntegrationTableMapping.id))
    )
    return list((await session.exec(statement)).all())


async def _cursors(session: AsyncSession, names: Sequence[str]) -> dict[str, datetime]:
    rows = await session.exec(select(SynchCursor).where(col(SynchCursor.name).in_(names)))
    return {row.name: _moment(row.position) for row in rows}


@dataclass
class TakenChanges:
    """The notifications a run took at its start (``until`` = the run's signpost)."""

    entity: str
    until: datetime
    change_ids: list[int] = field(default_factory=list)
    record_ids: set[uuid.UUID] = field(default_factory=set)  # Create / Update
    deleted_ids: set[uuid.UUID] = field(default_factory=set)
    without_record: int = 0  # rows from before record ids were stored
    shared: bool = False  # other mappings read the table too

    @property
    def count(self) -> int:
        return len(self.change_ids)

    def fits_a_notified_pass(self) -> bool:
        """Every row names its record, and they are few enough to read by id."""
        return (
            self.count > 0
            and self.without_record == 0
            and len(self.record_ids) <= MAX_NOTIFIED_RECORDS
        )


async def take(
    session: AsyncSession, mapping: IntegrationTableMapping, *, until: datetime
) -> TakenChanges:
    """The unprocessed notifications of the mapping's CRM table received up to ``until``
    that this mapping has not consumed yet."""
    entity = mapping.integration_table
    readers = await reading_mappings(session, entity)
    taken = TakenChanges(entity=entity, until=until)
    taken.shared = any(r.id != mapping.id for r in readers)
    statement = select(
        DataverseEntityChange.id, DataverseEntityChange.record_id, DataverseEntityChange.message
    ).where(
        col(DataverseEntityChange.entity_name) == entity,
        col(DataverseEntityChange.processed_at).is_(None),
        col(DataverseEntityChange.received_at) <= until,
    )
    if taken.shared:
        position = (await _cursors(session, [cursor_name(mapping)])).get(cursor_name(mapping))
        if position is not None:
            statement = statement.where(
                col(DataverseEntityChange.received_at) > position - CURSOR_OVERLAP
            )
    for change_id, record_id, message in await session.exec(
        statement.order_by(col(DataverseEntityChange.id))
    ):
        if change_id is None:
            continue
        taken.change_ids.append(change_id)
        if record_id is None:
            taken.without_record += 1
        elif message == "Delete":
            taken.deleted_ids.add(record_id)
        else:
            taken.record_ids.add(record_id)
    return taken


async def _move_cursor(session: AsyncSession, name: str, until: datetime) -> None:
    position = _micros(until)
    row = (await session.exec(select(SynchCursor).where(col(SynchCursor.name) == name))).first()
    if row is None:
        session.add(SynchCursor(name=name, position=position))
    elif row.position < position:
        row.position = position
    await session.flush()


async def consume(
    session: AsyncSession,
    mapping: IntegrationTableMapping,
    taken: TakenChanges,
    *,
    now: datetime,
) -> int:
    """After the run's pass ended, in its closing transaction: the mapping has read every
    change it took. Returns how many rows became processed. Running it twice changes
    nothing the second time."""
    values = {"processed_at": now, "modified_at": now, "modified_by": current_actor.get()}
    unprocessed = col(DataverseEntityChange.processed_at).is_(None)
    if not taken.shared:
        if not taken.change_ids:
            return 0
        statement = (
            update(DataverseEntityChange)
            .where(col(DataverseEntityChange.id).in_(taken.change_ids), unprocessed)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int((await session.exec(statement)).rowcount or 0)
    await _move_cursor(session, cursor_name(mapping), taken.until)
    readers = await reading_mappings(session, taken.entity)
    names = [cursor_name(r) for r in readers]
    positions = await _cursors(session, names)
    if len(positions) < len(names):
        return 0  # a reader that never ran still has them to read
    statement = (
        update(DataverseEntityChange)
        .where(
            col(DataverseEntityChange.entity_name) == taken.entity,
            unprocessed,
            col(DataverseEntityChange.received_at) <= min(positions.values()),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int((await session.exec(statement)).rowcount or 0)


async def has_unread(session: AsyncSession, mapping: IntegrationTableMapping) -> bool:
    """Is there a notification this mapping has not consumed? (the scheduler tick's wake-up)"""
    statement = select(sa.literal(1)).where(
        col(DataverseEntityChange.entity_name) == mapping.integration_table,
        col(DataverseEntityChange.processed_at).is_(None),
    )
    position = (await _cursors(session, [cursor_name(mapping)])).get(cursor_name(mapping))
    if position is not None:
        statement = statement.where(col(DataverseEntityChange.received_at) > position)
    return (await session.exec(statement.limit(1))).first() is not None


async def pending_count(session: AsyncSession) -> int:
    statement = select(sa.func.count()).where(col(DataverseEntityChange.processed_at).is_(None))
    return int((await session.exec(statement)).one())


async def purge_processed(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` notifications processed before ``before``; returns how many."""
    statement = (
        select(DataverseEntityChange.id)
        .where(
            col(DataverseEntityChange.processed_at).is_not(None),
            col(DataverseEntityChange.processed_at) < before,
        )
        .order_by(col(DataverseEntityChange.id))
        .limit(limit)
    )
    ids = [i for i in (await session.exec(statement)).all() if i is not None]
    if ids:
        await session.exec(
            delete(DataverseEntityChange).where(col(DataverseEntityChange.id).in_(ids))
        )
    return len(ids)
