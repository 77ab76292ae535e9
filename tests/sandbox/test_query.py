"""Queries: ``$select/$filter/$orderby/$top/$count``, ``$skip`` refused, and server-driven
paging with ``odata.maxpagesize`` and ``$skiptoken`` (each row exactly once)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import error_of, seed

TOTAL = "Microsoft.Dynamics.CRM.totalrecordcount"


def _accounts(count: int) -> list[dict[str, object]]:
    cities = ["Oslo", "oslo", None]
    return [
        {
            "name": f"Account {i:05d}",
            "accountnumber": f"C{i:05d}",
            "revenue": i % 7,
            "address1_city": cities[i % 3],
        }
        for i in range(count)
    ]


async def test_filter_orderby_top_select(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    seed(sandbox, "accounts", _accounts(30))
    params = {
        "$select": "name,revenue",
        "$filter": "revenue ge 5 and address1_city eq 'OSLO'",
        "$orderby": "revenue desc,name asc",
        "$top": "3",
    }
    response = await api.get("accounts", params=params)
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#accounts(name,revenue)")
    assert "@odata.nextLink" not in body
    rows = body["value"]
    assert [(r["revenue"], r["name"]) for r in rows] == [
        (6, "Account 00006"),
        (6, "Account 00013"),
        (6, "Account 00027"),
    ]
    assert set(rows[0]) == {"@odata.etag", "name", "revenue", "accountid"}


async def test_filter_functions_and_null(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    seed(sandbox, "accounts", _accounts(30))

    async def names(expression: str) -> list[str]:
        response = await api.get(
            "accounts", params={"$filter": expression, "$select": "name", "$orderby": "name"}
        )
        assert response.status_code == 200, response.text
        return [row["name"] for row in response.json()["value"]]

    assert await names("startswith(name,'account 0002')") == [f"Account 0002{i}" for i in range(10)]
    assert await names("contains(accountnumber,'0001') and endswith(name,'5')") == ["Account 00015"]
    assert len(await names("address1_city eq null")) == 10
    assert len(await names("not (address1_city eq null) or revenue eq 0")) == 21
    assert await names(
        'Microsoft.Dynamics.CRM.In(PropertyName=\'accountnumber\',PropertyValues=["C00001","C00003"])'
    ) == ["Account 00001", "Account 00003"]
    later = await names("modifiedon ge 2000-01-01T00:00:00Z and name ne 'Account 00000'")
    assert len(later) == 29
    bad = await api.get("accounts", params={"$filter": "name eq"})
    assert bad.status_code == 400
    error_of(bad)


async def test_skip_is_rejected(api: httpx.AsyncClient) -> None:
    response = await api.get("accounts", params={"$skip": "10"})
    assert response.status_code == 400
    assert "$skip" in error_of(response)["message"]


async def test_count(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    seed(sandbox, "accounts", _accounts(5100))
    counted = await api.get(
        "accounts",
        params={"$count": "true", "$select": "name", "$filter": "revenue eq 1"},
        headers={"Prefer": "odata.maxpagesize=10"},
    )
    body = counted.json()
    assert body["@odata.count"] == len([i for i in range(5100) if i % 7 == 1])
    everything = await api.get(
        "accounts",
        params={"$count": "true", "$select": "name", "$top": "1"},
        headers={"Prefer": f'odata.include-annotations="{TOTAL},{TOTAL}limitexceeded"'},
    )
    body = everything.json()
    assert body["@odata.count"] == 5000  # capped, as in Dataverse
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 5100
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    plain = await api.get("accounts/$count")
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text == "5000"


async def test_paging_12000_rows_sees_each_once(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    seed(sandbox, "accounts", _accounts(12_000))
    seen: list[str] = []
    url: str | None = "accounts?$select=name"
    pages = 0
    while url:
        response = await api.get(url, headers={"Prefer": "odata.maxpagesize=5000"})
        assert response.status_code == 200
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=5000"
        body = response.json()
        seen += [row["accountid"] for row in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            query = parse_qs(urlsplit(url).query)
            assert query["$select"] == ["name"]
            assert query["$skiptoken"][0].startswith("<cookie pagenumber=")
        pages += 1
    assert pages == 3
    assert len(seen) == 12_000 == len(set(seen))


async def test_paging_with_order_on_duplicates_and_nulls(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    seed(sandbox, "accounts", _accounts(1000))
    for order in ("address1_city asc", "address1_city desc,revenue desc", "revenue asc"):
        names: list[str] = []
        url: str | None = (
            f"accounts?$select=name,address1_city,revenue&$orderby={order}&$filter=revenue ne 3"
        )
        while url:
            body = (await api.get(url, headers={"Prefer": "odata.maxpagesize=77"})).json()
            names += [row["name"] for row in body["value"]]
            url = body.get("@odata.nextLink")
        assert len(names) == len(set(names)) == len([i for i in range(1000) if i % 7 != 3])


async def test_oversized_page_is_capped_and_tampered_token_refused(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    seed(sandbox, "accounts", _accounts(10))
    response = await api.get("accounts", headers={"Prefer": "odata.maxpagesize=9000"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=5000"
    tampered = await api.get(
        "accounts", params={"$skiptoken": '<cookie pagenumber="2" pagingcookie="%%%" />'}
    )
    assert tampered.status_code == 400
