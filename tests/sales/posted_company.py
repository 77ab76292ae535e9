"""A coupled company for posted invoices, statistics and opportunities.

The CRM side is made over the Web API (as people would have made it) and coupled directly,
which is quicker than synchronizing the master data first: salesperson SP <-> a CRM user,
unit PCS <-> a unit group, items 1000 and 1001 <-> published products, and the given
customers ("Customer <no>", salesperson SP, credit limit 5000) <-> accounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.erp import posting
from app.models import erp
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive
from tests.sync import factories as f


@dataclass
class Company:
    user_id: uuid.UUID
    unit_group: uuid.UUID
    unit: uuid.UUID
    products: dict[str, uuid.UUID] = field(default_factory=dict)
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)


async def coupled_company(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, *, customers: tuple[str, ...] = ("C1",),
) -> Company:  # fmt: skip
    user_id = await crm.create("systemusers", {
        "firstname": "Sam", "lastname": "Seller", "internalemailaddress": "sam@crm.example",
        "isdisabled": False,
    })  # fmt: skip
    await f.crm_user_edit(sandbox, "systemusers", user_id)  # a person's row, not ours
    group = await crm.create("uomschedules", {"name": "PCS", "baseuomname": "PCS"})
    units = [u async for u in crm.query("uoms", select=["uomid"],
                                        filter=f"_uomscheduleid_value eq {group}")]  # fmt: skip
    company = Company(user_id, group, uuid.UUID(units[0]["uomid"]))
    person, pcs = erp.Salesperson(code="SP", name="Sam Seller"), f.unit("PCS")
    await f.add(session, person, pcs)
    rows: list[Any] = [
        f.coupling("salesperson", person.system_id, "systemuser", user_id),
        f.coupling("unit_of_measure", pcs.system_id, "uomschedule", group),
    ]
    for no in ("1000", "1001"):
        item = f.item(no, unit_price=Decimal(25))
        await f.add(session, item)
        product = await crm.create("products", {
            "name": f"Item {no}", "productnumber": no, "producttypecode": 1,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({group})",
        })  # fmt: skip
        await crm.set_state("products", product, statecode=0, statuscode=1)
        company.products[no] = product
        rows.append(f.coupling("item", item.system_id, "product", product))
    for no in customers:
        customer = erp.Customer(no=no, name=f"Customer {no}", salesperson_code="SP",
                                credit_limit_lcy=Decimal(5000))  # fmt: skip
        await f.add(session, customer)
        account = await crm.create("accounts", {"name": f"Customer {no}", "customertypecode": 3})
        company.accounts[no] = account
        rows.append(f.coupling("customer", customer.system_id, "account", account))
    await f.add(session, *rows)
    await session.commit()
    return company


async def post_order(
    session: AsyncSession, no: str, lines: list[tuple[str, str, str]], *,
    customer: str = "C1", your_reference: str = "", discount: str = "0",
    posting_date: date | None = None, currency: str = "",
) -> erp.SalesInvoiceHeader:  # fmt: skip
    """An order of (item, quantity, unit price) lines, posted in full; its invoice."""
    order = erp.SalesHeader(
        document_type=erp.SalesDocumentType.order, no=no, sell_to_customer_no=customer,
        salesperson_code="SP", your_reference=your_reference, currency_code=currency,
        status=erp.SalesDocumentStatus.released,
    )  # fmt: skip
    await f.add(session, order)
    for n, (item, quantity, price) in enumerate(lines, start=1):
        amount = Decimal(quantity) * Decimal(price) - Decimal(discount)
        session.add(erp.SalesLine(
            document_type=erp.SalesDocumentType.order, document_no=no, line_no=n * 10,
            no=item, description=f"Item {item}", quantity=Decimal(quantity),
            unit_of_measure_code="PCS", unit_price=Decimal(price),
            line_discount_amount=Decimal(discount), amount=amount, amount_including_vat=amount,
        ))  # fmt: skip
    await session.flush()
    posted = await posting.post_order(session, order, posting_date=posting_date or utc_now().date())
    return posted.invoice


async def run_entry_now(
    client: httpx.AsyncClient, admin: dict[str, str], entry_id: int | None,
    ctx: dict[str, Any], settings: Settings,
) -> None:  # fmt: skip
    """The REST "run now" of a job queue entry, then real workers until the queue settles."""
    response = await client.post(f"/api/v1/job-queue-entries/{entry_id}/run-now", headers=admin)
    assert response.status_code == 202, response.text
    await drive(ctx, settings)
