"""A failure halfway through a multi-row change leaves nothing of it behind.

The failure is real, not mocked: a database trigger refuses one row of the change (the
third line of a sales order; the watermark write of a sync page), so the statement fails
inside our transaction as a lost connection or a constraint would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select, update

from app.catalog import run_mapping
from app.clock import utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationTableMapping,
)
from app.sync.sync_pass import RunOptions
from tests.erp.conftest import api  # noqa: F401 - a fixture used here
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import connected  # noqa: F401 - a fixture used here
from tests.reliability import company, consistency
from tests.reliability.conftest import assert_consistent, set_faults
from tests.sync.conftest import sandbox_client

INJECTED = "injected failure"


@asynccontextmanager
async def refusing(engine: AsyncEngine, table: str, event: str, when: str) -> AsyncIterator[None]:
    """A trigger that fails the statement touching ``table`` when ``when`` holds."""
    if engine.dialect.name == "postgresql":
        create = [
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{INJECTED}' USING ERRCODE = 'check_violation'; END $$ "
            "LANGUAGE plpgsql",
            f"CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} FOR EACH ROW "
            f"WHEN ({when}) EXECUTE FUNCTION refuse_{table}()",
        ]
        drop = [f"DROP TRIGGER refuse_{table} ON {table}", f"DROP FUNCTION refuse_{table}()"]
    else:
        create = [f"CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} FOR EACH ROW "
                  f"WHEN {when} BEGIN SELECT RAISE(ABORT, '{INJECTED}'); END"]  # fmt: skip
        drop = [f"DROP TRIGGER refuse_{table}"]
    async with engine.begin() as connection:
        for statement in create:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))


async def _count(sessionmaker: SessionMaker, model: Any) -> int:
    async with sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


ORDER = {
    "sell_to_customer_no": "C1",
    "lines": [
        {"no": "1000", "quantity": "2"},
        {"no": "1001", "quantity": "1"},
        {"type": "resource", "no": "R1", "quantity": "3"},
    ],
}


async def test_an_order_whose_third_line_fails_leaves_no_header_lines_or_number(
    api: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    engine: AsyncEngine,
    sessionmaker: SessionMaker,
) -> None:
    async with refusing(engine, "sales_line", "INSERT", "NEW.no = 'R1'"):
        response = await api.post("/api/v1/sales-orders", json=ORDER)
    assert response.status_code >= 400, response.text  # 409 or 500, per how the DB fails
    assert INJECTED not in response.text  # no database detail leaks out
    assert await _count(sessionmaker, erp.SalesHeader) == 0
    assert await _count(sessionmaker, erp.SalesLine) == 0
    created = await api.post("/api/v1/sales-orders", json=ORDER)
    assert created.status_code == 201, created.text
    assert created.json()["no"] == "SO000001"  # the number taken by the failed try came back
    assert await _count(sessionmaker, erp.SalesLine) == 3


async def _jobs(sessionmaker: SessionMaker) -> list[IntegrationSynchJob]:
    async with sessionmaker() as session:
        statement = select(IntegrationSynchJob).where(
            col(IntegrationSynchJob.mapping_name) == "ITEM-PRODUCT"
        )
        return list(await session.exec(statement))


async def _item_state(sessionmaker: SessionMaker) -> tuple[Any, list[IntegrationRecord]]:
    async with sessionmaker() as session:
        mapping = (
            await session.exec(
                select(IntegrationTableMapping).where(
                    col(IntegrationTableMapping.name) == "ITEM-PRODUCT"
                )
            )
        ).one()
        couplings = list(
            await session.exec(
                select(IntegrationRecord).where(col(IntegrationRecord.table_name) == "item")
            )
        )
    return mapping.erp_modified_watermark, couplings


async def test_a_sync_page_whose_commit_fails_leaves_nothing_half_recorded(
    engine: AsyncEngine, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup,  # noqa: F811 - the fixture imported above
) -> None:  # fmt: skip
    await company.seed(sessionmaker, company.Size(items=120, customers=0, price_every=1000))
    baseline = consistency.baseline_of(sandbox)
    options = RunOptions(is_full=True, page_size=50, batch_size=20)
    crm: DataverseClient
    async with sandbox_client(sandbox) as crm:
        await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=options)
        # The second page's commit (couplings, counters, watermark together) fails on its
        # counters, after its CRM rows were written and while the third page is planned.
        when = "NEW.mapping_name = 'ITEM-PRODUCT' AND NEW.inserted > 60"
        failure = ""
        async with refusing(engine, "integration_synch_job", "UPDATE", when):
            try:
                await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)
            except Exception as exc:  # noqa: BLE001 - any failure will do
                failure = str(exc)
        assert INJECTED in failure, "the injected failure did not stop the run"
        assert sandbox.state.count("products") > 50  # the CRM got the second page's rows
        # Only the first page is recorded: its couplings, counters and watermark; of the
        # second, nothing (its couplings stay pending), and the watermark is not past it.
        _, couplings = await _item_state(sessionmaker)
        confirmed = [c for c in couplings if c.last_synch_crm_modified_on is not None]
        assert len(confirmed) == 50
        # New records' couplings are committed as failed before the send: retried first.
        assert {c.last_synch_crm_result for c in couplings} - {None} <= {"success", "failure"}
        (job,) = await _jobs(sessionmaker)
        assert (job.inserted, job.finished_at is not None) == (50, True)
        snap = await consistency.snapshot(sessionmaker, sandbox)
        problems = consistency.problems_at_any_instant(snap, baseline=baseline)
        assert_consistent([p for p in problems if p.startswith(("products", "item", "ITEM"))])

        await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)
    snap = await consistency.snapshot(sessionmaker, sandbox)
    problems = [p for p in consistency.problems_at_rest(snap, baseline=baseline)
                if p.startswith(("products", "item", "ITEM-PRODUCT"))]  # fmt: skip
    assert_consistent(problems, "after the redo")


async def test_a_run_cut_short_by_its_timeout_does_not_move_the_watermark_past_unsent_rows(
    sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup,  # noqa: F811 - the fixture imported above
) -> None:  # fmt: skip
    await company.seed(sessionmaker, company.Size(items=120, customers=0, price_every=1000))
    baseline = consistency.baseline_of(sandbox)
    options = RunOptions(is_full=False, page_size=20, batch_size=10, concurrency=1)
    async with sandbox_client(sandbox) as crm:
        full = RunOptions(is_full=True, page_size=20, batch_size=10)
        for name in ("UNIT OF MEASURE", "ITEM-PRODUCT"):
            await run_mapping(sessionmaker, crm, mapping_name=name, options=full)
        await asyncio.sleep(1.1)  # CRM times are whole seconds: the edit comes a second later
        async with session_scope(sessionmaker) as session:
            await session.exec(update(erp.Item).values(unit_price=Decimal(999),
                                                        modified_at=utc_now()))  # fmt: skip
        await set_faults(sandbox, latency_ms=150)  # every page takes a while to send
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):  # as jobs.run_entry's timeout would cut it
                await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)
        await set_faults(sandbox, latency_ms=0)
        snap = await consistency.snapshot(sessionmaker, sandbox)
        problems = consistency.problems_at_any_instant(snap, baseline=baseline)
        assert_consistent([p for p in problems if p.startswith("ITEM")], "after the timeout")
        await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)
    prices = {p["productnumber"]: p["price"] for p in sandbox.state.rows("products")}
    assert set(prices.values()) == {999}  # the next (incremental) run sent the rest
