"""Sales quotes and orders: headers with lines, edited only while open, like BC.

A new document copies the customer's defaults onto the header (bill-to and ship-to
address, currency, salesperson, payment terms, shipment method, shipping agent) for every
field the caller did not give; changing the sell-to customer copies them again. Lines take
description, unit price and unit of measure from the item or resource, and their amount
is computed: ``quantity * unit_price - line_discount_amount``, rounded to cents. VAT is
not modelled, so ``amount_including_vat`` equals ``amount``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp import numbering, order_events
from app.erp.references import Reference, missing_references
from app.erp.rows import row_values
from app.erp.validation import RowError, flush_or_conflict, raise_row_errors
from app.errors import ConflictError, NotFoundError
from app.models.erp import (
    Currency,
    Customer,
    Item,
    Location,
    Note,
    Resource,
    SalesDocumentStatus,
    SalesDocumentType,
    SalesHeader,
    SalesLine,
    SalesLineType,
    Salesperson,
    UnitOfMeasure,
)
from app.models.types import DECIMAL_PRECISION, DECIMAL_SCALE

CENT = Decimal("0.01")
# Amounts carry 18 digits, 13 before the point (ExactDecimal). Lines stay two digits below,
# so totals of up to 100 lines (and their LCY value at a sane exchange rate) still fit.
MAX_LINE_AMOUNT = Decimal(10) ** 11
MAX_TOTAL = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)
LINE_NO_STEP = 10000
SERIES = {
    SalesDocumentType.quote: numbering.SALES_QUOTE_NOS,
    SalesDocumentType.order: numbering.SALES_ORDER_NOS,
}
HEADER_REFERENCES = (
    Reference("sell_to_customer_no", Customer, "no", "Customer"),
    Reference("bill_to_customer_no", Customer, "no", "Bill-to customer"),
    Reference("currency_code", Currency, "code", "Currency"),
    Reference("salesperson_code", Salesperson, "code", "Salesperson"),
)
LINE_REFERENCES = (
    Reference("no", Item, "no", "Item", lambda r: r.get("type", "item") == SalesLineType.item),
    Reference("no", Resource, "no", "Resource", lambda r: r.get("type") == SalesLineType.resource),
    Reference("location_code", Location, "code", "Location"),
    Reference("unit_of_measure_code", UnitOfMeasure, "code", "Unit of measure"),
)


def label(document_type: SalesDocumentType) -> str:
    return f"Sales {document_type}"


def customer_defaults(customer: Customer) -> dict[str, Any]:
    address = {
        "name": customer.name,
        "address": customer.address,
        "address_2": customer.address_2,
        "city": customer.city,
        "post_code": customer.post_code,
        "county": customer.county,
        "country_code": customer.country_code,
    }
    return {
        "bill_to_customer_no": customer.no,
        **{f"bill_to_{key}": value for key, value in address.items()},
        **{f"ship_to_{key}": value for key, value in address.items()},
        "currency_code": customer.currency_code or "",
        "salesperson_code": customer.salesperson_code or "",
        "payment_terms_code": customer.payment_terms_code,
        "shipment_method_code": customer.shipment_method_code,
        "shipping_agent_code": customer.shipping_agent_code,
    }


async def get_document(
    session: AsyncSession, document_type: SalesDocumentType, no: str
) -> SalesHeader | None:
    statement = select(SalesHeader).where(
        SalesHeader.document_type == document_type, SalesHeader.no == no
    )
    return (await session.exec(statement)).first()


async def get_document_or_raise(
    session: AsyncSession, document_type: SalesDocumentType, no: str
) -> SalesHeader:
    header = await get_document(session, document_type, no)
    if header is None:
        msg = f"{label(document_type)} '{no}' was not found."
        raise NotFoundError(msg)
    return header


def require_open(header: SalesHeader) -> None:
    if header.status != SalesDocumentStatus.open:
        msg = (
            f"{label(header.document_type)} '{header.no}' is {header.status}; "
            "reopen it before changing it."
        )
        raise ConflictError(msg)


async def list_lines(session: AsyncSession, header: SalesHeader) -> Sequence[SalesLine]:
    statement = (
        select(SalesLine)
        .where(SalesLine.document_type == header.document_type, SalesLine.document_no == header.no)
        .order_by(col(SalesLine.line_no))
    )
    return (await session.exec(statement)).all()


async def get_line_or_raise(session: AsyncSession, header: SalesHeader, line_no: int) -> SalesLine:
    statement = select(SalesLine).where(
        SalesLine.document_type == header.document_type,
        SalesLine.document_no == header.no,
        SalesLine.line_no == line_no,
    )
    line = (await session.exec(statement)).first()
    if line is None:
        msg = f"{label(header.document_type)} '{header.no}' has no line {line_no}."
        raise NotFoundError(msg)
    return line


async def sellable_customer(session: AsyncSession, no: str) -> Customer:
    customer = (await session.exec(select(Customer).where(Customer.no == no))).first()
    if customer is None:
        message = f"Customer '{no}' does not exist."
        raise_row_errors([RowError(None, "sell_to_customer_no", message)], total=1)
        raise AssertionError(message)  # unreachable: raise_row_errors raised
    if customer.blocked:
        msg = f"Customer '{no}' is blocked; no sales documents can be made for it."
        raise ConflictError(msg)
    return customer


async def _header_values(
    session: AsyncSession, values: Mapping[str, Any], *, is_new_customer: bool
) -> dict[str, Any]:
    merged = dict(values)
    if is_new_customer:
        customer = await sellable_customer(session, values["sell_to_customer_no"])
        merged = {**customer_defaults(customer), **values}
    return merged


def line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Decimal:
    return (quantity * unit_price - discount).quantize(CENT, rounding=ROUND_HALF_UP)


async def _source_defaults(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    """Description, price and unit of measure of the line's item or resource."""
    source: Item | Resource
    if values.get("type", SalesLineType.item) == SalesLineType.item:
        item = (await session.exec(select(Item).where(Item.no == values["no"]))).one()
        source, name = item, item.description
    else:
        resource = (await session.exec(select(Resource).where(Resource.no == values["no"]))).one()
        source, name = resource, resource.name
    if source.blocked:
        msg = f"{type(source).__name__} '{values['no']}' is blocked; it cannot be sold."
        raise ConflictError(msg)
    return {
        "description": name,
        "unit_price": source.unit_price,
        "unit_of_measure_code": source.base_unit_of_measure or "",
    }


