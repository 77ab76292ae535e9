"""A CRM sales document (order or quote) made into an ERP sales document, coupled.

What BC's ``CRM Sales Order to Sales Order`` / ``CRM Quote to Sales Quote`` do, shared
by the auto-create and quote jobs and the REST action:

- the customer is the ERP customer coupled to the CRM ``customerid`` account; an
  uncoupled account (or a contact) is a clear error, retried by the next run;
- header: "your reference" = the CRM number, external document no. = ``name``, work
  description = ``description``, currency from the coupled currency (the CRM base
  currency = LCY), requested delivery date, payment discount % = ``discountpercentage``,
  bill-to / ship-to only when the CRM document has any part of that address;
- lines in ``sequencenumber`` order: a product becomes its coupled item or resource, a
  line without one (a write-in) becomes the configured write-in item/resource with the
  CRM product description; quantity, unit price, line discount = quantity x volume
  discount + manual discount, unit of measure from the coupled unit group of ``uomid``;
- the order discount: when ``discountamount`` or ``discountpercentage`` is set, the
  invoice discount is ``totallineitemamount - totalamountlessfreight``;
- CRM notes (annotations that are not attachments) become ERP notes.

The ERP document, its lines and notes and their couplings (``sales_header`` <->
document, ``sales_line`` <-> line, ``note`` <-> annotation) are written in the caller's
transaction, after a lock on the CRM id: two runs can never both create the document.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.dataverse import DataverseClient
from app.dataverse.errors import DataverseError
from app.dataverse.errors import NotFoundError as CrmNotFoundError
from app.db import lock_until_commit
from app.erp import notes, sales
from app.errors import SalesbridgeError
from app.models.erp import Note, SalesDocumentType, SalesHeader, SalesLine, SalesLineType
from app.models.integration import Direction, IntegrationRecord
from app.settings import Settings
from app.sync import erp_tables, log
from app.sync.errors import from_dataverse

ADDRESS_PARTS = (
    ("name", "name"), ("line1", "address"), ("line2", "address_2"), ("city", "city"),
    ("postalcode", "post_code"), ("stateorprovince", "county"), ("country", "country_code"),
)  # fmt: skip
LINE_SELECT = (
    "_productid_value", "isproductoverridden", "productdescription", "description", "quantity",
    "priceperunit", "manualdiscountamount", "volumediscountamount", "_uomid_value",
    "sequencenumber",
)  # fmt: skip
HEADER_SELECT = (
    "name", "description", "_customerid_value", "_transactioncurrencyid_value",
    "requestdeliveryby", "discountamount", "discountpercentage", "totallineitemamount",
    "totalamountlessfreight", "totalamount", "statecode", "statuscode", "modifiedon",
    *(f"{prefix}{part}" for prefix in ("shipto_", "billto_") for part, _ in ADDRESS_PARTS),
)  # fmt: skip


@dataclass(frozen=True)
class DocumentKind:
    """The CRM side of one kind of sales document."""

    entity: str
    entity_set: str
    line_entity: str
    line_set: str
    number: str  # the CRM attribute "your reference" takes
    document_type: SalesDocumentType
    extra_select: tuple[str, ...] = ()

    @property
    def pk(self) -> str:
        return f"{self.entity}id"

    @property
    def line_pk(self) -> str:
        return f"{self.line_entity}id"

    @property
    def select(self) -> list[str]:
        return [self.pk, self.number, *HEADER_SELECT, *self.extra_select]


ORDER = DocumentKind(
    "salesorder", "salesorders", "salesorderdetail", "salesorderdetails", "ordernumber",
    SalesDocumentType.order, ("lastbackofficesubmit", "_quoteid_value"),
)  # fmt: skip
QUOTE = DocumentKind(
    "quote", "quotes", "quotedetail", "quotedetails", "quotenumber",
    SalesDocumentType.quote, ("revisionnumber",),
)  # fmt: skip


class DocumentError(Exception):
    """This CRM document cannot become an ERP document (yet); the message says why."""


@dataclass
class Draft:
    """The ERP document to create, with the CRM ids its parts are coupled to."""

    header: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)
    line_ids: list[uuid.UUID] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def number_of(kind: DocumentKind, record: Mapping[str, Any]) -> str:
    return str(record.get(kind.number) or record.get(kind.pk))


def _id(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _fit(model: type[Any], name: str, value: str) -> str:
    """CRM text cut to the ERP column's length (CRM columns are longer)."""
    length = getattr(erp_tables.column(model, name).type, "length", None)
    return value[:length] if length else value


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value else None


