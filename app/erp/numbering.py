"""Entry numbers and document numbers, assigned by the server without gaps or clashes.

Two requests posting at once must never get the same number. Each series is serialised
for the rest of the transaction before its highest number is read:

``app.db.lock_until_commit`` on the series name, so the next poster reads the committed
maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import lock_until_commit
from app.models import erp
from app.models.base import TableBase

NUMBER_WIDTH = 6


async def next_entry_no(
    session: AsyncSession, model: type[erp.ItemLedgerEntry] | type[erp.CustLedgerEntry]
) -> int:
    """The next ``entry_no`` of a ledger; call once per transaction, then count up yourself."""
    await lock_until_commit(session, model.__tablename__, table=model)
    highest = (await session.exec(select(func.max(col(model.entry_no))))).one()
    return int(highest or 0) + 1


@dataclass(frozen=True)
class DocumentSeries:
    """Numbers ``<prefix><6 digits>``; ``used_in`` lists every column that keeps them."""

    prefix: str
    table: type[TableBase]
    used_in: tuple[Mapped[str], ...]

    def format(self, number: int) -> str:
        return f"{self.prefix}{number:0{NUMBER_WIDTH}d}"


async def _highest_number(
    session: AsyncSession, series: DocumentSeries, column: Mapped[str]
) -> int:
    low, high = series.format(0), series.prefix + "9" * NUMBER_WIDTH
    statement = select(func.max(column)).where(
        column >= low, column <= high, func.length(column) == len(low)
    )
    value = (await session.exec(statement)).one()
    suffix = str(value or "")[len(series.prefix) :]
    return int(suffix) if suffix.isdigit() else 0


async def next_document_no(session: AsyncSession, series: DocumentSeries) -> str:
    """The next free number of ``series``, past every number any of its columns holds.

    Posted and converted documents are deleted (like BC), so the live table alone would
    hand out a number again; ``used_in`` includes the columns that remember them.
    """
    await lock_until_commit(session, f"series:{series.prefix}", table=series.table)
    highest = 0
    for column in series.used_in:
        highest = max(highest, await _highest_number(session, series, column))
    return series.format(highest + 1)


SALES_QUOTE_NOS = DocumentSeries(
    "SQ",
    erp.SalesHeader,
    (col(erp.SalesHeader.no), col(erp.SalesHeader.quote_no)),
)
SALES_ORDER_NOS = DocumentSeries(
    "SO",
    erp.SalesHeader,
    (col(erp.SalesHeader.no), col(erp.SalesInvoiceHeader.order_no)),
)
SALES_INVOICE_NOS = DocumentSeries("SI", erp.SalesInvoiceHeader, (col(erp.SalesInvoiceHeader.no),))
PAYMENT_NOS = DocumentSeries("PAY", erp.CustLedgerEntry, (col(erp.CustLedgerEntry.document_no),))
