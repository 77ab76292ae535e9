"""Server-driven paging over a large set: every row exactly once, in order, on every page."""

from __future__ import annotations

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.odata import factories

ROOT = "/odata/v4/"
N_ITEMS = 5000


async def _walk(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, **params: str
) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    rows: list[dict] = []  # type: ignore[type-arg]
    pages = 0
    response = await client.get(url, params=params, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["value"])
        pages += 1
        link = body.get("@odata.nextLink")
        if link is None:
            return rows, pages
        assert "$skiptoken" in httpx.URL(link).params or "%24skiptoken" in link
        response = await client.get(link, headers=headers)


async def test_paging_returns_each_row_once_in_order(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    numbers = [f"IT{n:05d}" for n in range(N_ITEMS)]
    await factories.add_items(session, numbers)
    await factories.add_ledger(session, [(no, "", n % 37) for n, no in enumerate(numbers)])
    await session.commit()
    headers = {**reader, "Prefer": "odata.maxpagesize=250"}
    rows, pages = await _walk(client, headers, ROOT + "ItemAvailability", **{"$select": "ItemNo"})
    assert [r["ItemNo"] for r in rows] == numbers
    assert pages == N_ITEMS // 250

    # A non-unique sort key (ties broken by the key), descending, with a filter and $top.
    rows, _pages = await _walk(
        client,
        headers,
        ROOT + "ItemAvailability",
        **{
            "$orderby": "Inventory desc",
            "$filter": "Inventory lt 30",
            "$top": "3000",
            "$select": "ItemNo,Inventory",
        },
    )
    expected = sorted(
        ((n % 37, no) for n, no in enumerate(numbers) if n % 37 < 30), key=lambda t: (-t[0], t[1])
    )[:3000]
    assert [(r["Inventory"], r["ItemNo"]) for r in rows] == [(float(q), no) for q, no in expected]


async def test_top_smaller_than_page_has_no_next_link_and_preference_is_echoed(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    response = await client.get(
        ROOT + "ItemAvailability",
        params={"$top": "2"},
        headers={**reader, "Prefer": "maxpagesize=5"},
    )
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=5"
    assert "@odata.nextLink" not in response.json() and len(response.json()["value"]) == 2
    paged = await client.get(
        ROOT + "ItemAvailability",
        params={"$top": "5"},
        headers={**reader, "Prefer": "odata.maxpagesize=2"},
    )
    body = paged.json()
    assert len(body["value"]) == 2 and "%24top=3" in body["@odata.nextLink"]


async def test_tampered_or_foreign_skiptoken_is_400(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    headers = {**reader, "Prefer": "odata.maxpagesize=2"}
    link = (await client.get(ROOT + "ItemAvailability", headers=headers)).json()["@odata.nextLink"]
    token = httpx.URL(link).params["$skiptoken"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    bad = await client.get(
        ROOT + "ItemAvailability", params={"$skiptoken": tampered}, headers=headers
    )
    assert bad.status_code == 400
    foreign = await client.get(
        ROOT + "ItemAvailability",
        params={"$skiptoken": token, "$orderby": "Inventory"},
        headers=headers,
    )
    assert foreign.status_code == 400
