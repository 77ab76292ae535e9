"""Document actions other than posting: release, reopen, and make an order from a quote.

Release and reopen are idempotent (releasing a released document changes nothing), as
in BC. Make-order copies the quote's header and lines into a new order that remembers
``quote_no``, moves the quote's notes to the order and deletes the quote.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import current_actor
from app.erp import numbering, order_events, sales
from app.erp.rows import row_values
from app.errors import ConflictError
from app.models.erp import Note, SalesDocumentStatus, SalesDocumentType, SalesHeader, SalesLine

HEADER_COPY_EXCLUDE = {"id", "system_id", "created_at", "modified_at", "modified_by"}
LINE_COPY_EXCLUDE = HEADER_COPY_EXCLUDE | {"document_type", "document_no"}


async def release(session: AsyncSession, header: SalesHeader) -> SalesHeader:
    if header.status == SalesDocumentStatus.released:
        return header
    lines = await sales.list_lines(session, header)
    if not any(line.quantity > 0 for line in lines):
        msg = f"There is nothing to release for {sales.label(header.document_type)} '{header.no}'."
        raise ConflictError(msg)
    header.status = SalesDocumentStatus.released
    session.add(header)
    await session.flush()
    await order_events.record_released(session, header)
    return header


async def reopen(session: AsyncSession, header: SalesHeader) -> SalesHeader:
    if header.status != SalesDocumentStatus.open:
        header.status = SalesDocumentStatus.open
        session.add(header)
        await session.flush()
    return header


async def move_notes(
    session: AsyncSession, source: SalesHeader, *, record_table: str, record_id: object
) -> None:
    """Re-point the notes of ``source`` (a bulk UPDATE, so the audit columns are set here)."""
    await session.exec(
        update(Note)
        .where(col(Note.record_table) == "sales_header", col(Note.record_id) == source.system_id)
        .values(
            record_table=record_table,
            record_id=record_id,
            modified_at=utc_now(),
            modified_by=current_actor.get(),
        )
    )


async def make_order(session: AsyncSession, quote: SalesHeader) -> SalesHeader:
    values = row_values(
        quote, exclude=HEADER_COPY_EXCLUDE | {"document_type", "no", "status", "quote_no"}
    )
    order = SalesHeader(
        **values,
        document_type=SalesDocumentType.order,
        no=await numbering.next_document_no(session, numbering.SALES_ORDER_NOS),
        quote_no=quote.no,
    )
    session.add(order)
    for line in await sales.list_lines(session, quote):
        copied = row_values(
            line, exclude=LINE_COPY_EXCLUDE | {"quantity_shipped", "quantity_invoiced"}
        )
        session.add(SalesLine(**copied, document_type=order.document_type, document_no=order.no))
    await session.flush()
    await move_notes(session, quote, record_table="sales_header", record_id=order.system_id)
    await sales.discard_document(session, quote)
    return order
