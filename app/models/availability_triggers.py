"""Triggers that keep ``item_availability`` / ``item_location_availability`` current.

Why triggers: ledger entries and order lines are written by the REST API, the sales order
integration, bulk imports and plain SQL alike; a trigger sees every one of those writes in
the writer's own transaction, so the aggregate can never drift (an ORM hook would miss
bulk statements). Contributions, per item and location:

- ``item_ledger_entry``: Inventory += quantity;
- ``sales_line`` of an order, type item: QtyOnSalesOrder += quantity - quantity_shipped;
- ``purchase_line``: QtyOnPurchaseOrder += outstanding_quantity;
- ``item`` insert (or renumbering) recomputes the item's rows from those tables; item
  updates copy the shown fields; item deletes drop the rows.

Schema delivery: an Alembic operation ``op.create_availability_triggers()`` that
autogenerate adds whenever the triggers are missing, so ``bin/regen-initial-migration``
puts it at the end of the initial revision. It is idempotent (drop, then create) and also
rebuilds the aggregates, so a later migration that recreates one of the source tables on
SQLite (batch mode drops its triggers) must call it again.
"""

# ruff: noqa: S608 - every statement here is built from this module's constants, no input
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.operations import MigrateOperation, Operations
from alembic.util import DispatchPriority
from sqlalchemy import text
from sqlalchemy.engine import Connection

TRIGGER_PREFIX = "sb_avail_"
_QTY = "inventory, qty_on_sales_order, qty_on_purchase_order, projected_available"


@dataclass(frozen=True)
class _Source:
    table: str
    item: str
    inventory: str
    sales: str
    purchase: str
    condition: str


_SOURCES = [
    _Source("item_ledger_entry", "item_no", "{r}.quantity", "0", "0", "1 = 1"),
    _Source(
        "sales_line",
        "no",
        "0",
        "({r}.quantity - {r}.quantity_shipped)",
        "0",
        "{r}.document_type = 'order' AND {r}.type = 'item'",
    ),
    _Source("purchase_line", "item_no", "0", "0", "{r}.outstanding_quantity", "1 = 1"),
]


def _dialect_parts(dialect: str) -> tuple[str, str]:
    """(collate clause for comparisons with our code columns, current timestamp)."""
    if dialect == "postgresql":
        return ' COLLATE "C"', "now()"
    return "", "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


def _apply(source: _Source, ref: str, sign: str, dialect: str) -> list[str]:
    """Add (sign '') or remove (sign '-') one source row's contribution."""
    collate, now = _dialect_parts(dialect)
    item = f"{ref}.{source.item}"
    inv, sales, purch = (
        f"{sign}({part.format(r=ref)})"
        for part in (source.inventory, source.sales, source.purchase)
    )
    condition = source.condition.format(r=ref)
    projected = f"({inv}) - ({sales}) + ({purch})"
    updates = ", ".join(
        f"{col} = item_location_availability.{col} + excluded.{col}" for col in _QTY.split(", ")
    )
    return [
        f"INSERT INTO item_location_availability (item_no, location_code, {_QTY}, modified_at) "
        f"SELECT {item}, {ref}.location_code, {inv}, {sales}, {purch}, {projected}, {now} "
        f"WHERE {condition} AND EXISTS (SELECT 1 FROM item WHERE item.no = {item}) "
        f"ON CONFLICT (item_no, location_code) DO UPDATE SET {updates}, "
        "modified_at = excluded.modified_at",
        f"UPDATE item_availability SET inventory = inventory + {inv}, "
        f"qty_on_sales_order = qty_on_sales_order + {sales}, "
        f"qty_on_purchase_order = qty_on_purchase_order + {purch}, "
        f"projected_available = projected_available + {projected}, modified_at = {now} "
        f"WHERE item_no = {item}{collate} AND {condition}",
    ]


def _source_union(item_filter: str) -> str:
    parts = []
    for source in _SOURCES:
        inv, sales, purch = (
            p.format(r=source.table) for p in (source.inventory, source.sales, source.purchase)
        )
        where = source.condition.format(r=source.table)
        parts.append(
            f"SELECT {source.table}.{source.item} AS item_no, {source.table}.location_code AS loc, "
            f"{inv} AS inv, {sales} AS sales, {purch} AS purch FROM {source.table} "
            f"WHERE {where} AND {item_filter.format(col=f'{source.table}.{source.item}')}"
        )
    return " UNION ALL ".join(parts)