def _priced(values: dict[str, Any], *, field_prefix: str) -> tuple[dict[str, Any], list[RowError]]:
    quantity = Decimal(values.get("quantity", 0))
    gross = quantity * Decimal(values.get("unit_price", 0))
    discount = Decimal(values.get("line_discount_amount", 0))
    if discount > gross:
        message = "line_discount_amount must not exceed quantity * unit_price."
        return values, [RowError(None, f"{field_prefix}line_discount_amount", message)]
    amount = line_amount(quantity, Decimal(values.get("unit_price", 0)), discount)
    if amount >= MAX_LINE_AMOUNT:
        message = f"The line amount {amount} is too large (limit {MAX_LINE_AMOUNT})."
        return values, [RowError(None, f"{field_prefix}quantity", message)]
    return {**values, "amount": amount, "amount_including_vat": amount}, []


async def _build_lines(
    session: AsyncSession, header: SalesHeader, lines: Sequence[Mapping[str, Any]], *, prefix: str
) -> list[SalesLine]:
    """Check every line (all problems at once), fill defaults, number and price them."""
    errors = await missing_references(session, LINE_REFERENCES, list(enumerate(lines)))
    errors = [
        RowError(None, f"{prefix}{e.index}.{e.field}" if prefix else e.field, e.message)
        for e in errors
    ]
    raise_row_errors(errors, total=1)
    next_no = await _next_line_no(session, header)
    built: list[SalesLine] = []
    for index, values in enumerate(lines):
        merged = {**(await _source_defaults(session, values)), **values}
        priced, problems = _priced(merged, field_prefix=f"{prefix}{index}." if prefix else "")
        raise_row_errors(problems, total=1)
        line_no = priced.pop("line_no", None) or next_no
        next_no = max(next_no, line_no) + LINE_NO_STEP
        built.append(
            SalesLine(
                document_type=header.document_type, document_no=header.no, line_no=line_no, **priced
            )
        )
    return built


async def _next_line_no(session: AsyncSession, header: SalesHeader) -> int:
    statement = select(func.max(SalesLine.line_no)).where(
        SalesLine.document_type == header.document_type, SalesLine.document_no == header.no
    )
    highest = (await session.exec(statement)).one()
    return int(highest or 0) + LINE_NO_STEP


