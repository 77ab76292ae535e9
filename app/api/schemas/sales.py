"""Sales documents, their lines and notes, posted invoices and the post action's shapes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, create_model

from app.api.schemas.erp import MAX_INT, Amount, WriteSchema, build_schemas
from app.models import erp
from app.models.types import DECIMAL_PRECISION, DECIMAL_SCALE


def list_of(schema: type[BaseModel]) -> Any:
    return list[schema]  # type: ignore[valid-type]


HEADER = build_schemas(
    erp.SalesHeader,
    "SalesDocument",
    exclude=("document_type",),
    read_only=("status", "last_shipment_date"),
    optional_in_create=("no",),
    immutable=("no",),
)
LINE = build_schemas(
    erp.SalesLine,
    "SalesLine",
    exclude=("document_type", "document_no"),
    read_only=("quantity_shipped", "quantity_invoiced", "amount", "amount_including_vat"),
    optional_in_create=("line_no",),
    immutable=("line_no",),
    overrides={"line_no": {"ge": 1}},
)
INVOICE = build_schemas(erp.SalesInvoiceHeader, "SalesInvoice")
INVOICE_LINE = build_schemas(erp.SalesInvoiceLine, "SalesInvoiceLine", exclude=("document_no",))
NOTE = build_schemas(erp.Note, "Note", exclude=("record_table", "record_id"))

DocumentCreate = create_model(
    "SalesDocumentCreateWithLines",
    __base__=HEADER.create,
    lines=(list_of(LINE.create), Field(default_factory=list, max_length=1000)),
)
DocumentDetail = create_model(
    "SalesDocumentDetail",
    __base__=HEADER.read,
    lines=(list_of(LINE.read), ...),
    amount=(Amount, ...),
    amount_including_vat=(Amount, ...),
)
LineList = create_model("SalesLineItems", items=(list_of(LINE.read), ...))
NoteList = create_model("NoteItems", items=(list_of(NOTE.read), ...))
InvoiceDetail = create_model(
    "SalesInvoiceDetail",
    __base__=INVOICE.read,
    lines=(list_of(INVOICE_LINE.read), ...),
)
InvoiceLineList = create_model(
    "SalesInvoiceLineItems",
    items=(list_of(INVOICE_LINE.read), ...),
)


class PostLine(WriteSchema):
    line_no: int = Field(ge=1, le=MAX_INT)
    quantity: Decimal = Field(ge=0, max_digits=DECIMAL_PRECISION, decimal_places=DECIMAL_SCALE)


class PostRequest(WriteSchema):
    """Post (ship and invoice); without ``lines`` everything not yet invoiced is posted."""

    posting_date: date | None = None
    lines: list[PostLine] | None = Field(default=None, max_length=1000)


PostResult = create_model(
    "SalesPostResult",
    invoice=(InvoiceDetail, ...),
    is_order_deleted=(bool, ...),
    order=(DocumentDetail | None, None),
)