def _recompute_item(ref: str, dialect: str) -> list[str]:
    """Rebuild one item's rows from the source tables (``ref`` is NEW in a trigger)."""
    collate, now = _dialect_parts(dialect)
    union = _source_union(f"{{col}} = {ref}.no")
    return [
        f"DELETE FROM item_location_availability WHERE item_no = {ref}.no{collate}",
        f"INSERT INTO item_location_availability (item_no, location_code, {_QTY}, modified_at) "
        f"SELECT {ref}.no, u.loc, SUM(u.inv), SUM(u.sales), SUM(u.purch), "
        f"SUM(u.inv) - SUM(u.sales) + SUM(u.purch), {now} FROM ({union}) AS u GROUP BY u.loc",
        *_upsert_item(ref, dialect),
    ]


def _upsert_item(ref: str, dialect: str) -> list[str]:
    collate, _now = _dialect_parts(dialect)
    sums = ", ".join(f"COALESCE(SUM(l.{col}), 0)" for col in _QTY.split(", "))
    shown = "item_system_id, description, base_unit_of_measure, blocked"
    updates = ", ".join(
        f"{col} = excluded.{col}" for col in [*shown.split(", "), *_QTY.split(", ")]
    )
    return [
        f"INSERT INTO item_availability (item_no, {shown}, {_QTY}, modified_at) "
        f"SELECT {ref}.no, {ref}.system_id, {ref}.description, {ref}.base_unit_of_measure, "
        f"{ref}.blocked, {sums}, {ref}.modified_at FROM item_location_availability AS l "
        f"WHERE l.item_no = {ref}.no{collate} "
        f"ON CONFLICT (item_no) DO UPDATE SET {updates}, modified_at = excluded.modified_at"
    ]


def _item_update(dialect: str) -> list[str]:
    collate, _now = _dialect_parts(dialect)
    return [
        "UPDATE item_availability SET item_system_id = NEW.system_id, "
        "description = NEW.description, base_unit_of_measure = NEW.base_unit_of_measure, "
        f"blocked = NEW.blocked, modified_at = NEW.modified_at WHERE item_no = NEW.no{collate}"
    ]


def _item_delete(dialect: str) -> list[str]:
    collate, _now = _dialect_parts(dialect)
    return [
        f"DELETE FROM item_location_availability WHERE item_no = OLD.no{collate}",
        f"DELETE FROM item_availability WHERE item_no = OLD.no{collate}",
    ]


def rebuild_statements(dialect: str) -> list[str]:
    """Recompute both aggregates from scratch (after a bulk load with triggers off)."""
    collate, now = _dialect_parts(dialect)
    union = _source_union("{col} IN (SELECT no FROM item)")
    sums = ", ".join(f"COALESCE(s.{col}, 0)" for col in _QTY.split(", "))
    sum_cols = ", ".join(f"SUM({col}) AS {col}" for col in _QTY.split(", "))
    return [
        "DELETE FROM item_location_availability",
        "DELETE FROM item_availability",
        f"INSERT INTO item_location_availability (item_no, location_code, {_QTY}, modified_at) "
        f"SELECT u.item_no, u.loc, SUM(u.inv), SUM(u.sales), SUM(u.purch), "
        f"SUM(u.inv) - SUM(u.sales) + SUM(u.purch), {now} FROM ({union}) AS u "
        "GROUP BY u.item_no, u.loc",
        "INSERT INTO item_availability (item_no, item_system_id, description, "
        f"base_unit_of_measure, blocked, {_QTY}, modified_at) "
        f"SELECT i.no, i.system_id, i.description, i.base_unit_of_measure, i.blocked, {sums}, "
        f"i.modified_at FROM item AS i LEFT JOIN (SELECT item_no, {sum_cols} "
        "FROM item_location_availability GROUP BY item_no) AS s "
        f"ON s.item_no = i.no{collate}",
    ]


def _trigger_bodies(dialect: str) -> dict[str, tuple[str, str, dict[str, list[str]]]]:
    """name -> (table, when, {event: statements}); events INSERT/UPDATE/DELETE."""
    bodies: dict[str, tuple[str, str, dict[str, list[str]]]] = {}
    for source in _SOURCES:
        add = _apply(source, "NEW", "", dialect)
        remove = _apply(source, "OLD", "-", dialect)
        bodies[source.table] = (
            source.table,
            "",
            {"INSERT": add, "UPDATE": remove + add, "DELETE": remove},
        )
    bodies["item"] = (
        "item",
        "",
        {
            "INSERT": _recompute_item("NEW", dialect),
            "UPDATE": _item_update(dialect),
            "DELETE": _item_delete(dialect),
        },
    )
    bodies["item_renumber"] = (
        "item",
        "OLD.no <> NEW.no",
        {"UPDATE": _item_delete(dialect) + _recompute_item("NEW", dialect)},
    )
    return bodies


