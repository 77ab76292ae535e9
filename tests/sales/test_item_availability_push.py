"""The Item Availability job end to end: item ledger changes -> product ``quantityonhand``.

Real arq workers, the REST run-now action and ledger API, the sandbox over HTTP. Only
coupled products of items whose ledger changed are written; negative stock shows as 0;
a second run writes nothing. The job follows the ledger with its own
cursor: no movement is skipped, whatever moved the ITEM-PRODUCT watermark (issue 19 §2).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models import erp
from app.models.integration import (
    IntegrationSynchJob,
    IntegrationTableMapping,
    JobKind,
    JobStatus,
)
from app.sales import item_availability
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive
from tests.sales.legacy_orders import legacy, run_now
from tests.sales.world import World
from tests.sync import factories as f

__all__ = ["legacy"]  # the fixture, imported for these tests


async def _adjust(client: httpx.AsyncClient, admin: dict[str, str], item: str, qty: int) -> None:
    body = {
        "item_no": item, "posting_date": "2026-11-25", "quantity": qty,
        "entry_type": "positive_adjmt" if qty > 0 else "negative_adjmt",
    }  # fmt: skip
    response = await client.post("/api/v1/item-ledger-entries", json=body, headers=admin)
    assert response.status_code == 201, response.text


def _product(sandbox: RunningSandbox, product_id: Any) -> dict[str, Any]:
    row = sandbox.state.get("products", str(product_id))
    assert row is not None
    return row


async def test_ledger_changes_repush_quantity_on_hand_of_coupled_products(
    client: httpx.AsyncClient, admin: dict[str, str], sessionmaker: SessionMaker,
    world: World, legacy: Any, sandbox: RunningSandbox, tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    async def run() -> Any:
        return await run_now(client, admin, JobKind.item_availability, sessionmaker, tick_ctx,
                             worker_settings)  # fmt: skip

    uncoupled_before = _product(sandbox, world.product_1001)["versionnumber"]
    await _adjust(client, admin, "1000", 7)
    await _adjust(client, admin, "1001", 5)  # item 1001 is not coupled
    await run()
    assert _product(sandbox, world.product_1000)["quantityonhand"] == 7
    assert _product(sandbox, world.product_1000)["_modifiedby_value"] == sandbox.state.user_id
    assert _product(sandbox, world.product_1001)["versionnumber"] == uncoupled_before

    await _adjust(client, admin, "1000", -10)
    await run()
    assert _product(sandbox, world.product_1000)["quantityonhand"] == 0  # -3 on hand shows as 0

    version = _product(sandbox, world.product_1000)["versionnumber"]
    entry = await run()  # nothing changed since: nothing written
    assert _product(sandbox, world.product_1000)["versionnumber"] == version
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout
    async with sessionmaker() as session:
        logs = list(await session.exec(select(IntegrationSynchJob).where(
            IntegrationSynchJob.mapping_name == "ITEM AVAILABILITY"
        ).order_by(col(IntegrationSynchJob.id))))  # fmt: skip
    assert [(job.modified, job.failed) for job in logs] == [(1, 0), (1, 0), (0, 0)]


async def _item_product_run(
    client: httpx.AsyncClient, admin: dict[str, str], ctx: dict[str, Any], settings: Settings
) -> None:
    """An ITEM-PRODUCT run queued over REST, on a real worker."""
    response = await client.post("/api/v1/sync/mappings/ITEM-PRODUCT/run", headers=admin)
    assert response.status_code == 202, response.text
    await drive(ctx, settings)


async def _ledger_entry(sessionmaker: SessionMaker, item: str) -> erp.ItemLedgerEntry:
    async with sessionmaker() as session:
        statement = select(erp.ItemLedgerEntry).where(erp.ItemLedgerEntry.item_no == item)
        return (await session.exec(statement.order_by(col(erp.ItemLedgerEntry.id).desc()))).first()  # type: ignore[return-value]


async def _backdated(sessionmaker: SessionMaker, entry: erp.ItemLedgerEntry) -> erp.ItemLedgerEntry:
    """The movement as made 74 minutes ago (the issue's 14:34, before the item edits)."""
    async with session_scope(sessionmaker) as session:
        at = utc_now() - timedelta(minutes=74)
        same = col(erp.ItemLedgerEntry.id) == entry.id
        await session.exec(
            update(erp.ItemLedgerEntry).where(same).values(created_at=at, modified_at=at)
        )
    return await _ledger_entry(sessionmaker, entry.item_no)


async def test_a_movement_older_than_later_item_edits_is_pushed_and_none_is_skipped(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sessionmaker: SessionMaker, world: World, legacy: Any, sandbox: RunningSandbox,
    crm: DataverseClient, tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    async def run() -> Any:
        return await run_now(client, admin, JobKind.item_availability, sessionmaker, tick_ctx,
                             worker_settings)  # fmt: skip

    item_1001 = (await session.exec(select(erp.Item).where(erp.Item.no == "1001"))).one()
    await f.add(session, f.coupling("item", item_1001.system_id, "product", world.product_1001))
    await session.commit()
    await _item_product_run(client, admin, tick_ctx, worker_settings)  # items in the CRM
    # Item 1000: +10 at 14:34. Then an item edit of 1001, synchronized by ITEM-PRODUCT,
    # moves that mapping's ERP watermark past the movement.
    await _adjust(client, admin, "1000", 10)
    movement = await _backdated(sessionmaker, await _ledger_entry(sessionmaker, "1000"))
    response = await client.patch("/api/v1/items/1001", headers=admin,
                                  json={"description": "Touring frame, large"})  # fmt: skip
    assert response.status_code == 200, response.text
    await _item_product_run(client, admin, tick_ctx, worker_settings)
    async with sessionmaker() as fresh:
        mapping = (await fresh.exec(select(IntegrationTableMapping).where(
            IntegrationTableMapping.name == "ITEM-PRODUCT"))).one()  # fmt: skip
    assert mapping.erp_modified_watermark is not None
    assert as_utc(mapping.erp_modified_watermark) > as_utc(movement.modified_at)
    assert _product(sandbox, world.product_1000)["quantityonhand"] == 0  # still

    # The first run pushes every coupled item's current value, the old movement included.
    await run()
    assert _product(sandbox, world.product_1000)["quantityonhand"] == 10
    assert _product(sandbox, world.product_1001)["quantityonhand"] == 0
    async with sessionmaker() as fresh:
        cursor = await item_availability.read_cursor(fresh)
    assert cursor == movement.entry_no

    # A movement below the cursor on an item coupled only now is not skipped either: the
    # new coupling has no confirmed quantity, so the next run takes it.
    item_1002 = f.item("1002")
    await f.add(session, item_1002)
    await session.commit()
    await _adjust(client, admin, "1002", 4)
    await run()  # 1002 is not coupled yet: the cursor passes its movement
    product_1002 = await crm.create("products", {"name": "Item 1002", "productnumber": "1002"})
    await f.add(session, f.coupling("item", item_1002.system_id, "product", product_1002))
    await session.commit()
    await _adjust(client, admin, "1000", 5)
    await run()
    assert _product(sandbox, product_1002)["quantityonhand"] == 4
    assert _product(sandbox, world.product_1000)["quantityonhand"] == 15
    versions = {
        p: _product(sandbox, p)["versionnumber"] for p in (product_1002, world.product_1000)
    }
    await run()  # nothing moved: nothing read beyond the cursor, nothing written
    assert {p: _product(sandbox, p)["versionnumber"] for p in versions} == versions
