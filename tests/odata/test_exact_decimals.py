"""Quantities are exact end to end, over real HTTP: REST API -> ledger -> OData v4 and V3.

The cases binary floats got wrong (0.1 + 0.2 + 0.3, 0.1 + 0.2 - 0.3, 1 - 26 + 30.89) and
the extremes of the declared precision (15 and 18 significant digits).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import tokens
from app.models.security import Role
from app.settings import Settings
from tests import factories
from tests.erp import seed
from tests.hostile.live import serve
from tests.odata.factories import odata_reader

V4 = "/odata/v4/ItemAvailability"
V3 = "/ODataV3/Company('CRONUS')/ItemAvailability"
FIFTEEN_DIGITS = "1234567890.12345"
EIGHTEEN_DIGITS = "9999999999999.99999"


def _exact(response: httpx.Response) -> Any:
    """The body with every JSON number read as the Decimal it spells."""
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal, parse_int=Decimal)


@pytest.fixture
async def http(session: AsyncSession, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service in uvicorn; the client carries an ERP user's token and a reader's key."""
    await factories.create_user(
        session, user_name="erp", roles=(Role.integration_user,), password=None
    )
    await seed.master_data(session, item_count=5)
    await session.commit()
    reader = await odata_reader(session, settings)
    token, _ = tokens.create_access_token(
        settings, subject="erp", roles=["integration-user"], version=0, key_id=None
    )
    with serve(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            client.headers["X-Reader"] = reader["Authorization"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield client


async def _post_entry(http: httpx.AsyncClient, item_no: str, quantity: str) -> dict[str, Any]:
    entry_type = "sale" if quantity.startswith("-") else "purchase"
    body = {"item_no": item_no, "posting_date": "2026-01-15", "entry_type": entry_type,
            "quantity": quantity}  # fmt: skip
    response = await http.post("/api/v1/item-ledger-entries", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _odata(http: httpx.AsyncClient, url: str, **params: str) -> Any:
    return _exact(
        await http.get(url, params=params, headers={"Authorization": http.headers["X-Reader"]})
    )


def _numbers(page: Any, prop: str = "Inventory") -> dict[str, Decimal]:
    return {row["ItemNo"]: row[prop] for row in page["value"]}


async def test_sums_filters_and_extremes_are_exact(http: httpx.AsyncClient) -> None:
    for quantity in ("0.1", "0.2", "0.3"):
        await _post_entry(http, "1000", quantity)
    for quantity in ("0.1", "0.2", "-0.3"):
        await _post_entry(http, "1001", quantity)
    await _post_entry(http, "1002", "1")
    order = {"sell_to_customer_no": "C1", "lines": [{"no": "1002", "quantity": "26"}]}
    assert (await http.post("/api/v1/sales-orders", json=order)).status_code == 201
    receipt = {"document_no": "PO1", "line_no": 10000, "item_no": "1002",
               "outstanding_quantity": "30.89"}  # fmt: skip
    assert (await http.post("/api/v1/purchase-lines", json=receipt)).status_code == 201
    posted = await _post_entry(http, "1003", FIFTEEN_DIGITS)
    assert posted["quantity"] == FIFTEEN_DIGITS  # the REST API's exact text
    await _post_entry(http, "1004", EIGHTEEN_DIGITS)

    everything = await _odata(http, V4)
    assert _numbers(everything) == {
        "1000": Decimal("0.6"), "1001": Decimal(0), "1002": Decimal(1),
        "1003": Decimal(FIFTEEN_DIGITS), "1004": Decimal(EIGHTEEN_DIGITS),
    }  # fmt: skip
    assert _numbers(everything, "ProjectedAvailable")["1002"] == Decimal("5.89")
    raw = (
        await http.get(f"{V4}('1004')", headers={"Authorization": http.headers["X-Reader"]})
    ).text
    assert re.search(rf'"Inventory"\s*:\s*{re.escape(EIGHTEEN_DIGITS)}[,}}]', raw)  # every digit

    assert set(_numbers(await _odata(http, V4, **{"$filter": "Inventory eq 0"}))) == {"1001"}
    assert "1001" not in _numbers(await _odata(http, V4, **{"$filter": "Inventory gt 0"}))
    assert set(_numbers(await _odata(http, V4, **{"$filter": "Inventory eq 0.6"}))) == {"1000"}
    edge = {"$filter": "ProjectedAvailable lt 5.89", "$orderby": "ProjectedAvailable"}
    assert "1002" not in _numbers(await _odata(http, V4, **edge))
    at_edge = await _odata(
        http, V4, **{"$filter": "ProjectedAvailable le 5.89 and ItemNo eq '1002'"}
    )
    assert set(_numbers(at_edge)) == {"1002"}
    exact_15 = await _odata(http, V4, **{"$filter": f"Inventory eq {FIFTEEN_DIGITS}"})
    assert set(_numbers(exact_15)) == {"1003"}

    ordered = await _odata(http, V4, **{"$orderby": "Inventory desc", "$select": "ItemNo"})
    assert [row["ItemNo"] for row in ordered["value"]] == ["1004", "1003", "1002", "1000", "1001"]

    v3 = await _odata(http, V3, **{"$filter": f"Inventory eq {EIGHTEEN_DIGITS}M"})
    assert [(r["ItemNo"], r["Inventory"]) for r in v3["value"]] == [("1004", EIGHTEEN_DIGITS)]


async def test_out_of_range_quantities_are_refused(http: httpx.AsyncClient) -> None:
    body = {"item_no": "1000", "posting_date": "2026-01-15", "entry_type": "purchase"}
    for quantity in ("10000000000000", "0.000001"):
        response = await http.post(
            "/api/v1/item-ledger-entries", json={**body, "quantity": quantity}
        )
        assert response.status_code == 422, (quantity, response.text)
    schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]
    for schema in ("ItemLedgerEntryCreate", "ItemLedgerEntryRead"):
        declared = schemas[schema]["properties"]["quantity"]  # what ExactDecimal carries
        assert declared["pattern"] == r"^-?[0-9]{1,13}(\.[0-9]{1,5})?$", declared