def _sqlite_ddl() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for name, (table, when, events) in _trigger_bodies("sqlite").items():
        for event, statements in events.items():
            trigger = f"{TRIGGER_PREFIX}{name}_{event.lower()}"
            condition = f" WHEN {when}" if when else ""
            body = "; ".join(statements)
            drop.append(f"DROP TRIGGER IF EXISTS {trigger}")
            create.append(
                f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW"
                f"{condition} BEGIN {body}; END"
            )
    return create, drop


def _postgres_ddl() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for name, (table, when, events) in _trigger_bodies("postgresql").items():
        function = f"{TRIGGER_PREFIX}{name}"
        branches = "".join(
            f"IF TG_OP = '{event}' THEN {'; '.join(statements)}; END IF; "
            for event, statements in events.items()
        )
        drop.append(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        drop.append(f"DROP FUNCTION IF EXISTS {function}()")
        create.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {branches}RETURN NULL; END $$"
        )
        condition = f" WHEN ({when})" if when else ""
        create.append(
            f"CREATE TRIGGER {function} AFTER {' OR '.join(events)} ON {table} "
            f"FOR EACH ROW{condition} EXECUTE FUNCTION {function}()"
        )
    return create, drop


def trigger_ddl(dialect: str) -> tuple[list[str], list[str]]:
    """(create statements, drop statements) for ``dialect`` ('sqlite' or 'postgresql')."""
    return _postgres_ddl() if dialect == "postgresql" else _sqlite_ddl()


def install(connection: Connection) -> None:
    """Drop and create the triggers, then rebuild the aggregates (idempotent)."""
    create, drop = trigger_ddl(connection.dialect.name)
    for statement in [*drop, *create, *rebuild_statements(connection.dialect.name)]:
        connection.execute(text(statement))


def uninstall(connection: Connection) -> None:
    for statement in trigger_ddl(connection.dialect.name)[1]:
        connection.execute(text(statement))


def triggers_present(connection: Connection) -> bool:
    if connection.dialect.name == "postgresql":
        query = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE :prefix"
    else:
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE :prefix"
    count = connection.execute(text(query), {"prefix": f"{TRIGGER_PREFIX}%"}).scalar_one()
    return bool(count)


@Operations.register_operation("create_availability_triggers")
class CreateAvailabilityTriggersOp(MigrateOperation):
    @classmethod
    def create_availability_triggers(cls, operations: Operations) -> Any:
        return operations.invoke(cls())

    def reverse(self) -> MigrateOperation:
        return DropAvailabilityTriggersOp()


@Operations.register_operation("drop_availability_triggers")
class DropAvailabilityTriggersOp(MigrateOperation):
    @classmethod
    def drop_availability_triggers(cls, operations: Operations) -> Any:
        return operations.invoke(cls())

    def reverse(self) -> MigrateOperation:
        return CreateAvailabilityTriggersOp()


@Operations.implementation_for(CreateAvailabilityTriggersOp)
def _create(operations: Operations, _operation: CreateAvailabilityTriggersOp) -> None:
    install(operations.get_bind())


@Operations.implementation_for(DropAvailabilityTriggersOp)
def _drop(operations: Operations, _operation: DropAvailabilityTriggersOp) -> None:
    uninstall(operations.get_bind())


@renderers.dispatch_for(CreateAvailabilityTriggersOp)
def _render_create(_context: Any, _operation: CreateAvailabilityTriggersOp) -> str:
    return "op.create_availability_triggers()  # app/models/availability_triggers.py"


@renderers.dispatch_for(DropAvailabilityTriggersOp)
def _render_drop(_context: Any, _operation: DropAvailabilityTriggersOp) -> str:
    return "op.drop_availability_triggers()"


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST)  # after the tables
def _compare(context: Any, upgrade_ops: Any, _schemas: Any) -> None:
    connection = context.connection
    if connection is not None and not triggers_present(connection):
        upgrade_ops.ops.append(CreateAvailabilityTriggersOp())
