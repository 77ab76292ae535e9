"""The Item Availability job (BC 18+ codeunit 5356, every 30 min when enabled).

Availability in the CRM is the product's ``quantityonhand``: the item's inventory, summed
from the item ledger (negative -> 0). Open order lines are not part of it, so the ledger
is the only source the job follows. The job keeps its own cursor over the ledger (the
``synch_cursor`` row ``ITEM AVAILABILITY``): the highest entry no. a run has taken into
account. Entry numbers are handed out under a lock held until the posting commits
(``numbering.next_entry_no``), so entries become visible in number order: when the cursor
says N, every entry up to N was there to be read, and any entry not yet pushed is above N.
That is why no movement is skipped, whatever other jobs did to the items meanwhile (BC
falls back to the ITEM-PRODUCT mapping's watermark, which later item edits move past
older movements).

A run:

1. reads the highest entry no. (M) before anything else;
2. takes the coupled, non-skipped items with an entry above the cursor, and those whose
   coupling has no confirmed quantity yet (``availability_entry_no`` null: a coupling
   made since, whose product may have been created with an inventory read just before a
   movement); with no cursor yet (the first run), every coupled item;
3. a page at a time: inventory summed from the ledger, the products' current
   ``quantityonhand`` read in chunks, and only the ones that differ written, in one
   ``$batch``; each coupling confirmed (written, already equal, or refused for good) gets
   ``availability_entry_no`` = M, one that must wait (a throttled write, a product not
   created yet) gets null and is taken again by the next run;
4. stores M as the cursor once every page went through.

BC enqueues an ITEM-PRODUCT sync of those items, which writes every mapped field; the
sync engine would find the items themselves unchanged (a ledger entry does not modify its
item), so the job writes the one field itself. ``quantityonhand`` is not a field the CRM
sends back to the ERP, so ITEM-PRODUCT finds the product it wrote unchanged (loop
prevention by content): nothing echoes. Comparing first makes a repeated run write nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import BatchResult, update_op
from app.dataverse.errors import DataverseError, FailureKind
from app.db import SessionMaker, current_actor, session_scope
from app.jobs.crm_jobs import CrmJob, JobLog, logged_run, open_crm, raise_for_crm
from app.jobs.queue import RunResult
from app.models.erp import Item, ItemLedgerEntry
from app.models.integration import Direction, IntegrationRecord, JobQueueEntry, SynchCursor
from app.settings import Settings
from app.sync import log, transfer
from app.sync.errors import RetriableSyncError

LOG_NAME = "ITEM AVAILABILITY"
CURSOR = LOG_NAME
PAGE_SIZE = 500
IDS_PER_QUERY = 50
BATCH_SIZE = 250


@dataclass
class Push:
    item_id: int
    item_no: str
    product_id: uuid.UUID
    quantity: Decimal  # what the CRM should show
    coupling_id: int
    is_in_crm: bool  # the coupled product's creation was confirmed


@dataclass
class PageOutcome:
    confirmed: list[int]  # coupling ids whose product shows the quantity (or never will)
    waiting: list[int]  # coupling ids to take again next run


async def read_cursor(session: AsyncSession) -> int | None:
    statement = select(SynchCursor.position).where(SynchCursor.name == CURSOR)
    return (await session.exec(statement)).first()


async def _store_cursor(session: AsyncSession, position: int) -> None:
    row = (await session.exec(select(SynchCursor).where(SynchCursor.name == CURSOR))).first()
    if row is None:
        session.add(SynchCursor(name=CURSOR, position=position))
    else:
        row.position = max(row.position, position)


async def _highest_entry(session: AsyncSession) -> int:
    highest = (await session.exec(select(func.max(col(ItemLedgerEntry.entry_no))))).one()
    return int(highest or 0)


def _coupled_items() -> Any:
    on = sa.and_(
        col(IntegrationRecord.table_name) == "item",
        col(IntegrationRecord.crm_table) == "product",
        col(IntegrationRecord.integration_id) == col(Item.system_id),
        col(IntegrationRecord.skipped).is_(False),
    )
    return select(Item.id).join(IntegrationRecord, on)


async def candidate_ids(session: AsyncSession, cursor: int) -> list[int]:
    """Item ids with a movement above the cursor or a coupling not confirmed yet (two
    index ranges, not a scan of every coupled item)."""
    moved = select(ItemLedgerEntry.item_no).where(col(ItemLedgerEntry.entry_no) > cursor)
    by_movement = _coupled_items().where(col(Item.no).in_(moved.distinct()))
    unconfirmed = _coupled_items().where(col(IntegrationRecord.availability_entry_no).is_(None))
    found = set(await session.exec(by_movement)) | set(await session.exec(unconfirmed))
    return sorted(i for i in found if i is not None)


async def _pushes(session: AsyncSession, statement: Any) -> list[Push]:
    """The page's coupled items with the quantity their product should show."""
    rows = (await session.execute(statement)).all()  # rows, not the first column
    if not rows:
        return []
    totals_query = (
        select(ItemLedgerEntry.item_no, func.sum(ItemLedgerEntry.quantity))
        .where(col(ItemLedgerEntry.item_no).in_([row[1] for row in rows]))
        .group_by(col(ItemLedgerEntry.item_no))
    )
    totals = dict((await session.exec(totals_query)).all())
    return [
        Push(item_id, no, crm_id, max(Decimal(str(totals.get(no) or 0)), Decimal(0)),
             coupling_id, confirmed_on is not None)
        for item_id, no, crm_id, coupling_id, confirmed_on in rows
    ]  # fmt: skip


