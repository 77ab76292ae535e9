"""Posted sales invoices -> CRM invoices with their lines.

The field mappings carry the plain values; what BC's subscribers add before an insert is
added here, through hooks the ERP -> CRM pass calls (``to_crm``):

- header (``UpdateCRMInvoiceBeforeInsertRecord``): when a CRM salesorder's ``ordernumber``
  equals the invoice's "your reference" (or, failing that, its order no.), the invoice
  takes that order's ``salesorderid``, ``opportunityid``, ``pricelevelid``, ``name``,
  customer and owner (and fails when the
  order belongs to another customer); otherwise ``name`` = the invoice no., the customer
  is the account coupled to the sell-to customer and the price list is the one of the
  invoice's currency (the default price list for LCY, created as needed). A new invoice
  is written with the status Billed (Active); paid statuses follow once its lines are in,
  because Dataverse refuses lines on a paid (read-only) invoice;
- line (``InitializeCRMInvoiceLine*``): ``invoiceid`` (the coupled header), ``productid``
  (the product coupled to the item or resource) and ``uomid`` (the unit of the coupled
  unit group of the line's unit of measure).

The header mapping's run also runs the line mapping (the lines have no job of their own):
for the lines of headers that are in the CRM and that are not coupled, failed, or changed
since their last synchronization, whatever the line mapping's watermark says. A line whose
header is not in the CRM yet is left alone (skipped, no coupling), so it never collects
failure flags for its header's missing dependency; it goes with its header later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import BatchOperation, DataverseClient, bind, update_op
from app.dataverse.errors import DataverseError, DuplicateRecordError
from app.db import SessionMaker, session_scope
from app.models.erp import Item, Resource, SalesInvoiceHeader, SalesInvoiceLine, SalesLineType
from app.models.integration import ConnectionSetup, Direction, IntegrationRecord, SynchResult
from app.sales import invoice_status
from app.sync import crm_rules, erp_tables
from app.sync.conflicts import SyncAction
from app.sync.errors import FatalSyncError, from_dataverse, not_coupled
from app.sync.runner import run_mapping
from app.sync.sync_pass import (
    MappingHooks,
    MappingHookTable,
    MappingRunResult,
    RunOptions,
    SyncPass,
)
from app.sync.work import ToCrmWork

HEADER_MAPPING = "POSTEDSALESINV-INV"
LINE_MAPPING = "POSTEDSALESLINE-INV"
HEADER_TABLE = "sales_invoice_header"
LINE_TABLE = "sales_invoice_line"
TABLES = frozenset({HEADER_TABLE, LINE_TABLE})
LINES_PER_RUN = 500
ORDERS_PER_QUERY = 25
FOREIGN_PRICE_LIST_NAME = "{company} Default Price List ({currency})"
_PRICE_LIST_NAMESPACE = uuid.UUID("0c3b6f0e-8f53-4f39-9a51-6a8d3c2b9e41")
ORDER_FIELDS = (
    "salesorderid", "ordernumber", "name", "_customerid_value", "_opportunityid_value",
    "_pricelevelid_value", "_ownerid_value",
)  # fmt: skip


def _needs_insert(work: ToCrmWork) -> bool:
    # BC shapes a record before its insert only; a pending coupling is an insert not
    # known to have reached the CRM (a redo after a crash sends the same values again).
    return work.action != SyncAction.fail and (
        work.coupling is None or work.coupling.last_synch_crm_modified_on is None
    )


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


# --- headers -----------------------------------------------------------------------------


async def _orders_by_number(run: SyncPass, numbers: set[str]) -> dict[str, dict[str, Any]]:
    """CRM salesorders by ``ordernumber`` (the first one when a number is used twice)."""
    found: dict[str, dict[str, Any]] = {}
    ordered = sorted(n for n in numbers if n)
    for start in range(0, len(ordered), ORDERS_PER_QUERY):
        chunk = ordered[start : start + ORDERS_PER_QUERY]
        text = " or ".join(f"ordernumber eq '{_quoted(n)}'" for n in chunk)
        try:
            async for order in run.crm.query(
                "salesorders", select=list(ORDER_FIELDS), filter=text, orderby="createdon asc"
            ):
                found.setdefault(str(order.get("ordernumber") or "").lower(), order)
        except DataverseError as exc:
            raise from_dataverse(exc, action="read the CRM orders of the invoices") from exc
    return found


async def _price_list_for(
    session: AsyncSession, run: SyncPass, currency_id: uuid.UUID, cache: dict[uuid.UUID, uuid.UUID]
) -> uuid.UUID:
    """The invoice currency's price list: the default one for LCY, else one in that currency."""
    if currency_id in cache:
        return cache[currency_id]
    try:
        if currency_id == run.context.base_currency_id:
            setup = (
                await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))
            ).first()
            if setup is None:  # the run loaded it a moment ago; only a reset removes it
                msg = "The Dynamics 365 Sales connection is not set up."
                raise FatalSyncError(msg)
            found = await crm_rules.ensure_default_price_list(
                run.crm, setup, company_name=run.options.company_name, currency_id=currency_id
            )
            run.context.default_price_list_id = found
        else:
            found = await _foreign_price_list(run, currency_id)
    except DataverseError as exc:
        raise from_dataverse(exc, action="find the price list of the invoice currency") from exc
    cache[currency_id] = found
    return found