def describe(exc: SalesbridgeError) -> str:
    """An ERP refusal as one line: the detail plus each row problem."""
    problems = [str(e.get("message", "")) for e in exc.errors or []]
    return " ".join([exc.detail, *[p for p in problems if p and p not in exc.detail]])


DOCUMENTS_PER_PAGE = 200


# --- reading the CRM ---------------------------------------------------------------------


async def read_document(
    crm: DataverseClient, kind: DocumentKind, document_id: uuid.UUID
) -> dict[str, Any] | None:
    try:
        return await crm.get(kind.entity_set, document_id, select=kind.select)
    except CrmNotFoundError:
        return None
    except DataverseError as exc:
        raise from_dataverse(exc, action=f"read the CRM {kind.entity}") from exc


async def _query(
    crm: DataverseClient, entity_set: str, *, action: str, **options: Any
) -> list[dict[str, Any]]:
    try:
        return [record async for record in crm.query(entity_set, **options)]
    except DataverseError as exc:
        raise from_dataverse(exc, action=action) from exc


async def read_documents(
    crm: DataverseClient, kind: DocumentKind, *, filter: str, action: str
) -> list[dict[str, Any]]:
    """The documents a job works through, oldest change first (the order runs resume in)."""
    return await _query(
        crm, kind.entity_set, action=action, select=kind.select, filter=filter,
        orderby=["modifiedon asc", f"{kind.pk} asc"], page_size=DOCUMENTS_PER_PAGE,
    )  # fmt: skip


async def read_lines(
    crm: DataverseClient, kind: DocumentKind, document_id: uuid.UUID
) -> list[dict[str, Any]]:
    return await _query(
        crm, kind.line_set, action=f"read the lines of the CRM {kind.entity}",
        select=[kind.line_pk, *LINE_SELECT], filter=f"_{kind.pk}_value eq {document_id}",
        orderby=["sequencenumber asc", f"{kind.line_pk} asc"],
    )  # fmt: skip


async def read_notes(crm: DataverseClient, document_id: uuid.UUID) -> list[dict[str, Any]]:
    """The document's notes: annotations that are not attachments (BC's filter)."""
    found = await _query(
        crm, "annotations", action="read the notes of the CRM document",
        select=["annotationid", "subject", "notetext", "isdocument", "filesize", "createdon"],
        filter=f"_objectid_value eq {document_id} and isdocument eq false",
        orderby=["createdon asc", "annotationid asc"],
    )  # fmt: skip
    return [n for n in found if not n.get("filesize")]


# --- building the ERP document -----------------------------------------------------------


async def _customer(
    session: AsyncSession, crm: DataverseClient, kind: DocumentKind, record: Mapping[str, Any]
) -> str:
    number = number_of(kind, record)
    account_id = _id(record.get("_customerid_value"))
    if account_id is None:
        msg = f"CRM {kind.entity} {number} has no customer."
        raise DocumentError(msg)
    coupled = await erp_tables.coupled_codes(session, table="customer", crm_ids=[account_id])
    if account_id in coupled:
        return coupled[account_id]
    try:
        account = await crm.get("accounts", account_id, select=["name"])
    except CrmNotFoundError:
        msg = (
            f"The customer of CRM {kind.entity} {number} is not an account (a contact?); only "
            "accounts coupled to ERP customers can order."
        )
        raise DocumentError(msg) from None
    except DataverseError as exc:
        raise from_dataverse(exc, action="read the CRM account") from exc
    msg = (
        f"The customer account '{account.get('name')}' ({account_id}) of CRM {kind.entity} "
        f"{number} is not coupled to an ERP customer; couple it (mapping CUSTOMER) and run "
        "again."
    )
    raise DocumentError(msg)


async def _currency(
    session: AsyncSession, record: Mapping[str, Any], base_currency_id: uuid.UUID | None
) -> str | None:
    """The ERP currency code; "" for LCY; None when the CRM sets none (customer default)."""
    currency_id = _id(record.get("_transactioncurrencyid_value"))
    if currency_id is None:
        return None
    if currency_id == base_currency_id:
        return ""
    coupled = await erp_tables.coupled_codes(session, table="currency", crm_ids=[currency_id])
    if currency_id not in coupled:
        msg = f"The currency {currency_id} of the CRM document is not coupled to an ERP currency."
        raise DocumentError(msg)
    return coupled[currency_id]


