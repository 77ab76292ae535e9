"""The legacy sales order integration for the order status, notes and availability tests.

An ERP order made through the REST API and coupled to a submitted CRM salesorder made
over the Web API (as the auto-create job leaves them), the job entries run through the
REST ``run-now`` action and real workers, and CRM rows read from the sandbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection.defaults import sync_other_jobs
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models.integration import ConnectionSetup, JobKind, JobQueueEntry
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries
from tests.sales.world import Line, World, crm_document, submit
from tests.sync import factories as f


@pytest.fixture
async def legacy(session: AsyncSession, sales_setup: ConnectionSetup) -> ConnectionSetup:
    """Legacy order integration and item availability on: their job entries exist."""
    sales_setup.sales_order_integration_enabled = True
    sales_setup.item_availability_enabled = True
    session.add(sales_setup)
    await sync_other_jobs(session, setup=sales_setup)
    await session.commit()
    return sales_setup


@dataclass(frozen=True)
class CoupledOrder:
    no: str
    system_id: uuid.UUID
    crm_id: uuid.UUID


async def coupled_order(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    crm: DataverseClient,
    world: World,
    *,
    number: str,
    crm_header: dict[str, Any] | None = None,
) -> CoupledOrder:
    made = await crm_document(
        crm, "salesorder", number=number, account=world.account_c1,
        lines=[Line(2, 10.5, world.product_1000)], header=crm_header,
    )  # fmt: skip
    await submit(crm, made.crm_id)
    body = {"sell_to_customer_no": "C1", "your_reference": number,
            "lines": [{"no": "1000", "quantity": 2}]}  # fmt: skip
    response = await client.post("/api/v1/sales-orders", json=body, headers=admin)
    assert response.status_code == 201, response.text
    order = response.json()
    system_id = uuid.UUID(order["system_id"])
    await f.add(session, f.coupling("sales_header", system_id, "salesorder", made.crm_id))
    await session.commit()
    return CoupledOrder(order["no"], system_id, made.crm_id)


async def run_now(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    kind: JobKind,
    sessionmaker: SessionMaker,
    ctx: dict[str, Any],
    settings: Settings,
) -> JobQueueEntry:
    """The REST run-now action on the kind's entry, then real workers until the queue settles."""
    (entry,) = await entries(sessionmaker, kind=kind)
    response = await client.post(f"/api/v1/job-queue-entries/{entry.id}/run-now", headers=admin)
    assert response.status_code == 202, response.text
    await drive(ctx, settings)
    response = await client.get(f"/api/v1/job-queue-entries/{entry.id}", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["last_error"] == ""
    (after,) = await entries(sessionmaker, kind=kind)
    return after


def crm_rows(sandbox: RunningSandbox, entity_set: str, **where: Any) -> list[dict[str, Any]]:
    return [
        row
        for row in sandbox.state.rows(entity_set)
        if all(row.get(name) == value for name, value in where.items())
    ]