async def _foreign_price_list(run: SyncPass, currency_id: uuid.UUID) -> uuid.UUID:
    async for row in run.crm.query(
        "pricelevels", select=["pricelevelid"], top=1, orderby="createdon asc",
        filter=f"_transactioncurrencyid_value eq {currency_id} and statecode eq 0",
    ):  # fmt: skip
        return uuid.UUID(str(row["pricelevelid"]))
    currency = await run.crm.get("transactioncurrencies", currency_id, select=["isocurrencycode"])
    name = FOREIGN_PRICE_LIST_NAME.format(
        company=run.options.company_name, currency=currency.get("isocurrencycode") or currency_id
    )
    body = {
        "name": name,
        "transactioncurrencyid@odata.bind": bind("transactioncurrencies", currency_id),
    }
    # The id is derived from the currency, so a second run (or worker) finds the same row.
    price_list_id = uuid.uuid5(_PRICE_LIST_NAMESPACE, f"currency:{currency_id}")
    try:
        await run.crm.create("pricelevels", body, id=price_list_id)
    except DuplicateRecordError:
        pass  # made by an earlier run: the id says it is the one
    return price_list_id


def _order_of(orders: dict[str, dict[str, Any]], row: SalesInvoiceHeader) -> dict[str, Any] | None:
    """The CRM order by "your reference" (BC's rule), else by the ERP order no.

    The legacy SALESORDER-ORDER mapping writes the ERP order's "No." into ``ordernumber``
    once the order is released, so by the time its invoice is posted the CRM order carries
    that number, not the one "your reference" kept; BC would leave such an invoice unlinked.
    """
    for number in (row.your_reference, row.order_no):
        if number and (order := orders.get(number.lower())) is not None:
            return order
    return None


async def _shape_headers(session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]) -> None:
    todo = [w for w in works if _needs_insert(w)]
    if not todo:
        return
    accounts = await erp_tables.coupled_crm_ids(
        session, table="customer", codes=[w.row.sell_to_customer_no for w in todo]
    )
    uncoupled = await _uncoupled_products(session, {w.row.no for w in todo})
    numbers = {w.row.your_reference for w in todo} | {w.row.order_no for w in todo}
    orders = await _orders_by_number(run, numbers)
    price_lists: dict[uuid.UUID, uuid.UUID] = {}
    for work in todo:
        row: SalesInvoiceHeader = work.row
        account = accounts.get(row.sell_to_customer_no)
        if account is None:
            work.action = SyncAction.fail
            work.message = not_coupled("customer", row.sell_to_customer_no).message
            continue
        if row.no in uncoupled:  # everything the invoice references first
            kind, no = uncoupled[row.no]
            work.action, work.message = SyncAction.fail, not_coupled(kind, no).message
            continue
        order = _order_of(orders, row)
        if order is not None:
            _copy_order(work, order, account)
        else:
            work.values["name"] = row.no
            work.values["customerid"], work.values["customeridtype"] = account, "account"
        if work.action != SyncAction.fail and not work.values.get("pricelevelid"):
            # An invoice needs a price list; an order without one gets the currency's.
            currency = work.values.get("transactioncurrencyid") or run.context.base_currency_id
            work.values["pricelevelid"] = await _price_list_for(session, run, currency, price_lists)


async def _uncoupled_products(
    session: AsyncSession, invoice_nos: set[str]
) -> dict[str, tuple[str, str]]:
    """Invoice no. -> (table, no.) of a line's item or resource that is not coupled."""
    found: dict[str, tuple[str, str]] = {}
    for kind, model in ((SalesLineType.item, Item), (SalesLineType.resource, Resource)):
        coupled = sa.exists().where(
            col(IntegrationRecord.table_name) == str(kind),
            col(IntegrationRecord.integration_id) == model.system_id,
        )
        statement = (
            sa.select(col(SalesInvoiceLine.document_no), col(SalesInvoiceLine.no))
            .join(model, col(model.no) == SalesInvoiceLine.no)
            .where(
                col(SalesInvoiceLine.document_no).in_(sorted(invoice_nos)),
                col(SalesInvoiceLine.type) == kind,
                ~coupled,
            )
            .order_by(col(SalesInvoiceLine.document_no), col(SalesInvoiceLine.line_no))
        )
        for document_no, no in (await session.execute(statement)).all():
            found.setdefault(str(document_no), (str(kind), str(no)))
    return found


