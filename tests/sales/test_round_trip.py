"""The whole sales order round trip, in the legacy sales order integration.

Quote activated in the CRM -> ERP quote; order submitted in the CRM -> ERP order with lines
and notes -> released -> CRM post and the CRM order updated -> posted -> CRM invoice with
lines and the CRM order invoiced -> payment -> CRM invoice paid and the account statistics
updated. Every job runs on real arq workers through the REST run-now action (or a mapping
run request), and every CRM row is read from the sandbox, which speaks the Web API.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import IntegrationRecord, JobKind
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive
from tests.sales.legacy_orders import crm_rows, run_now
from tests.sales.world import Line, World, activate_quote, crm_document, submit

SO = "/api/v1/sales-orders"


async def _run_mapping(
    client: httpx.AsyncClient, admin: dict[str, str], name: str,
    ctx: dict[str, Any], settings: Settings,
) -> None:  # fmt: skip
    response = await client.post(f"/api/v1/sync/mappings/{name}/run", headers=admin)
    assert response.status_code == 202, response.text
    await drive(ctx, settings)


async def _crm_id_of(sessionmaker: SessionMaker, table: str, system_id: uuid.UUID) -> uuid.UUID:
    async with sessionmaker() as session:
        statement = select(IntegrationRecord.crm_id).where(
            col(IntegrationRecord.table_name) == table,
            col(IntegrationRecord.integration_id) == system_id,
        )
        return (await session.exec(statement)).one()


def _one(sandbox: RunningSandbox, entity_set: str, **where: Any) -> dict[str, Any]:
    rows = crm_rows(sandbox, entity_set, **where)
    assert len(rows) == 1, f"{entity_set} {where}: {len(rows)} rows"
    return rows[0]


async def test_a_sales_order_from_quote_to_paid_invoice(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sessionmaker: SessionMaker, crm: DataverseClient, world: World,
    sandbox: RunningSandbox, tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    legacy = {"sales_order_integration_enabled": True}  # as an administrator turns it on
    enabled = await client.patch("/api/v1/connection", json=legacy, headers=admin)
    assert enabled.status_code == 200, enabled.text
    lines = [Line(2, 10.5, world.product_1000), Line(3, 40, world.product_r1)]

    # A quote activated in the CRM becomes an ERP sales quote.
    quote = await crm_document(crm, "quote", number="QUO-1", account=world.account_c1,
                               lines=lines)  # fmt: skip
    await activate_quote(crm, quote.crm_id)
    await run_now(client, admin, JobKind.auto_process_sales_quotes, sessionmaker, tick_ctx,
                  worker_settings)  # fmt: skip
    quotes = (await client.get("/api/v1/sales-quotes", headers=admin)).json()["items"]
    assert [(q["sell_to_customer_no"], q["your_reference"]) for q in quotes] == [("C1", "QUO-1")]

    # The order won from it is submitted in the CRM with a note: the ERP order follows.
    order = await crm_document(
        crm, "salesorder", number="ORD-1", account=world.account_c1, lines=lines,
        notes=[("Delivery", "Ring at the back door.")],
        header={"quoteid@odata.bind": f"/quotes({quote.crm_id})"},
    )  # fmt: skip
    await submit(crm, order.crm_id)
    await run_now(client, admin, JobKind.auto_create_sales_orders, sessionmaker, tick_ctx,
                  worker_settings)  # fmt: skip
    orders = (await client.get(SO, headers=admin)).json()["items"]
    assert len(orders) == 1
    no = orders[0]["no"]
    assert orders[0]["your_reference"] == "ORD-1" and orders[0]["quote_no"] == quotes[0]["no"]
    erp_lines = (await client.get(f"{SO}/{no}/lines", headers=admin)).json()["items"]
    assert [(line["no"], Decimal(str(line["quantity"]))) for line in erp_lines] == [
        ("1000", 2), ("R1", 3)
    ]  # fmt: skip
    notes = (await client.get(f"{SO}/{no}/notes", headers=admin)).json()["items"]
    assert [n["text"] for n in notes] == ["Ring at the back door."]
    submitted = sandbox.state.get("salesorders", str(order.crm_id))
    assert submitted is not None and submitted["lastbackofficesubmit"]
    assert submitted["statecode"] == 1  # submitted again after the back-office stamp

    # Released in the ERP: a post in the CRM's activity feed, the CRM order updated.
    changed = await client.patch(f"{SO}/{no}", json={"requested_delivery_date": "2026-12-24"},
                                 headers=admin)  # fmt: skip
    assert changed.status_code == 200, changed.text
    released = await client.post(f"{SO}/{no}/release", headers=admin)
    assert released.status_code == 200, released.text
    await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx, worker_settings)
    await _run_mapping(client, admin, "SALESORDER-ORDER", tick_ctx, worker_settings)
    posts = crm_rows(sandbox, "posts", _regardingobjectid_value=str(order.crm_id))
    assert [p["text"] for p in posts] == ["The order status has changed to Released."]
    updated = sandbox.state.get("salesorders", str(order.crm_id))
    assert updated is not None and updated["requestdeliveryby"][:10] == "2026-12-24"

    # Posted in full: shipment and invoice posts, the CRM order invoiced, and the posted
    # invoice with its lines in the CRM, linked to the order.
    posted = await client.post(f"{SO}/{no}/post", headers=admin)
    assert posted.status_code == 200, posted.text
    invoice_no = posted.json()["invoice"]["no"]
    await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx, worker_settings)
    texts = sorted(
        p["text"] for p in crm_rows(sandbox, "posts", _regardingobjectid_value=str(order.crm_id))
    )
    assert texts == sorted([
        "The order status has changed to Released.",
        "A shipment has been created for the order.",
        "An invoice has been created for the order.",
    ])  # fmt: skip
    invoiced = sandbox.state.get("salesorders", str(order.crm_id))
    assert invoiced is not None
    assert (invoiced["statecode"], invoiced["statuscode"]) == (4, 100003)  # Invoiced
    await _run_mapping(client, admin, "POSTEDSALESINV-INV", tick_ctx, worker_settings)
    crm_invoice = _one(sandbox, "invoices", invoicenumber=invoice_no)
    assert crm_invoice["_salesorderid_value"] == str(order.crm_id)
    assert crm_invoice["_customerid_value"] == str(world.account_c1)
    assert (crm_invoice["statecode"], crm_invoice["statuscode"]) == (0, 4)  # Active / Billed
    total = Decimal("2") * Decimal("10.5") + Decimal("3") * Decimal("40")
    assert Decimal(str(crm_invoice["totalamount"])) == total
    details = crm_rows(sandbox, "invoicedetails", _invoiceid_value=crm_invoice["invoiceid"])
    assert sorted((d["_productid_value"], d["quantity"]) for d in details) == sorted(
        [(str(world.product_1000), 2), (str(world.product_r1), 3)]
    )
    posted_invoice = (await session.exec(
        select(erp.SalesInvoiceHeader).where(erp.SalesInvoiceHeader.no == invoice_no)
    )).one()  # fmt: skip
    assert await _crm_id_of(sessionmaker, "sales_invoice_header", posted_invoice.system_id) == (
        uuid.UUID(crm_invoice["invoiceid"])
    )

    # Paid in part, then in full: the statistics job moves the CRM invoice to paid and
    # keeps the account's statistics current.
    statistics_entry = await run_now(client, admin, JobKind.customer_statistics, sessionmaker,
                                     tick_ctx, worker_settings)  # fmt: skip
    account = sandbox.state.get("accounts", str(world.account_c1))
    assert account is not None and account["_nav_accountstatisticsid_value"]
    statistics = sandbox.state.get("nav_accountstatisticses",
                                   account["_nav_accountstatisticsid_value"])  # fmt: skip
    assert statistics is not None
    assert Decimal(str(statistics["nav_balancelcy"])) == total
    for amount, state, balance in (
        ("41", (2, 100002), total - 41),
        (str(total - 41), (2, 100001), 0),
    ):
        payment = {"customer_no": "C1", "amount": amount, "applies_to_document_no": invoice_no,
                   "posting_date": utc_now().date().isoformat()}  # fmt: skip
        paid = await client.post("/api/v1/customer-ledger-entries/payments", json=payment,
                                 headers=admin)  # fmt: skip
        assert paid.status_code == 201, paid.text
        statistics_entry = await run_now(client, admin, JobKind.customer_statistics,
                                         sessionmaker, tick_ctx, worker_settings)  # fmt: skip
        crm_invoice = _one(sandbox, "invoices", invoicenumber=invoice_no)
        assert (crm_invoice["statecode"], crm_invoice["statuscode"]) == state
        statistics = sandbox.state.get("nav_accountstatisticses",
                                       account["_nav_accountstatisticsid_value"])  # fmt: skip
        assert statistics is not None and Decimal(str(statistics["nav_balancelcy"])) == balance
    assert statistics_entry.last_error == ""
    assert sandbox.state.count("nav_accountstatisticses") == 1  # updated in place
    assert len(crm_rows(sandbox, "salesorders")) == 1  # nothing duplicated on the way