def page_query(*, after_id: int = 0, item_ids: Sequence[int] | None = None) -> Any:
    """Coupled items by id: the next page after ``after_id``, or exactly ``item_ids``."""
    statement = (
        _coupled_items()
        .add_columns(
            col(Item.no),
            col(IntegrationRecord.crm_id),
            col(IntegrationRecord.id),
            col(IntegrationRecord.last_synch_crm_modified_on),
        )  # fmt: skip
        .order_by(col(Item.id))
    )
    if item_ids is not None:
        return statement.where(col(Item.id).in_(list(item_ids)))
    return statement.where(col(Item.id) > after_id).limit(PAGE_SIZE)


async def _crm_quantities(job: CrmJob, pushes: Sequence[Push]) -> dict[uuid.UUID, Decimal | None]:
    """The products that exist, with their ``quantityonhand`` (None when unset)."""
    found: dict[uuid.UUID, Decimal | None] = {}
    for start in range(0, len(pushes), IDS_PER_QUERY):
        chunk = pushes[start : start + IDS_PER_QUERY]
        text = " or ".join(f"productid eq {push.product_id}" for push in chunk)
        try:
            async for row in job.crm.query(
                "products", select=["productid", "quantityonhand"], filter=text
            ):
                value = row.get("quantityonhand")
                found[uuid.UUID(str(row["productid"]))] = (
                    None if value is None else Decimal(str(value))
                )
        except DataverseError as exc:
            raise_for_crm(exc, action="read the quantities of the CRM products")
    return found


def due_pushes(
    pushes: Sequence[Push], current: dict[uuid.UUID, Decimal | None]
) -> tuple[list[Push], list[Push]]:
    """(to write, gone from the CRM); a product already showing the quantity is neither."""
    due = [p for p in pushes if p.product_id in current and current[p.product_id] != p.quantity]
    gone = [p for p in pushes if p.product_id not in current]
    return due, gone


async def _write(job: CrmJob, due: Sequence[Push]) -> list[BatchResult]:
    results: list[BatchResult] = []
    for start in range(0, len(due), BATCH_SIZE):
        chunk = due[start : start + BATCH_SIZE]
        ops = [
            update_op("products", p.product_id, {"quantityonhand": transfer.to_json(p.quantity)})
            for p in chunk
        ]
        try:
            results.extend(await job.crm.batch(ops))
        except DataverseError as exc:
            raise_for_crm(exc, action="write the product quantities")
    return results


def _error(push: Push, message: str) -> log.RecordError:
    return log.RecordError("item", push.item_no, "product", str(push.product_id), message)


