"""Bulk upsert: one transaction, rows matched by natural key, every problem reported."""

from __future__ import annotations

import httpx
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp
from tests.erp.conftest import USER


async def _item_count(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(erp.Item))).one()


async def test_inserts_and_updates_by_natural_key(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    rows = [
        {"no": "1000", "description": "Renamed bicycle"},
        {"no": "B1", "description": "New", "base_unit_of_measure": "BOX", "unit_price": "5"},
        {"no": "B2"},
    ]
    response = await api.post("/api/v1/items/bulk-upsert", json=rows)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["updated"]) == (2, 1)
    assert [row["no"] for row in body["items"]] == ["1000", "B1", "B2"]
    assert body["items"][0]["unit_price"] == "100"  # untouched fields keep their value
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    assert item.description == "Renamed bicycle"
    assert item.modified_by == USER


async def test_all_bad_rows_are_reported_and_nothing_is_written(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await _item_count(session)
    rows = [
        {"no": "OK1"},
        {"no": "BAD1", "unit_price": "lots"},
        {"no": "BAD2", "base_unit_of_measure": "NOPE"},
        {"no": "OK1", "description": "twice"},
        {"no": "BAD3", "size": "XL"},
        {"description": "no key"},
        {"no": "1000", "description": "would update"},
    ]
    response = await api.post("/api/v1/items/bulk-upsert", json=rows)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "5 of 7 rows are invalid; nothing was written."
    by_index = {(e["index"], e["field"]) for e in body["errors"]}
    assert by_index == {
        (1, "unit_price"),
        (2, "base_unit_of_measure"),
        (3, "no"),
        (4, "size"),
        (5, "no"),
    }
    assert "Unit of measure 'NOPE' does not exist." in {e["message"] for e in body["errors"]}
    assert await _item_count(session) == before
    assert (await api.get("/api/v1/items/1000")).json()["description"] == "Bicycle 0"


async def test_rows_may_refer_to_rows_of_the_same_batch(api: httpx.AsyncClient) -> None:
    rows = [
        {"no": "K2", "type": "person", "company_no": "K1", "first_name": "Ann"},
        {"no": "K1", "type": "company", "surname": "Contoso"},
    ]
    response = await api.post("/api/v1/contacts/bulk-upsert", json=rows)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2


async def test_composite_keys_match_sales_prices(api: httpx.AsyncClient) -> None:
    row = {
        "item_no": "1000",
        "sales_type": "customer_price_group",
        "sales_code": "RETAIL",
        "unit_price": "80",
    }
    first = (await api.post("/api/v1/sales-prices/bulk-upsert", json=[row])).json()
    second = (
        await api.post("/api/v1/sales-prices/bulk-upsert", json=[{**row, "unit_price": "75"}])
    ).json()
    assert (first["inserted"], second["updated"]) == (1, 1)
    assert first["items"][0]["id"] == second["items"][0]["id"]
    listed = (await api.get("/api/v1/sales-prices")).json()
    assert listed["count"] == 1
    assert listed["items"][0]["unit_price"] == "75"


async def test_body_must_be_a_list_of_objects(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/items/bulk-upsert", json={"no": "X"})).status_code == 422
    assert (await api.post("/api/v1/items/bulk-upsert", json=[1, 2])).status_code == 422
    empty = await api.post("/api/v1/items/bulk-upsert", json=[])
    assert empty.json() == {"inserted": 0, "updated": 0, "items": []}
