"""Revision 0006 (exact decimals) on databases holding data written before it, as floats
(as revision 0001 introduced them): every amount and quantity survives, exact, on SQLite
(floats -> scaled integers) and PostgreSQL (NUMERIC(20,5) -> NUMERIC(18,5)); a value that
cannot be kept stops it before any change."""

# ruff: noqa: S608 - the SQL is built from this module's constants only

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import app.models.availability_triggers  # noqa: F401 - the triggers' Alembic operations
from app.db import create_engine
from app.migrations import upgrade_database
from tests.conftest import _POSTGRES_URL, BACKENDS
from tests.fixtures import services

NOW = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
BEFORE = "0005"  # the revision before the exact decimals
HEAD = "0007"  # upgraded through 0006, the exact decimals, to the newest revision

# What revision 0001 stored: SQLAlchemy bound Decimals as floats on SQLite.
LEDGER = [("1000", 0.1), ("1000", 0.2), ("1000", 0.3), ("1001", 1234567890.12345),
          ("1001", 7), ("1002", 123456789012.5), ("1002", -0.00001)]  # fmt: skip
EXPECTED_INVENTORY = {
    "1000": Decimal("0.6"), "1001": Decimal("1234567897.12345"),
    "1002": Decimal("123456789012.49999"),
}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own per test (migrated here, step by step)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    assert _POSTGRES_URL is not None
    url = asyncio.run(services.create_run_database(_POSTGRES_URL, purpose="migration"))
    yield url
    asyncio.run(services.drop_run_database(_POSTGRES_URL, url))


async def _execute(engine: AsyncEngine, statements: list[tuple[str, dict[str, Any]]]) -> None:
    async with engine.begin() as connection:
        for sql, params in statements:
            await connection.execute(sa.text(sql), params)


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.text(sql))).all())


def _audit(engine: AsyncEngine) -> dict[str, Any]:
    system_id = uuid.uuid4()
    is_sqlite = engine.dialect.name == "sqlite"
    return {"system_id": system_id.hex if is_sqlite else system_id, "at": NOW}


def _number(engine: AsyncEngine, value: float) -> Any:
    """As revision 0001 bound it: a float on SQLite, a Decimal on PostgreSQL."""
    return value if engine.dialect.name == "sqlite" else Decimal(str(value))


