"""The seed's product rules against the sandbox over HTTP."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models.integration import ConnectionSetup, Direction, IntegrationRecord
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

FULL = RunOptions(is_full=True, company_name="CRONUS")


async def test_units_items_and_resources_become_products(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await f.add(session, f.unit("PCS"), f.unit("HOUR"))
    await f.add(session, f.item("1000", unit_price=Decimal(-5)), f.item("1001"),
                f.resource("R1"))  # fmt: skip
    await f.add(session, f.stock("1000", -3), f.stock("1001", 4), f.stock("1001", 2))
    await session.commit()

    units = await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=FULL)
    assert units.counters[Direction.to_crm].inserted == 2
    items = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=FULL)
    assert items.counters[Direction.to_crm].inserted == 2, items.counters
    resources = await run_mapping(sessionmaker, crm, mapping_name="RESOURCE-PRODUCT", options=FULL)
    assert resources.counters[Direction.to_crm].inserted == 1

    state = sandbox.state
    schedules = state.rows("uomschedules")
    assert sorted(s["name"] for s in schedules) == ["HOUR", "PCS"]
    for schedule in schedules:  # one unit per unit group
        units_in = [
            u for u in state.rows("uoms") if u["_uomscheduleid_value"] == schedule["uomscheduleid"]
        ]
        assert [u["name"] for u in units_in] == [schedule["name"]]
    products = {p["productnumber"]: p for p in state.rows("products")}
    assert products["1000"]["producttypecode"] == 1
    assert products["R1"]["producttypecode"] == 3
    assert all(p["statecode"] == 0 for p in products.values())  # activated after create
    assert products["1000"]["price"] == 0  # negative price -> 0
    assert products["1000"]["quantityonhand"] == 0  # negative inventory -> 0
    assert products["1001"]["quantityonhand"] == 6
    price_lists = state.rows("pricelevels")
    assert [p["name"] for p in price_lists] == ["CRONUS Default Price List"]  # created once
    items_in_list = state.rows("productpricelevels")
    assert sorted(i["_productid_value"] for i in items_in_list) == sorted(
        p["productid"] for p in products.values()
    )
    couplings = (await session.exec(select(IntegrationRecord))).all()
    assert len(couplings) == 5
