"""A small sample company, loaded once: rows that exist already (by their code) are left
as they are, so running the demo again adds nothing and overwrites no one's edits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.erp import ledger, tables
from app.erp.resources import ErpTable, find_by_keys, upsert_rows
from app.models.erp import ContactType, Item, ItemLedgerEntryType, SalesType

OPENING_STOCK_DOCUMENT = "DEMO-OPENING"


@dataclass(frozen=True)
class SampleItem:
    no: str
    description: str
    unit: str
    unit_price: str
    unit_cost: str
    stock: int


@dataclass(frozen=True)
class Salesperson:
    code: str
    name: str
    email: str
    phone: str


UNITS = (
    {"code": "PCS", "description": "Piece"},
    {"code": "HOUR", "description": "Hour"},
    {"code": "BOX", "description": "Box"},
)
CURRENCIES = ({"code": "EUR", "description": "Euro", "symbol": "€"},)
SALESPEOPLE = (
    Salesperson("AH", "Alicia Hart", "alicia.hart@cronus.example", "+1 555 0101"),
    Salesperson("BK", "Ben Kowalski", "ben.kowalski@cronus.example", "+1 555 0102"),
    Salesperson("CM", "Carla Moreno", "carla.moreno@cronus.example", "+1 555 0103"),
)
PRICE_GROUPS = (
    {"code": "RETAIL", "description": "Retail customers"},
    {"code": "WHOLESALE", "description": "Wholesale customers"},
)
ITEMS = (
    SampleItem("1000", "Bicycle", "PCS", "4000", "2800", 25),
    SampleItem("1001", "Touring Bicycle", "PCS", "4500", "3100", 12),
    SampleItem("1100", "Front Wheel", "PCS", "120", "75", 80),
    SampleItem("1110", "Rim", "PCS", "45", "28", 150),
    SampleItem("1120", "Spokes", "BOX", "18", "9", 60),
    SampleItem("1150", "Front Hub", "PCS", "38", "21", 70),
    SampleItem("1200", "Back Wheel", "PCS", "135", "82", 75),
    SampleItem("1250", "Back Hub", "PCS", "42", "24", 65),
    SampleItem("1300", "Chain Assy", "PCS", "35", "19", 120),
    SampleItem("1310", "Chain", "PCS", "22", "12", 200),
    SampleItem("1400", "Mudguard front", "PCS", "16", "8", 90),
    SampleItem("1450", "Mudguard back", "PCS", "17", "9", 85),
    SampleItem("1500", "Lamp", "PCS", "29", "15", 140),
    SampleItem("1600", "Bell", "PCS", "9", "4", 300),
    SampleItem("1700", "Brake", "PCS", "48", "27", 110),
    SampleItem("1710", "Hand rear wheel Brake", "PCS", "52", "30", 95),
    SampleItem("1800", "Pedal", "PCS", "25", "13", 160),
    SampleItem("1850", "Saddle", "PCS", "55", "31", 45),
    SampleItem("1900", "Frame", "PCS", "650", "410", 20),
    SampleItem("1950", "Handlebars", "PCS", "60", "34", 50),
)
RESOURCES = (
    {"no": "ASSEMBLY", "name": "Bicycle assembly", "base_unit_of_measure": "HOUR",
     "unit_price": Decimal(85), "unit_cost": Decimal(50), "capacity": Decimal(160)},
    {"no": "REPAIR", "name": "Repair service", "base_unit_of_measure": "HOUR",
     "unit_price": Decimal(95), "unit_cost": Decimal(55), "capacity": Decimal(120)},
    {"no": "DELIVERY", "name": "Delivery and set-up", "base_unit_of_measure": "HOUR",
     "unit_price": Decimal(60), "unit_cost": Decimal(35), "capacity": Decimal(80)},
)  # fmt: skip
CUSTOMERS = (
    {"no": "C10000", "name": "The Cannon Group PLC", "city": "Birmingham", "post_code": "B27 4KT",
     "address": "192 Market Square", "country_code": "GB", "phone": "+44 121 555 0110",
     "email": "buyer@cannon.example", "salesperson_code": "AH", "customer_price_group": "RETAIL",
     "credit_limit_lcy": Decimal(10000)},
    {"no": "C20000", "name": "Selangorian Ltd.", "city": "London", "post_code": "W2 8HG",
     "address": "153 Thomas Drive", "country_code": "GB", "phone": "+44 20 555 0120",
     "email": "orders@selangorian.example", "salesperson_code": "BK",
     "customer_price_group": "WHOLESALE", "credit_limit_lcy": Decimal(25000)},
    {"no": "C30000", "name": "John Haddock Insurance Co.", "city": "Manchester",
     "post_code": "M22 5TG", "address": "10 Deerfield Road", "country_code": "GB",
     "phone": "+44 161 555 0130", "email": "office@haddock.example", "salesperson_code": "CM"},
    {"no": "C40000", "name": "Deerfield Graphics Company", "city": "Dublin", "post_code": "D02",
     "address": "10 High Tower Green", "country_code": "IE", "phone": "+353 1 555 0140",
     "email": "info@deerfield.example", "salesperson_code": "AH", "currency_code": "EUR",
     "customer_price_group": "RETAIL"},
    {"no": "C50000", "name": "Guildford Water Department", "city": "Guildford",
     "post_code": "GU2 7XH", "address": "2 Water Lane", "country_code": "GB",
     "phone": "+44 1483 555 0150", "email": "stores@guildford-water.example",
     "salesperson_code": "BK", "customer_price_group": "WHOLESALE"},
)  # fmt: skip
# The company contact of customer X is the contact numbered X (app/sync/contact_rules.py).
CONTACTS = (
    {"no": "C10000", "type": ContactType.company, "surname": "The Cannon Group PLC"},
    {"no": "C20000", "type": ContactType.company, "surname": "Selangorian Ltd."},
    {"no": "CT100", "type": ContactType.person, "company_no": "C10000", "first_name": "Andy",
     "surname": "Teal", "email": "andy.teal@cannon.example", "salesperson_code": "AH"},
    {"no": "CT200", "type": ContactType.person, "company_no": "C20000", "first_name": "Mindy",
     "surname": "Martin", "email": "mindy.martin@selangorian.example", "salesperson_code": "BK"},
)  # fmt: skip
# Price per customer price group: (item, group, price).
GROUP_PRICES = (
    ("1000", "RETAIL", "3900"), ("1000", "WHOLESALE", "3500"),
    ("1001", "RETAIL", "4400"), ("1001", "WHOLESALE", "3950"),
    ("1100", "WHOLESALE", "105"), ("1200", "WHOLESALE", "118"),
    ("1500", "RETAIL", "27"), ("1900", "WHOLESALE", "590"),
)  # fmt: skip


def _items() -> list[dict[str, Any]]:
    return [
        {"no": i.no, "description": i.description, "base_unit_of_measure": i.unit,
         "unit_price": Decimal(i.unit_price), "unit_cost": Decimal(i.unit_cost)}
        for i in ITEMS
    ]  # fmt: skip


def _salespeople() -> list[dict[str, Any]]:
    return [
        {"code": p.code, "name": p.name, "email": p.email, "phone": p.phone} for p in SALESPEOPLE
    ]


def _prices() -> list[dict[str, Any]]:
    return [
        {"item_no": item, "sales_type": SalesType.customer_price_group, "sales_code": group,
         "unit_of_measure_code": "PCS", "unit_price": Decimal(price)}
        for item, group, price in GROUP_PRICES
    ]  # fmt: skip


async def _insert_missing(
    session: AsyncSession, table: ErpTable, rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Insert the rows whose natural key is not there yet; returns the rows inserted."""
    existing = await find_by_keys(session, table, [table.key_of(row) for row in rows])
    missing = [row for row in rows if table.key_of(row) not in existing]
    if not missing:
        return []
    return (await upsert_rows(session, table, missing)).rows


