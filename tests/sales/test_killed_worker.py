"""A worker SIGKILLed after it created the ERP order and before the CRM order was marked:
the next run finds the coupling, creates nothing and only marks the CRM order."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import update
from sqlmodel import col

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models.integration import JobKind, JobQueueEntry, JobStatus
from app.sales.sales_orders import JOB_NAME
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.conftest import drive, make_due
from tests.sales.test_auto_create_orders import crm_order, job_rows, orders
from tests.sales.world import Line, World, crm_document, submit
from tests.workers.conftest import SALESBRIDGE_WORKER, WorkerProcess, wait_for


async def _faults(sandbox: RunningSandbox, **values: Any) -> None:
    async with httpx.AsyncClient() as control:
        response = await control.put(f"{sandbox.control_url}/faults", json=values)
        response.raise_for_status()


async def test_worker_killed_between_erp_order_and_crm_mark_makes_no_duplicate(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    tick_ctx: dict[str, Any], worker_settings: Settings, arq_pool: ArqRedis,
    start_worker: Callable[[list[str]], WorkerProcess],
) -> None:  # fmt: skip
    made = await crm_document(
        crm, "salesorder", number="ORD-9", account=world.account_c1,
        lines=[Line(2, 10.5, world.product_1000), Line(1, 80, world.product_r1)],
    )  # fmt: skip
    await submit(crm, made.crm_id)
    await _faults(sandbox, latency_ms=300)  # every CRM request takes a while: room to kill
    worker = start_worker(SALESBRIDGE_WORKER)
    await worker.wait_started("worker_started")
    await make_due(JobKind.auto_create_sales_orders, sessionmaker)

    async def erp_order_made() -> bool:
        return bool(await orders(sessionmaker))

    await wait_for(erp_order_made, timeout=60, what="the ERP order", details=lambda: worker.output)
    # From now on the CRM refuses everything: the mark cannot land, whatever is in flight.
    await _faults(sandbox, error_rate=1.0, error_statuses=[500])
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)
    await asyncio.sleep(0.5)  # the sandbox ends what the dead worker had sent
    await _faults(sandbox, error_rate=0.0, latency_ms=0)
    (order,) = await orders(sessionmaker)
    assert crm_order(sandbox, made.crm_id).get("lastbackofficesubmit") is None

    # The dead worker's arq delivery would block Redis until arq's own timeout: drop it
    # (the database is the truth; lost triggers are re-made by the tick).
    await arq_pool.flushdb()
    async with session_scope(sessionmaker) as session:  # as if the claim had timed out
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.status) == JobStatus.in_process)
            .values(claimed_until=utc_now() - timedelta(seconds=1))
        )
    await drive(tick_ctx, worker_settings)
    assert [o.no for o in await orders(sessionmaker)] == [order.no]
    marked = crm_order(sandbox, made.crm_id)
    assert marked["bcbi_businesscentralordernumber"] == order.no
    assert (marked["statecode"], marked["statuscode"]) == (1, 3)
    assert marked["lastbackofficesubmit"] is not None
    last = (await job_rows(sessionmaker, JOB_NAME))[-1]
    assert (last.inserted, last.modified, last.failed) == (0, 1, 0)  # only the mark
