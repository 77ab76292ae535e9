"""The lean ``/odata`` path keeps what the app's middleware gives every other response."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from app.odata.asgi import ROUTE

ROOT = "/odata/v4/"


def _served(method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "salesbridge_http_requests_total", {"method": method, "route": ROUTE, "status": status}
    )
    return value or 0.0


async def test_request_id_cache_headers_and_metrics(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    before_ok, before_401 = _served("GET", "200"), _served("GET", "401")

    ok = await client.get(
        ROOT + "ItemAvailability('1000')", headers={**reader, "X-Request-ID": "trace-42"}
    )
    refused = await client.get(ROOT + "ItemAvailability")

    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "trace-42"
    assert ok.headers["cache-control"] == "private, no-store"
    assert ok.headers["odata-version"] == "4.0"
    assert int(ok.headers["content-length"]) == len(ok.content)
    assert refused.status_code == 401
    assert len(refused.headers["x-request-id"]) == 32  # a new one when none was sent
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert _served("GET", "200") == before_ok + 1
    assert _served("GET", "401") == before_401 + 1


async def test_one_prepared_shape_serves_every_value(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    # The same statement shape with other bound values (keys, keyset positions, limits).
    for item_no in ("1000", "1001", "A%_1"):
        response = await client.get(ROOT + f"ItemAvailability('{item_no}')", headers=reader)
        assert response.json()["ItemNo"] == item_no
    seen = []
    url: str | None = ROOT + "ItemAvailability?$select=ItemNo&$top=5"
    while url is not None:
        body = (await client.get(url, headers={**reader, "Prefer": "maxpagesize=2"})).json()
        seen.extend(row["ItemNo"] for row in body["value"])
        url = body.get("@odata.nextLink")
    assert seen == ["1000", "1001", "1002", "1003", "1004"]


async def test_non_odata_paths_still_use_the_rest_stack(client: httpx.AsyncClient) -> None:
    response = await client.get("/odatax")  # not under /odata/: the REST 404, not OData's
    assert response.status_code == 404
    assert "error" in response.json()
    assert "x-request-id" in response.headers


async def test_filters_differing_in_literals_share_sql_but_not_values(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    from app.odata import statements

    async def numbers(filter_text: str) -> list[str]:
        response = await client.get(
            ROOT + "ItemAvailability", params={"$filter": filter_text}, headers=reader
        )
        assert response.status_code == 200, response.text
        return [row["ItemNo"] for row in response.json()["value"]]

    assert await numbers("startswith(ItemNo,'100')") == ["1000", "1001", "1002", "1003", "1004"]
    shapes = len(statements._cache)  # noqa: SLF001 - the point of the test
    assert await numbers("startswith(ItemNo,'A%')") == ["A%_1"]
    assert await numbers("startswith(ItemNo,'1003')") == ["1003"]
    assert await numbers("Inventory gt 50 and LastModified gt 2000-01-01T00:00:00Z") == ["1001"]
    more = len(statements._cache)  # noqa: SLF001
    assert await numbers("Inventory gt 10 and LastModified gt 2000-01-01T00:00:00Z") == [
        "1000",
        "1001",
        "1003",
    ]
    assert await numbers("Inventory gt 10 and LastModified gt 2100-01-01T00:00:00Z") == []
    assert len(statements._cache) == more == shapes + 1  # noqa: SLF001
