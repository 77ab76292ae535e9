"""exact decimals: amounts and quantities become ExactDecimal(18, 5)

PostgreSQL: NUMERIC(20, 5) -> NUMERIC(18, 5), an in-place type change. SQLite: its NUMERIC
kept binary floats; the columns become 64-bit integers holding the value times 10**5
(``app.models.types.ExactDecimal``). Every stored value is converted, none is dropped: a
value beyond 13 integer digits (the new precision) stops the migration with the table,
column and value to fix, before anything is changed. SQLite rebuilds the tables (batch
mode), which drops their availability triggers, so the triggers are reinstalled at the
end; that also rebuilds the aggregates from the now exact sources.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00.000000
"""

# ruff: noqa: S608 - every statement is built from the constants below, no input
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

import app.models.availability_triggers  # noqa: F401 - registers op.create_availability_triggers
import app.models.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: the columns as they were at revision 0001.
COLUMNS: dict[str, tuple[str, ...]] = {
    "currency": ("exchange_rate",),
    "item": ("unit_price", "unit_cost", "unit_volume", "gross_weight"),
    "resource": ("unit_price", "unit_cost", "capacity"),
    "customer": ("credit_limit_lcy",),
    "cust_ledger_entry": ("amount_lcy", "remaining_amount_lcy"),
    "item_ledger_entry": ("quantity",),
    "opportunity": ("estimated_value_lcy",),
    "purchase_line": ("outstanding_quantity",),
    "sales_header": ("payment_discount_pct", "invoice_discount_amount"),
    "sales_line": (
        "quantity", "quantity_shipped", "quantity_invoiced", "unit_price",
        "line_discount_amount", "amount", "amount_including_vat",
    ),
    "sales_price": ("minimum_quantity", "unit_price"),
    "sales_invoice_header": ("amount", "amount_including_vat", "invoice_discount_amount"),
    "sales_invoice_line": (
        "quantity", "unit_price", "line_discount_amount", "amount", "amount_including_vat",
    ),
    "item_availability": (
        "inventory", "qty_on_sales_order", "qty_on_purchase_order", "projected_available",
    ),
    "item_location_availability": (
        "inventory", "qty_on_sales_order", "qty_on_purchase_order", "projected_available",
    ),
}  # fmt: skip
DERIVED = ("item_availability", "item_location_availability")  # rebuilt by the triggers' install
OLD = sa.Numeric(precision=20, scale=5)
NEW = app.models.types.ExactDecimal(precision=18, scale=5)
FACTOR = 10**5
# Below this, a stored float times 10**5 is within a quarter of an integer, so SQLite's own
# round() gives the exact scaled value; larger floats go through their decimal text.
SQL_ROUNDING_LIMIT = 10**10


def _server_default(table: str) -> str | None:
    return "0" if table in DERIVED else None


def _check_range(connection: Connection) -> None:
    """Stop before changing anything if a value cannot be kept (13 integer digits at most)."""
    problems = []
    for table, columns in COLUMNS.items():
        if table in DERIVED:
            continue  # recomputed from the sources
        for column in columns:
            found = connection.execute(
                sa.text(f"SELECT max(abs({column})) FROM {table} WHERE abs({column}) >= :limit"),
                {"limit": int(NEW.limit)},
            ).scalar()
            if found is not None:
                problems.append(f"{table}.{column} holds {found}")
    if problems:
        msg = (
            "Amounts and quantities now carry 18 digits, 13 before the decimal point; change "
            f"these values first (nothing was migrated): {'; '.join(problems)}"
        )
        raise RuntimeError(msg)


def _scale_sqlite_values(connection: Connection, table: str, column: str) -> None:
    """Rewrite one column in place as integers (the NUMERIC affinity keeps them integers)."""
    connection.execute(
        sa.text(
            f"UPDATE {table} SET {column} = CASE WHEN typeof({column}) = 'integer' "
            f"THEN {column} * {FACTOR} ELSE CAST(round({column} * {FACTOR}) AS INTEGER) END "
            f"WHERE typeof({column}) = 'integer' "
            f"OR (typeof({column}) = 'real' AND abs({column}) < {SQL_ROUNDING_LIMIT})"
        )
    )
    large = connection.execute(
        sa.text(f"SELECT id, {column} FROM {table} WHERE typeof({column}) <> 'integer'")
    ).all()
    for row_id, value in large:
        scaled = NEW.scaled(value if isinstance(value, float) else Decimal(str(value)))
        connection.execute(
            sa.text(f"UPDATE {table} SET {column} = :scaled WHERE id = :id"),
            {"scaled": scaled, "id": row_id},
        )


def upgrade() -> None:
    connection = op.get_bind()
    _check_range(connection)
    if connection.dialect.name != "sqlite":
        for table, columns in COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=NEW, existing_type=OLD, nullable=False)
        return
    op.drop_availability_triggers()  # no per-row trigger work while the values are rewritten
    for table, columns in COLUMNS.items():
        if table in DERIVED:
            op.execute(f"DELETE FROM {table}")
        else:
            for column in columns:
                _scale_sqlite_values(connection, table, column)
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    type_=NEW,
                    existing_type=OLD,
                    existing_nullable=False,
                    existing_server_default=_server_default(table),
                )
    op.create_availability_triggers()  # app/models/availability_triggers.py; rebuilds


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        for table, columns in COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=OLD, existing_type=NEW, nullable=False)
        return
    op.drop_availability_triggers()
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    type_=OLD,
                    existing_type=NEW,
                    existing_nullable=False,
                    existing_server_default=_server_default(table),
                )
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = CASE WHEN {column} % {FACTOR} = 0 "
                f"THEN {column} / {FACTOR} ELSE {column} / {FACTOR}.0 END"
            )
    op.create_availability_triggers()
