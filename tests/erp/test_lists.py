"""List conventions: paging, count and next link, sorting, equality and $filter."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp


@pytest.fixture
async def many_items(api: httpx.AsyncClient, session: AsyncSession) -> httpx.AsyncClient:
    session.add_all(
        [
            erp.Item(
                no=f"P{n:03d}",
                description=f"Part {n % 3}",
                unit_price=Decimal(n),
                blocked=n % 5 == 0,
            )
            for n in range(25)
        ]
    )
    await session.commit()
    return api


async def test_default_order_and_count(many_items: httpx.AsyncClient) -> None:
    body = (await many_items.get("/api/v1/items")).json()
    assert body["count"] == 28
    assert [row["no"] for row in body["items"]][:4] == ["1000", "1001", "1002", "P000"]
    assert body["next"] is None


async def test_odata_paging_with_next_link(many_items: httpx.AsyncClient) -> None:
    first = (await many_items.get("/api/v1/items", params={"$top": 10, "no": "P001"})).json()
    assert first["count"] == 1
    page = (await many_items.get("/api/v1/items", params={"$top": 10, "$skip": 5})).json()
    assert len(page["items"]) == 10
    assert page["items"][0]["no"] == "P002"
    seen = [row["no"] for row in page["items"]]
    while page["next"]:
        assert "%24skip=" in page["next"] or "$skip=" in page["next"]
        page = (await many_items.get(page["next"])).json()
        seen += [row["no"] for row in page["items"]]
    assert len(seen) == 23
    assert len(set(seen)) == 23


async def test_limit_offset_paging_keeps_its_style(many_items: httpx.AsyncClient) -> None:
    body = (await many_items.get("/api/v1/items", params={"limit": 3, "offset": 3})).json()
    assert [row["no"] for row in body["items"]] == ["P000", "P001", "P002"]
    assert "offset=6" in body["next"]
    assert "limit=3" in body["next"]


async def test_page_size_is_capped_and_count_can_be_skipped(many_items: httpx.AsyncClient) -> None:
    body = (await many_items.get("/api/v1/items", params={"$top": 5000, "$count": "false"})).json()
    assert body["count"] is None
    assert len(body["items"]) == 28


async def test_sorting_both_styles(many_items: httpx.AsyncClient) -> None:
    odata = (
        await many_items.get("/api/v1/items", params={"$orderby": "unit_price desc, no", "$top": 3})
    ).json()
    simple = (
        await many_items.get("/api/v1/items", params={"sort": "-unit_price,no", "limit": 3})
    ).json()
    assert [r["no"] for r in odata["items"]] == ["1002", "1001", "1000"]
    assert odata["items"] == simple["items"]


async def test_equality_params_are_typed(many_items: httpx.AsyncClient) -> None:
    blocked = (await many_items.get("/api/v1/items", params={"blocked": "true"})).json()
    assert {row["no"] for row in blocked["items"]} == {"P000", "P005", "P010", "P015", "P020"}
    priced = (
        await many_items.get("/api/v1/items", params={"unit_price": "7", "Description": "Part 1"})
    ).json()
    assert [row["no"] for row in priced["items"]] == ["P007"]


async def test_odata_filter(many_items: httpx.AsyncClient) -> None:
    params = {"$filter": "unit_price ge 20 and startswith(no, 'P') and blocked eq false"}
    body = (await many_items.get("/api/v1/items", params=params)).json()
    assert [row["no"] for row in body["items"]] == ["P021", "P022", "P023", "P024"]
    assert body["count"] == 4


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$filter": "password eq 'x'"}, "password"),
        ({"$filter": "no eq"}, ""),
        ({"colour": "red"}, "colour"),
        ({"unit_price": "cheap"}, "unit_price"),
        ({"blocked": "perhaps"}, "blocked"),
        ({"$orderby": "secret desc"}, "secret"),
        ({"$orderby": "no sideways"}, "no sideways"),
        ({"sort": "-"}, "sort"),
        ({"$expand": "lines"}, "$expand"),
        ({"$top": 5, "limit": 5}, "$top"),
    ],
)
async def test_bad_list_parameters_are_400(
    api: httpx.AsyncClient, params: dict[str, object], fragment: str
) -> None:
    response = await api.get("/api/v1/items", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


async def test_negative_paging_is_422(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/items", params={"$skip": -1})).status_code == 422
    assert (await api.get("/api/v1/items", params={"limit": "ten"})).status_code == 422


async def test_filter_sees_only_public_fields_of_other_resources(api: httpx.AsyncClient) -> None:
    customers = (
        await api.get("/api/v1/customers", params={"$filter": "salesperson_code eq 'SP1'"})
    ).json()
    assert [row["no"] for row in customers["items"]] == ["C1"]
    refused = await api.get("/api/v1/customers", params={"$filter": "roles eq 'x'"})
    assert refused.status_code == 400
