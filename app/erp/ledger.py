"""Item and customer ledgers: append-only entries with server-assigned entry numbers.

Quantities are signed as in BC: what enters stock (purchase, positive adjustment) is
positive, what leaves it (sale, negative adjustment) negative; a transfer may be either.
A customer payment is a negative entry applied to the customer's open invoices, oldest
due first, which lowers their remaining amounts and closes the ones paid in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp import numbering
from app.erp.references import Reference, missing_references
from app.erp.validation import RowError, raise_row_errors
from app.errors import ConflictError, NotFoundError
from app.models.erp import (
    CustLedgerDocumentType,
    CustLedgerEntry,
    Customer,
    Item,
    ItemLedgerEntry,
    ItemLedgerEntryType,
    Location,
)

Entry = TypeVar("Entry", ItemLedgerEntry, CustLedgerEntry)
INBOUND = frozenset({ItemLedgerEntryType.purchase, ItemLedgerEntryType.positive_adjmt})
OUTBOUND = frozenset({ItemLedgerEntryType.sale, ItemLedgerEntryType.negative_adjmt})
ITEM_ENTRY_REFERENCES = (
    Reference("item_no", Item, "no", "Item"),
    Reference("location_code", Location, "code", "Location"),
)


def quantity_problem(entry_type: ItemLedgerEntryType, quantity: Decimal) -> str | None:
    if quantity == 0:
        return "quantity must not be zero."
    if entry_type in INBOUND and quantity < 0:
        return f"quantity must be positive for a {entry_type} entry."
    if entry_type in OUTBOUND and quantity > 0:
        return f"quantity must be negative for a {entry_type} entry (stock leaves)."
    return None


async def add_item_entries(
    session: AsyncSession, entries: Sequence[Mapping[str, Any]]
) -> list[ItemLedgerEntry]:
    """Append entries with consecutive numbers (no checks: callers have checked)."""
    if not entries:
        return []
    first = await numbering.next_entry_no(session, ItemLedgerEntry)
    rows = [ItemLedgerEntry(entry_no=first + n, **values) for n, values in enumerate(entries)]
    session.add_all(rows)
    await session.flush()
    return rows


async def post_item_entry(session: AsyncSession, values: Mapping[str, Any]) -> ItemLedgerEntry:
    errors = await missing_references(session, ITEM_ENTRY_REFERENCES, [(None, values)])
    problem = quantity_problem(values["entry_type"], values.get("quantity", Decimal(0)))
    if problem is not None:
        errors.append(RowError(None, "quantity", problem))
    raise_row_errors(errors, total=1)
    item = (await session.exec(select(Item).where(Item.no == values["item_no"]))).one()
    if item.blocked:
        msg = f"Item '{item.no}' is blocked; nothing can be posted for it."
        raise ConflictError(msg)
    (row,) = await add_item_entries(session, [values])
    return row


async def get_entry_or_raise(session: AsyncSession, model: type[Entry], entry_no: int) -> Entry:
    row = (await session.exec(select(model).where(col(model.entry_no) == entry_no))).first()
    if row is None:
        msg = f"Ledger entry {entry_no} was not found."
        raise NotFoundError(msg)
    return row


async def add_cust_entry(session: AsyncSession, **values: Any) -> CustLedgerEntry:
    entry_no = await numbering.next_entry_no(session, CustLedgerEntry)
    row = CustLedgerEntry(entry_no=entry_no, **values)
    session.add(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class Payment:
    entry: CustLedgerEntry
    applied: list[tuple[CustLedgerEntry, Decimal]]


async def _open_invoices(
    session: AsyncSession, customer_no: str, applies_to_document_no: str | None
) -> Sequence[CustLedgerEntry]:
    statement = select(CustLedgerEntry).where(
        CustLedgerEntry.customer_no == customer_no,
        CustLedgerEntry.document_type == CustLedgerDocumentType.invoice,
        col(CustLedgerEntry.open).is_(True),
    )
    if applies_to_document_no is not None:
        statement = statement.where(CustLedgerEntry.document_no == applies_to_document_no)
    order = (col(CustLedgerEntry.due_date).asc().nulls_last(), col(CustLedgerEntry.entry_no))
    invoices = (await session.exec(statement.order_by(*order).with_for_update())).all()
    if applies_to_document_no is not None and not invoices:
        msg = f"Customer '{customer_no}' has no open invoice '{applies_to_document_no}'."
        raise ConflictError(msg)
    return invoices


async def post_payment(
    session: AsyncSession,
    *,
    customer_no: str,
    amount: Decimal,
    posting_date: date,
    document_no: str | None = None,
    applies_to_document_no: str | None = None,
) -> Payment:
    """Record a payment of ``amount`` (positive) and apply it to open invoices."""
    if (await session.exec(select(Customer.id).where(Customer.no == customer_no))).first() is None:
        raise_row_errors(
            [RowError(None, "customer_no", f"Customer '{customer_no}' does not exist.")], total=1
        )
    invoices = await _open_invoices(session, customer_no, applies_to_document_no)
    unapplied = amount
    applied: list[tuple[CustLedgerEntry, Decimal]] = []
    for invoice in invoices:
        if unapplied <= 0:
            break
        share = min(unapplied, invoice.remaining_amount_lcy)
        invoice.remaining_amount_lcy -= share
        invoice.open = invoice.remaining_amount_lcy != 0
        session.add(invoice)
        unapplied -= share
        applied.append((invoice, share))
    number = document_no or await numbering.next_document_no(session, numbering.PAYMENT_NOS)
    entry = await add_cust_entry(
        session,
        customer_no=customer_no,
        posting_date=posting_date,
        document_type=CustLedgerDocumentType.payment,
        document_no=number,
        amount_lcy=-amount,
        remaining_amount_lcy=-unapplied,
        due_date=posting_date,
        open=unapplied != 0,
    )
    return Payment(entry=entry, applied=applied)
