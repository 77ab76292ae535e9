"""Generic create / read / update / delete and bulk upsert for the ERP master tables.

Each table is described once by an :class:`ErpTable` (model, natural key, references,
row checks); the same code then serves currencies, items, customers, sales prices and the
rest, so every table behaves the same way: duplicate codes are a 409 naming the code,
missing references a 422 naming the field and code, and nothing partial is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp.references import Reference, chunked, missing_references
from app.erp.rows import as_row_id, row_values
from app.erp.validation import RowError, flush_or_conflict, raise_row_errors
from app.errors import ConflictError, NotFoundError
from app.models.base import TableBase

RowCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ErpTable:
    """What the generic code needs to know about one table.

    ``path_key`` is the code column a URL names a row by; tables without one (sales
    prices, purchase lines) are named by ``id`` or ``system_id``. ``match_fields`` is the
    natural key bulk upsert matches rows by.
    """

    model: type[TableBase]
    label: str
    match_fields: tuple[str, ...]
    path_key: str | None = None
    references: tuple[Reference, ...] = ()
    check: RowCheck | None = None
    nullable_references: frozenset[str] = field(default_factory=frozenset)

    def key_of(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values.get(name, self.default_of(name)) for name in self.match_fields)

    def default_of(self, name: str) -> Any:
        return self.model.model_fields[name].get_default(call_default_factory=True)

    def describe(self, values: Mapping[str, Any]) -> str:
        if len(self.match_fields) == 1:
            return f"{self.label} '{values.get(self.match_fields[0])}'"
        parts = ", ".join(f"{n}={values.get(n, self.default_of(n))!s}" for n in self.match_fields)
        return f"{self.label} ({parts})"


@dataclass(frozen=True)
class UpsertResult:
    rows: list[TableBase]
    inserted: int
    updated: int


def _normalized(table: ErpTable, values: Mapping[str, Any]) -> dict[str, Any]:
    """An empty code in a nullable reference means "none" (NULL), not a dangling "" key."""
    return {
        name: None if name in table.nullable_references and value == "" else value
        for name, value in values.items()
    }


def _values_of(row: TableBase) -> dict[str, Any]:
    return row_values(row)


async def get_row(session: AsyncSession, table: ErpTable, key: str) -> TableBase | None:
    model = table.model
    if table.path_key is not None:
        condition = col(getattr(model, table.path_key)) == key
    elif (row_id := as_row_id(key)) is not None:
        condition = col(model.id) == row_id
    else:
        try:
            condition = col(model.system_id) == uuid.UUID(key)
        except ValueError:
            return None
    return (await session.exec(select(model).where(condition))).first()


async def get_row_or_raise(session: AsyncSession, table: ErpTable, key: str) -> TableBase:
    row = await get_row(session, table, key)
    if row is None:
        what = f"{table.label} '{key}'" if table.path_key else f"{table.label} with id '{key}'"
        msg = f"{what} was not found."
        raise NotFoundError(msg)
    return row


async def find_by_keys(
    session: AsyncSession, table: ErpTable, keys: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], TableBase]:
    """Rows by natural key; loaded by the first key column, matched in Python (NULL-safe)."""
    firsts = sorted({key[0] for key in keys}, key=str)
    column = col(getattr(table.model, table.match_fields[0]))
    found: dict[tuple[Any, ...], TableBase] = {}
    wanted = set(keys)
    for chunk in chunked(firsts):
        for row in await session.exec(select(table.model).where(column.in_(chunk))):
            key = table.key_of(_values_of(row))
            if key in wanted:
                found[key] = row
    return found


async def _problems(
    session: AsyncSession,
    table: ErpTable,
    rows: Sequence[tuple[int | None, Mapping[str, Any]]],
    *,
    pending: set[str] | None = None,
) -> list[RowError]:
    errors: list[RowError] = []
    if table.check is not None:
        for index, values in rows:
            errors.extend(RowError(index, f, m) for f, m in table.check(values))
    pending_keys = {}
    if pending and table.path_key is not None:
        pending_keys = {(table.model, table.path_key): pending}
    errors.extend(await missing_references(session, table.references, rows, pending=pending_keys))
    return errors


async def create_row(
    session: AsyncSession, table: ErpTable, values: Mapping[str, Any]
) -> TableBase:
    values = _normalized(table, values)
    if await find_by_keys(session, table, [table.key_of(values)]):
        msg = f"{table.describe(values)} already exists."
        raise ConflictError(msg)
    raise_row_errors(await _problems(session, table, [(None, values)]), total=1)
    row = table.model(**values)
    session.add(row)
    await flush_or_conflict(session, duplicate_message=f"{table.describe(values)} already exists.")
    return row


async def update_row(
    session: AsyncSession, table: ErpTable, row: TableBase, values: Mapping[str, Any]
) -> TableBase:
    values = _normalized(table, values)
    merged = {**_values_of(row), **values}
    new_key = table.key_of(merged)
    if new_key != table.key_of(_values_of(row)):
        clash = (await find_by_keys(session, table, [new_key])).get(new_key)
        if clash is not None and clash.id != row.id:
            msg = f"{table.describe(merged)} already exists."
            raise ConflictError(msg)
    raise_row_errors(await _problems(session, table, [(None, merged)]), total=1)
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    await flush_or_conflict(session, duplicate_message=f"{table.describe(merged)} already exists.")
    return row


async def delete_row(session: AsyncSession, table: ErpTable, row: TableBase) -> None:
    description = table.describe(_values_of(row))
    await session.delete(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        msg = f"{description} cannot be deleted: other records refer to it."
        raise ConflictError(msg) from exc


async def upsert_rows(
    session: AsyncSession,
    table: ErpTable,
    rows: Sequence[Mapping[str, Any] | None],
    *,
    errors: Sequence[RowError] = (),
) -> UpsertResult:
    """Insert or update every row by natural key, all or nothing.

    ``rows`` are schema-validated values, ``None`` where the caller's validation failed
    (its ``errors`` are reported with ours). Nothing is written unless every row is good.
    """
    problems = list(errors)
    first_index: dict[tuple[Any, ...], int] = {}
    keyed: list[tuple[int, tuple[Any, ...], dict[str, Any]]] = []
    for index, raw in enumerate(rows):
        if raw is None:
            continue
        values = _normalized(table, raw)
        key = table.key_of(values)
        if key in first_index:
            message = f"{table.describe(values)} is also in row {first_index[key]}."
            problems.append(RowError(index, table.match_fields[0], message))
            continue
        first_index[key] = index
        keyed.append((index, key, values))
    existing = await find_by_keys(session, table, [key for _, key, _ in keyed])
    merged = [
        (index, {**(_values_of(existing[key]) if key in existing else {}), **values})
        for index, key, values in keyed
    ]
    pending = {str(v[table.path_key]) for _, v in merged} if table.path_key else set()
    problems.extend(await _problems(session, table, merged, pending=pending))
    raise_row_errors(problems, total=len(rows))
    return await _apply_upsert(session, table, keyed, existing)


async def _apply_upsert(
    session: AsyncSession,
    table: ErpTable,
    keyed: Sequence[tuple[int, tuple[Any, ...], dict[str, Any]]],
    existing: Mapping[tuple[Any, ...], TableBase],
) -> UpsertResult:
    out: list[TableBase] = []
    inserted = 0
    for _index, key, values in keyed:
        row = existing.get(key)
        if row is None:
            row = table.model(**values)
            inserted += 1
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.add(row)
        out.append(row)
    message = f"Another request created some of these {table.label} rows at the same time."
    await flush_or_conflict(session, duplicate_message=message)
    return UpsertResult(rows=out, inserted=inserted, updated=len(out) - inserted)