def _addresses(record: Mapping[str, Any]) -> dict[str, Any]:
    """Bill-to and ship-to, each only when the CRM document has any part of it."""
    values: dict[str, Any] = {}
    for crm_prefix, erp_prefix in (("shipto_", "ship_to_"), ("billto_", "bill_to_")):
        parts = {erp: record.get(f"{crm_prefix}{crm}") or "" for crm, erp in ADDRESS_PARTS}
        if any(parts.values()):
            for name, value in parts.items():
                column = f"{erp_prefix}{name}"
                values[column] = _fit(SalesHeader, column, str(value))
    return values


def _order_discount(record: Mapping[str, Any]) -> Decimal:
    if not _decimal(record.get("discountamount")) and not _decimal(
        record.get("discountpercentage")
    ):
        return Decimal(0)
    total = _decimal(record.get("totallineitemamount"))
    less_freight = _decimal(record.get("totalamountlessfreight"))
    return max(total - less_freight, Decimal(0))


async def _products(
    session: AsyncSession, crm: DataverseClient, lines: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, tuple[SalesLineType, str]]:
    ids = {p for p in (_id(line.get("_productid_value")) for line in lines) if p}
    found: dict[uuid.UUID, tuple[SalesLineType, str]] = {}
    for table, line_type in (("item", SalesLineType.item), ("resource", SalesLineType.resource)):
        coupled = await erp_tables.coupled_codes(session, table=table, crm_ids=ids)
        found.update({crm_id: (line_type, code) for crm_id, code in coupled.items()})
    missing = sorted(ids - set(found), key=str)
    if missing:
        text = " or ".join(f"productid eq {p}" for p in missing)
        products = await _query(
            crm, "products", action="read the CRM products",
            select=["productid", "productnumber", "name"], filter=text,
        )  # fmt: skip
        names = ", ".join(f"'{p.get('productnumber') or p.get('name')}'" for p in products)
        msg = (
            f"The CRM product(s) {names or ', '.join(map(str, missing))} on the lines are not "
            "coupled to an ERP item or resource; couple them and run again."
        )
        raise DocumentError(msg)
    return found


async def _units(
    session: AsyncSession, crm: DataverseClient, lines: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, str]:
    """CRM unit -> ERP unit of measure code, through the unit's coupled unit group."""
    ids = sorted({u for u in (_id(line.get("_uomid_value")) for line in lines) if u}, key=str)
    if not ids:
        return {}
    units = await _query(
        crm, "uoms", action="read the CRM units",
        select=["uomid", "_uomscheduleid_value"], filter=" or ".join(f"uomid eq {u}" for u in ids),
    )  # fmt: skip
    schedules = {uuid.UUID(u["uomid"]): _id(u.get("_uomscheduleid_value")) for u in units}
    codes = await erp_tables.coupled_codes(
        session, table="unit_of_measure", crm_ids=[s for s in schedules.values() if s]
    )
    return {unit: codes[s] for unit, s in schedules.items() if s in codes}


def _write_in(settings: Settings, number: str, position: int) -> tuple[SalesLineType, str]:
    if not settings.write_in_product_no:
        msg = (
            f"Line {position} of CRM document {number} is a write-in product, but no write-in "
            "product is set up (SALESBRIDGE_WRITE_IN_PRODUCT_NO / _TYPE)."
        )
        raise DocumentError(msg)
    return SalesLineType(settings.write_in_product_type), settings.write_in_product_no


async def build_draft(
    session: AsyncSession,
    crm: DataverseClient,
    kind: DocumentKind,
    record: Mapping[str, Any],
    *,
    settings: Settings,
    base_currency_id: uuid.UUID | None,
) -> Draft:
    """Read the lines and notes and resolve everything; ``DocumentError`` when impossible."""
    document_id = uuid.UUID(str(record[kind.pk]))
    number = number_of(kind, record)
    header: dict[str, Any] = {
        "sell_to_customer_no": await _customer(session, crm, kind, record),
        "your_reference": _fit(SalesHeader, "your_reference", number),
        "external_document_no": _fit(SalesHeader, "external_document_no", record.get("name") or ""),
        "work_description": _fit(SalesHeader, "work_description", record.get("description") or ""),
        "requested_delivery_date": _date(record.get("requestdeliveryby")),
        "payment_discount_pct": _decimal(record.get("discountpercentage")),
        "invoice_discount_amount": _order_discount(record),
        **_addresses(record),
    }
    currency = await _currency(session, record, base_currency_id)
    if currency is not None:
        header["currency_code"] = currency
    lines = await read_lines(crm, kind, document_id)
    products = await _products(session, crm, lines)
    units = await _units(session, crm, lines)
    draft = Draft(header=header)
    for position, line in enumerate(lines, start=1):
        product = _id(line.get("_productid_value"))
        values: dict[str, Any] = {}
        if product is None or line.get("isproductoverridden"):
            line_type, no = _write_in(settings, number, position)
            text = line.get("productdescription") or line.get("description") or ""
            if text:
                values["description"] = _fit(SalesLine, "description", str(text))
        else:
            line_type, no = products[product]
        quantity = _decimal(line.get("quantity"))
        discount = quantity * _decimal(line.get("volumediscountamount")) + _decimal(
            line.get("manualdiscountamount")
        )
        values.update(
            type=line_type, no=no, quantity=quantity,
            unit_price=_decimal(line.get("priceperunit")), line_discount_amount=discount,
        )  # fmt: skip
        unit = _id(line.get("_uomid_value"))
        if unit in units:
            values["unit_of_measure_code"] = units[unit]
        draft.lines.append(values)
        draft.line_ids.append(uuid.UUID(str(line[kind.line_pk])))
    draft.notes = await read_notes(crm, document_id)
    return draft


