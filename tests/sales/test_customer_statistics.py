"""Customer statistics: the figures from the ledger and open order lines (both databases),
and the job on the queue writing ``nav_accountstatistics`` rows linked from the accounts."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.erp import ledger
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobKind,
    JobStatus,
)
from app.sales import customer_statistics as stats
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import entries
from tests.sales.posted_company import coupled_company, post_order, run_entry_now
from tests.sync import factories as f

D = Decimal
TODAY = date(2026, 6, 15)


async def _order(
    session: AsyncSession, no: str, customer: str, lines: list[tuple[str, str, str, str]],
    *, currency: str = "", bill_to: str = "",
) -> None:  # fmt: skip
    """An order whose lines are (quantity, shipped, invoiced, amount including VAT)."""
    session.add(erp.SalesHeader(document_type=erp.SalesDocumentType.order, no=no,
                                sell_to_customer_no=customer, currency_code=currency,
                                bill_to_customer_no=bill_to))  # fmt: skip
    await session.flush()
    for n, (quantity, shipped, invoiced, amount) in enumerate(lines, start=1):
        session.add(erp.SalesLine(
            document_type=erp.SalesDocumentType.order, document_no=no, line_no=n * 10,
            no="1000", quantity=D(quantity), quantity_shipped=D(shipped),
            quantity_invoiced=D(invoiced), amount=D(amount), amount_including_vat=D(amount),
        ))  # fmt: skip
    await session.flush()


async def _entry(session: AsyncSession, customer: str, kind: str, amount: str, rest: str,
                 *, posted: date, due: date | None) -> None:  # fmt: skip
    await ledger.add_cust_entry(
        session, customer_no=customer, posting_date=posted,
        document_type=erp.CustLedgerDocumentType(kind), document_no=f"D{uuid.uuid4().hex[:8]}",
        amount_lcy=D(amount), remaining_amount_lcy=D(rest), due_date=due, open=D(rest) != 0,
    )  # fmt: skip


async def test_figures_come_from_the_ledger_and_the_open_order_lines(
    session: AsyncSession,
) -> None:
    await f.add(session, f.unit("PCS"), erp.Currency(code="EUR", exchange_rate=D("1.5")))
    await f.add(session, f.item("1000"), erp.Customer(no="C1", name="Cycle shop",
                credit_limit_lcy=D("5000")), erp.Customer(no="C2", name="Other"))  # fmt: skip
    last_year = TODAY.replace(year=TODAY.year - 1)
    # Invoices: one overdue and half paid, one due later, one of last year paid in full.
    await _entry(session, "C1", "invoice", "400", "200", posted=TODAY - timedelta(days=40),
                 due=TODAY - timedelta(days=10))  # fmt: skip
    await _entry(session, "C1", "invoice", "300", "300", posted=TODAY, due=TODAY + timedelta(30))
    await _entry(session, "C1", "invoice", "999", "0", posted=last_year, due=last_year)
    await _entry(session, "C1", "credit_memo", "-50", "-50", posted=TODAY, due=TODAY)
    await _entry(session, "C1", "payment", "-200", "0", posted=TODAY, due=TODAY)
    # An unapplied payment due before today counts as overdue (negative), as in BC.
    await _entry(session, "C1", "payment", "-25", "-25", posted=TODAY - timedelta(days=2),
                 due=TODAY - timedelta(days=2))  # fmt: skip
    await _entry(session, "C2", "invoice", "70", "70", posted=TODAY, due=TODAY)
    # Orders: 10 ordered, 4 shipped, 1 invoiced, 100 in all -> 60 outstanding, 30 shipped
    # not invoiced; a EUR order at 1.5; a fully invoiced line counts nothing; C2's order
    # billed to C1 is C1's; a quote is no order.
    await _order(session, "SO1", "C1", [("10", "4", "1", "100"), ("2", "2", "2", "80")])
    await _order(session, "SO2", "C1", [("3", "0", "0", "30.30")], currency="EUR")
    await _order(session, "SO3", "C2", [("1", "0", "0", "7")], bill_to="C1")
    session.add(erp.SalesHeader(document_type=erp.SalesDocumentType.quote, no="SQ1",
                                sell_to_customer_no="C1"))  # fmt: skip
    await session.flush()
    session.add(erp.SalesLine(document_type=erp.SalesDocumentType.quote, document_no="SQ1",
                              line_no=10, no="1000", quantity=D(5),
                              amount_including_vat=D(500)))  # fmt: skip
    await session.flush()

    customers = list(await session.exec(select(erp.Customer).order_by(col(erp.Customer.no))))
    figures = await stats.figures_for(session, customers, as_of=TODAY)

    c1 = figures["C1"]
    assert c1.balance == D("425.00")  # 200 + 300 - 50 - 25
    assert c1.outstanding_orders == D("60.00") + D("45.45") + D("7.00")
    assert c1.shipped_not_invoiced == D("30.00")
    assert c1.outstanding_invoices == 0 and c1.invoiced_prepayment_amount == 0
    assert (c1.outstanding_service_orders, c1.service_shipped_not_invoiced) == (0, 0)
    assert c1.total == D("425.00") + D("112.45") + D("30.00")
    assert c1.credit_limit == D("5000.00")
    assert c1.overdue_amounts == D("175.00")  # 200 - 25
    assert c1.overdue_as_of == TODAY
    assert c1.total_sales == D("650.00")  # this year's invoices and credit memos
    c2 = figures["C2"]
    assert (c2.balance, c2.outstanding_orders, c2.overdue_amounts) == (D(70), D(0), D(0))
    assert c2.total == D(70)

    values = stats.statistics_values(customers[0], c1)
    assert set(values) == set(stats.STATISTICS_FIELDS)
    assert values["nav_totallcy"] == c1.total and values["nav_customerno"] == "C1"


def test_line_amounts_are_in_proportion_to_quantities() -> None:
    line = stats.OrderLine(D(3), D(1), D(0), D("10.00"), D(2))
    assert stats.line_amounts(line) == (D("13.33"), D("6.67"))
    assert stats.line_amounts(stats.OrderLine(D(0), D(0), D(0), D(5), D(1))) == (0, 0)


def test_only_changed_statistics_are_written() -> None:
    currency = uuid.uuid4()
    wanted = stats.statistics_values(erp.Customer(no="C1", name="A"), stats.Figures(
        balance=D("10.5"), overdue_as_of=TODAY))  # fmt: skip
    new = stats.changed_values(wanted, None, currency)
    assert new["nav_balancelcy"] == 10.5 and new["nav_overdueamountsasof"] == "2026-06-15"
    assert new["transactioncurrencyid@odata.bind"] == f"/transactioncurrencies({currency})"
    current = {**{k: stats.transfer.to_json(v) for k, v in wanted.items()},
               "_transactioncurrencyid_value": str(currency)}  # fmt: skip
    assert stats.changed_values(wanted, current, currency) == {}
    current["nav_balancelcy"] = 9
    assert stats.changed_values(wanted, current, currency) == {"nav_balancelcy": 10.5}


async def _statistics_row(sandbox: RunningSandbox, account_id: uuid.UUID) -> dict[str, Any]:
    account = sandbox.state.get("accounts", str(account_id))
    assert account is not None
    link = account.get("_nav_accountstatisticsid_value")
    assert link, "the account links its statistics"
    row = sandbox.state.get("nav_accountstatisticses", str(link))
    assert row is not None
    return row


async def _last_job(sessionmaker: SessionMaker, name: str) -> IntegrationSynchJob:
    async with sessionmaker() as session:
        statement = (
            select(IntegrationSynchJob)
            .where(IntegrationSynchJob.mapping_name == name)
            .order_by(col(IntegrationSynchJob.started_at).desc())
        )
        return (await session.exec(statement)).first()  # type: ignore[return-value]


async def test_statistics_job_writes_linked_rows_incrementally(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], reader: dict[str, str], tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    company = await coupled_company(session, sessionmaker, sandbox, crm, customers=("C1", "C2"))
    invoice = await post_order(session, "SO1", [("1000", "4", "25")])
    await session.commit()
    (entry,) = await entries(sessionmaker, kind=JobKind.customer_statistics)
    assert (entry.minutes_between_runs, entry.inactivity_timeout_minutes) == (30, 30)
    assert entry.description == "Customer Statistics - Dynamics 365 Sales synchronization job"

    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)
    row = await _statistics_row(sandbox, company.accounts["C1"])
    assert row["nav_customerno"] == "C1" and row["nav_name"] == "Customer C1"
    assert (row["nav_balancelcy"], row["nav_totallcy"], row["nav_totalsaleslcy"]) == (100, 100, 100)
    assert row["nav_creditlimitlcy"] == 5000 and row["nav_outstandingorderslcy"] == 0
    assert row["nav_overdueamountsasof"][:10] == utc_now().date().isoformat()
    assert row["_transactioncurrencyid_value"] == sandbox.state.identity.base_currency_id
    other = await _statistics_row(sandbox, company.accounts["C2"])
    assert other["nav_balancelcy"] == 0
    assert sandbox.state.count("nav_accountstatisticses") == 2
    first = await _last_job(sessionmaker, stats.STATISTICS_JOB)
    assert (first.inserted, first.modified, first.failed) == (2, 0, 0)
    async with sessionmaker() as check:
        uploaded = await check.exec(select(IntegrationRecord.statistics_uploaded).where(
            IntegrationRecord.table_name == "customer"))  # fmt: skip
        assert set(uploaded) == {True}

    # Nothing changed: the next run considers no customer and the entry rests.
    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)
    idle = await _last_job(sessionmaker, stats.STATISTICS_JOB)
    assert idle.system_id != first.system_id and idle.inserted + idle.modified == 0
    (rested,) = await entries(sessionmaker, kind=JobKind.customer_statistics)
    assert rested.status == JobStatus.on_hold_with_inactivity_timeout

    # A payment of C1 changes C1's figures only; its row is updated in place.
    await ledger.post_payment(session, customer_no="C1", amount=D(40),
                              posting_date=utc_now().date())  # fmt: skip
    await session.commit()
    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)
    updated = await _statistics_row(sandbox, company.accounts["C1"])
    assert updated["nav_accountstatisticsid"] == row["nav_accountstatisticsid"]
    assert (updated["nav_balancelcy"], updated["nav_totallcy"]) == (60, 60)
    paid = await _last_job(sessionmaker, stats.STATISTICS_JOB)
    assert (paid.inserted, paid.modified, paid.failed) == (0, 1, 0)
    assert sandbox.state.count("nav_accountstatisticses") == 2

    # The same figures over REST, for comparing with the CRM row.
    response = await client.get("/api/v1/customer-statistics/C1", headers=reader)
    assert response.status_code == 200, response.text
    read = response.json()
    assert (D(read["balance_lcy"]), D(read["total_lcy"]), D(read["total_sales_lcy"])) == (
        D(60), D(60), D(100))  # fmt: skip
    assert read["account_id"] == str(company.accounts["C1"]) and read["statistics_uploaded"]
    missing = await client.get("/api/v1/customer-statistics/NOPE", headers=reader)
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert (await client.get("/api/v1/customer-statistics/C1")).status_code == 401
    assert invoice.amount_including_vat == 100  # the invoice the payment went to


async def test_a_deleted_account_fails_alone_and_is_retried(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup,
) -> None:  # fmt: skip
    company = await coupled_company(session, sessionmaker, sandbox, crm, customers=("C1", "C2"))
    await crm.delete("accounts", company.accounts["C2"])
    assert await stats.synchronize(sessionmaker, crm) == 2  # one inserted, one failed
    job = await _last_job(sessionmaker, stats.STATISTICS_JOB)
    assert (job.inserted, job.failed) == (1, 1)
    async with sessionmaker() as check:
        errors = await check.exec(
            select(IntegrationSynchJobError).where(IntegrationSynchJobError.job_id == job.system_id)
        )
        (error,) = list(errors)
    assert error.message.startswith("customer C2: The coupled account")
    # Still not uploaded: the next run tries C2 again (and only C2).
    async with session_scope(sessionmaker) as writing:
        await writing.exec(update(erp.Customer).values(modified_at=utc_now() - timedelta(days=1)))
    assert await stats.synchronize(sessionmaker, crm) == 1
    again = await _last_job(sessionmaker, stats.STATISTICS_JOB)
    assert (again.inserted, again.failed, again.unchanged) == (0, 1, 0)
