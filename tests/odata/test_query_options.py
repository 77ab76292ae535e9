"""Each query option against the catalogue fixture (see conftest), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

ROOT = "/odata/v4/"


async def _get(client: httpx.AsyncClient, reader: dict[str, str], path: str, **params: str) -> dict:  # type: ignore[type-arg]
    response = await client.get(ROOT + path, params=params, headers=reader)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _nos(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [row["ItemNo"] for row in body["value"]]


async def test_default_order_is_key_order_by_code_point(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    body = await _get(client, reader, "ItemAvailability")
    assert _nos(body) == ["1000", "1001", "1002", "1003", "1004", "A%_1"]
    assert "@odata.nextLink" not in body


async def test_filter_select_orderby_top_skip_count(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    body = await _get(
        client,
        reader,
        "ItemAvailability",
        **{
            "$filter": "ProjectedAvailable lt 10",
            "$orderby": "ProjectedAvailable desc",
            "$select": "ItemNo,ProjectedAvailable",
            "$count": "true",
        },
    )
    assert body["@odata.count"] == 3
    assert body["@odata.context"].endswith("#ItemAvailability(ItemNo,ProjectedAvailable)")
    assert [(r["ItemNo"], r["ProjectedAvailable"]) for r in body["value"]] == [
        ("1004", 0),
        ("A%_1", 0),
        ("1002", -2),
    ]
    assert set(body["value"][0]) == {"@odata.etag", "ItemNo", "ProjectedAvailable"}
    top = await _get(client, reader, "ItemAvailability", **{"$top": "2", "$skip": "1"})
    assert _nos(top) == ["1001", "1002"]
    counted = await _get(client, reader, "ItemAvailability", **{"$top": "1", "$count": "true"})
    assert counted["@odata.count"] == 6 and len(counted["value"]) == 1
    multi = await _get(
        client,
        reader,
        "ItemAvailabilityByLocation",
        **{"$orderby": "LocationCode desc,Inventory asc", "$filter": "ItemNo eq '1000'"},
    )
    assert [r["LocationCode"] for r in multi["value"]] == ["RED", "BLUE", ""]


async def test_count_segment(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    response = await client.get(ROOT + "ItemAvailability/$count", headers=reader)
    assert response.status_code == 200 and response.text == "6"
    filtered = await client.get(
        ROOT + "ItemAvailability/$count", params={"$filter": "Inventory gt 10"}, headers=reader
    )
    assert filtered.text == "3"  # 1000 (17.5), 1001 (100), 1003 (30)
    coupled = await client.get(
        ROOT + "ItemAvailability/$count", params={"$filter": "CRMProductId ne null"}, headers=reader
    )
    assert coupled.text == "1"


async def test_options_without_dollar_and_any_case(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    plain = await _get(
        client, reader, "ItemAvailability", filter="ItemNo EQ '1001'", select="itemno"
    )
    assert plain["value"] == [{"@odata.etag": plain["value"][0]["@odata.etag"], "ItemNo": "1001"}]
    upper = await _get(
        client, reader, "ItemAvailability", **{"$FILTER": "CONTAINS(ItemNo,'00')", "$TOP": "1"}
    )
    assert _nos(upper) == ["1000"]


async def test_filter_semantics(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    cases = {
        "startswith(ItemNo,'100')": ["1000", "1001", "1002", "1003", "1004"],
        "contains(ItemNo,'%')": ["A%_1"],  # % and _ are literal characters
        "contains(ItemNo,'_')": ["A%_1"],
        "startswith(ItemNo,'a')": [],  # case-sensitive on both databases
        "startswith(tolower(ItemNo),'a')": ["A%_1"],
        "endswith(ItemNo,'03')": ["1003"],
        "ItemNo in ('1003')": ["1003"],  # one-item list without a trailing comma
        "ItemNo in ('1003','1000')": ["1000", "1003"],
        "ItemNo eq @p": ["1002"],
        "Blocked eq false and QtyOnPurchaseOrder gt 0": ["1001"],
        "not (Inventory ge 1)": ["1004", "A%_1"],
        "CRMProductId eq 0f8fad5b-d9cb-469f-a165-70867728950e": ["1000"],
        "ItemNo gt 'A'": ["A%_1"],
        "ItemNo eq 'x'' or 1 eq 1 --'": [],
        "Inventory add QtyOnPurchaseOrder eq 107": ["1001"],
        "LastModified gt 2000-01-01T00:00:00Z": ["1000", "1001", "1002", "1003", "1004", "A%_1"],
    }
    for expression, expected in cases.items():
        body = await _get(
            client, reader, "ItemAvailability", **{"$filter": expression, "@p": "'1002'"}
        )
        assert _nos(body) == expected, expression


async def test_by_location_rows_add_up_to_item_totals(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    totals = {r["ItemNo"]: r for r in (await _get(client, reader, "ItemAvailability"))["value"]}
    sums: dict[str, dict[str, float]] = {}
    for row in (await _get(client, reader, "ItemAvailabilityByLocation"))["value"]:
        item = sums.setdefault(row["ItemNo"], {})
        for name in ("Inventory", "QtyOnSalesOrder", "QtyOnPurchaseOrder", "ProjectedAvailable"):
            item[name] = item.get(name, 0) + row[name]
    for item_no, quantities in sums.items():
        for name, value in quantities.items():
            assert totals[item_no][name] == value, (item_no, name)
    assert totals["1000"]["QtyOnSalesOrder"] == 3  # 4 ordered, 1 shipped
    assert totals["1001"]["QtyOnPurchaseOrder"] == 7
    assert totals["1003"]["Inventory"] == 30


async def test_product_item_availability_only_coupled(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    body = await _get(client, reader, "ProductItemAvailability")
    assert [(r["ItemNo"], r["Inventory"]) for r in body["value"]] == [("1000", 17.5)]
    assert set(body["value"][0]) == {"@odata.etag", "CRM_ID", "ItemNo", "UOM", "Inventory"}
