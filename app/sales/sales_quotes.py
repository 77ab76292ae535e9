"""Auto process sales quotes: active and won CRM quotes become ERP sales quotes (as BC does).

Every run reads the CRM quotes in state Active (1) or Won (2) and makes an ERP sales quote
(lines as for orders, "your reference" = ``quotenumber``) for each one no ERP quote is
coupled to yet. The coupling is what makes a rerun create nothing: it is written in the
quote's own transaction, under a lock on the CRM id, and it stays when the ERP quote is
later made into an order, so a processed CRM quote is never processed again.

A revised quote (Dataverse closes the old revision as Revised and makes a new quote row
with the same ``quotenumber`` and a higher ``revisionnumber``) replaces the ERP quote of
the earlier revision, as BC does: once the new revision is activated, the ERP quote whose
"your reference" is that number and which is coupled to another CRM quote is deleted with
its couplings, and the new revision's quote is created. An ERP quote already made into an
order is gone by then and nothing is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.erp import sales
from app.jobs import crm_jobs
from app.logs import get_logger
from app.models.erp import Note, SalesDocumentType, SalesHeader, SalesLine
from app.models.integration import Direction, IntegrationRecord
from app.sales import crm_documents
from app.sales.crm_documents import QUOTE, DocumentError
from app.settings import Settings
from app.sync import log
from app.sync.errors import SkippableRecordError

logger = get_logger("salesbridge.sync.sales_quotes")

JOB_NAME = "AUTO PROCESS SALES QUOTES"
PROCESS_FILTER = "statecode eq 1 or statecode eq 2"  # Active, Won


async def quotes_to_process(crm: DataverseClient) -> list[dict[str, Any]]:
    return await crm_documents.read_documents(
        crm, QUOTE, filter=PROCESS_FILTER, action="read the active CRM quotes"
    )


async def _replace_earlier_revision(
    session: AsyncSession, reference: str, quote_id: uuid.UUID
) -> str:
    """Delete the ERP quote of an earlier revision of this CRM quote; its number or ""."""
    statement = (
        select(SalesHeader, IntegrationRecord)
        .join(IntegrationRecord, col(IntegrationRecord.integration_id) == SalesHeader.system_id)
        .where(
            col(SalesHeader.document_type) == SalesDocumentType.quote,
            col(SalesHeader.your_reference) == reference,
            col(IntegrationRecord.table_name) == "sales_header",
            col(IntegrationRecord.crm_table) == QUOTE.entity,
            col(IntegrationRecord.crm_id) != quote_id,
        )
    )
    found = (await session.exec(statement)).first()
    if found is None:
        return ""
    header, _coupling = found
    lines = select(SalesLine.system_id).where(
        col(SalesLine.document_type) == header.document_type,
        col(SalesLine.document_no) == header.no,
    )
    notes = select(Note.system_id).where(
        col(Note.record_table) == "sales_header", col(Note.record_id) == header.system_id
    )
    for table, ids in (("sales_line", lines), ("note", notes)):
        await session.exec(
            delete(IntegrationRecord).where(
                col(IntegrationRecord.table_name) == table,
                col(IntegrationRecord.integration_id).in_(ids),
            )
        )
    # The earlier revision's coupling stays (on no ERP row): that CRM quote is processed.
    await sales.discard_document(session, header)
    return header.no


async def process_quote(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    record: Mapping[str, Any],
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
    job_id: uuid.UUID,
) -> str:
    """The new ERP quote's number, or "" when the CRM quote was processed before."""
    quote_id = uuid.UUID(str(record[QUOTE.pk]))
    async with sessionmaker() as session:
        if await crm_documents.coupling_of(session, QUOTE, quote_id) is not None:
            return ""
        draft = await crm_documents.build_draft(
            session, crm, QUOTE, record, settings=settings, base_currency_id=base_currency_id
        )
    async with session_scope(sessionmaker) as session:
        await crm_documents.lock_document(session, quote_id)
        if await crm_documents.coupling_of(session, QUOTE, quote_id) is not None:
            return ""
        replaced = await _replace_earlier_revision(
            session, str(draft.header["your_reference"]), quote_id
        )
        header = await crm_documents.create_erp_document(
            session, QUOTE, record, draft, job_id=job_id
        )
    logger.info("crm_quote_processed", crm_id=str(quote_id), erp_no=header.no, replaced=replaced)
    return header.no


async def process_all(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
    job_queue_entry_id: int | None = None,
) -> log.Counters:
    """One run of the job; one ``integration_synch_job`` row with its errors."""
    counters = log.Counters()
    async with crm_jobs.logged_run(
        sessionmaker, name=JOB_NAME, direction=Direction.from_crm, entry_id=job_queue_entry_id
    ) as joblog:
        try:
            records = await quotes_to_process(crm)
            async with sessionmaker() as session:
                done = await crm_documents.coupled_ids(
                    session, QUOTE, [uuid.UUID(str(r[QUOTE.pk])) for r in records]
                )
            for record in records:
                if uuid.UUID(str(record[QUOTE.pk])) in done:
                    counters.unchanged += 1
                    continue
                await _process_one(
                    sessionmaker, crm, record, settings=settings,
                    base_currency_id=base_currency_id, job_id=joblog.job_id, counters=counters,
                )  # fmt: skip
        finally:  # what was done counts, also when a CRM failure stops the run
            async with session_scope(sessionmaker) as session:
                await joblog.add(session, counters)
    return counters


async def _process_one(
    sessionmaker: SessionMaker, crm: DataverseClient, record: Mapping[str, Any], *,
    settings: Settings, base_currency_id: uuid.UUID | None, job_id: uuid.UUID,
    counters: log.Counters,
) -> None:  # fmt: skip
    number = crm_documents.number_of(QUOTE, record)
    try:
        created = await process_quote(
            sessionmaker, crm, record, settings=settings, base_currency_id=base_currency_id,
            job_id=job_id,
        )  # fmt: skip
    except (DocumentError, SkippableRecordError) as exc:
        counters.failed += 1
        async with session_scope(sessionmaker) as session:
            log.log_error(session, job_id=job_id, error=log.RecordError(
                source_table=QUOTE.entity, source_id=str(record[QUOTE.pk]),
                destination_table="sales_header", destination_id="",
                message=f"CRM quote {number}: {exc}",
            ))  # fmt: skip
        return
    if created:
        counters.inserted += 1
    else:
        counters.unchanged += 1
