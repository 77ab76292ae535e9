"""The sync engine on the job queue: REST actions, real arq workers and Redis, the sandbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    DataverseEntityChange,
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries, full_sync, make_due
from tests.sync import factories as f
from workers import tasks

MASTER_DATA = (
    "SALESPEOPLE", "CURRENCY", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
    "ITEM-PRODUCT", "RESOURCE-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODPRICE",
)  # fmt: skip


async def _sample_company(session: AsyncSession) -> None:
    await f.add(session, f.unit("PCS"), f.unit("HOUR"), erp.CustomerPriceGroup(code="RETAIL"),
                erp.Currency(code="EUR", description="Euro", symbol="E"))  # fmt: skip
    await f.add(session, f.item("1000"), f.item("1001"), f.resource("R1"),
                erp.Customer(no="C1", name="Cycle shop"))  # fmt: skip
    await f.add(session, erp.Contact(no="CT1", first_name="Ann", surname="Lee", company_no="C1",
                                     email="ann@cycle.example"))  # fmt: skip
    await f.add(session, erp.SalesPrice(
        item_no="1000", sales_type=erp.SalesType.customer_price_group, sales_code="RETAIL",
        unit_price=Decimal("8.75"),
    ))  # fmt: skip
    await session.commit()


async def _jobs(sessionmaker: SessionMaker, mapping: str) -> list[IntegrationSynchJob]:
    async with sessionmaker() as session:
        statement = (
            select(IntegrationSynchJob)
            .where(IntegrationSynchJob.mapping_name == mapping)
            .order_by(col(IntegrationSynchJob.started_at), col(IntegrationSynchJob.id))
        )
        return list(await session.exec(statement))


async def _recurring(sessionmaker: SessionMaker, mapping: str) -> JobQueueEntry:
    (entry,) = await entries(sessionmaker, mapping_name=mapping, recurring=True)
    return entry


async def _ran(sessionmaker: SessionMaker, ctx: dict[str, Any], settings: Settings) -> set[str]:
    """Drive the queue; the mappings whose entries ran."""
    before = {e.id: e.run_count for e in await entries(sessionmaker)}
    await drive(ctx, settings)
    after = await entries(sessionmaker)
    return {e.mapping_name for e in after if e.run_count != before.get(e.id)}


async def test_full_sync_then_nothing_changed_puts_the_entries_on_hold(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    reader: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await _sample_company(session)
    forbidden = await client.post("/api/v1/sync/full", headers=reader)
    assert forbidden.status_code == 403
    response = await client.post("/api/v1/sync/full", headers=admin)
    assert response.status_code == 202, response.text
    queued = {e["mapping_name"]: e for e in response.json()["entries"]}
    assert set(MASTER_DATA) <= set(queued)
    assert queued["UNIT OF MEASURE"]["id"] in queued["ITEM-PRODUCT"]["parameters"]["after"]
    held = await entries(sessionmaker, kind=JobKind.mapping_sync, recurring=True)
    assert {e.status for e in held} == {JobStatus.on_hold}  # during the full sync
    again = await client.post("/api/v1/sync/full", headers=admin)
    assert again.status_code == 409

    assert await drive(tick_ctx, worker_settings) >= len(queued)
    full = await entries(sessionmaker, kind=JobKind.full_sync)
    assert {(e.mapping_name, e.status) for e in full} == {(n, JobStatus.finished) for n in queued}
    state = sandbox.state
    assert state.count("uomschedules") == 2
    assert {p["productnumber"] for p in state.rows("products")} == {"1000", "1001", "R1"}
    assert [a["name"] for a in state.rows("accounts")] == ["Cycle shop"]
    assert "EUR" in {c["isocurrencycode"] for c in state.rows("transactioncurrencies")}
    assert [c["lastname"] for c in state.rows("contacts")] == ["Lee"]
    retail = next(p for p in state.rows("pricelevels") if p["name"] == "RETAIL")
    assert any(i["_pricelevelid_value"] == retail["pricelevelid"]
               for i in state.rows("productpricelevels"))  # fmt: skip
    items = (await _jobs(sessionmaker, "ITEM-PRODUCT"))[0]
    assert (items.inserted, items.total_records) == (2, 2)

    # The recurring entries ran once more after the full sync: nothing changed anywhere.
    recurring = await entries(sessionmaker, kind=JobKind.mapping_sync, recurring=True)
    assert {e.status for e in recurring} == {JobStatus.on_hold_with_inactivity_timeout}
    for entry in recurring:
        assert entry.earliest_start_at is not None and entry.last_finished_at is not None
        rest = as_utc(entry.earliest_start_at) - as_utc(entry.last_finished_at)
        assert rest == timedelta(minutes=entry.inactivity_timeout_minutes)
    idle = [
        j
        for j in await _jobs(sessionmaker, "ITEM-PRODUCT")
        if j.job_queue_entry_id != items.job_queue_entry_id
    ]
    assert idle and all(j.inserted + j.modified + j.failed == 0 for j in idle)

    progress = await client.get("/api/v1/sync/progress", headers=reader)
    assert progress.status_code == 200 and progress.json() == {"items": []}  # all ended
    listed = await client.get("/api/v1/sync-jobs?mapping_name=ITEM-PRODUCT", headers=reader)
    assert listed.status_code == 200 and len(listed.json()["items"]) == len(
        await _jobs(sessionmaker, "ITEM-PRODUCT")
    )


async def _items_on_the_queue(
    session: AsyncSession, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], settings: Settings,
) -> None:  # fmt: skip
    """Units and items synchronized in full, the item entry resting afterwards."""
    await f.add(session, f.unit("PCS"))
    await f.add(session, f.item("1000"), f.item("1001"))
    await session.commit()
    await full_sync(client, admin, "UNIT OF MEASURE")
    await drive(tick_ctx, settings)
    await full_sync(client, admin, "ITEM-PRODUCT")
    await drive(tick_ctx, settings)


async def test_edits_flow_each_way_wake_the_entry_and_are_not_echoed(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await _items_on_the_queue(session, client, admin, tick_ctx, worker_settings)
    resting = await _recurring(sessionmaker, "ITEM-PRODUCT")
    assert resting.status == JobStatus.on_hold_with_inactivity_timeout
    assert await tasks.tick(tick_ctx) == 0  # nothing changed: nothing wakes it

    # ERP -> CRM: a user's edit of an item wakes the resting entry.
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    item.unit_price = Decimal("99.25")
    await session.commit()
    assert await _ran(sessionmaker, tick_ctx, worker_settings) == {"ITEM-PRODUCT"}
    product = next(p for p in sandbox.state.rows("products") if p["productnumber"] == "1000")
    assert product["price"] == 99.25
    woken = (await _jobs(sessionmaker, "ITEM-PRODUCT"))[-2:]
    counts = {j.direction: (j.modified, j.inserted, j.failed) for j in woken}
    # The product the integration user just wrote is not read back.
    assert counts == {Direction.to_crm: (1, 0, 0), Direction.from_crm: (0, 0, 0)}
    ran = await _recurring(sessionmaker, "ITEM-PRODUCT")
    assert ran.status == JobStatus.ready and ran.run_count == resting.run_count + 1

    # CRM -> ERP: a person's edit in the CRM, announced by a dataverse_entity_change row.
    await f.crm_user_edit(sandbox, "products", product["productid"], name="Renamed in CRM")
    session.add(DataverseEntityChange(entity_name="product", received_at=utc_now()))
    await session.commit()
    # Both product mappings read CRM products: both wake.
    woke = await _ran(sessionmaker, tick_ctx, worker_settings)
    assert woke == {"ITEM-PRODUCT", "RESOURCE-PRODUCT"}
    session.expire_all()
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    assert item.description == "Renamed in CRM"
    back = (await _jobs(sessionmaker, "ITEM-PRODUCT"))[-2:]
    assert {j.direction: j.modified for j in back} == {Direction.to_crm: 0, Direction.from_crm: 1}
    change = (await session.exec(select(DataverseEntityChange))).one()
    assert change.processed_at is not None

    # The sync's own ERP write neither wakes the entry nor goes back to the CRM.
    assert await tasks.tick(tick_ctx) == 0
    await make_due(sessionmaker, "ITEM-PRODUCT")
    assert await _ran(sessionmaker, tick_ctx, worker_settings) == {"ITEM-PRODUCT"}
    idle = (await _jobs(sessionmaker, "ITEM-PRODUCT"))[-2:]
    assert all(j.inserted + j.modified + j.failed == 0 for j in idle)
    rests = await _recurring(sessionmaker, "ITEM-PRODUCT")
    assert rests.status == JobStatus.on_hold_with_inactivity_timeout


async def test_same_error_twice_is_skipped_until_restored(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    reader: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await f.add(session, f.unit("BOX"))
    await f.add(session, f.item("2000", base_unit_of_measure="BOX"))
    await session.commit()
    await full_sync(client, admin, "ITEM-PRODUCT")
    await drive(tick_ctx, worker_settings)  # the full run, then the recurring entry once
    first, second = [j for j in await _jobs(sessionmaker, "ITEM-PRODUCT")
                     if j.direction == Direction.to_crm]  # fmt: skip
    assert (first.failed, second.failed) == (1, 1)  # failed records are retried next run
    errors = await client.get(f"/api/v1/sync-jobs/{first.system_id}/errors", headers=reader)
    assert "unit of measure BOX is not coupled" in errors.json()["items"][0]["message"]
    session.expire_all()
    coupling = (await session.exec(select(IntegrationRecord))).one()
    assert coupling.skipped  # the same error twice
    entry = await _recurring(sessionmaker, "ITEM-PRODUCT")
    assert entry.status == JobStatus.ready  # a failed record is activity: no inactivity hold

    await make_due(sessionmaker, "ITEM-PRODUCT")
    await drive(tick_ctx, worker_settings)
    skipped = (await _jobs(sessionmaker, "ITEM-PRODUCT"))[-2:]
    assert sum(j.failed for j in skipped) == 0

    restored = await client.post("/api/v1/couplings/restore-skipped", headers=admin,
                                 json={"mapping_name": "ITEM-PRODUCT"})  # fmt: skip
    assert restored.status_code == 200 and restored.json()["count"] == 1
    await full_sync(client, admin, "UNIT OF MEASURE")
    await drive(tick_ctx, worker_settings)
    modified = await client.post("/api/v1/sync/modified", headers=admin)
    assert modified.status_code == 202
    order = [e["mapping_name"] for e in modified.json()["entries"]]
    assert order.index("UNIT OF MEASURE") < order.index("ITEM-PRODUCT")
    await drive(tick_ctx, worker_settings)
    assert [p["productnumber"] for p in sandbox.state.rows("products")] == ["2000"]
    assert sandbox.state.rows("products")[0]["productid"] == str(coupling.crm_id)

    deleted = await client.post("/api/v1/sync/jobs/delete-old", headers=admin,
                                json={"older_than_days": 0})  # fmt: skip
    assert deleted.status_code == 200 and deleted.json()["deleted"] >= 4
