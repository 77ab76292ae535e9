"""Customer statistics -> CRM ``nav_accountstatistics`` (BC's CRM Statistics Job).

For each coupled, non-skipped customer the job writes one ``nav_accountstatistics`` row with
the figures of BC's Customer card, computed here from the customer ledger and the open
sales order lines, and links it from the account (``account.nav_accountstatisticsid``).
Then it brings the CRM status of coupled posted invoices in line with their payments
(``invoice_status``).

Which customers (BC's rule): those whose coupling says the statistics were never
uploaded, plus those with a ledger entry, sales order or sales order line (or the customer
itself: its credit limit is a figure) changed since the previous successful run. That run
is the newest finished ``CUSTOMER STATISTICS`` sync job without an error message; its start
time, less ``SINCE_OVERLAP`` (a row stamped before that start may commit after it), is
the lower bound. No previous run: every coupled customer.

Idempotent: a new statistics row gets an id derived from the account id, written by
upsert in one change set with the account's link, so a redo after a crash writes the same
row; an existing row is read and written only when a figure differs. A customer that fails
keeps "statistics uploaded" false and is retried by the next run (BC also marks its
coupling skipped, which would stop the customer's own synchronization: not done here).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import BatchOperation, ChangeSet, DataverseClient, bind, update_op, upsert_op
from app.dataverse.errors import DataverseError
from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.jobs import crm_jobs
from app.jobs.queue import JobConfigError, RunResult
from app.logs import get_logger
from app.models.erp import (
    Currency,
    CustLedgerDocumentType,
    CustLedgerEntry,
    Customer,
    SalesDocumentType,
    SalesHeader,
    SalesLine,
)
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationRecord,
    JobQueueEntry,
)
from app.sales import invoice_status
from app.settings import Settings
from app.sync import crm_rules, log, transfer
from app.sync.conflicts import SyncAction
from app.sync.errors import FatalSyncError, from_dataverse

logger = get_logger("salesbridge.sync.customer_statistics")

STATISTICS_JOB = "CUSTOMER STATISTICS"
INVOICE_STATUS_JOB = "INVOICE STATUS"
ENTITY_SET = "nav_accountstatisticses"
LINK = "nav_accountstatisticsid"
PAGE_SIZE = 100
IDS_PER_QUERY = 50
SINCE_OVERLAP = timedelta(minutes=1)
CENT = Decimal("0.01")
_STATISTICS_NAMESPACE = uuid.UUID("5d0c8a4e-6c1b-4f7e-9b2a-3e7f1d9c2a55")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Figures:
    """BC's customer statistics, in LCY."""

    balance: Decimal = Decimal(0)
    outstanding_orders: Decimal = Decimal(0)
    shipped_not_invoiced: Decimal = Decimal(0)
    outstanding_invoices: Decimal = Decimal(0)  # unposted invoices: our ERP has orders only
    outstanding_service_orders: Decimal = Decimal(0)  # no service management in the ERP
    service_shipped_not_invoiced: Decimal = Decimal(0)
    outstanding_service_invoices: Decimal = Decimal(0)
    credit_limit: Decimal = Decimal(0)
    overdue_amounts: Decimal = Decimal(0)
    overdue_as_of: date | None = None
    total_sales: Decimal = Decimal(0)
    invoiced_prepayment_amount: Decimal = Decimal(0)  # no prepayments in the ERP

    @property
    def total(self) -> Decimal:
        """BC's ``GetTotalAmountLCY``: what the customer owes and has on order."""
        return (
            self.balance + self.outstanding_orders + self.shipped_not_invoiced
            + self.outstanding_invoices + self.outstanding_service_orders
            + self.service_shipped_not_invoiced + self.outstanding_service_invoices
            - self.invoiced_prepayment_amount
        )  # fmt: skip


@dataclass(frozen=True)
class OrderLine:
    """What an open order line contributes: amounts in the document currency."""

    quantity: Decimal
    quantity_shipped: Decimal
    quantity_invoiced: Decimal
    amount_including_vat: Decimal
    exchange_rate: Decimal  # document currency -> LCY


