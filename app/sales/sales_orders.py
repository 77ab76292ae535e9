"""Auto create sales orders: submitted CRM orders become ERP orders.

The job (every 30 min) and the REST action for one order share ``create_order``:

1. CRM orders with statecode Submitted (1) and no ``lastbackofficesubmit`` are the
   candidates (``pending_orders``);
2. the ERP order is built from the CRM order (``app.sales.crm_documents``) and, under a
   lock on the CRM id and only if no ERP order is coupled to it yet, written with its
   lines, notes and couplings in one transaction;
3. then the CRM order gets ``lastbackofficesubmit`` = today and the ERP order number
   (``bcbi_businesscentralordernumber``): set Active, written, set back to Submitted, in one
   change set (Dataverse edits only Active orders).

A crash between 2 and 3 leaves a coupled ERP order and an unmarked CRM order: the next run
finds the coupling, creates nothing and only does 3, so no order is ever created twice.
A CRM order that cannot be created (uncoupled customer or product, no write-in product,
ERP refusal) is one failure with its reason in the job's errors; the others go on, and it
is tried again by the next run. Each run writes one ``integration_synch_job`` row named
``AUTO CREATE SALES ORDERS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import ChangeSet, DataverseClient, update_op
from app.dataverse.errors import DataverseError
from app.db import SessionMaker, session_scope
from app.jobs import crm_jobs
from app.logs import get_logger
from app.models.erp import SalesDocumentType, SalesHeader
from app.models.integration import Direction, IntegrationRecord
from app.sales import crm_documents
from app.sales.crm_documents import ORDER, DocumentError
from app.settings import Settings
from app.sync import log
from app.sync.errors import SkippableRecordError, from_dataverse

logger = get_logger("salesbridge.sync.sales_orders")

JOB_NAME = "AUTO CREATE SALES ORDERS"
PENDING_FILTER = "statecode eq 1 and lastbackofficesubmit eq null"
SUBMITTED = {"statecode": 1, "statuscode": 3}  # Submitted / In Progress
ACTIVE = {"statecode": 0, "statuscode": 1}  # Active / New


class Outcome(StrEnum):
    created = "created"
    already_created = "already_created"
    failed = "failed"


@dataclass(frozen=True)
class OrderResult:
    crm_id: uuid.UUID
    ordernumber: str
    outcome: Outcome
    erp_order_no: str = ""
    message: str = ""


async def pending_orders(crm: DataverseClient) -> list[dict[str, Any]]:
    """Submitted CRM orders not yet created in the ERP, oldest change first."""
    return await crm_documents.read_documents(
        crm, ORDER, filter=PENDING_FILTER, action="read the submitted CRM orders"
    )


async def _mark_created(crm: DataverseClient, order_id: uuid.UUID, erp_no: str) -> None:
    """BC's SetLastBackOfficeSubmit: Active, write, Submitted again; all or nothing."""
    body = {
        **ACTIVE,
        "lastbackofficesubmit": utc_now().date().isoformat(),
        "bcbi_businesscentralordernumber": erp_no,
    }
    operations = [
        update_op(ORDER.entity_set, order_id, body),
        update_op(ORDER.entity_set, order_id, SUBMITTED),
    ]
    try:
        results = await crm.batch([ChangeSet(operations)])
    except DataverseError as exc:
        raise from_dataverse(exc, action="mark the CRM order as created") from exc
    failed = next((r for r in results if not r.is_ok), None)
    if failed is not None:
        reason = failed.error.dataverse_message if failed.error is not None else failed.outcome
        msg = f"ERP order {erp_no} was created, but the CRM refused to mark the order: {reason}"
        raise DocumentError(msg)


async def _quote_reference(crm: DataverseClient, record: Mapping[str, Any]) -> str:
    """The number of the CRM quote the order came from ("" when none or unreadable)."""
    quote_id = record.get("_quoteid_value")
    if not quote_id:
        return ""
    quote = await crm_documents.read_document(crm, crm_documents.QUOTE, uuid.UUID(str(quote_id)))
    return str((quote or {}).get("quotenumber") or "")


async def _quote_no(session: AsyncSession, reference: str) -> str:
    """BC: an ERP quote whose "your reference" is the CRM quote number is the order's quote."""
    if not reference:
        return ""
    statement = select(SalesHeader.no).where(
        col(SalesHeader.document_type) == SalesDocumentType.quote,
        col(SalesHeader.your_reference) == reference,
    )
    return (await session.exec(statement)).first() or ""


