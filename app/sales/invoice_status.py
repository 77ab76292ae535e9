"""CRM invoice status from the customer ledger (BC's CRM Statistics Job).

A coupled posted invoice's CRM status follows its open customer ledger entry:
remaining amount 0 -> Paid / Complete; partly paid (remaining differs from the amount)
-> Paid / Partial; otherwise Active / Billed. The CRM invoice is read first and written only
when its status differs, so a run repeated (or redone after a crash) changes nothing. A
canceled CRM invoice is left alone. Our ledger has no cancellation of posted invoices, so
BC's "cancelled invoice -> Canceled" has no source here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import ChangeSet, DataverseClient, update_op
from app.dataverse.errors import DataverseError
from app.db import SessionMaker, session_scope
from app.models.erp import CustLedgerDocumentType, CustLedgerEntry, SalesInvoiceHeader
from app.models.integration import IntegrationRecord
from app.sync import log
from app.sync.conflicts import SyncAction
from app.sync.errors import from_dataverse

HEADER_TABLE = "sales_invoice_header"
PAGE_SIZE = 200
IDS_PER_QUERY = 50
CHANGE_SETS_PER_BATCH = 100

# (statecode, statuscode) of the CRM "invoice" table.
BILLED = (0, 4)  # Active / Billed
PAID_COMPLETE = (2, 100001)  # Paid / Complete
PAID_PARTIAL = (2, 100002)  # Paid / Partial
CANCELED_STATE = 3


def status_for(amount_lcy: Decimal, remaining_lcy: Decimal) -> tuple[int, int]:
    """The CRM (statecode, statuscode) of an invoice with this ledger entry."""
    if remaining_lcy == 0:
        return PAID_COMPLETE
    if remaining_lcy != amount_lcy:
        return PAID_PARTIAL
    return BILLED


@dataclass(frozen=True)
class Candidate:
    header_id: int
    system_id: uuid.UUID
    invoice_no: str
    crm_id: uuid.UUID
    wanted: tuple[int, int]


async def _candidates(
    session: AsyncSession,
    *,
    after_id: int,
    header_ids: frozenset[uuid.UUID] | set[uuid.UUID] | None,
    since: datetime | None,
) -> list[Candidate]:
    entry = CustLedgerEntry
    statement = (
        sa.select(
            col(SalesInvoiceHeader.id),
            col(SalesInvoiceHeader.system_id),
            col(SalesInvoiceHeader.no),
            col(IntegrationRecord.crm_id),
            col(entry.amount_lcy),
            col(entry.remaining_amount_lcy),
        )  # fmt: skip
        .join(
            IntegrationRecord,
            sa.and_(
                col(IntegrationRecord.table_name) == HEADER_TABLE,
                col(IntegrationRecord.integration_id) == SalesInvoiceHeader.system_id,
                col(IntegrationRecord.last_synch_crm_modified_on).is_not(None),
                col(IntegrationRecord.skipped).is_(False),
            ),
        )
        .join(
            entry,
            sa.and_(
                col(entry.document_type) == CustLedgerDocumentType.invoice,
                col(entry.document_no) == SalesInvoiceHeader.no,
                col(entry.customer_no) == SalesInvoiceHeader.sell_to_customer_no,
            ),
        )
        .where(col(SalesInvoiceHeader.id) > after_id)
        .order_by(col(SalesInvoiceHeader.id))
        .limit(PAGE_SIZE)
    )
    if header_ids is not None:
        statement = statement.where(col(SalesInvoiceHeader.system_id).in_(sorted(header_ids)))
    if since is not None:
        statement = statement.where(col(entry.modified_at) > since)
    rows = (await session.execute(statement)).all()
    return [
        Candidate(row_id, system_id, str(no), crm_id, status_for(Decimal(amount), Decimal(rest)))
        for row_id, system_id, no, crm_id, amount, rest in rows
    ]


async def _current(
    crm: DataverseClient, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        text = " or ".join(f"invoiceid eq {i}" for i in ids[start : start + IDS_PER_QUERY])
        try:
            async for row in crm.query(
                "invoices", select=["invoiceid", "statecode", "statuscode"], filter=text
            ):
                found[uuid.UUID(str(row["invoiceid"]))] = row
        except DataverseError as exc:
            raise from_dataverse(exc, action="read the CRM invoices") from exc
    return found


async def _write(crm: DataverseClient, todo: Sequence[Candidate]) -> dict[uuid.UUID, str]:
    """Send the status changes; returns the failures (CRM id -> message)."""
    failures: dict[uuid.UUID, str] = {}
    for start in range(0, len(todo), CHANGE_SETS_PER_BATCH):
        chunk = todo[start : start + CHANGE_SETS_PER_BATCH]
        ops = [
            update_op("invoices", c.crm_id, {"statecode": c.wanted[0], "statuscode": c.wanted[1]})
            for c in chunk
        ]
        try:
            results = await crm.batch([ChangeSet([op]) for op in ops])
        except DataverseError as exc:
            raise from_dataverse(exc, action="write the CRM invoice statuses") from exc
        for candidate, result in zip(chunk, results, strict=True):
            if not result.is_ok:
                reason = result.error.dataverse_message if result.error else str(result.outcome)
                failures[candidate.crm_id] = f"The CRM refused the invoice status: {reason}"
    return failures


async def refresh(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    header_ids: frozenset[uuid.UUID] | set[uuid.UUID] | None = None,
    since: datetime | None = None,
    job_id: uuid.UUID | None = None,
) -> log.Counters:
    """Bring the CRM status of coupled invoices in line with their ledger entries.

    ``header_ids`` limits it to those invoices, ``since`` to ledger entries changed after
    it; failures are logged on the sync job ``job_id`` when one is given.
    """
    total = log.Counters()
    after_id = 0
    while True:
        async with session_scope(sessionmaker) as session:
            page = await _candidates(session, after_id=after_id, header_ids=header_ids, since=since)
        if not page:
            return total
        after_id = page[-1].header_id
        current = await _current(crm, [c.crm_id for c in page])
        todo: list[Candidate] = []
        counters = log.Counters()
        for candidate in page:
            row = current.get(candidate.crm_id)
            if row is None or row.get("statecode") == CANCELED_STATE:
                counters.count(SyncAction.skip)
            elif (row.get("statecode"), row.get("statuscode")) == candidate.wanted:
                counters.count(SyncAction.unchanged)
            else:
                todo.append(candidate)
        failures = await _write(crm, todo) if todo else {}
        for candidate in todo:
            counters.count(SyncAction.fail if candidate.crm_id in failures else SyncAction.modify)
        if job_id is not None:
            async with session_scope(sessionmaker) as session:
                for candidate in todo:
                    if candidate.crm_id in failures:
                        log.log_error(session, job_id=job_id, error=log.RecordError(
                            source_table=HEADER_TABLE, source_id=str(candidate.system_id),
                            destination_table="invoice", destination_id=str(candidate.crm_id),
                            message=f"sales invoice {candidate.invoice_no}: "
                            f"{failures[candidate.crm_id]}",
                        ))  # fmt: skip
                await log.add_counters(session, job_id=job_id, counters=counters)
        total.merge(counters)