def line_amounts(line: OrderLine) -> tuple[Decimal, Decimal]:
    """(outstanding, shipped not invoiced) in LCY, in proportion to the quantities."""
    if not line.quantity:
        return Decimal(0), Decimal(0)
    per_unit = line.amount_including_vat / line.quantity
    outstanding = _cents(per_unit * (line.quantity - line.quantity_shipped) * line.exchange_rate)
    shipped = _cents(
        per_unit * (line.quantity_shipped - line.quantity_invoiced) * line.exchange_rate
    )
    return outstanding, shipped


# --- the figures, from the database ------------------------------------------------------


async def _ledger_sums(
    session: AsyncSession, customer_nos: Sequence[str], as_of: date
) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """customer -> (balance, overdue, sales this year), one grouped query."""
    entry = CustLedgerEntry
    year_start, year_end = date(as_of.year, 1, 1), date(as_of.year, 12, 31)
    zero = sa.literal(0)
    overdue = sa.case(
        (sa.and_(col(entry.open), col(entry.due_date) < as_of), col(entry.remaining_amount_lcy)),
        else_=zero,
    )
    is_sale = sa.and_(
        col(entry.document_type).in_(
            [CustLedgerDocumentType.invoice, CustLedgerDocumentType.credit_memo]
        ),
        col(entry.posting_date).between(year_start, year_end),
    )
    sales = sa.case((is_sale, col(entry.amount_lcy)), else_=zero)
    statement = (
        sa.select(
            col(entry.customer_no),
            sa.func.sum(col(entry.remaining_amount_lcy)),
            sa.func.sum(overdue),
            sa.func.sum(sales),
        )
        .where(col(entry.customer_no).in_(list(customer_nos)))
        .group_by(col(entry.customer_no))
    )
    found: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for no, balance, late, sold in (await session.execute(statement)).all():
        found[str(no)] = (_amount(balance), _amount(late), _amount(sold))
    return found


def _amount(value: Any) -> Decimal:
    return _cents(Decimal(str(value or 0)))


async def _open_order_lines(
    session: AsyncSession, customer_nos: Sequence[str]
) -> dict[str, list[OrderLine]]:
    """customer (bill-to, else sell-to) -> its order lines not fully invoiced."""
    rates = {
        str(code): Decimal(rate)
        for code, rate in (
            await session.execute(sa.select(col(Currency.code), col(Currency.exchange_rate)))
        )
    }
    customer = sa.func.coalesce(
        sa.func.nullif(col(SalesHeader.bill_to_customer_no), ""),
        col(SalesHeader.sell_to_customer_no),
    )
    statement = (
        sa.select(
            customer,
            col(SalesHeader.currency_code),
            col(SalesLine.quantity),
            col(SalesLine.quantity_shipped),
            col(SalesLine.quantity_invoiced),
            col(SalesLine.amount_including_vat),
        )  # fmt: skip
        .join(
            SalesHeader,
            sa.and_(
                col(SalesHeader.document_type) == SalesLine.document_type,
                col(SalesHeader.no) == SalesLine.document_no,
            ),
        )
        .where(
            col(SalesLine.document_type) == SalesDocumentType.order,
            col(SalesLine.quantity_invoiced) < col(SalesLine.quantity),
            customer.in_(list(customer_nos)),
        )
    )
    found: dict[str, list[OrderLine]] = {}
    for no, currency, quantity, shipped, invoiced, amount in (
        await session.execute(statement)
    ).all():
        rate = rates.get(currency, Decimal(1)) if currency else Decimal(1)
        found.setdefault(str(no), []).append(
            OrderLine(
                Decimal(quantity),
                Decimal(shipped),
                Decimal(invoiced),
                Decimal(amount),
                Decimal(rate),
            )  # fmt: skip
        )
    return found


