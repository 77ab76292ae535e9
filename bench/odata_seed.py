"""Seeding for bench/odata.py (and bench/odata_load.py): the same data on SQLite or PostgreSQL.

100,000 items, 1,000,000 ledger entries and 20,000 open order lines (times ``scale``),
written in bulk with the availability triggers off, then the aggregates rebuilt the way the
migration does. Quantities are exact decimals (``ExactDecimal``): on SQLite the seed
writes the scaled integers the column type stores.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

LOCATIONS = ["", "BLUE", "RED", "GREEN"]
NOW_TEXT = "2026-01-15 12:00:00.000000"
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
SCALED = 100_000  # ExactDecimal's factor on SQLite


def sizes(scale: float) -> tuple[int, int, int]:
    return int(100_000 * scale), int(1_000_000 * scale), int(20_000 * scale)


def _ledger(n_items: int, n_ledger: int, rng: random.Random) -> Iterator[tuple[int, str, str, int]]:
    """(entry no, item no, location, whole quantity) rows."""
    for n in range(n_ledger):
        yield n, str(100_000 + n % n_items), LOCATIONS[n % 4], rng.randint(-3, 8)


def _lines(
    n_items: int, n_lines: int, rng: random.Random
) -> Iterator[tuple[str, int, str, str, int, int]]:
    """(order no, line no, item no, location, quantity, shipped) order lines."""
    for n in range(n_lines):
        yield (f"SO{n // 10:06d}", (n % 10 + 1) * 10000, str(100_000 + rng.randrange(n_items)),
               LOCATIONS[n % 4], rng.randint(1, 20), rng.randint(0, 1))  # fmt: skip


# -- SQLite ---------------------------------------------------------------------------------


def seed_sqlite(path: Path, scale: float) -> dict[str, int]:
    from sqlalchemy import create_engine

    from app.migrations import upgrade_database_sync
    from app.models import availability_triggers

    upgrade_database_sync(f"sqlite+aiosqlite:///{path}")
    n_items, n_ledger, n_lines = sizes(scale)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        availability_triggers.uninstall(connection)
    rng = random.Random(7)
    db = sqlite3.connect(path)
    audit = (NOW_TEXT, NOW_TEXT, "bench")
    db.executemany(
        "INSERT INTO item (system_id, created_at, modified_at, modified_by, blocked, no, "
        "description, unit_price, unit_cost, unit_volume, gross_weight, vendor_no, vendor_item_no)"
        " VALUES (?,?,?,?,0,?,?,0,0,0,0,'','')",
        ((uuid.uuid4().hex, *audit, str(100_000 + n), f"Item {n}") for n in range(n_items)),
    )
    db.executemany(
        "INSERT INTO item_ledger_entry (system_id, created_at, modified_at, modified_by, entry_no,"
        " item_no, location_code, posting_date, entry_type, quantity, document_no)"
        " VALUES (?,?,?,?,?,?,?,'2026-01-01','purchase',?,'')",
        ((uuid.uuid4().hex, *audit, n, no, location, quantity * SCALED)
         for n, no, location, quantity in _ledger(n_items, n_ledger, rng)),
    )  # fmt: skip
    db.execute(
        "INSERT INTO customer (system_id, created_at, modified_at, modified_by, no, name,"
        " phone, email, home_page, contact, primary_contact_no, payment_terms_code,"
        " shipment_method_code, shipping_agent_code, credit_limit_lcy, blocked, address,"
        " address_2, city, post_code, county, country_code)"
        " VALUES (?,?,?,?,'C1','','','','','','','','','',0,0,'','','','','','')",
        (uuid.uuid4().hex, *audit),
    )
    _sqlite_orders(db, rng, n_items, n_lines, audit)
    db.commit()
    db.close()
    with engine.begin() as connection:
        availability_triggers.install(connection)  # triggers back on + aggregates rebuilt
    engine.dispose()
    return {"items": n_items, "ledger_entries": n_ledger, "open_order_lines": n_lines}


def _sqlite_orders(
    db: sqlite3.Connection, rng: random.Random, n_items: int, n_lines: int,
    audit: tuple[str, str, str],
) -> None:  # fmt: skip
    header_columns = [row[1] for row in db.execute("PRAGMA table_info(sales_header)")]
    defaults: dict[str, Any] = dict.fromkeys(header_columns, "")
    defaults.pop("id", None)
    defaults.update(
        payment_discount_pct=0, invoice_discount_amount=0, status="open", document_type="order",
        sell_to_customer_no="C1", requested_delivery_date=None, last_shipment_date=None,
        modified_by="bench", created_at=NOW_TEXT, modified_at=NOW_TEXT,
    )  # fmt: skip
    names = list(defaults)
    rows = [
        tuple(dict(defaults, no=f"SO{n:06d}", system_id=uuid.uuid4().hex)[c] for c in names)
        for n in range(max(1, n_lines // 10))
    ]
    db.executemany(
        f"INSERT INTO sales_header ({','.join(names)}) VALUES ({','.join('?' * len(names))})",  # noqa: S608
        rows,
    )
    db.executemany(
        "INSERT INTO sales_line (system_id, created_at, modified_at, modified_by, document_type,"
        " document_no, line_no, type, no, description, location_code, quantity, quantity_shipped,"
        " quantity_invoiced, unit_of_measure_code, unit_price, line_discount_amount, amount,"
        " amount_including_vat) VALUES (?,?,?,?,'order',?,?,'item',?,'',?,?,?,0,'',0,0,0,0)",
        ((uuid.uuid4().hex, *audit, order, line, item, location, quantity * SCALED,
          shipped * SCALED) for order, line, item, location, quantity, shipped
         in _lines(n_items, n_lines, rng)),
    )  # fmt: skip


def create_sqlite_reader(path: Path, data_dir: Path) -> str:
    """A product-availability user with an access key; returns the Basic header value."""
    from app.auth import access_keys
    from app.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{path}")
    issued = access_keys.issue_key(settings.access_key_pepper.get_secret_value())
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM user_account WHERE user_name = 'crm'")  # a reused database
    db.execute(
        "INSERT INTO user_account (system_id, created_at, modified_at, modified_by,"
        " user_name, full_name, email, roles, state) VALUES (?,?,?,?,'crm','','',"
        "'product-availability','enabled')",
        (uuid.uuid4().hex, NOW_TEXT, NOW_TEXT, "bench"),
    )
    user_id = db.execute("SELECT id FROM user_account WHERE user_name='crm'").fetchone()[0]
    db.execute(
        "INSERT INTO web_service_access_key (system_id, created_at, modified_at,"
        " modified_by, user_id, key_id, key_digest) VALUES (?,?,?,?,?,?,?)",
        (uuid.uuid4().hex, NOW_TEXT, NOW_TEXT, "bench", user_id, issued.key_id, issued.digest),
    )
    db.commit()
    db.close()
    return "Basic " + base64.b64encode(f"crm:{issued.key}".encode()).decode()


# -- PostgreSQL -----------------------------------------------------------------------------


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def postgres_database_url(base_url: str, name: str) -> str:
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def seed_postgres(base_url: str, name: str, scale: float) -> dict[str, int]:
    """Create database ``name`` next to ``base_url``'s, migrate it and fill it (COPY)."""
    return asyncio.run(_seed_postgres(base_url, name, scale))


