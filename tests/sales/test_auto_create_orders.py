"""Auto create sales orders end to end: CRM orders made and submitted over the Web API,
the job run by real arq workers, the ERP order, its couplings and the CRM mark checked."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import col, select

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    JobKind,
    JobStatus,
)
from app.sales.sales_orders import JOB_NAME
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.conftest import WRITE_IN, run_job
from tests.sales.world import Line, World, crm_document, submit

AUTO_CREATE = JobKind.auto_create_sales_orders


async def orders(sessionmaker: SessionMaker) -> list[erp.SalesHeader]:
    async with sessionmaker() as session:
        statement = (
            select(erp.SalesHeader)
            .where(erp.SalesHeader.document_type == erp.SalesDocumentType.order)
            .order_by(col(erp.SalesHeader.no))
        )
        return list(await session.exec(statement))


async def lines_of(sessionmaker: SessionMaker, header: erp.SalesHeader) -> list[erp.SalesLine]:
    async with sessionmaker() as session:
        statement = (
            select(erp.SalesLine)
            .where(erp.SalesLine.document_type == header.document_type)
            .where(erp.SalesLine.document_no == header.no)
            .order_by(col(erp.SalesLine.line_no))
        )
        return list(await session.exec(statement))


async def couplings(sessionmaker: SessionMaker, table: str) -> dict[uuid.UUID, uuid.UUID]:
    """ERP system id -> CRM id of one table's couplings."""
    async with sessionmaker() as session:
        rows = await session.exec(select(IntegrationRecord).where(
            IntegrationRecord.table_name == table
        ))  # fmt: skip
        return {r.integration_id: r.crm_id for r in rows}


async def job_rows(sessionmaker: SessionMaker, name: str) -> list[IntegrationSynchJob]:
    async with sessionmaker() as session:
        statement = (
            select(IntegrationSynchJob)
            .where(IntegrationSynchJob.mapping_name == name)
            .order_by(col(IntegrationSynchJob.id))
        )
        return list(await session.exec(statement))


async def errors_of(sessionmaker: SessionMaker, job: IntegrationSynchJob) -> list[str]:
    async with sessionmaker() as session:
        statement = select(IntegrationSynchJobError.message).where(
            IntegrationSynchJobError.job_id == job.system_id
        )
        return sorted(await session.exec(statement))


def crm_order(sandbox: RunningSandbox, order_id: uuid.UUID) -> dict[str, Any]:
    record = sandbox.state.get("salesorders", str(order_id))
    assert record is not None
    return record