async def figures_for(
    session: AsyncSession, customers: Sequence[Customer], *, as_of: date
) -> dict[str, Figures]:
    """The statistics of each customer, by customer no. (three queries per call)."""
    nos = [c.no for c in customers]
    ledger = await _ledger_sums(session, nos, as_of)
    lines = await _open_order_lines(session, nos)
    found: dict[str, Figures] = {}
    for customer in customers:
        balance, overdue, sales = ledger.get(customer.no, (Decimal(0), Decimal(0), Decimal(0)))
        amounts = [line_amounts(line) for line in lines.get(customer.no, [])]
        found[customer.no] = Figures(
            balance=balance,
            outstanding_orders=sum((a[0] for a in amounts), Decimal(0)),
            shipped_not_invoiced=sum((a[1] for a in amounts), Decimal(0)),
            credit_limit=_cents(Decimal(customer.credit_limit_lcy)),
            overdue_amounts=overdue,
            overdue_as_of=as_of,
            total_sales=sales,
        )
    return found


# --- the CRM row ---------------------------------------------------------------------------


def statistics_values(customer: Customer, figures: Figures) -> dict[str, Any]:
    """The ``nav_accountstatistics`` attributes, without the currency."""
    return {
        "nav_name": customer.name,
        "nav_customerno": customer.no,
        "nav_balancelcy": figures.balance,
        "nav_outstandingorderslcy": figures.outstanding_orders,
        "nav_shippednotinvoicedlcy": figures.shipped_not_invoiced,
        "nav_outstandinginvoiceslcy": figures.outstanding_invoices,
        "nav_outstandingserviceorderslcy": figures.outstanding_service_orders,
        "nav_servshippednotinvoicedlcy": figures.service_shipped_not_invoiced,
        "nav_outstandingservinvoiceslcy": figures.outstanding_service_invoices,
        "nav_totallcy": figures.total,
        "nav_creditlimitlcy": figures.credit_limit,
        "nav_overdueamountslcy": figures.overdue_amounts,
        "nav_overdueamountsasof": figures.overdue_as_of,
        "nav_totalsaleslcy": figures.total_sales,
        "nav_invoicedprepaymentamountlcy": figures.invoiced_prepayment_amount,
    }


STATISTICS_FIELDS = tuple(statistics_values(Customer(no="", name=""), Figures()))


def changed_values(
    wanted: dict[str, Any], current: dict[str, Any] | None, currency_id: uuid.UUID
) -> dict[str, Any]:
    """The attributes to write (all of them for a new row), as a Web API body."""
    changes = {
        name: value
        for name, value in wanted.items()
        if current is None or not _same(value, current.get(name))
    }
    body = {name: transfer.to_json(value) for name, value in changes.items()}
    if current is None or str(current.get("_transactioncurrencyid_value")) != str(currency_id):
        body["transactioncurrencyid@odata.bind"] = bind("transactioncurrencies", currency_id)
    return body


def _same(wanted: Any, current: Any) -> bool:
    if isinstance(wanted, date):
        return isinstance(current, str) and current[:10] == wanted.isoformat()
    return transfer.same_value(wanted, current)


def statistics_id(account_id: uuid.UUID) -> uuid.UUID:
    """The id of a new statistics row: the same for every attempt for that account."""
    return uuid.uuid5(_STATISTICS_NAMESPACE, str(account_id))


# --- one run -------------------------------------------------------------------------------


@dataclass
class Candidate:
    customer: Customer
    coupling: IntegrationRecord
    action: SyncAction = SyncAction.modify
    ops: list[BatchOperation] | None = None
    message: str = ""


def _changed_since(since: datetime) -> sa.ColumnElement[bool]:
    no = col(Customer.no)
    ledger = sa.exists().where(
        col(CustLedgerEntry.customer_no) == no, col(CustLedgerEntry.modified_at) > since
    )
    header_of_customer = sa.or_(
        col(SalesHeader.sell_to_customer_no) == no, col(SalesHeader.bill_to_customer_no) == no
    )
    header = sa.exists().where(header_of_customer, col(SalesHeader.modified_at) > since)
    line = sa.exists().where(
        header_of_customer,
        col(SalesLine.document_type) == SalesHeader.document_type,
        col(SalesLine.document_no) == SalesHeader.no,
        col(SalesLine.modified_at) > since,
    )
    return sa.or_(col(Customer.modified_at) > since, ledger, header, line)


