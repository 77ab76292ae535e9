"""Sales quotes and orders: defaults, lines, status rules, notes, make-order and posting."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp

ORDER = {
    "sell_to_customer_no": "C1",
    "your_reference": "CRM-42",
    "lines": [
        {"no": "1000", "quantity": "2", "location_code": "MAIN"},
        {"no": "1001", "quantity": "1", "unit_price": "150", "line_discount_amount": "10"},
        {"type": "resource", "no": "R1", "quantity": "3"},
    ],
}


async def _order(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/sales-orders", json={**ORDER, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_copies_customer_defaults_and_prices_lines(api: httpx.AsyncClient) -> None:
    order = await _order(api)
    assert order["no"] == "SO000001"
    assert order["status"] == "open"
    assert (order["bill_to_customer_no"], order["bill_to_name"], order["ship_to_city"]) == (
        "C1",
        "Adatum",
        "Oslo",
    )
    assert (
        order["salesperson_code"],
        order["payment_terms_code"],
        order["shipment_method_code"],
    ) == ("SP1", "14D", "EXW")
    lines = order["lines"]
    assert [line["line_no"] for line in lines] == [10000, 20000, 30000]
    assert (lines[0]["description"], lines[0]["unit_price"], lines[0]["unit_of_measure_code"]) == (
        "Bicycle 0",
        "100",
        "PCS",
    )
    assert [line["amount"] for line in lines] == ["200", "140", "150"]
    assert order["amount"] == "490"
    second = await _order(api, your_reference="x", ship_to_name="Dock 4")
    assert second["no"] == "SO000002"
    assert second["ship_to_name"] == "Dock 4"


async def test_given_number_and_duplicate(api: httpx.AsyncClient) -> None:
    assert (await _order(api, no="WEB-1"))["no"] == "WEB-1"
    again = await api.post("/api/v1/sales-orders", json={**ORDER, "no": "WEB-1"})
    assert again.status_code == 409
    assert "WEB-1" in again.json()["detail"]
    quote = await api.post("/api/v1/sales-quotes", json={**ORDER, "no": "WEB-1"})
    assert quote.status_code == 201  # quotes and orders are numbered apart


async def test_bad_documents_write_nothing(api: httpx.AsyncClient, session: AsyncSession) -> None:
    unknown = await api.post("/api/v1/sales-orders", json={**ORDER, "sell_to_customer_no": "NOPE"})
    assert unknown.status_code == 422
    assert "Customer 'NOPE' does not exist." in unknown.json()["detail"]
    bad_line = {**ORDER, "lines": [*ORDER["lines"], {"no": "GHOST", "quantity": 1}]}
    response = await api.post("/api/v1/sales-orders", json=bad_line)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "lines.3.no", "message": "Item 'GHOST' does not exist."}
    ]
    negative = {**ORDER, "lines": [{"no": "1000", "quantity": "-1"}]}
    assert (await api.post("/api/v1/sales-orders", json=negative)).status_code == 422
    too_much = {**ORDER, "lines": [{"no": "1000", "quantity": "1", "line_discount_amount": "101"}]}
    assert (await api.post("/api/v1/sales-orders", json=too_much)).status_code == 422
    assert (
        await api.post("/api/v1/sales-orders", json={**ORDER, "status": "released"})
    ).status_code == 422
    assert (await session.exec(select(erp.SalesHeader))).first() is None
    assert (await session.exec(select(erp.SalesLine))).first() is None


async def test_lines_crud_and_changing_customer(api: httpx.AsyncClient) -> None:
    order = await _order(api)
    url = f"/api/v1/sales-orders/{order['no']}"
    added = await api.post(f"{url}/lines", json={"no": "1002", "quantity": "1"})
    assert (added.status_code, added.json()["line_no"], added.json()["amount"]) == (
        201,
        40000,
        "300",
    )
    changed = await api.patch(
        f"{url}/lines/40000", json={"quantity": "2", "line_discount_amount": "50"}
    )
    assert changed.json()["amount"] == "550"
    swapped = await api.patch(f"{url}/lines/40000", json={"no": "1000"})
    assert (swapped.json()["description"], swapped.json()["unit_price"]) == ("Bicycle 0", "100")
    assert (await api.delete(f"{url}/lines/40000")).status_code == 204
    assert len((await api.get(f"{url}/lines")).json()["items"]) == 3
    assert (await api.get(f"{url}/lines/40000")).status_code == 404
    moved = await api.patch(url, json={"sell_to_customer_no": "C2"})
    assert (
        moved.json()["bill_to_name"],
        moved.json()["currency_code"],
        moved.json()["salesperson_code"],
    ) == ("Fabrikam", "EUR", "")


async def test_released_documents_refuse_edits(api: httpx.AsyncClient) -> None:
    order = await _order(api)
    url = f"/api/v1/sales-orders/{order['no']}"
    released = await api.post(f"{url}/release")
    assert released.json()["status"] == "released"
    assert (await api.post(f"{url}/release")).json()["status"] == "released"  # idempotent
    attempts = [
        await api.patch(url, json={"your_reference": "changed"}),
        await api.post(f"{url}/lines", json={"no": "1000", "quantity": 1}),
        await api.patch(f"{url}/lines/10000", json={"quantity": 5}),
        await api.delete(f"{url}/lines/10000"),
        await api.delete(url),
    ]
    assert [r.status_code for r in attempts] == [409] * 5
    assert "reopen it" in attempts[0].json()["detail"]
    assert (await api.get(url)).json()["your_reference"] == "CRM-42"
    assert (await api.post(f"{url}/reopen")).json()["status"] == "open"
    assert (await api.patch(url, json={"your_reference": "changed"})).status_code == 200


async def test_nothing_to_release(api: httpx.AsyncClient) -> None:
    empty = await _order(api, lines=[])
    response = await api.post(f"/api/v1/sales-orders/{empty['no']}/release")
    assert response.status_code == 409


async def test_notes_on_documents(api: httpx.AsyncClient, session: AsyncSession) -> None:
    order = await _order(api)
    url = f"/api/v1/sales-orders/{order['no']}/notes"
    created = await api.post(url, json={"description": "Call first", "text": "Ring the bell"})
    assert created.status_code == 201
    note = created.json()
    await api.post(f"/api/v1/sales-orders/{order['no']}/release")
    updated = await api.patch(f"{url}/{note['id']}", json={"text": "Knock"})
    assert updated.json()["text"] == "Knock"
    assert [n["text"] for n in (await api.get(url)).json()["items"]] == ["Knock"]
    row = (await session.exec(select(erp.Note))).one()
    assert (row.record_table, str(row.record_id)) == ("sales_header", order["system_id"])
    assert (await api.post(url, json={"colour": "red"})).status_code == 422
    assert (await api.delete(f"{url}/{note['system_id']}")).status_code == 204
    assert (await api.get(url)).json()["items"] == []
    assert (await api.delete(f"{url}/999")).status_code == 404


async def test_make_order_from_quote(api: httpx.AsyncClient) -> None:
    quote = (await api.post("/api/v1/sales-quotes", json=ORDER)).json()
    assert quote["no"] == "SQ000001"
    await api.post(f"/api/v1/sales-quotes/{quote['no']}/notes", json={"text": "from CRM"})
    made = await api.post(f"/api/v1/sales-quotes/{quote['no']}/make-order")
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["no"], order["quote_no"], order["amount"]) == ("SO000001", "SQ000001", "490")
    assert len(order["lines"]) == 3
    assert (await api.get(f"/api/v1/sales-quotes/{quote['no']}")).status_code == 404
    notes = (await api.get(f"/api/v1/sales-orders/{order['no']}/notes")).json()["items"]
    assert [n["text"] for n in notes] == ["from CRM"]
    assert (await api.post("/api/v1/sales-quotes", json=ORDER)).json()["no"] == "SQ000002"


async def test_post_writes_ledgers_and_invoice_and_deletes_the_order(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    order = await _order(api, invoice_discount_amount="40")
    await api.post(f"/api/v1/sales-orders/{order['no']}/notes", json={"text": "keep"})
    response = await api.post(
        f"/api/v1/sales-orders/{order['no']}/post", json={"posting_date": "2024-06-30"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    invoice = body["invoice"]
    assert (body["is_order_deleted"], body["order"]) == (True, None)
    assert (invoice["no"], invoice["order_no"], invoice["your_reference"]) == (
        "SI000001",
        order["no"],
        "CRM-42",
    )
    assert (invoice["amount"], invoice["invoice_discount_amount"]) == ("450", "40")
    assert [(line["no"], line["quantity"], line["amount"]) for line in invoice["lines"]] == [
        ("1000", "2", "200"),
        ("1001", "1", "140"),
        ("R1", "3", "150"),
    ]
    ile = (await api.get("/api/v1/item-ledger-entries", params={"document_no": "SI000001"})).json()
    assert [
        (e["item_no"], e["entry_type"], e["quantity"], e["location_code"]) for e in ile["items"]
    ] == [
        ("1000", "sale", "-2", "MAIN"),
        ("1001", "sale", "-1", ""),
    ]
    cle = (await api.get("/api/v1/customer-ledger-entries")).json()["items"]
    assert [
        (e["document_type"], e["amount_lcy"], e["remaining_amount_lcy"], e["open"]) for e in cle
    ] == [("invoice", "450", "450", True)]
    assert (await api.get(f"/api/v1/sales-orders/{order['no']}")).status_code == 404
    assert (await session.exec(select(erp.SalesLine))).first() is None
    note = (await session.exec(select(erp.Note))).one()
    assert note.record_table == "sales_invoice_header"
    listed = (await api.get("/api/v1/sales-invoices")).json()
    assert [i["no"] for i in listed["items"]] == ["SI000001"]
    assert len((await api.get("/api/v1/sales-invoices/SI000001/lines")).json()["items"]) == 3
    assert (await api.post("/api/v1/sales-invoices", json={})).status_code == 405
    assert (await api.delete("/api/v1/sales-invoices/SI000001")).status_code == 405
    assert (await _order(api))["no"] == "SO000002"  # a deleted order's number is not reused


async def test_partial_post_then_the_rest(api: httpx.AsyncClient) -> None:
    order = await _order(api, sell_to_customer_no="C2")
    url = f"/api/v1/sales-orders/{order['no']}"
    first = await api.post(f"{url}/post", json={"lines": [{"line_no": 10000, "quantity": "1"}]})
    assert first.status_code == 200, first.text
    remaining = first.json()["order"]
    assert first.json()["is_order_deleted"] is False
    assert (
        remaining["lines"][0]["quantity_shipped"],
        remaining["lines"][0]["quantity_invoiced"],
    ) == ("1", "1")
    cle = (await api.get("/api/v1/customer-ledger-entries")).json()["items"]
    assert cle[0]["amount_lcy"] == "1000"  # 100 EUR at exchange rate 10
    too_much = await api.post(f"{url}/post", json={"lines": [{"line_no": 10000, "quantity": "5"}]})
    assert too_much.status_code == 422
    cannot_shrink = await api.patch(f"{url}/lines/10000", json={"quantity": "0.5"})
    assert cannot_shrink.status_code == 422
    rest = await api.post(f"{url}/post")
    assert rest.json()["is_order_deleted"] is True
    assert rest.json()["invoice"]["amount"] == "390"
    assert (await api.post(f"{url}/post")).status_code == 404


async def test_post_refusals(api: httpx.AsyncClient, session: AsyncSession) -> None:
    empty = await _order(api, lines=[])
    assert (await api.post(f"/api/v1/sales-orders/{empty['no']}/post")).status_code == 409
    order = await _order(api)
    customer = (await session.exec(select(erp.Customer).where(erp.Customer.no == "C1"))).one()
    customer.blocked = True
    session.add(customer)
    await session.commit()
    blocked = await api.post(f"/api/v1/sales-orders/{order['no']}/post")
    assert blocked.status_code == 409
    assert "blocked" in blocked.json()["detail"]
    bad_body = await api.post(
        f"/api/v1/sales-orders/{order['no']}/post", json={"posting_date": "yesterday"}
    )
    assert bad_body.status_code == 422
    assert (await api.get("/api/v1/item-ledger-entries")).json()["count"] == 0
    assert (await api.get("/api/v1/sales-invoices")).json()["count"] == 0


async def test_document_lists_filter_by_type(api: httpx.AsyncClient) -> None:
    await _order(api)
    await api.post("/api/v1/sales-quotes", json=ORDER)
    orders = (
        await api.get("/api/v1/sales-orders", params={"$filter": "your_reference eq 'CRM-42'"})
    ).json()
    assert [o["no"] for o in orders["items"]] == ["SO000001"]
    quotes = (await api.get("/api/v1/sales-quotes", params={"sell_to_customer_no": "C1"})).json()
    assert [q["no"] for q in quotes["items"]] == ["SQ000001"]


async def test_too_large_line_amount_is_422(api: httpx.AsyncClient) -> None:
    huge = {**ORDER, "lines": [{"no": "1000", "quantity": "100000000000", "unit_price": "1000"}]}
    response = await api.post("/api/v1/sales-orders", json=huge)
    assert response.status_code == 422
    assert "too large" in response.json()["detail"]