async def test_submitted_order_becomes_one_coupled_erp_order_and_bad_ones_are_reported(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    good = await crm_document(
        crm, "salesorder", number="ORD-1", account=world.account_c1,
        lines=[
            Line(3, 10.5, world.product_1000, manual_discount=1.5, unit=world.unit_box),
            Line(1, 25, None, description="Gift wrapping"),
            Line(2, 80, world.product_r1, volume_discount=5),
        ],
        notes=[("Delivery", "Ring the bell twice"), ("Invoice", "Send it by mail")],
        header={"discountamount": 10, "requestdeliveryby": "2026-12-01"},
    )  # fmt: skip
    uncoupled_customer = await crm_document(
        crm, "salesorder", number="ORD-2", account=world.account_c2, lines=[Line(1, 10)]
    )
    uncoupled_product = await crm_document(
        crm, "salesorder", number="ORD-3", account=world.account_c1,
        lines=[Line(1, 10, world.product_1001)],
    )  # fmt: skip
    active = await crm_document(
        crm, "salesorder", number="ORD-4", account=world.account_c1,
        lines=[Line(1, 10, world.product_1000)],
    )  # fmt: skip
    for order in (good, uncoupled_customer, uncoupled_product):
        await submit(crm, order.crm_id)

    entry = await run_job(AUTO_CREATE, sessionmaker, tick_ctx, worker_settings)
    assert entry.status in (JobStatus.ready, JobStatus.on_hold_with_inactivity_timeout)
    assert entry.last_error == ""
    (order,) = await orders(sessionmaker)
    assert (order.your_reference, order.sell_to_customer_no) == ("ORD-1", "C1")
    assert order.status == erp.SalesDocumentStatus.open
    assert order.external_document_no == "Web order ORD-1"
    assert order.work_description == "Deliver by noon"
    assert order.requested_delivery_date == dt.date(2026, 12, 1)
    assert order.invoice_discount_amount == Decimal(10)
    assert order.bill_to_city == "Lund"  # no CRM address: the customer's stays
    lines = await lines_of(sessionmaker, order)
    assert [(x.type, x.no, x.quantity, x.unit_price, x.line_discount_amount) for x in lines] == [
        (erp.SalesLineType.item, "1000", 3, Decimal("10.5"), Decimal("1.5")),
        (erp.SalesLineType.item, WRITE_IN, 1, 25, 0),
        (erp.SalesLineType.resource, "R1", 2, 80, 10),  # 2 x volume discount 5
    ]  # fmt: skip
    assert lines[0].unit_of_measure_code == "BOX"  # from the CRM unit's coupled unit group
    assert lines[1].description == "Gift wrapping"
    assert [x.amount for x in lines] == [Decimal("30"), Decimal(25), Decimal(150)]
    async with sessionmaker() as session:
        notes = list(await session.exec(select(erp.Note).where(
            erp.Note.record_id == order.system_id
        ).order_by(col(erp.Note.description))))  # fmt: skip
    assert [(n.description, n.text) for n in notes] == [
        ("Delivery", "Ring the bell twice"), ("Invoice", "Send it by mail"),
    ]  # fmt: skip
    assert (await couplings(sessionmaker, "sales_header")) == {order.system_id: good.crm_id}
    line_couplings = await couplings(sessionmaker, "sales_line")
    assert [line_couplings[x.system_id] for x in lines] == good.line_ids
    assert set((await couplings(sessionmaker, "note")).values()) == set(good.note_ids)

    # The CRM order: marked as created, submitted again (only Active orders can be edited).
    marked = crm_order(sandbox, good.crm_id)
    assert (marked["statecode"], marked["statuscode"]) == (1, 3)
    assert marked["lastbackofficesubmit"][:10] == dt.datetime.now(dt.UTC).date().isoformat()
    assert marked["bcbi_businesscentralordernumber"] == order.no
    for failed in (uncoupled_customer, uncoupled_product, active):
        assert crm_order(sandbox, failed.crm_id).get("lastbackofficesubmit") is None

    (job,) = await job_rows(sessionmaker, JOB_NAME)
    assert (job.inserted, job.failed, job.finished_at is not None) == (1, 2, True)
    bike, product = await errors_of(sessionmaker, job)
    assert "ORD-2" in bike and "'Bike corner'" in bike and "not coupled" in bike
    assert "ORD-3" in product and "'1001'" in product and "not coupled" in product

    # Run again: nothing new, the same two failures.
    await run_job(AUTO_CREATE, sessionmaker, tick_ctx, worker_settings)
    assert [o.no for o in await orders(sessionmaker)] == [order.no]
    assert len(await couplings(sessionmaker, "sales_line")) == 3
    second = (await job_rows(sessionmaker, JOB_NAME))[-1]
    assert (second.inserted, second.modified, second.failed) == (0, 0, 2)


async def test_uncoupled_customer_fails_then_succeeds_after_coupling(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    tick_ctx: dict[str, Any], worker_settings: Settings, client: httpx.AsyncClient,
    admin: dict[str, str], reader: dict[str, str],
) -> None:  # fmt: skip
    made = await crm_document(
        crm, "salesorder", number="ORD-7", account=world.account_c2,
        lines=[Line(4, 12.5, world.product_1000)],
    )  # fmt: skip
    await submit(crm, made.crm_id)

    listed = await client.get("/api/v1/sales-integration/submitted-orders", headers=reader)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["ordernumber"], item["customer_no"], item["erp_order_no"]) == ("ORD-7", None, None)
    assert item["total_amount"] == "50"

    path = f"/api/v1/sales-integration/submitted-orders/{made.crm_id}/create-erp-order"
    assert (await client.post(path, headers=reader)).status_code == 403
    refused = await client.post(path, headers=admin)
    assert refused.status_code == 409
    assert "'Bike corner'" in refused.json()["detail"]
    assert "not coupled" in refused.json()["detail"]
    await run_job(AUTO_CREATE, sessionmaker, tick_ctx, worker_settings)
    assert await orders(sessionmaker) == []

    coupled = await client.post("/api/v1/couplings", headers=admin, json={
        "mapping_name": "CUSTOMER", "integration_id": str(world.c2_system_id),
        "crm_id": str(world.account_c2),
    })  # fmt: skip
    assert coupled.status_code == 200, coupled.text
    await run_job(AUTO_CREATE, sessionmaker, tick_ctx, worker_settings)
    (order,) = await orders(sessionmaker)
    assert (order.sell_to_customer_no, order.your_reference) == ("C2", "ORD-7")
    assert crm_order(sandbox, made.crm_id)["bcbi_businesscentralordernumber"] == order.no

    # By hand again: already created, nothing new; the list is empty now.
    again = await client.post(path, headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "already_created"
    assert again.json()["erp_order_no"] == order.no
    assert len(await orders(sessionmaker)) == 1
    listed = await client.get("/api/v1/sales-integration/submitted-orders", headers=reader)
    assert listed.json()["items"] == []
    missing = await client.post(
        f"/api/v1/sales-integration/submitted-orders/{uuid.uuid4()}/create-erp-order",
        headers=admin,
    )
    assert missing.status_code == 404