async def _candidates(
    session: AsyncSession, *, since: datetime | None, after_id: int
) -> list[Candidate]:
    statement = (
        select(Customer, IntegrationRecord)
        .join(
            IntegrationRecord,
            sa.and_(
                col(IntegrationRecord.table_name) == "customer",
                col(IntegrationRecord.integration_id) == Customer.system_id,
                col(IntegrationRecord.skipped).is_(False),
            ),
        )
        .where(col(Customer.id) > after_id)
        .order_by(col(Customer.id))
        .limit(PAGE_SIZE)
    )
    if since is not None:
        statement = statement.where(
            sa.or_(col(IntegrationRecord.statistics_uploaded).is_(False), _changed_since(since))
        )
    return [Candidate(customer, coupling) for customer, coupling in await session.exec(statement)]


async def _read(
    crm: DataverseClient, entity_set: str, pk: str, ids: Sequence[uuid.UUID], fields: list[str]
) -> dict[uuid.UUID, dict[str, Any]]:
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        text = " or ".join(f"{pk} eq {i}" for i in ids[start : start + IDS_PER_QUERY])
        try:
            async for row in crm.query(entity_set, select=[pk, *fields], filter=text):
                found[uuid.UUID(str(row[pk]))] = row
        except DataverseError as exc:
            raise from_dataverse(exc, action=f"read the CRM {entity_set}") from exc
    return found


async def _plan(
    session: AsyncSession,
    crm: DataverseClient,
    page: Sequence[Candidate],
    *,
    currency_id: uuid.UUID,
    as_of: date,
) -> None:
    figures = await figures_for(session, [c.customer for c in page], as_of=as_of)
    accounts = await _read(
        crm, "accounts", "accountid", [c.coupling.crm_id for c in page], [f"_{LINK}_value"]
    )
    linked = [
        uuid.UUID(str(a[f"_{LINK}_value"])) for a in accounts.values() if a.get(f"_{LINK}_value")
    ]
    fields = ["_transactioncurrencyid_value", *STATISTICS_FIELDS]
    rows = await _read(crm, ENTITY_SET, LINK, linked, fields)
    for candidate in page:
        account_id = candidate.coupling.crm_id
        account = accounts.get(account_id)
        if account is None:
            candidate.action = SyncAction.fail
            candidate.message = (
                f"The coupled account {account_id} no longer exists in Dynamics 365 Sales."
            )
            continue
        wanted = statistics_values(candidate.customer, figures[candidate.customer.no])
        link = account.get(f"_{LINK}_value")
        current = rows.get(uuid.UUID(str(link))) if link else None
        body = changed_values(wanted, current, currency_id)
        if current is not None and not body:
            candidate.action = SyncAction.unchanged
            continue
        if current is not None:
            candidate.ops = [update_op(ENTITY_SET, uuid.UUID(str(link)), body)]
            continue
        # No row yet (or the linked one was deleted): a new row, then the account's link.
        row_id = statistics_id(account_id)
        candidate.action = SyncAction.insert
        candidate.ops = [
            upsert_op(ENTITY_SET, row_id, body),
            update_op("accounts", account_id, {f"{LINK}@odata.bind": bind(ENTITY_SET, row_id)}),
        ]


async def _send(crm: DataverseClient, page: Sequence[Candidate]) -> None:
    todo = [c for c in page if c.ops]
    if not todo:
        return
    try:
        results = await crm.batch([ChangeSet(c.ops or []) for c in todo])
    except DataverseError as exc:
        raise from_dataverse(exc, action="write the customer statistics") from exc
    position = 0
    for candidate in todo:
        own = results[position : position + len(candidate.ops or [])]
        position += len(candidate.ops or [])
        failed = next((r for r in own if not r.is_ok), None)
        if failed is not None:
            reason = failed.error.dataverse_message if failed.error else str(failed.outcome)
            candidate.action = SyncAction.fail
            candidate.message = f"The CRM refused the statistics: {reason}"


