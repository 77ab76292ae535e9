"""The availability aggregates follow every kind of write (ORM, bulk, update, delete)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.availability_triggers import rebuild_statements
from app.models.erp import Item, ItemLedgerEntry, PurchaseLine, SalesLine
from tests.odata import factories

QTY = ("inventory", "qty_on_sales_order", "qty_on_purchase_order", "projected_available")


async def _snapshot(
    session: AsyncSession,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    totals = factories.table("item_availability")
    located = factories.table("item_location_availability")
    items = await session.execute(
        sa.select(
            totals.c.item_no, totals.c.description, totals.c.blocked, *[totals.c[c] for c in QTY]
        ).order_by(totals.c.item_no)
    )
    locations = await session.execute(
        sa.select(
            located.c.item_no, located.c.location_code, *[located.c[c] for c in QTY]
        ).order_by(located.c.item_no, located.c.location_code)
    )
    return [tuple(r) for r in items.all()], [tuple(r) for r in locations.all()]


async def test_triggers_match_a_full_rebuild(session: AsyncSession) -> None:
    await factories.add_items(session, ["A", "B"])
    session.add(Item(no="C", description="ORM item"))
    await session.flush()
    session.add_all(
        [
            ItemLedgerEntry(
                entry_no=1,
                item_no="A",
                location_code="BLUE",
                posting_date=dt.date(2026, 1, 1),
                entry_type="purchase",
                quantity=Decimal("10.25"),
            ),
            ItemLedgerEntry(
                entry_no=2,
                item_no="C",
                location_code="",
                posting_date=dt.date(2026, 1, 1),
                entry_type="sale",
                quantity=Decimal("-2"),
            ),
        ]
    )
    await factories.add_sales_order(
        session, "SO1", [("A", "BLUE", 5, 1), ("B", "RED", 2, 0), ("ZZ", "", 9, 0)]
    )
    session.add(
        PurchaseLine(
            document_no="PO1",
            line_no=1,
            item_no="B",
            location_code="RED",
            outstanding_quantity=Decimal(6),
        )
    )
    await session.commit()

    line = (await session.exec(select(SalesLine).where(SalesLine.no == "A"))).one()
    line.quantity_shipped = Decimal(5)  # fully shipped: nothing outstanding
    purchase = (await session.exec(select(PurchaseLine))).one()
    purchase.outstanding_quantity = Decimal(1)
    item_c = (await session.exec(select(Item).where(Item.no == "C"))).one()
    item_c.description, item_c.blocked = "Renamed", True
    await session.commit()
    await session.execute(
        sa.delete(factories.table("sales_line")).where(factories.table("sales_line").c.no == "B")
    )
    await session.execute(
        sa.update(factories.table("item_ledger_entry"))
        .where(factories.table("item_ledger_entry").c.entry_no == 2)
        .values(quantity=Decimal(-3))
    )
    await factories.add_items(session, ["ZZ"])  # arrives after its order line: recomputed
    await session.commit()

    by_trigger = await _snapshot(session)
    connection = await session.connection()
    for statement in rebuild_statements(connection.dialect.name):
        await session.execute(sa.text(statement))
    rebuilt = await _snapshot(session)
    await session.rollback()
    assert by_trigger == rebuilt
    totals = {row[0]: row for row in by_trigger[0]}
    assert [float(v) for v in totals["A"][3:]] == [10.25, 0, 0, 10.25]
    assert [float(v) for v in totals["B"][3:]] == [0, 0, 1, 1]
    assert totals["C"][1:3] == ("Renamed", True) and float(totals["C"][3]) == -3
    assert float(totals["ZZ"][4]) == 9


async def test_deleting_an_item_drops_its_rows(session: AsyncSession) -> None:
    await factories.add_items(session, ["D"])
    await factories.add_purchase_line(session, "PO9", 1, "D", "", 4)
    await session.commit()
    await session.execute(sa.delete(factories.table("purchase_line")))
    await session.execute(
        sa.delete(factories.table("item")).where(factories.table("item").c.no == "D")
    )
    await session.commit()
    assert await _snapshot(session) == ([], [])
