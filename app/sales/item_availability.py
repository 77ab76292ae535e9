"""The Item Availability job (BC 18+ codeunit 5356, every 30 min when enabled).

Availability in the CRM is the product's ``quantityonhand`` (reference §5.2). When item
ledger entries change, this job re-pushes it for the coupled, non-skipped products of the
items concerned:

1. the items with an item ledger entry modified after the entry's synch time (minus an
   overlap, for entries committed late); with no synch time yet, after the ITEM-PRODUCT
   mapping's ERP watermark, as BC does; with neither, every coupled item;
2. a page of them at a time: inventory summed from the ledger (negative -> 0), the
   products' current ``quantityonhand`` read in chunks, and only the ones that differ
   written, in one ``$batch``;
3. the synch time moves to the run's start once every page went through.

BC enqueues an ITEM-PRODUCT sync of those items, which writes every mapped field; the
sync engine would find the items themselves unchanged (a ledger entry does not modify its
item), so the job writes the one field itself. A product modified by the integration user
is not read back by ITEM-PRODUCT (loop prevention), so nothing echoes. Comparing first
makes a repeated run write nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import BatchResult, update_op
from app.dataverse.errors import DataverseError, FailureKind
from app.db import SessionMaker, session_scope
from app.jobs.crm_jobs import (
    CrmJob,
    JobLog,
    last_success_start,
    logged_run,
    open_crm,
    raise_for_crm,
)
from app.jobs.queue import RunResult
from app.models.erp import Item, ItemLedgerEntry
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationTableMapping,
    JobQueueEntry,
)
from app.settings import Settings
from app.sync import log, transfer
from app.sync.errors import RetriableSyncError

LOG_NAME = "ITEM AVAILABILITY"
ITEM_PRODUCT = "ITEM-PRODUCT"
PAGE_SIZE = 500
IDS_PER_QUERY = 50
BATCH_SIZE = 250
OVERLAP = timedelta(minutes=5)


@dataclass
class Push:
    item_no: str
    product_id: uuid.UUID
    quantity: Decimal  # what the CRM should show


async def synch_time(session: AsyncSession) -> datetime | None:
    """The last complete run's start, else the ITEM-PRODUCT ERP watermark (BC's fallback)."""
    stored = await last_success_start(session, name=LOG_NAME, direction=Direction.to_crm)
    if stored is not None:
        return stored
    statement = select(IntegrationTableMapping.erp_modified_watermark).where(
        IntegrationTableMapping.name == ITEM_PRODUCT
    )
    return (await session.exec(statement)).first()


async def _page(
    session: AsyncSession, since: datetime | None, after_id: int
) -> tuple[list[Push], int | None]:
    """Coupled items (after ``after_id``) with ledger changes since ``since``, and their stock."""
    statement = (
        select(Item.id, Item.no, IntegrationRecord.crm_id)
        .join(
            IntegrationRecord,
            sa.and_(
                col(IntegrationRecord.table_name) == "item",
                col(IntegrationRecord.crm_table) == "product",
                col(IntegrationRecord.integration_id) == col(Item.system_id),
                col(IntegrationRecord.skipped).is_(False),
            ),
        )
        .where(col(Item.id) > after_id)
        .order_by(col(Item.id))
        .limit(PAGE_SIZE)
    )
    if since is not None:
        changed = sa.exists().where(
            col(ItemLedgerEntry.item_no) == col(Item.no),
            col(ItemLedgerEntry.modified_at) > since - OVERLAP,
        )
        statement = statement.where(changed)
    rows = (await session.exec(statement)).all()
    if not rows:
        return [], None
    totals_query = (
        select(ItemLedgerEntry.item_no, func.sum(ItemLedgerEntry.quantity))
        .where(col(ItemLedgerEntry.item_no).in_([no for _, no, _ in rows]))
        .group_by(col(ItemLedgerEntry.item_no))
    )
    totals = dict((await session.exec(totals_query)).all())
    pushes = [
        Push(no, crm_id, max(Decimal(str(totals.get(no) or 0)), Decimal(0)))
        for _, no, crm_id in rows
    ]
    return pushes, rows[-1][0]


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
) -> bool:
    """Counters and errors of one page; True when some product must wait for a retry."""
    counters = log.Counters(unchanged=len(pushes) - len(due) - len(gone))
    for push in gone:
        counters.failed += 1
        message = f"The coupled CRM product of item {push.item_no} does not exist any more."
        joblog.error(session, _error(push, message))
    is_waiting = False
    for push, result in zip(due, results, strict=True):
        if result.is_ok:
            counters.modified += 1
        elif result.error is not None and result.error.failure_kind != FailureKind.transient:
            counters.failed += 1
            message = f"Could not write the quantity on hand: {result.error.message}"
            joblog.error(session, _error(push, message))
        else:
            is_waiting = True
    await joblog.add(session, counters)
    return is_waiting


async def push_changed_items(
    sessionmaker: SessionMaker, job: CrmJob, joblog: JobLog, since: datetime | None
) -> bool:
    after_id, is_waiting = 0, False
    while True:
        async with sessionmaker() as session:
            pushes, last_id = await _page(session, since, after_id)
        if last_id is None:
            return is_waiting
        after_id = last_id
        due, gone = due_pushes(pushes, await _crm_quantities(job, pushes))
        results = await _write(job, due)
        async with session_scope(sessionmaker) as session:
            is_waiting = await _record(session, joblog, pushes, due, gone, results) or is_waiting


async def run(sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings) -> RunResult:
    """One run; does nothing while item availability is switched off in the setup."""
    async with open_crm(sessionmaker, settings) as job:
        if not job.setup.item_availability_enabled:
            return RunResult(changed=0)
        async with sessionmaker() as session:
            since = await synch_time(session)
        async with logged_run(
            sessionmaker, name=LOG_NAME, direction=Direction.to_crm, entry_id=entry.id
        ) as joblog:
            if await push_changed_items(sessionmaker, job, joblog, since):
                msg = "The CRM did not take some product quantities (throttled or unavailable)."
                raise RetriableSyncError(msg)
    return RunResult(changed=joblog.counters.activity)
