"""Generic master data routes: create, get, update, delete, and bad input, for every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.models import erp
from tests.erp.conftest import USER

# path, create body, key in the URL (None: use the returned id), update body
CASES: list[tuple[str, dict[str, Any], str | None, dict[str, Any]]] = [
    ("currencies", {"code": "USD", "exchange_rate": "9.5"}, "USD", {"symbol": "$"}),
    ("units-of-measure", {"code": "KG"}, "KG", {"description": "Kilogram"}),
    ("locations", {"code": "WEST"}, "WEST", {"name": "West"}),
    (
        "items",
        {"no": "2000", "description": "Tyre", "base_unit_of_measure": "PCS", "unit_price": 12.5},
        "2000",
        {"unit_price": "13.75", "blocked": True},
    ),
    ("resources", {"no": "R9", "name": "Painter"}, "R9", {"capacity": "8"}),
    ("customer-price-groups", {"code": "VIP"}, "VIP", {"description": "Very important"}),
    (
        "sales-prices",
        {"item_no": "1000", "sales_type": "customer", "sales_code": "C1", "unit_price": "90"},
        None,
        {"unit_price": "85"},
    ),
    ("salespeople", {"code": "SP9", "name": "Ann"}, "SP9", {"email": "ann@example.com"}),
    (
        "customers",
        {"no": "C9", "name": "Contoso", "currency_code": "EUR"},
        "C9",
        {"city": "Bergen"},
    ),
    ("contacts", {"no": "K1", "type": "company", "surname": "Contoso"}, "K1", {"phone": "123"}),
    (
        "opportunities",
        {"no": "OP1", "description": "Fleet", "salesperson_code": "SP1"},
        "OP1",
        {"status": "won"},
    ),
    (
        "purchase-lines",
        {"document_no": "PO1", "line_no": 10000, "item_no": "1000", "outstanding_quantity": 5},
        None,
        {"outstanding_quantity": "3"},
    ),
]


@pytest.mark.parametrize(("path", "body", "key", "change"), CASES, ids=[c[0] for c in CASES])
async def test_crud_round_trip(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], key: str | None, change: dict[str, Any]
) -> None:
    created = await api.post(f"/api/v1/{path}", json=body)
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["modified_by"] == USER
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None
    url = f"/api/v1/{path}/{key or row['id']}"
    assert (await api.get(url)).json()["system_id"] == row["system_id"]
    if key is None:  # rows without a code are also found by system_id
        assert (await api.get(f"/api/v1/{path}/{row['system_id']}")).status_code == 200

    updated = await api.patch(url, json=change)
    assert updated.status_code == 200, updated.text
    for field, value in change.items():
        assert str(updated.json()[field]).rstrip("0").rstrip(".") == str(value).rstrip("0").rstrip(
            "."
        )
    assert updated.json()["created_at"] == row["created_at"]
    assert updated.json()["modified_at"] >= row["modified_at"]

    assert (await api.delete(url)).status_code == 204
    missing = await api.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFound"


async def test_audit_columns_are_set_by_the_data_layer(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await api.post("/api/v1/items", json={"no": "A1"})
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "A1"))).one()
    assert str(item.system_id) == response.json()["system_id"]
    assert item.modified_by == USER
    assert item.created_at <= item.modified_at
    assert (utc_now() - item.modified_at).total_seconds() < 60
    seeded = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    assert seeded.modified_by == "system"


async def test_duplicate_code_is_409_naming_the_code(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/items", json={"no": "1000"})
    assert response.status_code == 409
    assert "Item '1000' already exists" in response.json()["detail"]


async def test_duplicate_sales_price_key_is_409(api: httpx.AsyncClient) -> None:
    body = {"item_no": "1000", "sales_type": "all_customers", "unit_price": "10"}
    assert (await api.post("/api/v1/sales-prices", json=body)).status_code == 201
    again = await api.post("/api/v1/sales-prices", json={**body, "unit_price": "11"})
    assert again.status_code == 409
    assert "item_no=1000" in again.json()["detail"]


async def test_missing_reference_is_422_naming_field_and_code(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await api.post("/api/v1/items", json={"no": "X1", "base_unit_of_measure": "NOPE"})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [
        {"field": "base_unit_of_measure", "message": "Unit of measure 'NOPE' does not exist."}
    ]
    patched = await api.patch("/api/v1/customers/C1", json={"salesperson_code": "GHOST"})
    assert patched.status_code == 422
    assert "Salesperson 'GHOST'" in patched.json()["detail"]
    assert (await session.exec(select(erp.Item).where(erp.Item.no == "X1"))).first() is None


async def test_empty_reference_means_none(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/items", json={"no": "X2", "base_unit_of_measure": ""})
    assert response.status_code == 201
    assert response.json()["base_unit_of_measure"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"no": "X3", "colour": "red"}, "colour"),
        ({"no": "X3", "unit_price": "cheap"}, "unit_price"),
        ({"no": "X3", "unit_price": -1}, "unit_price"),
        ({"no": "X3", "unit_price": "1.1234567"}, "unit_price"),
        ({"no": "X3", "description": 5}, "description"),
        ({"no": "X" * 21}, "no"),
        ({"no": ""}, "no"),
        ({"description": "no key"}, "no"),
        ({"no": "X3", "blocked": "maybe"}, "blocked"),
    ],
)
async def test_bad_fields_are_422_with_the_field_named(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/api/v1/items", json=body)
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(field) for e in response.json()["errors"])
    assert (await api.get("/api/v1/items/X3")).status_code == 404


async def test_bad_dates_and_enums_are_422(api: httpx.AsyncClient) -> None:
    price = {"item_no": "1000", "sales_type": "everyone", "starting_date": "2024-02-30"}
    response = await api.post("/api/v1/sales-prices", json=price)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.sales_type", "body.starting_date"}


async def test_sales_price_rules(api: httpx.AsyncClient) -> None:
    body = {
        "item_no": "1000",
        "sales_type": "customer",
        "starting_date": "2024-05-01",
        "ending_date": "2024-04-01",
    }
    response = await api.post("/api/v1/sales-prices", json=body)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"sales_code", "ending_date"}
    unknown = await api.post(
        "/api/v1/sales-prices", json={**body, "ending_date": None, "sales_code": "NOBODY"}
    )
    assert "Customer 'NOBODY' does not exist." in unknown.json()["detail"]


async def test_malformed_json_and_wrong_shape(api: httpx.AsyncClient) -> None:
    broken = await api.post(
        "/api/v1/items", content=b'{"no": "1', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert "JSON" in broken.json()["detail"]
    assert (await api.post("/api/v1/items", json=["not", "an", "object"])).status_code == 422
    assert (await api.patch("/api/v1/items/1000", json={"no": "1001"})).status_code == 422
    assert (await api.patch("/api/v1/items/1000", json={"description": None})).status_code == 422


async def test_delete_of_a_referenced_row_is_409(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/units-of-measure/PCS")
    assert response.status_code == 409
    assert "Unit of measure 'PCS' cannot be deleted" in response.json()["detail"]
    assert (await api.get("/api/v1/units-of-measure/PCS")).status_code == 200


async def test_unknown_keys_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/customers/NOPE")).status_code == 404
    assert (await api.patch("/api/v1/customers/NOPE", json={"name": "x"})).status_code == 404
    assert (await api.delete("/api/v1/customers/NOPE")).status_code == 404
    assert (await api.get("/api/v1/sales-prices/not-a-uuid")).status_code == 404


async def test_out_of_range_input_is_4xx_not_500(api: httpx.AsyncClient) -> None:
    responses = [
        await api.post("/api/v1/items", json={"no": "N1", "description": "a\x00b"}),
        await api.get("/api/v1/items", params={"$skip": 10**12}),
        await api.get("/api/v1/items", params={"no": "a\x00"}),
        await api.get("/api/v1/purchase-lines", params={"line_no": 10**12}),
        await api.get("/api/v1/sales-prices/99999999999"),
        await api.post(
            "/api/v1/purchase-lines",
            json={"document_no": "PO1", "line_no": 2**40, "item_no": "1000"},
        ),
        await api.post("/api/v1/items", json={"no": "N2", "unit_price": "1e20"}),
    ]
    assert [r.status_code for r in responses] == [422, 422, 400, 400, 404, 422, 422]