async def _seed_postgres(base_url: str, name: str, scale: float) -> dict[str, int]:
    import asyncpg

    from app.migrations import upgrade_database
    from app.models import availability_triggers

    admin = await asyncpg.connect(dsn(base_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_database_url(base_url, name)
    await upgrade_database(url)
    connection = await asyncpg.connect(dsn(url))
    n_items, n_ledger, n_lines = sizes(scale)
    try:
        for statement in availability_triggers.trigger_ddl("postgresql")[1]:
            await connection.execute(statement)
        await _copy_postgres(connection, n_items, n_ledger, n_lines)
        create, _drop = availability_triggers.trigger_ddl("postgresql")
        for statement in [*create, *availability_triggers.rebuild_statements("postgresql")]:
            await connection.execute(statement)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return {"items": n_items, "ledger_entries": n_ledger, "open_order_lines": n_lines}


async def _copy_postgres(connection: Any, n_items: int, n_ledger: int, n_lines: int) -> None:
    rng = random.Random(7)
    audit = (NOW, NOW, "bench")
    zero = Decimal(0)
    await connection.copy_records_to_table(
        "item",
        columns=["system_id", "created_at", "modified_at", "modified_by", "blocked", "no",
                 "description", "unit_price", "unit_cost", "unit_volume", "gross_weight",
                 "vendor_no", "vendor_item_no"],
        records=[(uuid.uuid4(), *audit, False, str(100_000 + n), f"Item {n}", zero, zero, zero,
                  zero, "", "") for n in range(n_items)],
    )  # fmt: skip
    await connection.copy_records_to_table(
        "item_ledger_entry",
        columns=["system_id", "created_at", "modified_at", "modified_by", "entry_no", "item_no",
                 "location_code", "posting_date", "entry_type", "quantity", "document_no"],
        records=[(uuid.uuid4(), *audit, n, no, location, date(2026, 1, 1), "purchase",
                  Decimal(quantity), "") for n, no, location, quantity
                 in _ledger(n_items, n_ledger, rng)],
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO customer (system_id, created_at, modified_at, modified_by, no, name, phone,"
        " email, home_page, contact, primary_contact_no, payment_terms_code,"
        " shipment_method_code, shipping_agent_code, credit_limit_lcy, blocked, address,"
        " address_2, city, post_code, county, country_code) VALUES ($1,$2,$2,'bench','C1','',"
        "'','','','','','','','',0,false,'','','','','','')",
        uuid.uuid4(), NOW,
    )  # fmt: skip
    orders = [
        {"system_id": uuid.uuid4(), "document_type": "order", "no": f"SO{n:06d}",
         "sell_to_customer_no": "C1", "status": "open"}
        for n in range(max(1, n_lines // 10))
    ]  # fmt: skip
    await _copy_with_defaults(connection, "sales_header", orders)
    lines = [
        {"system_id": uuid.uuid4(), "document_type": "order", "document_no": order,
         "line_no": line, "type": "item", "no": item, "location_code": location,
         "quantity": Decimal(quantity), "quantity_shipped": Decimal(shipped)}
        for order, line, item, location, quantity, shipped in _lines(n_items, n_lines, rng)
    ]  # fmt: skip
    await _copy_with_defaults(connection, "sales_line", lines)


_EMPTY = {"numeric": Decimal(0), "integer": 0, "boolean": False}


async def _copy_with_defaults(connection: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows``; required columns they leave out get an empty value of their type."""
    columns = await connection.fetch(
        "SELECT column_name, data_type, is_nullable, column_default FROM "
        "information_schema.columns WHERE table_name = $1",
        table,
    )
    filled: dict[str, Any] = {"created_at": NOW, "modified_at": NOW, "modified_by": "bench"}
    for column in columns:
        required = column["is_nullable"] == "NO" and column["column_default"] is None
        if required and column["column_name"] not in filled:
            filled[column["column_name"]] = _EMPTY.get(column["data_type"], "")
    names = sorted({*filled, *rows[0]})
    records = [tuple({**filled, **row}[name] for name in names) for row in rows]
    await connection.copy_records_to_table(table, columns=names, records=records)


def create_postgres_reader(url: str, data_dir: Path) -> str:
    return asyncio.run(_create_postgres_reader(url, data_dir))


async def _create_postgres_reader(url: str, data_dir: Path) -> str:
    import asyncpg

    from app.auth import access_keys
    from app.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=url)
    issued = access_keys.issue_key(settings.access_key_pepper.get_secret_value())
    connection = await asyncpg.connect(dsn(url))
    try:
        await connection.execute("DELETE FROM user_account WHERE user_name = 'crm'")
        user_id = await connection.fetchval(
            "INSERT INTO user_account (system_id, created_at, modified_at, modified_by,"
            " user_name, full_name, email, roles, state) VALUES ($1,$2,$2,'bench','crm','','',"
            "'product-availability','enabled') RETURNING id",
            uuid.uuid4(), NOW,
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO web_service_access_key (system_id, created_at, modified_at, modified_by,"
            " user_id, key_id, key_digest) VALUES ($1,$2,$2,'bench',$3,$4,$5)",
            uuid.uuid4(), NOW, user_id, issued.key_id, issued.digest,
        )  # fmt: skip
    finally:
        await connection.close()
    return "Basic " + base64.b64encode(f"crm:{issued.key}".encode()).decode()