async def load_sample_company(session: AsyncSession) -> dict[str, int]:
    """Rows added per table (0 everywhere on a second run); the caller commits once."""
    added: dict[str, int] = {}
    steps: tuple[tuple[str, ErpTable, Sequence[Mapping[str, Any]]], ...] = (
        ("units of measure", tables.UNIT_OF_MEASURE, UNITS),
        ("currencies", tables.CURRENCY, CURRENCIES),
        ("salespeople", tables.SALESPERSON, _salespeople()),
        ("customer price groups", tables.CUSTOMER_PRICE_GROUP, PRICE_GROUPS),
        ("items", tables.ITEM, _items()),
        ("resources", tables.RESOURCE, RESOURCES),
        ("customers", tables.CUSTOMER, CUSTOMERS),
        ("contacts", tables.CONTACT, CONTACTS),
        ("sales prices", tables.SALES_PRICE, _prices()),
    )
    for label, table, rows in steps:
        inserted = await _insert_missing(session, table, rows)
        added[label] = len(inserted)
        if table is tables.ITEM:
            added["item ledger entries"] = len(await _opening_stock(session, inserted))
    return added


async def _opening_stock(session: AsyncSession, items: Sequence[Item]) -> list[Any]:
    """Stock of the items just created, as BC's opening balance: positive adjustments."""
    stock = {i.no: i.stock for i in ITEMS}
    today = utc_now().date()
    entries = [
        {"item_no": item.no, "posting_date": today, "quantity": Decimal(stock[item.no]),
         "entry_type": ItemLedgerEntryType.positive_adjmt,
         "document_no": OPENING_STOCK_DOCUMENT}
        for item in items
    ]  # fmt: skip
    return await ledger.add_item_entries(session, entries)
