"""The Item Availability job end to end: item ledger changes -> product ``quantityonhand``.

Real arq workers, the REST run-now action and ledger API, the sandbox over HTTP. Only
coupled products of items whose ledger changed are written; negative stock shows as 0
(spec/sync.md §1); a second run writes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import col, select

from app.db import SessionMaker
from app.models.integration import IntegrationSynchJob, JobKind, JobStatus
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sales.legacy_orders import legacy, run_now
from tests.sales.world import World

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