def _copy_order(work: ToCrmWork, order: dict[str, Any], account: uuid.UUID) -> None:
    """What an invoice of a CRM order takes from that order (BC's CustomerHasChangedErr)."""
    customer = _uuid(order.get("_customerid_value"))
    if customer != account:
        work.action = SyncAction.fail
        work.message = (
            f"The CRM order {order.get('ordernumber')} belongs to another customer than the "
            f"invoice's sell-to customer {work.row.sell_to_customer_no}; the customer has "
            "changed since the order was created."
        )
        return
    work.values["salesorderid"] = _uuid(order.get("salesorderid"))
    work.values["name"] = order.get("name") or work.row.no
    work.values["customerid"], work.values["customeridtype"] = account, "account"
    for name in ("opportunityid", "pricelevelid", "ownerid"):
        value = _uuid(order.get(f"_{name}_value"))
        if value is not None:
            work.values[name] = value


# --- lines -------------------------------------------------------------------------------


async def _header_crm_ids(session: AsyncSession, document_nos: set[str]) -> dict[str, uuid.UUID]:
    """Invoice no. -> CRM invoice id, for headers whose insert reached the CRM."""
    statement = (
        sa.select(col(SalesInvoiceHeader.no), col(IntegrationRecord.crm_id))
        .join(
            IntegrationRecord, col(IntegrationRecord.integration_id) == SalesInvoiceHeader.system_id
        )
        .where(
            col(IntegrationRecord.table_name) == HEADER_TABLE,
            col(IntegrationRecord.last_synch_crm_modified_on).is_not(None),
            col(SalesInvoiceHeader.no).in_(sorted(document_nos)),
        )
    )
    return {str(no): crm_id for no, crm_id in (await session.execute(statement)).all()}


async def _base_units(session: AsyncSession, lines: Sequence[SalesInvoiceLine]) -> dict[str, str]:
    """(type:no) -> base unit of measure, for lines that name no unit of their own."""
    found: dict[str, str] = {}
    for kind, model in ((SalesLineType.item, Item), (SalesLineType.resource, Resource)):
        nos = {line.no for line in lines if line.type == kind and not line.unit_of_measure_code}
        if nos:
            statement = select(model.no, model.base_unit_of_measure).where(col(model.no).in_(nos))
            for no, unit in (await session.exec(statement)).all():
                found[f"{kind}:{no}"] = unit or ""
    return found


async def _shape_lines(session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]) -> None:
    todo = [w for w in works if _needs_insert(w)]
    if not todo:
        return
    lines: list[SalesInvoiceLine] = [w.row for w in todo]
    headers = await _header_crm_ids(session, {line.document_no for line in lines})
    products = {
        kind: await erp_tables.coupled_crm_ids(
            session, table=str(kind), codes=[line.no for line in lines if line.type == kind]
        )
        for kind in (SalesLineType.item, SalesLineType.resource)
    }
    base_units = await _base_units(session, lines)
    unit_codes = {
        line.unit_of_measure_code or base_units.get(f"{line.type}:{line.no}", "") for line in lines
    }
    schedules = await erp_tables.coupled_crm_ids(session, table="unit_of_measure", codes=unit_codes)
    await crm_rules.load_base_units(run.crm, run.context, schedules.values())
    for work in todo:
        line: SalesInvoiceLine = work.row
        header = headers.get(line.document_no)
        if header is None:  # goes with its header once that is in the CRM
            work.action = SyncAction.skip
            continue
        product = products[SalesLineType(line.type)].get(line.no)
        unit_code = line.unit_of_measure_code or base_units.get(f"{line.type}:{line.no}", "")
        schedule = schedules.get(unit_code)
        unit = run.context.base_units.get(schedule) if schedule is not None else None
        if product is None:
            work.action, work.message = SyncAction.fail, not_coupled(line.type, line.no).message
        elif unit is None:
            work.action = SyncAction.fail
            work.message = not_coupled("unit_of_measure", unit_code or "(none)").message
        else:
            work.values.update(invoiceid=header, productid=product, uomid=unit)


# --- hooks called by the ERP -> CRM pass -------------------------------------------------


async def shape(session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]) -> None:
    """Add the values BC's subscribers set before inserting invoices and invoice lines."""
    if run.mapping.table_name == HEADER_TABLE:
        await _shape_headers(session, run, works)
    elif run.mapping.table_name == LINE_TABLE:
        await _shape_lines(session, run, works)