async def _fill_revision_0001(engine: AsyncEngine, *, unit_price: float = 12.34) -> None:
    audit = "system_id, created_at, modified_at, modified_by"
    values = ":system_id, :at, :at, 'old'"
    statements = [
        (f"INSERT INTO item ({audit}, blocked, no, description, unit_price, unit_cost, "
         f"unit_volume, gross_weight, vendor_no, vendor_item_no) VALUES ({values}, false, :no, "
         "'', :price, 0.1, 0, 0, '', '')",
         {**_audit(engine), "no": no, "price": _number(engine, unit_price)})
        for no in ("1000", "1001", "1002")
    ]  # fmt: skip
    statements += [
        (f"INSERT INTO item_ledger_entry ({audit}, entry_no, item_no, location_code, "
         f"posting_date, entry_type, quantity, document_no) VALUES ({values}, :n, :no, '', "
         ":day, 'purchase', :quantity, '')",
         {**_audit(engine), "n": n, "no": no, "quantity": _number(engine, quantity),
          "day": dt.date(2026, 1, 1)})
        for n, (no, quantity) in enumerate(LEDGER)
    ]  # fmt: skip
    statements.append(
        (f"INSERT INTO currency ({audit}, code, description, symbol, exchange_rate) "
         f"VALUES ({values}, 'EUR', '', '', 1.23456)", _audit(engine))
    )  # fmt: skip
    await _execute(engine, statements)


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_every_value_survives_exactly(blank_url: str) -> None:
    await upgrade_database(blank_url, revision=BEFORE)
    engine = create_engine(blank_url)
    try:
        await _fill_revision_0001(engine)
        await upgrade_database(blank_url)
        from_orm = await _rows(engine, "SELECT version_num FROM alembic_version")
        assert from_orm == [(HEAD,)]
        async with engine.connect() as connection:
            ledger = SQLModel.metadata.tables["item_ledger_entry"]
            found = (
                (await connection.execute(sa.select(ledger.c.quantity).order_by(ledger.c.entry_no)))
                .scalars()
                .all()
            )
            assert found == [Decimal(str(q)) for _no, q in LEDGER]
            availability = SQLModel.metadata.tables["item_availability"]
            inventory = dict(
                (
                    await connection.execute(
                        sa.select(availability.c.item_no, availability.c.inventory)
                    )
                ).all()
            )
            assert inventory == EXPECTED_INVENTORY
            item = SQLModel.metadata.tables["item"]
            prices = (
                await connection.execute(sa.select(item.c.unit_price, item.c.unit_cost))
            ).all()
            assert set(prices) == {(Decimal("12.34"), Decimal("0.1"))}
            currency = SQLModel.metadata.tables["currency"]
            assert (
                await connection.execute(sa.select(currency.c.exchange_rate))
            ).scalar_one() == Decimal("1.23456")
            assert await connection.run_sync(_differences) == []  # the schema is the models'
        # The triggers work on the new columns: one more entry, an exact new total.
        await _execute(engine, [(
            "INSERT INTO item_ledger_entry (system_id, created_at, modified_at, modified_by, "
            "entry_no, item_no, location_code, posting_date, entry_type, quantity, document_no) "
            "VALUES (:system_id, :at, :at, 'new', 99, '1000', '', :day, 'purchase', "
            ":quantity, '')",
            {**_audit(engine), "day": dt.date(2026, 1, 2),
             "quantity": 30000 if "sqlite" in blank_url else Decimal("0.3")},
        )])  # fmt: skip
        (total,) = await _rows(
            engine, "SELECT inventory FROM item_availability WHERE item_no = '1000'"
        )
        assert Decimal(str(total[0])) == (
            Decimal(90000) if "sqlite" in blank_url else Decimal("0.9")
        )
    finally:
        await engine.dispose()


async def test_downgrade_and_upgrade_again_keep_the_values(blank_url: str) -> None:
    await upgrade_database(blank_url, revision=BEFORE)
    engine = create_engine(blank_url)
    try:
        await _fill_revision_0001(engine)
        await upgrade_database(blank_url)
        await _downgrade(blank_url)
        await upgrade_database(blank_url)
        rows = await _rows(engine, "SELECT quantity FROM item_ledger_entry ORDER BY entry_no")
        scale = 100_000 if "sqlite" in blank_url else 1
        assert [Decimal(str(q)) / scale for (q,) in rows] == [Decimal(str(q)) for _no, q in LEDGER]
    finally:
        await engine.dispose()


async def _downgrade(url: str) -> None:
    from alembic import command

    from app.migrations import alembic_config

    engine = create_engine(url)
    config = alembic_config(url)

    def run(connection: Any) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)

    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                await connection.commit()
            async with connection.begin():
                await connection.run_sync(run)
    finally:
        await engine.dispose()


async def test_a_value_beyond_the_new_precision_stops_it_unchanged(blank_url: str) -> None:
    await upgrade_database(blank_url, revision=BEFORE)
    engine = create_engine(blank_url)
    try:
        await _fill_revision_0001(engine, unit_price=12345678901234.5)
        with pytest.raises(RuntimeError, match=r"item\.unit_price holds"):
            await upgrade_database(blank_url)
        assert await _rows(engine, "SELECT version_num FROM alembic_version") == [(BEFORE,)]
        prices = await _rows(engine, "SELECT unit_price FROM item")
        assert {Decimal(str(p)) for (p,) in prices} == {Decimal("12345678901234.5")}
        ledger = await _rows(engine, "SELECT quantity FROM item_ledger_entry ORDER BY entry_no")
        assert [float(q) for (q,) in ledger] == [float(q) for _no, q in LEDGER]
    finally:
        await engine.dispose()