async def _record(
    session: AsyncSession, job_id: uuid.UUID, page: Sequence[Candidate]
) -> log.Counters:
    counters = log.Counters()
    uploaded: list[int] = []
    now = utc_now()
    for candidate in page:
        counters.count(candidate.action)
        if candidate.action == SyncAction.fail:
            log.log_error(session, job_id=job_id, error=log.RecordError(
                source_table="customer", source_id=str(candidate.customer.system_id),
                destination_table="nav_accountstatistics",
                destination_id=str(candidate.coupling.crm_id),
                message=f"customer {candidate.customer.no}: {candidate.message}",
            ))  # fmt: skip
        elif not candidate.coupling.statistics_uploaded and candidate.coupling.id is not None:
            uploaded.append(candidate.coupling.id)
    if uploaded:
        await session.execute(
            sa.update(IntegrationRecord)
            .where(col(IntegrationRecord.id).in_(uploaded))
            .values(statistics_uploaded=True, modified_at=now, modified_by=current_actor.get())
            .execution_options(synchronize_session=False)
        )
    await log.add_counters(session, job_id=job_id, counters=counters)
    return counters


async def _run_part(
    sessionmaker: SessionMaker, name: str, entry_id: int | None, work: Any
) -> log.Counters:
    """One logged part of the job: ``work(job_id, since)`` inside its own sync job row."""
    async with session_scope(sessionmaker) as session:
        since = await crm_jobs.last_success_start(session, name=name, direction=Direction.to_crm)
    async with crm_jobs.logged_run(
        sessionmaker, name=name, direction=Direction.to_crm, entry_id=entry_id
    ) as joblog:
        counted: log.Counters = await work(joblog.job_id, since - SINCE_OVERLAP if since else None)
    return counted


async def synchronize(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    company_name: str = "CRONUS",
    entry_id: int | None = None,
    as_of: date | None = None,
) -> int:
    """One run of the statistics job; returns its activity (for the inactivity timeout)."""
    token = current_actor.set(SYNC_ACTOR)
    try:
        day = as_of or utc_now().date()
        async with session_scope(sessionmaker) as session:
            setup = (
                await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))
            ).first()
            if setup is None:
                msg = "The Dynamics 365 Sales connection is not set up."
                raise FatalSyncError(msg)
            context = await crm_rules.prepare(
                session, crm, setup, company_name=company_name, needs_price_list=False
            )

        async def statistics(job_id: uuid.UUID, since: datetime | None) -> log.Counters:
            total = log.Counters()
            after_id = 0
            while True:
                async with session_scope(sessionmaker) as session:
                    page = await _candidates(session, since=since, after_id=after_id)
                    if not page:
                        return total
                    after_id = page[-1].customer.id or after_id
                    await _plan(session, crm, page, currency_id=context.base_currency_id, as_of=day)
                await _send(crm, page)
                async with session_scope(sessionmaker) as session:
                    total.merge(await _record(session, job_id, page))

        async def statuses(job_id: uuid.UUID, since: datetime | None) -> log.Counters:
            return await invoice_status.refresh(sessionmaker, crm, since=since, job_id=job_id)

        counted = await _run_part(sessionmaker, STATISTICS_JOB, entry_id, statistics)
        counted.merge(await _run_part(sessionmaker, INVOICE_STATUS_JOB, entry_id, statuses))
        logger.info("customer_statistics_synchronized", activity=counted.activity)
        return counted.activity
    finally:
        current_actor.reset(token)


async def run_job(
    sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings
) -> RunResult:
    """The job queue runner of ``JobKind.customer_statistics``."""
    async with crm_jobs.open_crm(sessionmaker, settings) as job:
        try:
            activity = await synchronize(
                sessionmaker, job.crm, company_name=settings.company_name, entry_id=entry.id
            )
        except FatalSyncError as exc:
            raise JobConfigError(exc.admin_message) from exc
    return RunResult(changed=activity)
