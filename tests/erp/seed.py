"""Module-level seeding: rows straight into the database, not hundreds of HTTP calls."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp


async def master_data(session: AsyncSession, *, item_count: int = 3) -> None:
    session.add_all(
        [
            erp.UnitOfMeasure(code="PCS", description="Piece"),
            erp.UnitOfMeasure(code="BOX", description="Box"),
            erp.Location(code="MAIN", name="Main warehouse"),
            erp.Currency(code="EUR", description="Euro", exchange_rate=Decimal("10")),
            erp.Salesperson(code="SP1", name="Sam Seller"),
            erp.CustomerPriceGroup(code="RETAIL", description="Retail"),
        ]
    )
    await session.flush()
    session.add_all(
        [
            erp.Item(
                no=f"100{n}",
                description=f"Bicycle {n}",
                base_unit_of_measure="PCS",
                unit_price=Decimal(100 * (n + 1)),
            )
            for n in range(item_count)
        ]
    )
    session.add(
        erp.Resource(no="R1", name="Fitter", base_unit_of_measure="PCS", unit_price=Decimal(50))
    )
    session.add_all(
        [
            erp.Customer(
                no="C1",
                name="Adatum",
                address="1 Main St",
                city="Oslo",
                salesperson_code="SP1",
                payment_terms_code="14D",
                shipment_method_code="EXW",
            ),
            erp.Customer(no="C2", name="Fabrikam", currency_code="EUR"),
        ]
    )
    await session.flush()


async def stock(session: AsyncSession, item_no: str, quantity: Decimal) -> None:
    session.add(
        erp.ItemLedgerEntry(
            entry_no=1000,
            item_no=item_no,
            posting_date=date(2024, 1, 1),
            entry_type=erp.ItemLedgerEntryType.purchase,
            quantity=quantity,
        )
    )
    await session.flush()
