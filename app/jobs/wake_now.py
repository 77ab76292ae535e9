"""Wake now: the mapping entries that read what a nudge named start at once.

The worker's nudge listener (``workers.nudge_listener``) gathers "these ERP tables / CRM
entities changed" messages, then calls ``wake`` with what it heard. The database rules
are the wake-up's (``app.jobs.wakeup``), without its 30 s delay:

- an ERP table wakes the recurring ``mapping_sync`` entries of the mappings that read it
  (direction not ``from_crm``, ``table_name`` in the set); a CRM entity those with
  direction not ``to_crm`` and ``integration_table`` in the set;
- a resting entry (``ready`` / ``on_hold_with_inactivity_timeout``, planned later than
  now) moves to start now with a conditional UPDATE, so several workers hearing the same
  message move it once; an entry already due is simply started;
- an entry that is running, or cannot start yet (its mapping runs another entry), stays
  pending: the listener asks again after its debounce period, so a change made during a
  run gets a run right after it;
- an entry whose last run started after the nudge was heard is served (that run read the
  change, which had committed before the nudge was sent): this is what keeps several
  workers, each holding the same pending entry, from starting a second run;
- on hold by a person, in error or finished: dropped; a disabled connection wakes nothing.

Starting (the Redis trigger) is the caller's, after this transaction commits.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.jobs import scheduling, wakeup
from app.jobs.queue import WAITING_STATUSES, DueEntry, is_connection_disabled
from app.logs import get_logger
from app.models.integration import (
    Direction,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)

log = get_logger("salesbridge.wake_now")


@dataclass
class Heard:
    """What nudged, each with the latest time it was heard, not yet served."""

    erp_tables: dict[str, datetime] = field(default_factory=dict)
    crm_entities: dict[str, datetime] = field(default_factory=dict)
    entries: dict[int, datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.erp_tables or self.crm_entities or self.entries)

    def add(
        self, *, erp_tables: Collection[str], crm_entities: Collection[str], at: datetime
    ) -> None:
        for name in erp_tables:
            self.erp_tables[name] = at
        for name in crm_entities:
            self.crm_entities[name] = at

    def add_entry(self, entry_id: int, at: datetime) -> None:
        known = self.entries.get(entry_id)
        self.entries[entry_id] = at if known is None else max(known, at)


@dataclass(frozen=True)
class Woken:
    """Entries to start now (their current run number), and what must be asked again."""

    due: list[DueEntry]
    pending: Heard


async def _entries_reading(session: AsyncSession, heard: Heard) -> dict[int, datetime]:
    """Recurring mapping entries whose mapping reads a nudged table, with when it was heard."""
    reads = []
    if heard.erp_tables:
        reads.append(
            (col(IntegrationTableMapping.direction) != Direction.from_crm)
            & col(IntegrationTableMapping.table_name).in_(list(heard.erp_tables))
        )
    if heard.crm_entities:
        reads.append(
            (col(IntegrationTableMapping.direction) != Direction.to_crm)
            & col(IntegrationTableMapping.integration_table).in_(list(heard.crm_entities))
        )
    if not reads:
        return {}
    statement = (
        select(JobQueueEntry.id, IntegrationTableMapping)
        .join(
            IntegrationTableMapping,
            col(IntegrationTableMapping.name) == col(JobQueueEntry.mapping_name),
        )
        .where(
            col(JobQueueEntry.kind) == JobKind.mapping_sync,
            col(JobQueueEntry.recurring).is_(True),
            or_(*reads),
        )
    )
    found: dict[int, datetime] = {}
    for entry_id, mapping in (await session.exec(statement)).all():
        times = [
            heard.erp_tables.get(mapping.table_name)
            if mapping.direction != Direction.from_crm
            else None,
            heard.crm_entities.get(mapping.integration_table)
            if mapping.direction != Direction.to_crm
            else None,
        ]
        if entry_id is not None:
            found[entry_id] = max(t for t in times if t is not None)
    return found


def _not_started_since(heard_at: datetime) -> ColumnElement[bool]:
    started = col(JobQueueEntry.last_started_at)
    return or_(started.is_(None), started < heard_at)


async def _move_to_now(
    session: AsyncSession, entry: JobQueueEntry, *, heard_at: datetime, now: datetime
) -> bool:
    """The wake-up's conditional UPDATE, to now, and only when no run started since the
    nudge was heard."""
    return await wakeup.move_entry_to(
        session, entry, start=now, condition=_not_started_since(heard_at)
    )


async def wake(session: AsyncSession, heard: Heard, *, now: datetime) -> Woken:
    """Move the nudged entries to start now; see the module docstring for the rules."""
    if await is_connection_disabled(session):
        return Woken(due=[], pending=Heard())
    wanted = dict(heard.entries)
    for entry_id, heard_at in (await _entries_reading(session, heard)).items():
        wanted[entry_id] = max(heard_at, wanted.get(entry_id, heard_at))
    if not wanted:
        return Woken(due=[], pending=Heard())
    rows = await session.exec(select(JobQueueEntry).where(col(JobQueueEntry.id).in_(wanted)))
    pending = Heard()
    candidates: dict[int, DueEntry] = {}
    for entry in rows:
        entry_id = entry.id or 0
        heard_at = wanted[entry_id]
        started = entry.last_started_at
        if started is not None and as_utc(started) >= heard_at:
            continue  # a run that started after the change read it
        if entry.status == JobStatus.in_process:
            pending.add_entry(entry_id, heard_at)
            continue
        if entry.status not in WAITING_STATUSES:
            continue  # on hold by a person, in error, finished: not ours to start
        start = entry.earliest_start_at
        is_due = start is None or as_utc(start) <= now
        if is_due or await _move_to_now(session, entry, heard_at=heard_at, now=now):
            candidates[entry_id] = DueEntry(entry_id=entry_id, run_count=entry.run_count)
        else:
            pending.add_entry(entry_id, heard_at)  # changed under us: look again
    startable = await scheduling.startable(session, list(candidates))
    for entry_id in candidates.keys() - startable:
        pending.add_entry(entry_id, wanted[entry_id])
    due = [candidates[entry_id] for entry_id in sorted(startable)]
    if due or pending:
        log.info(
            "nudged_entries",
            erp_tables=sorted(heard.erp_tables),
            crm_entities=sorted(heard.crm_entities),
            started=[d.entry_id for d in due],
            pending=sorted(pending.entries),
        )
    return Woken(due=due, pending=pending)
