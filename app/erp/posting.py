"""Post (ship and invoice) a sales order, in the caller's one transaction.

Posting writes, for the quantities posted (by default everything not yet invoiced):
- a negative item ledger entry (``sale``) per item line,
- a posted sales invoice (header and lines),
- an open customer ledger entry (``invoice``) for the amount including VAT, in LCY,
- ``quantity_shipped`` / ``quantity_invoiced`` on the order lines.
A fully posted order is then deleted, as BC does, and its notes move to the invoice. The
header's invoice discount is spread over invoices in proportion to the amount posted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp import ledger, numbering, order_events, sales
from app.erp.references import missing_references
from app.erp.rows import row_values
from app.erp.sales_actions import move_notes
from app.erp.validation import RowError, raise_row_errors
from app.errors import ConflictError, NotFoundError
from app.models.erp import (
    Currency,
    CustLedgerDocumentType,
    Item,
    ItemLedgerEntryType,
    PartyFields,
    SalesHeader,
    SalesInvoiceHeader,
    SalesInvoiceLine,
    SalesLine,
    SalesLineType,
)

PARTY_FIELDS = set(PartyFields.model_fields) - {
    "id",
    "system_id",
    "created_at",
    "modified_at",
    "modified_by",
}
INVOICE_LINE_FIELDS = {"type", "no", "description", "location_code", "unit_of_measure_code"}


@dataclass(frozen=True)
class PostedOrder:
    invoice: SalesInvoiceHeader
    lines: list[SalesInvoiceLine]
    is_order_deleted: bool


def _outstanding(line: SalesLine) -> Decimal:
    return line.quantity - line.quantity_invoiced


def quantities_to_post(
    lines: Sequence[SalesLine], requested: Mapping[int, Decimal] | None
) -> list[tuple[SalesLine, Decimal]]:
    """(line, quantity) pairs to post: everything outstanding, or what the caller asked."""
    if requested is None:
        return [(line, _outstanding(line)) for line in lines if _outstanding(line) > 0]
    by_no = {line.line_no: line for line in lines}
    errors = [
        RowError(None, f"lines.{line_no}", f"The order has no line {line_no}.")
        for line_no in requested
        if line_no not in by_no
    ]
    errors += [
        RowError(
            None, f"lines.{no}", f"Only {_outstanding(by_no[no])} of line {no} is left to post."
        )
        for no, quantity in requested.items()
        if no in by_no and quantity > _outstanding(by_no[no])
    ]
    raise_row_errors(errors, total=1)
    return [(by_no[no], quantity) for no, quantity in requested.items() if quantity > 0]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(sales.CENT, rounding=ROUND_HALF_UP)


def _posted_amount(line: SalesLine, quantity: Decimal) -> Decimal:
    discount = line.line_discount_amount * quantity / line.quantity if line.quantity else Decimal(0)
    return sales.line_amount(quantity, line.unit_price, discount)


async def _check_items(session: AsyncSession, pairs: Sequence[tuple[SalesLine, Decimal]]) -> None:
    values = [(line.line_no, row_values(line)) for line, _ in pairs]
    errors = await missing_references(session, sales.LINE_REFERENCES, values)
    raise_row_errors(
        [RowError(None, f"lines.{e.index}.{e.field}", e.message) for e in errors], total=1
    )
    item_nos = {line.no for line, _ in pairs if line.type == SalesLineType.item}
    blocked = (
        await session.exec(select(Item.no).where(col(Item.no).in_(item_nos), col(Item.blocked)))
    ).all()
    if blocked:
        msg = f"Item(s) {', '.join(sorted(blocked))} are blocked; the order cannot be posted."
        raise ConflictError(msg)


async def _to_lcy(session: AsyncSession, currency_code: str, amount: Decimal) -> Decimal:
    if not currency_code:
        return amount
    statement = select(Currency).where(Currency.code == currency_code)
    currency = (await session.exec(statement)).first()
    return _cents(amount * (currency.exchange_rate if currency is not None else Decimal(1)))


def _invoice_lines(
    invoice_no: str, pairs: Sequence[tuple[SalesLine, Decimal]]
) -> list[SalesInvoiceLine]:
    out = []
    for line, quantity in pairs:
        amount = _posted_amount(line, quantity)
        out.append(
            SalesInvoiceLine(
                **row_values(line, include=INVOICE_LINE_FIELDS),
                document_no=invoice_no,
                line_no=line.line_no,
                quantity=quantity,
                unit_price=line.unit_price,
                line_discount_amount=amount_discount(line, quantity),
                amount=amount,
                amount_including_vat=amount,
            )
        )
    return out


def amount_discount(line: SalesLine, quantity: Decimal) -> Decimal:
    return _cents(quantity * line.unit_price) - _posted_amount(line, quantity)


def _invoice_discount(order: SalesHeader, lines: Sequence[SalesLine], posted: Decimal) -> Decimal:
    outstanding = sum((_posted_amount(line, _outstanding(line)) for line in lines), Decimal(0))
    if not order.invoice_discount_amount or not outstanding:
        return Decimal(0)
    share = _cents(order.invoice_discount_amount * posted / outstanding)
    if share > posted:
        msg = "invoice_discount_amount is larger than the amount to invoice."
        raise ConflictError(msg)
    return share


async def post_order(
    session: AsyncSession,
    order: SalesHeader,
    *,
    posting_date: date,
    quantities: Mapping[int, Decimal] | None = None,
) -> PostedOrder:
    await sales.sellable_customer(session, order.sell_to_customer_no)
    lines = await sales.list_lines(session, order)
    pairs = quantities_to_post(lines, quantities)
    if not pairs:
        msg = f"There is nothing to post for sales order '{order.no}'."
        raise ConflictError(msg)
    await _check_items(session, pairs)
    invoice_no = await numbering.next_document_no(session, numbering.SALES_INVOICE_NOS)
    invoice_lines = _invoice_lines(invoice_no, pairs)
    posted = sum((line.amount for line in invoice_lines), Decimal(0))
    discount = _invoice_discount(order, lines, posted)
    invoice = _invoice_header(order, invoice_no, posting_date, posted - discount, discount)
    amount_lcy = await _to_lcy(session, order.currency_code, invoice.amount_including_vat)
    if max(amount_lcy, invoice.amount_including_vat) >= sales.MAX_TOTAL:
        msg = f"The invoice amount {amount_lcy} (LCY) is too large to post."
        raise ConflictError(msg)
    session.add(invoice)
    await session.flush()
    session.add_all(invoice_lines)
    await ledger.add_item_entries(session, _item_entries(pairs, invoice_no, posting_date))
    await ledger.add_cust_entry(
        session,
        customer_no=order.sell_to_customer_no,
        posting_date=posting_date,
        document_type=CustLedgerDocumentType.invoice,
        document_no=invoice_no,
        amount_lcy=amount_lcy,
        remaining_amount_lcy=amount_lcy,
        due_date=invoice.due_date,
        open=invoice.amount_including_vat != 0,
    )
    is_deleted = await _finish_order(session, order, lines, pairs, posting_date, discount, invoice)
    await order_events.record_posted(session, order, is_fully_invoiced=is_deleted)
    return PostedOrder(invoice=invoice, lines=invoice_lines, is_order_deleted=is_deleted)


def _invoice_header(
    order: SalesHeader, invoice_no: str, posting_date: date, amount: Decimal, discount: Decimal
) -> SalesInvoiceHeader:
    return SalesInvoiceHeader(
        **row_values(order, include=PARTY_FIELDS),
        no=invoice_no,
        order_no=order.no,
        your_reference=order.your_reference,
        sell_to_customer_no=order.sell_to_customer_no,
        posting_date=posting_date,
        due_date=posting_date,
        shipment_date=posting_date,
        amount=amount,
        amount_including_vat=amount,
        invoice_discount_amount=discount,
    )


def _item_entries(
    pairs: Sequence[tuple[SalesLine, Decimal]], invoice_no: str, posting_date: date
) -> list[dict[str, Any]]:
    return [
        {
            "item_no": line.no,
            "location_code": line.location_code,
            "posting_date": posting_date,
            "entry_type": ItemLedgerEntryType.sale,
            "quantity": -quantity,
            "document_no": invoice_no,
        }
        for line, quantity in pairs
        if line.type == SalesLineType.item
    ]


async def _finish_order(
    session: AsyncSession,
    order: SalesHeader,
    lines: Sequence[SalesLine],
    pairs: Sequence[tuple[SalesLine, Decimal]],
    posting_date: date,
    discount: Decimal,
    invoice: SalesInvoiceHeader,
) -> bool:
    """Count the posted quantities on the order; delete it once everything is invoiced."""
    for line, quantity in pairs:
        line.quantity_shipped += quantity
        line.quantity_invoiced += quantity
        session.add(line)
    order.last_shipment_date = posting_date
    order.invoice_discount_amount -= discount
    session.add(order)
    await session.flush()
    if any(_outstanding(line) > 0 for line in lines):
        return False
    await move_notes(
        session, order, record_table="sales_invoice_header", record_id=invoice.system_id
    )
    await sales.discard_document(session, order)
    return True


async def get_invoice_or_raise(session: AsyncSession, no: str) -> SalesInvoiceHeader:
    statement = select(SalesInvoiceHeader).where(SalesInvoiceHeader.no == no)
    invoice = (await session.exec(statement)).first()
    if invoice is None:
        msg = f"Sales invoice '{no}' was not found."
        raise NotFoundError(msg)
    return invoice
