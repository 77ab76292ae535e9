"""Posted sales invoices -> CRM invoices with their lines, on the queue (real workers, the
sandbox over HTTP); paid statuses from payments through the statistics job."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.erp import ledger
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobKind,
)
from app.sales import invoice_status
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import entries
from tests.sales.posted_company import coupled_company, post_order, run_entry_now
from tests.sync import factories as f

HEADERS = "POSTEDSALESINV-INV"


def test_invoice_status_follows_the_remaining_amount() -> None:
    d = Decimal
    assert invoice_status.status_for(d(100), d(100)) == (0, 4)  # Active / Billed
    assert invoice_status.status_for(d(100), d(40)) == (2, 100002)  # Paid / Partial
    assert invoice_status.status_for(d(100), d(0)) == (2, 100001)  # Paid / Complete
    assert invoice_status.status_for(d(0), d(0)) == (2, 100001)


async def _jobs(sessionmaker: SessionMaker, mapping: str) -> list[IntegrationSynchJob]:
    async with sessionmaker() as session:
        statement = (
            select(IntegrationSynchJob)
            .where(IntegrationSynchJob.mapping_name == mapping)
            .order_by(col(IntegrationSynchJob.started_at))
        )
        return list(await session.exec(statement))


def _invoice(sandbox: RunningSandbox, number: str) -> dict[str, Any]:
    found = [i for i in sandbox.state.rows("invoices") if i.get("invoicenumber") == number]
    assert len(found) == 1, f"invoice {number}: {len(found)} rows"
    return found[0]


def _details(sandbox: RunningSandbox, invoice_id: str) -> list[dict[str, Any]]:
    rows = [d for d in sandbox.state.rows("invoicedetails") if d["_invoiceid_value"] == invoice_id]
    return sorted(rows, key=lambda d: d["quantity"])


async def test_posted_invoices_go_to_the_crm_with_lines_order_and_paid_status(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    company = await coupled_company(session, sessionmaker, sandbox, crm, customers=("C1", "C2"))
    account = company.accounts["C1"]
    web_prices = await crm.create("pricelevels", {
        "name": "Web prices",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies("
        f"{sandbox.state.identity.base_currency_id})",
    })  # fmt: skip
    deal = await crm.create("opportunities", {"name": "Spring deal"})
    order = await crm.create("salesorders", {
        "name": "Web order WEB-1", "ordernumber": "WEB-1",
        "customerid_account@odata.bind": f"/accounts({account})",
        "pricelevelid@odata.bind": f"/pricelevels({web_prices})",
        "opportunityid@odata.bind": f"/opportunities({deal})",
    })  # fmt: skip
    from_web = await post_order(session, "SO1", [("1000", "4", "25"), ("1001", "2", "25")],
                                your_reference="WEB-1", discount="5")  # fmt: skip
    plain = await post_order(session, "SO2", [("1000", "1", "25")])
    # C2's invoice names C1's CRM order: the customer has changed, the invoice fails alone.
    foreign = await post_order(session, "SO3", [("1000", "1", "25")], customer="C2",
                               your_reference="WEB-1")  # fmt: skip
    await session.commit()

    (entry,) = await entries(sessionmaker, mapping_name=HEADERS, recurring=True)
    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)

    state = sandbox.state
    web = _invoice(sandbox, from_web.no)
    assert web["name"] == "Web order WEB-1"
    assert web["_salesorderid_value"] == str(order)
    assert web["_opportunityid_value"] == str(deal)
    assert web["_pricelevelid_value"] == str(web_prices)
    assert web["_customerid_value"] == str(account)
    assert web["_ownerid_value"] == state.identity.user_id  # the CRM order's owner
    assert web["_transactioncurrencyid_value"] == state.identity.base_currency_id
    assert (web["statecode"], web["statuscode"]) == (0, 4)  # Active / Billed
    assert (web["totalamountlessfreight"], web["totalamount"]) == (140, 140)
    lines = _details(sandbox, web["invoiceid"])
    assert [(d["quantity"], d["priceperunit"], d["manualdiscountamount"]) for d in lines] == [
        (2, 25, 5), (4, 25, 5),
    ]  # fmt: skip
    assert [d["extendedamount"] for d in lines] == [45, 95]
    assert [d["_productid_value"] for d in lines] == [
        str(company.products["1001"]), str(company.products["1000"]),
    ]  # fmt: skip
    assert {d["_uomid_value"] for d in lines} == {str(company.unit)}
    assert all(d["ispriceoverridden"] is True for d in lines)

    own = _invoice(sandbox, plain.no)
    assert own["name"] == plain.no and own.get("_salesorderid_value") is None
    assert own["_ownerid_value"] == str(company.user_id)  # from salesperson SP
    default = next(p for p in state.rows("pricelevels") if p["pricelevelid"] ==
                   own["_pricelevelid_value"])  # fmt: skip
    assert default["name"] == "CRONUS Default Price List"
    assert [d["extendedamount"] for d in _details(sandbox, own["invoiceid"])] == [25]
    assert not [i for i in state.rows("invoices") if i.get("invoicenumber") == foreign.no]

    header_job, line_job = (await _jobs(sessionmaker, HEADERS))[0], (
        await _jobs(sessionmaker, "POSTEDSALESLINE-INV"))[0]  # fmt: skip
    assert (header_job.inserted, header_job.failed) == (2, 1)
    assert (line_job.inserted, line_job.failed) == (3, 0)
    async with sessionmaker() as check:
        errors = list(await check.exec(select(IntegrationSynchJobError).where(
            IntegrationSynchJobError.job_id == header_job.system_id)))  # fmt: skip
    assert [e.message for e in errors] == [
        f"sales invoice header {foreign.no}: The CRM order WEB-1 belongs to another customer "
        "than the invoice's sell-to customer C2; the customer has changed since the order "
        "was created."
    ]

    # Run again: nothing new is written, no line is sent twice.
    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)
    again = (await _jobs(sessionmaker, HEADERS))[-1]
    assert (again.inserted, again.modified) == (0, 0)
    assert state.count("invoicedetails") == 3 and state.count("invoices") == 2

    # Payments: half of the web invoice -> Paid / Partial, the rest -> Paid / Complete.
    (statistics,) = await entries(sessionmaker, kind=JobKind.customer_statistics)
    await ledger.post_payment(
        session,
        customer_no="C1",
        amount=Decimal(40),
        posting_date=utc_now().date(),
        applies_to_document_no=from_web.no,
    )
    await session.commit()  # fmt: skip
    await run_entry_now(client, admin, statistics.id, tick_ctx, worker_settings)
    web = _invoice(sandbox, from_web.no)
    assert (web["statecode"], web["statuscode"]) == (2, 100002)
    own = _invoice(sandbox, plain.no)
    assert (own["statecode"], own["statuscode"]) == (0, 4)
    await ledger.post_payment(
        session,
        customer_no="C1",
        amount=Decimal(100),
        posting_date=utc_now().date(),
        applies_to_document_no=from_web.no,
    )
    await session.commit()  # fmt: skip
    await run_entry_now(client, admin, statistics.id, tick_ctx, worker_settings)
    assert (_invoice(sandbox, from_web.no)["statuscode"]) == 100001
    status_jobs = await _jobs(sessionmaker, "INVOICE STATUS")
    assert [j.modified for j in status_jobs] == [1, 1]


async def test_an_invoice_waits_for_its_customer_and_syncs_now_with_its_lines(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str],
) -> None:  # fmt: skip
    await coupled_company(session, sessionmaker, sandbox, crm, customers=("C1",))
    invoice = await post_order(session, "SO1", [("1000", "3", "25")])
    paid = await post_order(session, "SO2", [("1001", "1", "25")])
    await f.add(session, f.item("2000"))  # never coupled to a product
    lonely = await post_order(session, "SO3", [("1000", "1", "25"), ("2000", "1", "25")])
    euro = erp.Currency(code="EUR", description="Euro", exchange_rate=Decimal("1.5"))
    await f.add(session, euro)
    euro_id = await crm.create("transactioncurrencies", {
        "isocurrencycode": "EUR", "currencyname": "Euro", "exchangerate": 0.67})  # fmt: skip
    await f.add(session, f.coupling("currency", euro.system_id, "transactioncurrency", euro_id))
    in_euro = await post_order(session, "SO4", [("1000", "2", "10")], currency="EUR")
    await ledger.post_payment(
        session,
        customer_no="C1",
        amount=Decimal(25),
        posting_date=utc_now().date(),
        applies_to_document_no=paid.no,
    )
    await session.commit()  # fmt: skip
    coupling = (await session.exec(select(IntegrationRecord).where(
        IntegrationRecord.table_name == "customer"))).one()  # fmt: skip
    await session.delete(coupling)  # the customer is not coupled (yet)
    await session.commit()

    body = {"mapping_name": HEADERS, "codes": [invoice.no, paid.no, lonely.no, in_euro.no],
            "create_if_not_coupled": True}  # fmt: skip
    response = await client.post("/api/v1/couplings/synchronize", json=body, headers=admin)
    assert response.status_code == 200, response.text
    results = [r["results"][0] for r in response.json()["records"]]
    assert {r["outcome"] for r in results} == {"failed"}
    assert "The customer C1 is not coupled" in results[0]["message"]
    assert sandbox.state.count("invoices") == 0 and sandbox.state.count("invoicedetails") == 0
    async with sessionmaker() as check:
        lines = list(await check.exec(select(IntegrationRecord).where(
            IntegrationRecord.table_name == "sales_invoice_line")))  # fmt: skip
    assert lines == []  # lines wait for their header: no failure piles up on them

    account = await crm.create("accounts", {"name": "Customer C1", "customertypecode": 3})
    customer_id = coupling.integration_id
    session.add(IntegrationRecord(table_name="customer", integration_id=customer_id,
                                  crm_table="account", crm_id=account))  # fmt: skip
    await session.commit()
    response = await client.post("/api/v1/couplings/synchronize", json=body, headers=admin)
    assert response.status_code == 200, response.text
    outcomes = {r["record"].split()[-1]: r["results"][0] for r in response.json()["records"]}
    assert [outcomes[n]["outcome"] for n in (invoice.no, paid.no)] == ["inserted", "inserted"]
    # Everything an invoice references must be coupled before it goes: item 2000 is not.
    assert outcomes[lonely.no]["outcome"] == "failed"
    assert "The item 2000 is not coupled" in outcomes[lonely.no]["message"]
    assert sandbox.state.count("invoices") == 3
    # An invoice in another currency gets a price list in that currency, made once.
    euro_invoice = _invoice(sandbox, in_euro.no)
    assert euro_invoice["_transactioncurrencyid_value"] == str(euro_id)
    euro_prices = sandbox.state.get("pricelevels", euro_invoice["_pricelevelid_value"])
    assert euro_prices is not None and euro_prices["name"] == "CRONUS Default Price List (EUR)"
    assert euro_prices["_transactioncurrencyid_value"] == str(euro_id)
    created = _invoice(sandbox, invoice.no)
    assert [d["quantity"] for d in _details(sandbox, created["invoiceid"])] == [3]
    settled = _invoice(sandbox, paid.no)  # paid before it reached the CRM: Paid / Complete
    assert (settled["statecode"], settled["statuscode"]) == (2, 100001)
    assert len(_details(sandbox, settled["invoiceid"])) == 1
    assert uuid.UUID(created["_customerid_value"]) == account


async def test_a_failed_line_is_retried_by_the_next_header_run(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup,
) -> None:  # fmt: skip
    await coupled_company(session, sessionmaker, sandbox, crm)
    box = f.unit("BOX")
    await f.add(session, box)
    invoice = await post_order(session, "SO1", [("1000", "2", "25")])
    line = (await session.exec(select(erp.SalesInvoiceLine))).one()
    line.unit_of_measure_code = "BOX"  # a unit the CRM does not know yet
    await session.commit()

    first = await run_mapping(sessionmaker, crm, mapping_name=HEADERS)
    assert first.counters[Direction.to_crm].inserted == 1
    crm_invoice = _invoice(sandbox, invoice.no)
    assert _details(sandbox, crm_invoice["invoiceid"]) == []
    (line_job,) = await _jobs(sessionmaker, "POSTEDSALESLINE-INV")
    assert line_job.failed == 1

    group = await crm.create("uomschedules", {"name": "BOX", "baseuomname": "BOX"})
    await f.add(session, f.coupling("unit_of_measure", box.system_id, "uomschedule", group))
    await session.commit()
    # The header is unchanged; its run still picks up the line the watermark has passed.
    second = await run_mapping(sessionmaker, crm, mapping_name=HEADERS)
    assert second.activity == 1  # the line: the run's activity counts its lines
    (detail,) = _details(sandbox, crm_invoice["invoiceid"])
    assert detail["quantity"] == 2 and detail["_uomid_value"] is not None
    assert (await _jobs(sessionmaker, "POSTEDSALESLINE-INV"))[-1].inserted == 1


async def test_amounts_reach_the_crm_exactly(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    """The largest total the ERP allows and a 16-digit unit price, which a binary float
    changes (99999999999.99999 prints back as 99999999999.99998), arrive digit for digit."""
    await coupled_company(session, sessionmaker, sandbox, crm)
    largest = await post_order(session, "SO7", [("1000", "3", "3333333333333.33")])
    precise = await post_order(session, "SO8", [("1001", "1", "99999999999.99999")])
    await session.commit()
    assert largest.amount_including_vat == Decimal("9999999999999.99")

    (entry,) = await entries(sessionmaker, mapping_name=HEADERS, recurring=True)
    await run_entry_now(client, admin, entry.id, tick_ctx, worker_settings)

    total = _invoice(sandbox, largest.no)
    assert total["totalamount"] == largest.amount_including_vat
    assert total["totalamountlessfreight"] == largest.amount
    assert [d["extendedamount"] for d in _details(sandbox, total["invoiceid"])] == [
        largest.amount_including_vat
    ]
    (line,) = _details(sandbox, _invoice(sandbox, precise.no)["invoiceid"])
    assert line["priceperunit"] == Decimal("99999999999.99999")
    assert line["extendedamount"] == precise.amount_including_vat == Decimal("100000000000.00")
