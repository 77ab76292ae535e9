"""An ERP company big enough for the reliability runs, seeded and changed in bulk.

Units, a currency, a customer price group, items with sales prices, customers and their
contacts: the master data a full sync carries, in the dependency order the queue keeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import col, func, select

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.models import erp

UNITS = ("PCS", "BOX", "KG", "L", "SET")
PRICE_GROUP = "RETAIL"
CHUNK = 1000  # rows per commit while seeding


@dataclass(frozen=True)
class Size:
    items: int
    customers: int
    price_every: int = 5  # one sales price for every n-th item


def _item(n: int) -> erp.Item:
    return erp.Item(
        no=f"I{n:06d}", description=f"Item {n}", base_unit_of_measure=UNITS[n % len(UNITS)],
        unit_price=Decimal(n % 97) + Decimal("0.25"), unit_cost=Decimal(n % 13),
    )  # fmt: skip


def _price(n: int) -> erp.SalesPrice:
    return erp.SalesPrice(
        item_no=f"I{n:06d}", sales_type=erp.SalesType.customer_price_group,
        sales_code=PRICE_GROUP, unit_price=Decimal(n % 50) + Decimal(1),
    )  # fmt: skip


def _customer(n: int) -> list[Any]:
    no = f"C{n:05d}"
    customer = erp.Customer(no=no, name=f"Customer {n}", city="Leeds", email=f"c{n}@shop.example")
    if n % 4:
        return [customer]
    contact = erp.Contact(no=f"K{n:05d}", first_name="Pat", surname=f"Buyer {n}",
                          company_no=no, email=f"buyer{n}@shop.example")  # fmt: skip
    return [customer, contact]


async def _add_chunked(sessionmaker: SessionMaker, rows: list[Any]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with session_scope(sessionmaker) as session:
            session.add_all(rows[start : start + CHUNK])


async def seed(sessionmaker: SessionMaker, size: Size) -> None:
    async with session_scope(sessionmaker) as session:
        session.add_all([erp.UnitOfMeasure(code=code, description=code) for code in UNITS])
        session.add(erp.Currency(code="EUR", description="Euro", symbol="E"))
        session.add(erp.CustomerPriceGroup(code=PRICE_GROUP, description="Retail"))
    await add_items(sessionmaker, range(size.items), price_every=size.price_every)
    await _add_chunked(sessionmaker, [r for n in range(size.customers) for r in _customer(n)])


async def add_items(sessionmaker: SessionMaker, numbers: range, *, price_every: int) -> None:
    await _add_chunked(sessionmaker, [_item(n) for n in numbers])
    await _add_chunked(sessionmaker, [_price(n) for n in numbers if n % price_every == 0])


async def change_some(sessionmaker: SessionMaker, rng: random.Random, *, new_items: int) -> None:
    """What a working day does between two runs: new items, edited items and customers."""
    async with sessionmaker() as session:
        items = (await session.exec(select(func.count()).select_from(erp.Item))).one()
        customers = (await session.exec(select(erp.Customer.no))).all()
    await add_items(sessionmaker, range(items, items + new_items), price_every=5)
    edited = [f"I{n:06d}" for n in rng.sample(range(items), k=min(items, 3 * new_items))]
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(erp.Item)
            .where(col(erp.Item.no).in_(edited))
            .values(unit_price=Decimal(rng.randint(1, 500)), modified_at=utc_now())
        )
        await session.exec(
            update(erp.Customer)
            .where(col(erp.Customer.no).in_(rng.sample(list(customers), k=min(20, len(customers)))))
            # A fresh value each round: a customer edited twice with the same city would be
            # unchanged for the CRM, and the checks would see a stale row where none is.
            .values(city=f"City {rng.getrandbits(32):08x}", modified_at=utc_now())
        )