async def erp_numbers(session: AsyncSession, crm_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """CRM order id -> the number of the ERP order coupled to it, for those that have one."""
    if not crm_ids:
        return {}
    statement = (
        select(IntegrationRecord.crm_id, SalesHeader.no)
        .join(SalesHeader, col(SalesHeader.system_id) == IntegrationRecord.integration_id)
        .where(
            col(IntegrationRecord.table_name) == "sales_header",
            col(IntegrationRecord.crm_table) == ORDER.entity,
            col(IntegrationRecord.crm_id).in_(list(crm_ids)),
        )
    )
    return dict((await session.exec(statement)).all())


async def erp_no_of(session: AsyncSession, coupling: IntegrationRecord) -> str:
    statement = select(SalesHeader.no).where(col(SalesHeader.system_id) == coupling.integration_id)
    return (await session.exec(statement)).first() or ""


async def create_order(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    record: Mapping[str, Any],
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
    job_id: uuid.UUID,
) -> OrderResult:
    """Create (once) the ERP order of a submitted CRM order and mark the CRM order.

    ``DocumentError`` / ``SkippableRecordError``: this order cannot be created now.
    """
    order_id = uuid.UUID(str(record[ORDER.pk]))
    number = crm_documents.number_of(ORDER, record)
    if record.get("statecode") != SUBMITTED["statecode"]:
        msg = f"CRM order {number} is not submitted; only submitted orders become ERP orders."
        raise DocumentError(msg)
    draft: crm_documents.Draft | None = None
    async with sessionmaker() as session:
        existing = await crm_documents.coupling_of(session, ORDER, order_id)
        if existing is None:  # read and resolve outside the write transaction (HTTP)
            draft = await crm_documents.build_draft(
                session, crm, ORDER, record, settings=settings, base_currency_id=base_currency_id
            )
    reference = await _quote_reference(crm, record) if draft is not None else ""
    outcome = Outcome.already_created
    async with session_scope(sessionmaker) as session:
        await crm_documents.lock_document(session, order_id)
        existing = await crm_documents.coupling_of(session, ORDER, order_id)
        if existing is None and draft is not None:
            extra = {"quote_no": await _quote_no(session, reference)}
            header = await crm_documents.create_erp_document(
                session, ORDER, record, draft, job_id=job_id, extra=extra
            )
            erp_no, outcome = header.no, Outcome.created
        elif existing is not None:
            erp_no = await erp_no_of(session, existing)
        else:  # coupled when we read, uncoupled now: someone removed it in between
            msg = f"CRM order {number} was uncoupled while it was being created; try again."
            raise DocumentError(msg)
    await _mark_created(crm, order_id, erp_no)
    logger.info("crm_order_created", crm_id=str(order_id), erp_no=erp_no, outcome=outcome)
    return OrderResult(order_id, number, outcome, erp_no)


async def create_all(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
    job_queue_entry_id: int | None = None,
) -> list[OrderResult]:
    """One run of the job: every pending order."""
    return await create_chosen(
        sessionmaker, crm, await pending_orders(crm), settings=settings,
        base_currency_id=base_currency_id, job_queue_entry_id=job_queue_entry_id,
    )  # fmt: skip


async def create_chosen(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    records: Sequence[Mapping[str, Any]],
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
    job_queue_entry_id: int | None = None,
) -> list[OrderResult]:
    """Create the ERP orders of these CRM orders, each on its own; one job row."""
    results: list[OrderResult] = []
    async with crm_jobs.logged_run(
        sessionmaker, name=JOB_NAME, direction=Direction.from_crm, entry_id=job_queue_entry_id
    ) as joblog:
        try:
            for record in records:
                results.append(
                    await _create_one(
                        sessionmaker,
                        crm,
                        record,
                        settings=settings,
                        base_currency_id=base_currency_id,
                        job_id=joblog.job_id,
                    )  # fmt: skip
                )
        finally:  # what was done counts, also when a CRM failure stops the run
            async with session_scope(sessionmaker) as session:
                await joblog.add(session, log.Counters(
                    inserted=sum(r.outcome == Outcome.created for r in results),
                    modified=sum(r.outcome == Outcome.already_created for r in results),
                    failed=sum(r.outcome == Outcome.failed for r in results),
                ))  # fmt: skip
    return results


async def _create_one(
    sessionmaker: SessionMaker, crm: DataverseClient, record: Mapping[str, Any], *,
    settings: Settings, base_currency_id: uuid.UUID | None, job_id: uuid.UUID,
) -> OrderResult:  # fmt: skip
    try:
        return await create_order(
            sessionmaker, crm, record, settings=settings, base_currency_id=base_currency_id,
            job_id=job_id,
        )  # fmt: skip
    except (DocumentError, SkippableRecordError) as exc:
        order_id = uuid.UUID(str(record[ORDER.pk]))
        number = crm_documents.number_of(ORDER, record)
        text = str(exc)
        async with session_scope(sessionmaker) as session:
            log.log_error(session, job_id=job_id, error=log.RecordError(
                source_table=ORDER.entity, source_id=str(order_id),
                destination_table="sales_header", destination_id="",
                message=f"CRM order {number}: {text}",
            ))  # fmt: skip
        logger.warning("crm_order_not_created", crm_id=str(order_id), reason=text)
        return OrderResult(order_id, number, Outcome.failed, message=text)
