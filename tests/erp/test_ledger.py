"""Ledgers: append-only item entries with sign rules and safe numbering; customer payments."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp

ENTRY = {
    "item_no": "1000",
    "posting_date": "2024-03-01",
    "entry_type": "purchase",
    "quantity": "10",
}


async def test_post_list_and_get_item_ledger_entries(api: httpx.AsyncClient) -> None:
    first = await api.post("/api/v1/item-ledger-entries", json={**ENTRY, "location_code": "MAIN"})
    sale = {**ENTRY, "entry_type": "sale", "quantity": "-4"}
    second = await api.post("/api/v1/item-ledger-entries", json=sale)
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["entry_no"], second.json()["entry_no"]) == (1, 2)
    listed = (await api.get("/api/v1/item-ledger-entries", params={"entry_type": "sale"})).json()
    assert [row["quantity"] for row in listed["items"]] == ["-4"]
    assert (await api.get("/api/v1/item-ledger-entries/2")).json()["entry_type"] == "sale"
    assert (await api.get("/api/v1/item-ledger-entries/99")).status_code == 404


async def test_entries_are_append_only(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/item-ledger-entries", json=ENTRY)
    assert (
        await api.patch("/api/v1/item-ledger-entries/1", json={"quantity": 1})
    ).status_code == 405
    assert (await api.delete("/api/v1/item-ledger-entries/1")).status_code == 405
    assert (await api.put("/api/v1/item-ledger-entries/1", json=ENTRY)).status_code == 405
    assert (await api.delete("/api/v1/customer-ledger-entries/1")).status_code == 405


async def test_entry_no_cannot_be_given(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/item-ledger-entries", json={**ENTRY, "entry_no": 7})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("entry_type", "quantity", "message"),
    [
        ("sale", "5", "negative"),
        ("negative_adjmt", "1", "negative"),
        ("purchase", "-5", "positive"),
        ("positive_adjmt", "-1", "positive"),
        ("transfer", "0", "zero"),
    ],
)
async def test_quantity_sign_rules(
    api: httpx.AsyncClient, entry_type: str, quantity: str, message: str
) -> None:
    response = await api.post(
        "/api/v1/item-ledger-entries",
        json={**ENTRY, "entry_type": entry_type, "quantity": quantity},
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


async def test_missing_item_location_and_blocked_item(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await api.post(
        "/api/v1/item-ledger-entries",
        json={**ENTRY, "item_no": "GHOST", "location_code": "NOWHERE"},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"item_no", "location_code"}
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1001"))).one()
    item.blocked = True
    session.add(item)
    await session.commit()
    blocked = await api.post("/api/v1/item-ledger-entries", json={**ENTRY, "item_no": "1001"})
    assert blocked.status_code == 409
    assert (await api.get("/api/v1/item-ledger-entries")).json()["count"] == 0


async def test_concurrent_posting_gets_unique_consecutive_numbers(api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(api.post("/api/v1/item-ledger-entries", json=ENTRY) for _ in range(12))
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    numbers = sorted(r.json()["entry_no"] for r in responses)
    assert numbers == list(range(1, 13))


async def _invoice(
    session: AsyncSession, entry_no: int, document_no: str, amount: str, due: date
) -> None:
    session.add(
        erp.CustLedgerEntry(
            entry_no=entry_no,
            customer_no="C1",
            posting_date=date(2024, 1, 1),
            document_type=erp.CustLedgerDocumentType.invoice,
            document_no=document_no,
            amount_lcy=Decimal(amount),
            remaining_amount_lcy=Decimal(amount),
            due_date=due,
        )
    )


async def test_payment_applies_to_oldest_open_invoices(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _invoice(session, 1, "SI1", "100", date(2024, 2, 1))
    await _invoice(session, 2, "SI2", "50", date(2024, 1, 15))
    await session.commit()
    payment = {"customer_no": "C1", "amount": "120", "posting_date": "2024-03-01"}
    response = await api.post("/api/v1/customer-ledger-entries/payments", json=payment)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["payment"]["amount_lcy"] == "-120"
    assert body["payment"]["open"] is False
    assert body["payment"]["document_no"] == "PAY000001"
    assert [(a["document_no"], a["amount_applied"], a["open"]) for a in body["applied"]] == [
        ("SI2", "50", False),
        ("SI1", "70", True),
    ]
    si1 = (await api.get("/api/v1/customer-ledger-entries/1")).json()
    assert (si1["remaining_amount_lcy"], si1["open"]) == ("30", True)
    open_entries = (
        await api.get("/api/v1/customer-ledger-entries", params={"open": "true"})
    ).json()
    assert [row["document_no"] for row in open_entries["items"]] == ["SI1"]


async def test_payment_to_a_named_invoice_and_overpayment(
    api: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _invoice(session, 1, "SI1", "100", date(2024, 2, 1))
    await _invoice(session, 2, "SI2", "50", date(2024, 1, 15))
    await session.commit()
    payment = {
        "customer_no": "C1",
        "amount": "130",
        "posting_date": "2024-03-01",
        "applies_to_document_no": "SI1",
        "document_no": "BANK-7",
    }
    body = (await api.post("/api/v1/customer-ledger-entries/payments", json=payment)).json()
    assert [a["document_no"] for a in body["applied"]] == ["SI1"]
    assert (body["payment"]["remaining_amount_lcy"], body["payment"]["open"]) == ("-30", True)
    assert (await api.get("/api/v1/customer-ledger-entries/2")).json()["open"] is True


@pytest.mark.parametrize(
    ("payment", "status"),
    [
        ({"customer_no": "C1", "amount": "0", "posting_date": "2024-03-01"}, 422),
        ({"customer_no": "C1", "amount": "-5", "posting_date": "2024-03-01"}, 422),
        ({"customer_no": "C1", "amount": "5", "posting_date": "03/01/2024"}, 422),
        ({"customer_no": "NOPE", "amount": "5", "posting_date": "2024-03-01"}, 422),
        (
            {
                "customer_no": "C1",
                "amount": "5",
                "posting_date": "2024-03-01",
                "applies_to_document_no": "X",
            },
            409,
        ),
        ({"customer_no": "C1", "amount": "5", "posting_date": "2024-03-01", "memo": "hi"}, 422),
    ],
)
async def test_bad_payments_write_nothing(
    api: httpx.AsyncClient, payment: dict[str, str], status: int
) -> None:
    response = await api.post("/api/v1/customer-ledger-entries/payments", json=payment)
    assert response.status_code == status, response.text
    assert (await api.get("/api/v1/customer-ledger-entries")).json()["count"] == 0