# --- couplings and writing ---------------------------------------------------------------


async def lock_document(session: AsyncSession, document_id: uuid.UUID) -> None:
    """Until commit, nobody else may create an ERP document for this CRM document."""
    await lock_until_commit(session, f"crm-document:{document_id}", table=SalesHeader)


async def coupling_of(
    session: AsyncSession, kind: DocumentKind, document_id: uuid.UUID
) -> IntegrationRecord | None:
    statement = select(IntegrationRecord).where(
        col(IntegrationRecord.table_name) == "sales_header",
        col(IntegrationRecord.crm_table) == kind.entity,
        col(IntegrationRecord.crm_id) == document_id,
    )
    return (await session.exec(statement)).first()


async def coupled_ids(
    session: AsyncSession, kind: DocumentKind, document_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The given CRM documents that already have an ERP document (coupled)."""
    if not document_ids:
        return set()
    statement = select(IntegrationRecord.crm_id).where(
        col(IntegrationRecord.table_name) == "sales_header",
        col(IntegrationRecord.crm_table) == kind.entity,
        col(IntegrationRecord.crm_id).in_(list(document_ids)),
    )
    return set((await session.exec(statement)).all())


def _modified_on(record: Mapping[str, Any]) -> dt.datetime | None:
    value = record.get("modifiedon") or record.get("createdon")
    return as_utc(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))) if value else None


def _couple(
    session: AsyncSession, *, table: str, row: Any, crm_table: str, crm_id: uuid.UUID,
    crm_modified_on: dt.datetime | None, job_id: uuid.UUID,
) -> None:  # fmt: skip
    coupling = IntegrationRecord(
        table_name=table, integration_id=row.system_id, crm_table=crm_table, crm_id=crm_id
    )
    log.mark_succeeded(
        coupling, direction=Direction.from_crm, job_id=job_id,
        erp_modified_at=row.modified_at, crm_modified_on=crm_modified_on,
    )  # fmt: skip
    session.add(coupling)


async def create_erp_document(
    session: AsyncSession,
    kind: DocumentKind,
    record: Mapping[str, Any],
    draft: Draft,
    *,
    job_id: uuid.UUID,
    extra: Mapping[str, Any] | None = None,
) -> SalesHeader:
    """Write the document, lines, notes and every coupling (the caller commits)."""
    try:
        header = await sales.create_document(
            session, document_type=kind.document_type, values={**draft.header, **(extra or {})},
            lines=draft.lines,
        )  # fmt: skip
    except SalesbridgeError as exc:
        number = number_of(kind, record)
        msg = f"The ERP refused CRM {kind.entity} {number}: {describe(exc)}"
        raise DocumentError(msg) from exc
    modified_on = _modified_on(record)
    document_id = uuid.UUID(str(record[kind.pk]))
    _couple(session, table="sales_header", row=header, crm_table=kind.entity,
            crm_id=document_id, crm_modified_on=modified_on, job_id=job_id)  # fmt: skip
    for line, line_id in zip(await sales.list_lines(session, header), draft.line_ids, strict=True):
        _couple(session, table="sales_line", row=line, crm_table=kind.line_entity,
                crm_id=line_id, crm_modified_on=modified_on, job_id=job_id)  # fmt: skip
    for annotation in draft.notes:
        note = await notes.create_note(session, header, {
            "description": _fit(Note, "description", annotation.get("subject") or ""),
            "text": _fit(Note, "text", annotation.get("notetext") or ""),
        })  # fmt: skip
        _couple(session, table="note", row=note, crm_table="annotation",
                crm_id=uuid.UUID(str(annotation["annotationid"])),
                crm_modified_on=_modified_on(annotation), job_id=job_id)  # fmt: skip
    await session.flush()
    return header