async def _record(
    session: AsyncSession,
    joblog: JobLog,
    pushes: Sequence[Push],
    due: Sequence[Push],
    gone: Sequence[Push],
    results: Sequence[BatchResult],
) -> PageOutcome:
    """Counters and errors of one page, and which couplings are confirmed."""
    counters = log.Counters(unchanged=len(pushes) - len(due) - len(gone))
    waiting = [p for p in gone if not p.is_in_crm]  # ITEM-PRODUCT has yet to create it
    counters.skipped += len(waiting)
    for push in gone:
        if push.is_in_crm:
            counters.failed += 1
            message = f"The coupled CRM product of item {push.item_no} does not exist any more."
            joblog.error(session, _error(push, message))
    for push, result in zip(due, results, strict=True):
        if result.is_ok:
            counters.modified += 1
        elif result.error is not None and result.error.failure_kind != FailureKind.transient:
            counters.failed += 1
            message = f"Could not write the quantity on hand: {result.error.message}"
            joblog.error(session, _error(push, message))
        else:
            waiting.append(push)
    await joblog.add(session, counters)
    later = {p.coupling_id for p in waiting}
    return PageOutcome([p.coupling_id for p in pushes if p.coupling_id not in later], sorted(later))


async def _mark(session: AsyncSession, coupling_ids: Sequence[int], value: int | None) -> None:
    if coupling_ids:
        await session.exec(
            sa.update(IntegrationRecord)
            .where(col(IntegrationRecord.id).in_(list(coupling_ids)))
            .values(availability_entry_no=value, modified_at=utc_now(),
                    modified_by=current_actor.get())
            .execution_options(synchronize_session=False)
        )  # fmt: skip


async def _push_page(
    sessionmaker: SessionMaker, job: CrmJob, joblog: JobLog, statement: Any, highest: int
) -> tuple[bool, int | None]:
    """(some product must wait, the page's last item id; None when the page was empty)."""
    async with sessionmaker() as session:
        pushes = await _pushes(session, statement)
    if not pushes:
        return False, None
    due, gone = due_pushes(pushes, await _crm_quantities(job, pushes))
    results = await _write(job, due)
    async with session_scope(sessionmaker) as session:
        outcome = await _record(session, joblog, pushes, due, gone, results)
        await _mark(session, outcome.confirmed, highest)
        await _mark(session, outcome.waiting, None)
    return bool(outcome.waiting), pushes[-1].item_id


async def push_changed_items(
    sessionmaker: SessionMaker, job: CrmJob, joblog: JobLog, cursor: int | None, highest: int
) -> bool:
    """Every candidate item, a page at a time; True when some product must wait."""
    is_waiting = False
    if cursor is not None:
        async with sessionmaker() as session:
            ids = await candidate_ids(session, cursor)
        for start in range(0, len(ids), PAGE_SIZE):
            statement = page_query(item_ids=ids[start : start + PAGE_SIZE])
            waits, _ = await _push_page(sessionmaker, job, joblog, statement, highest)
            is_waiting = is_waiting or waits
        return is_waiting
    after_id: int | None = 0
    while after_id is not None:
        statement = page_query(after_id=after_id)
        waits, after_id = await _push_page(sessionmaker, job, joblog, statement, highest)
        is_waiting = is_waiting or waits
    return is_waiting


async def run(sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings) -> RunResult:
    """One run; does nothing while item availability is switched off in the setup."""
    async with open_crm(sessionmaker, settings) as job:
        if not job.setup.item_availability_enabled:
            return RunResult(changed=0)
        async with sessionmaker() as session:
            highest = await _highest_entry(session)  # before any candidate is read
            cursor = await read_cursor(session)
        async with logged_run(
            sessionmaker, name=LOG_NAME, direction=Direction.to_crm, entry_id=entry.id
        ) as joblog:
            is_waiting = await push_changed_items(sessionmaker, job, joblog, cursor, highest)
            async with session_scope(sessionmaker) as session:
                await _store_cursor(session, highest)  # the waiting ones are marked: no loss
            if is_waiting:
                msg = "The CRM did not take some product quantities (throttled or unavailable)."
                raise RetriableSyncError(msg)
    return RunResult(changed=joblog.counters.activity)
