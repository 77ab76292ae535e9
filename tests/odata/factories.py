"""Arrange availability data quickly: items, ledger entries, order lines, couplings."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from app.settings import Settings
from tests.factories import create_access_key, create_user

TODAY = dt.date(2026, 1, 15)
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def basic_header(user_name: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{user_name}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def odata_reader(
    session: AsyncSession,
    settings: Settings,
    *,
    user_name: str = "crm",
    roles: tuple[Role, ...] = (Role.product_availability,),
) -> dict[str, str]:
    """A user with a web service access key; returns the Basic auth header (committed)."""
    user = await create_user(session, user_name=user_name, roles=roles, password=None)
    key = await create_access_key(session, settings, user=user)
    await session.commit()
    return basic_header(user_name, key)


async def add_items(session: AsyncSession, numbers: list[str], **fields: object) -> None:
    rows = [
        {
            "no": no,
            "description": fields.get("description", f"Item {no}"),
            "system_id": uuid.uuid4(),
            "created_at": NOW,
            "modified_at": NOW,
            "modified_by": "test",
            "blocked": fields.get("blocked", False),
            "unit_price": Decimal(0),
            "unit_cost": Decimal(0),
            "unit_volume": Decimal(0),
            "gross_weight": Decimal(0),
            "vendor_no": "",
            "vendor_item_no": "",
        }
        for no in numbers
    ]
    await session.execute(sa.insert(table("item")), rows)


async def add_ledger(
    session: AsyncSession, entries: list[tuple[str, str, Decimal | int | str]], *, start: int = 1
) -> None:
    """(item_no, location_code, quantity) entries, numbered from ``start``."""
    rows = [
        {
            "entry_no": start + n,
            "item_no": item_no,
            "location_code": location,
            "posting_date": TODAY,
            "entry_type": "purchase",
            "quantity": Decimal(str(quantity)),
            "document_no": "",
            "system_id": uuid.uuid4(),
            "created_at": NOW,
            "modified_at": NOW,
            "modified_by": "test",
        }
        for n, (item_no, location, quantity) in enumerate(entries)
    ]
    await session.execute(sa.insert(table("item_ledger_entry")), rows)


async def add_sales_order(
    session: AsyncSession, no: str, lines: list[tuple[str, str, int, int]], *, customer: str = "C1"
) -> None:
    """An order with (item_no, location, quantity, quantity_shipped) lines."""
    customers = table("customer")
    found = await session.execute(sa.select(customers.c.no).where(customers.c.no == customer))
    if found.first() is None:
        await session.execute(sa.insert(customers).values(no=customer))
    await session.execute(
        sa.insert(table("sales_header")).values(
            document_type="order", no=no, sell_to_customer_no=customer
        )
    )
    for line_no, (item_no, location, quantity, shipped) in enumerate(lines, start=1):
        await session.execute(
            sa.insert(table("sales_line")).values(
                document_type="order",
                document_no=no,
                line_no=line_no * 10000,
                type="item",
                no=item_no,
                location_code=location,
                quantity=Decimal(quantity),
                quantity_shipped=Decimal(shipped),
            )
        )


async def add_purchase_line(
    session: AsyncSession, document_no: str, line_no: int, item_no: str, location: str, qty: int
) -> None:
    await session.execute(
        sa.insert(table("purchase_line")).values(
            document_no=document_no,
            line_no=line_no,
            item_no=item_no,
            location_code=location,
            outstanding_quantity=Decimal(qty),
        )
    )


async def couple(session: AsyncSession, item_no: str, crm_id: uuid.UUID) -> None:
    item = table("item")
    found = await session.execute(sa.select(item.c.system_id).where(item.c.no == item_no))
    system_id = found.scalar_one()
    await session.execute(
        sa.insert(table("integration_record")).values(
            table_name="item", integration_id=system_id, crm_table="product", crm_id=crm_id
        )
    )
