"""SALESORDER-ORDER and SOLINE-ORDERDETAIL through the mapping sync, both modes, with real
workers and the sandbox: the ERP order comes from a submitted CRM order (auto-create)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection.defaults import recreate_sales_order_mappings
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.conftest import WRITE_IN, drive, run_job
from tests.sales.test_auto_create_orders import crm_order, job_rows, lines_of, orders
from tests.sales.world import Line, World, crm_document, submit
from tests.sync import factories as f


async def _sales_order_mode(
    session: AsyncSession, setup: ConnectionSetup, *, bidirectional: bool
) -> None:
    setup.sales_order_integration_enabled = not bidirectional
    setup.bidirectional_sales_order_integration = bidirectional
    session.add(setup)
    await recreate_sales_order_mappings(session, setup=setup)
    await session.exec(  # the tests run the mapping on demand
        update(JobQueueEntry)
        .where(col(JobQueueEntry.kind) == JobKind.mapping_sync)
        .values(status=JobStatus.on_hold)
    )
    await session.commit()


@pytest.fixture
async def legacy(session: AsyncSession, sales_setup: ConnectionSetup) -> ConnectionSetup:
    await _sales_order_mode(session, sales_setup, bidirectional=False)
    return sales_setup


@pytest.fixture
async def bidirectional(session: AsyncSession, sales_setup: ConnectionSetup) -> ConnectionSetup:
    await _sales_order_mode(session, sales_setup, bidirectional=True)
    return sales_setup


async def _run_mapping(
    client: httpx.AsyncClient, admin: dict[str, str], ctx: dict[str, Any], settings: Settings
) -> None:
    response = await client.post("/api/v1/sync/mappings/SALESORDER-ORDER/run", headers=admin)
    assert response.status_code == 202, response.text
    await drive(ctx, settings)


async def _last_job(sessionmaker: SessionMaker, name: str, direction: Direction) -> Any:
    return [j for j in await job_rows(sessionmaker, name) if j.direction == direction][-1]


async def _created_order(
    sessionmaker: SessionMaker, crm: DataverseClient, world: World, ctx: dict[str, Any],
    settings: Settings, number: str,
) -> Any:  # fmt: skip
    made = await crm_document(
        crm, "salesorder", number=number, account=world.account_c1,
        lines=[Line(2, 10.5, world.product_1000), Line(1, 25, None, description="Gift wrap"),
               Line(1, 80, world.product_r1)],
    )  # fmt: skip
    await submit(crm, made.crm_id)
    await run_job(JobKind.auto_create_sales_orders, sessionmaker, ctx, settings)
    (order,) = await orders(sessionmaker)
    return made, order


async def test_legacy_mode_pushes_the_released_order_to_its_submitted_crm_order(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    legacy: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    made, order = await _created_order(
        sessionmaker, crm, world, tick_ctx, worker_settings, "ORD-30"
    )
    path = f"/api/v1/sales-orders/{order.no}"
    changed = await client.patch(path, headers=admin, json={
        "requested_delivery_date": "2026-12-24", "ship_to_city": "Malmo",
    })  # fmt: skip
    assert changed.status_code == 200, changed.text
    await _run_mapping(client, admin, tick_ctx, worker_settings)
    assert crm_order(sandbox, made.crm_id)["ordernumber"] == "ORD-30"  # open: not pushed yet

    assert (await client.post(f"{path}/release", headers=admin)).status_code == 200
    await _run_mapping(client, admin, tick_ctx, worker_settings)
    pushed = crm_order(sandbox, made.crm_id)
    assert pushed["ordernumber"] == order.no  # legacy: "No." -> ordernumber
    assert pushed["requestdeliveryby"][:10] == "2026-12-24"
    assert (pushed["shipto_city"], pushed["billto_name"]) == ("Malmo", "Cycle shop")
    assert (pushed["statecode"], pushed["statuscode"]) == (1, 3)  # still submitted
    assert pushed["_transactioncurrencyid_value"] == str(sandbox.state.identity.base_currency_id)
    job = await _last_job(sessionmaker, "SALESORDER-ORDER", Direction.to_crm)
    assert (job.modified, job.failed) == (1, 0)
    assert {r.mapping_name for r in await job_rows(sessionmaker, "SOLINE-ORDERDETAIL")} == set()


async def test_bidirectional_mode_carries_order_and_line_edits_both_ways(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    bidirectional: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    made, order = await _created_order(
        sessionmaker, crm, world, tick_ctx, worker_settings, "ORD-40"
    )
    path = f"/api/v1/sales-orders/{order.no}"
    # ERP -> CRM: the order and its first line changed, then released.
    changed = await client.patch(
        path, headers=admin, json={"requested_delivery_date": "2026-12-24"}
    )
    assert changed.status_code == 200, changed.text
    line = await client.patch(f"{path}/lines/10000", headers=admin, json={"quantity": 5})
    assert line.status_code == 200, line.text
    assert (await client.post(f"{path}/release", headers=admin)).status_code == 200
    await _run_mapping(client, admin, tick_ctx, worker_settings)

    pushed = crm_order(sandbox, made.crm_id)
    assert pushed["requestdeliveryby"][:10] == "2026-12-24"
    assert pushed["bcbi_businesscentralordernumber"] == order.no
    assert pushed["ordernumber"] == "ORD-40"  # bidirectional: "your reference" <- ordernumber
    assert pushed["_customerid_value"] == str(world.account_c1)
    assert (pushed["statecode"], pushed["statuscode"]) == (1, 3)
    first, write_in, service = (
        sandbox.state.get("salesorderdetails", str(i)) for i in made.line_ids
    )
    assert first is not None and write_in is not None and service is not None
    assert (first["quantity"], first["bcbi_businesscentrallinenumber"]) == (5, 10000)
    assert first["_productid_value"] == str(world.product_1000)
    assert first["extendedamount"] == 52.5
    assert write_in.get("_productid_value") is None and write_in["isproductoverridden"] is True
    assert service["_productid_value"] == str(world.product_r1)
    line_job = await _last_job(sessionmaker, "SOLINE-ORDERDETAIL", Direction.to_crm)
    assert (line_job.modified, line_job.failed) == (1, 0)

    # CRM -> ERP: a salesperson changes the order and the write-in line in the CRM. A
    # submitted order is read-only there, so they reopen it with the change, change the
    # line (the CRM computes its amounts) and submit the order again.
    await f.crm_user_edit(sandbox, "salesorders", made.crm_id, statecode=0, statuscode=1,
                          requestdeliveryby="2027-01-15")  # fmt: skip
    await f.crm_user_edit(sandbox, "salesorderdetails", made.line_ids[1], quantity=3)
    await f.crm_user_edit(sandbox, "salesorders", made.crm_id, statecode=1, statuscode=3)
    assert sandbox.state.get("salesorderdetails", str(made.line_ids[1]))["extendedamount"] == 75  # type: ignore[index]
    await _run_mapping(client, admin, tick_ctx, worker_settings)
    (updated,) = await orders(sessionmaker)
    assert updated.requested_delivery_date == dt.date(2027, 1, 15)
    lines = await lines_of(sessionmaker, updated)
    assert [(x.no, x.quantity) for x in lines] == [("1000", 5), (WRITE_IN, 3), ("R1", 1)]
    header_job = await _last_job(sessionmaker, "SALESORDER-ORDER", Direction.from_crm)
    line_job = await _last_job(sessionmaker, "SOLINE-ORDERDETAIL", Direction.from_crm)
    assert (header_job.modified, header_job.failed) == (1, 0)
    assert (line_job.modified, line_job.failed) == (1, 0)
    async with sessionmaker() as session:  # every sync job of the run finished
        statement = select(IntegrationSynchJob).where(
            col(IntegrationSynchJob.finished_at).is_(None)
        )
        assert list(await session.exec(statement)) == []