def insert_follow_ups(run: SyncPass, work: ToCrmWork) -> list[BatchOperation]:
    """After creating an invoice: its status Billed ("otherwise Active/Billed")."""
    if run.mapping.table_name != HEADER_TABLE or work.crm_id is None:
        return []
    state, status = invoice_status.BILLED
    return [update_op("invoices", work.crm_id, {"statecode": state, "statuscode": status})]


# --- the header run also runs the lines --------------------------------------------------


async def pending_line_ids(
    session: AsyncSession, *, header_ids: frozenset[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Lines of headers in the CRM that are uncoupled, failed or changed since their sync."""
    header_coupling = aliased(IntegrationRecord)
    line_coupling = aliased(IntegrationRecord)
    line_system_id = col(SalesInvoiceLine.system_id)
    statement = (
        sa.select(line_system_id)
        .join(SalesInvoiceHeader, col(SalesInvoiceHeader.no) == SalesInvoiceLine.document_no)
        .join(
            header_coupling,
            sa.and_(
                col(header_coupling.table_name) == HEADER_TABLE,
                col(header_coupling.integration_id) == SalesInvoiceHeader.system_id,
                col(header_coupling.last_synch_crm_modified_on).is_not(None),
            ),
        )
        .outerjoin(
            line_coupling,
            sa.and_(
                col(line_coupling.table_name) == LINE_TABLE,
                col(line_coupling.integration_id) == line_system_id,
            ),
        )
        .where(
            sa.or_(
                erp_tables.unsent_to_crm(line_coupling, col(SalesInvoiceLine.modified_at)),
                col(line_coupling.last_synch_crm_modified_on).is_(None),
            )
        )
        .order_by(col(SalesInvoiceLine.id))
    )
    if header_ids is not None:
        statement = statement.where(col(SalesInvoiceHeader.system_id).in_(sorted(header_ids)))
    return list((await session.execute(statement)).scalars().all())


async def _headers_of_lines(session: AsyncSession, line_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    statement = (
        sa.select(col(SalesInvoiceHeader.system_id))
        .join(SalesInvoiceLine, col(SalesInvoiceLine.document_no) == SalesInvoiceHeader.no)
        .where(col(SalesInvoiceLine.system_id).in_(list(line_ids)))
        .distinct()
    )
    return set((await session.execute(statement)).scalars().all())


async def _headers_written_by(session: AsyncSession, job_id: uuid.UUID) -> set[uuid.UUID]:
    statement = select(IntegrationRecord.integration_id).where(
        IntegrationRecord.table_name == HEADER_TABLE,
        IntegrationRecord.last_synch_crm_job_id == job_id,
        IntegrationRecord.last_synch_crm_result == SynchResult.success,
    )
    return set((await session.exec(statement)).all())


async def after_header_run(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    hooks: MappingHookTable,
    options: RunOptions,
    result: MappingRunResult,
) -> None:
    """Run the line mapping for the pending lines, then set the paid statuses."""
    header_job = result.job_ids.get(Direction.to_crm)
    async with session_scope(sessionmaker) as session:
        line_ids = await pending_line_ids(session, header_ids=options.erp_ids)
        touched = await _headers_written_by(session, header_job) if header_job else set()
    child_options = replace(options, erp_ids=None, crm_ids=None, only_direction=None)
    for start in range(0, len(line_ids), LINES_PER_RUN):
        chunk = frozenset(line_ids[start : start + LINES_PER_RUN])
        child = await run_mapping(
            sessionmaker, crm, mapping_name=LINE_MAPPING, hooks=hooks,
            options=replace(child_options, erp_ids=chunk),
        )  # fmt: skip
        for direction, counters in child.counters.items():
            if direction in result.counters:
                result.counters[direction].merge(counters)
        async with session_scope(sessionmaker) as session:
            touched |= await _headers_of_lines(session, list(chunk))
    if touched:
        await invoice_status.refresh(sessionmaker, crm, header_ids=touched, job_id=header_job)


class PostedInvoiceHooks(MappingHooks):
    """POSTEDSALESINV-INV and POSTEDSALESLINE-INV in the ERP -> CRM pass."""

    async def complete_to_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
    ) -> None:
        await shape(session, run, works)

    def insert_follow_ups(self, run: SyncPass, work: ToCrmWork) -> list[BatchOperation]:
        return insert_follow_ups(run, work)

    async def after_run(
        self,
        sessionmaker: SessionMaker,
        crm: DataverseClient,
        *,
        hooks: MappingHookTable,
        options: RunOptions,
        result: MappingRunResult,
    ) -> None:
        if result.mapping_name == HEADER_MAPPING and Direction.to_crm in result.job_ids:
            # The lines have no job: the header's run syncs them (BC does the same).
            await after_header_run(sessionmaker, crm, hooks=hooks, options=options, result=result)
