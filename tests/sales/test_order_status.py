"""The Sales Order Status job end to end: ERP actions -> crm_post_buffer -> CRM posts/states.

Real arq workers, the REST run-now action, the sandbox over HTTP. Every CRM row is checked
against what Dataverse documents (post source 1 Auto / type 7 Status, the regarding lookup
bound per target; salesorder Invoiced 4/100003, Active 0 / Pending 2).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models.integration import (
    CrmPostBuffer,
    CrmPostEvent,
    IntegrationRecord,
    IntegrationSynchJob,
    JobKind,
    JobStatus,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.legacy_orders import coupled_order, crm_rows, legacy, run_now
from tests.sales.world import World

__all__ = ["legacy"]  # the fixture, imported for these tests

RELEASED = "The order status has changed to Released."
SHIPPED = "A shipment has been created for the order."
INVOICED = "An invoice has been created for the order."


async def _buffer(sessionmaker: SessionMaker) -> list[CrmPostBuffer]:
    async with sessionmaker() as session:
        statement = select(CrmPostBuffer).order_by(col(CrmPostBuffer.id))
        return list(await session.exec(statement))


def _posts(sandbox: RunningSandbox, regarding: Any) -> list[str]:
    rows = crm_rows(sandbox, "posts", _regardingobjectid_value=str(regarding))
    assert all((row["source"], row["type"]) == (1, 7) for row in rows)  # Auto post, Status
    return sorted(row["text"] for row in rows)


async def test_release_and_posting_reach_the_crm_once(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sessionmaker: SessionMaker, crm: DataverseClient, world: World, legacy: Any,
    sandbox: RunningSandbox, tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    order = await coupled_order(client, admin, session, crm, world, number="SO-100")
    released = await client.post(f"/api/v1/sales-orders/{order.no}/release", headers=admin)
    assert released.status_code == 200, released.text
    assert [(r.table_name, r.event) for r in await _buffer(sessionmaker)] == [
        ("sales_header", CrmPostEvent.released)
    ]  # written with the release, in its transaction

    entry = await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx,
                          worker_settings)  # fmt: skip
    assert _posts(sandbox, order.crm_id) == [RELEASED]
    assert all(row.processed_at is not None for row in await _buffer(sessionmaker))
    assert entry.status == JobStatus.ready  # it changed something: next run at the interval

    async with session_scope(sessionmaker) as writer:  # the CRM write landed, the commit did not
        await writer.exec(update(CrmPostBuffer).values(processed_at=None))
    replay = await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx,
                           worker_settings)  # fmt: skip
    assert _posts(sandbox, order.crm_id) == [RELEASED]  # the replay found its own post
    assert replay.status == JobStatus.on_hold_with_inactivity_timeout  # and changed nothing
    assert all(row.processed_at is not None for row in await _buffer(sessionmaker))

    posted = await client.post(f"/api/v1/sales-orders/{order.no}/post", headers=admin)
    assert posted.status_code == 200, posted.text
    assert posted.json()["is_order_deleted"] is True
    await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx, worker_settings)
    assert _posts(sandbox, order.crm_id) == sorted([RELEASED, SHIPPED, INVOICED])
    assert _posts(sandbox, world.account_c1) == ["Order 'SO-100' has been posted in Salesbridge."]
    crm_order = sandbox.state.get("salesorders", str(order.crm_id))
    assert crm_order is not None
    assert (crm_order["statecode"], crm_order["statuscode"]) == (4, 100003)  # Invoiced

    again = await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx,
                          worker_settings)  # fmt: skip
    assert sandbox.state.count("posts") == 4
    assert again.status == JobStatus.on_hold_with_inactivity_timeout  # nothing to do
    async with sessionmaker() as fresh:
        logs = list(await fresh.exec(select(IntegrationSynchJob).where(
            IntegrationSynchJob.mapping_name == "SALES ORDER STATUS"
        ).order_by(col(IntegrationSynchJob.id))))  # fmt: skip
    assert [(job.modified, job.unchanged) for job in logs] == [(1, 0), (0, 1), (4, 0), (0, 0)]


async def test_deleting_a_coupled_order_makes_the_crm_order_submittable_again(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sessionmaker: SessionMaker, crm: DataverseClient, world: World, legacy: Any,
    sandbox: RunningSandbox, tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    body = {"sell_to_customer_no": "C1", "lines": [{"no": "1000", "quantity": 1}]}
    uncoupled = (await client.post("/api/v1/sales-orders", json=body, headers=admin)).json()
    for action in ("release", "post"):
        await client.post(f"/api/v1/sales-orders/{uncoupled['no']}/{action}", headers=admin)
    assert await _buffer(sessionmaker) == []  # only coupled orders concern the CRM

    order = await coupled_order(client, admin, session, crm, world, number="SO-102",
                                crm_header={"lastbackofficesubmit": "2026-11-20"})  # fmt: skip
    submitted = sandbox.state.get("salesorders", str(order.crm_id))
    assert submitted is not None and submitted["statecode"] == 1
    assert submitted["lastbackofficesubmit"]  # created in the ERP: auto-create would skip it
    deleted = await client.delete(f"/api/v1/sales-orders/{order.no}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    async with sessionmaker() as fresh:  # uncoupled at once, as BC does
        statement = select(IntegrationRecord).where(IntegrationRecord.crm_id == order.crm_id)
        assert (await fresh.exec(statement)).first() is None
    assert [(r.table_name, r.record_id, r.event) for r in await _buffer(sessionmaker)] == [
        ("salesorder", order.crm_id, CrmPostEvent.order_deleted)
    ]

    await run_now(client, admin, JobKind.order_status, sessionmaker, tick_ctx, worker_settings)
    crm_order = sandbox.state.get("salesorders", str(order.crm_id))
    assert crm_order is not None
    assert (crm_order["statecode"], crm_order["statuscode"]) == (0, 2)  # Active / Pending
    assert crm_order["lastbackofficesubmit"] is None
    assert sandbox.state.count("posts") == 0