async def create_document(
    session: AsyncSession,
    *,
    document_type: SalesDocumentType,
    values: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]] = (),
) -> SalesHeader:
    merged = await _header_values(session, values, is_new_customer=True)
    raise_row_errors(
        await missing_references(session, HEADER_REFERENCES, [(None, merged)]), total=1
    )
    if merged.get("no"):
        if await get_document(session, document_type, merged["no"]) is not None:
            msg = f"{label(document_type)} '{merged['no']}' already exists."
            raise ConflictError(msg)
    else:
        merged["no"] = await numbering.next_document_no(session, SERIES[document_type])
    header = SalesHeader(document_type=document_type, **merged)
    session.add(header)
    await flush_or_conflict(
        session, duplicate_message=f"{label(document_type)} '{header.no}' already exists."
    )
    session.add_all(await _build_lines(session, header, lines, prefix="lines."))
    await flush_or_conflict(session, duplicate_message="Two lines have the same line_no.")
    return header


async def update_document(
    session: AsyncSession, header: SalesHeader, values: Mapping[str, Any]
) -> SalesHeader:
    require_open(header)
    is_new_customer = (
        "sell_to_customer_no" in values
        and values["sell_to_customer_no"] != header.sell_to_customer_no
    )
    merged = await _header_values(session, values, is_new_customer=is_new_customer)
    raise_row_errors(
        await missing_references(session, HEADER_REFERENCES, [(None, merged)]), total=1
    )
    for name, value in merged.items():
        setattr(header, name, value)
    session.add(header)
    await session.flush()
    return header


async def delete_document(session: AsyncSession, header: SalesHeader) -> None:
    require_open(header)
    await order_events.record_deleted(session, header)
    await discard_document(session, header)


async def discard_document(session: AsyncSession, header: SalesHeader) -> None:
    """Delete a document with its lines and notes, in any status (posting, make-order)."""
    await session.exec(
        delete(SalesLine).where(
            col(SalesLine.document_type) == header.document_type,
            col(SalesLine.document_no) == header.no,
        )
    )
    await session.exec(
        delete(Note).where(
            col(Note.record_table) == "sales_header", col(Note.record_id) == header.system_id
        )
    )
    await session.delete(header)
    await session.flush()


async def add_line(
    session: AsyncSession, header: SalesHeader, values: Mapping[str, Any]
) -> SalesLine:
    require_open(header)
    (line,) = await _build_lines(session, header, [values], prefix="")
    session.add(line)
    message = f"{label(header.document_type)} '{header.no}' already has line {line.line_no}."
    await flush_or_conflict(session, duplicate_message=message)
    return line


async def update_line(
    session: AsyncSession, header: SalesHeader, line: SalesLine, values: Mapping[str, Any]
) -> SalesLine:
    """Change a line; a new item or resource brings its own description, price and unit."""
    require_open(header)
    merged = {**row_values(line, include=set(values) | {"type", "no"}), **values}
    raise_row_errors(await missing_references(session, LINE_REFERENCES, [(None, merged)]), total=1)
    if values.get("no", line.no) != line.no or values.get("type", line.type) != line.type:
        merged = {**(await _source_defaults(session, merged)), **values}
    current = row_values(line, include={"quantity", "unit_price", "line_discount_amount"})
    priced, problems = _priced({**current, **merged}, field_prefix="")
    if priced.get("quantity", 0) < line.quantity_invoiced:
        message = f"quantity must not be less than the {line.quantity_invoiced} already invoiced."
        problems.append(RowError(None, "quantity", message))
    raise_row_errors(problems, total=1)
    for name, value in priced.items():
        setattr(line, name, value)
    session.add(line)
    await session.flush()
    return line


async def delete_line(session: AsyncSession, header: SalesHeader, line: SalesLine) -> None:
    require_open(header)
    if line.quantity_invoiced:
        msg = f"Line {line.line_no} is partly invoiced and cannot be deleted."
        raise ConflictError(msg)
    await session.delete(line)
    await session.flush()


def document_totals(lines: Sequence[SalesLine]) -> dict[str, Decimal]:
    return {
        "amount": sum((line.amount for line in lines), Decimal(0)),
        "amount_including_vat": sum((line.amount_including_vat for line in lines), Decimal(0)),
    }
