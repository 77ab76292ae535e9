"""Paged, sorted, filtered lists over the public fields of an ERP table.

Filters and sort keys may only name ``fields`` (the resource's public fields, matched
case-insensitively): a filter can never reach a column the API does not show. ``$filter``
is compiled by the OData layer (``app.odata.filters``); simple ``field=value`` equality
parameters are coerced here by the column's type.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.clock import as_utc
from app.errors import InvalidInputError
from app.odata import filters

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 10**9
MAX_INT = 2**31 - 1
T = TypeVar("T")


@dataclass(frozen=True)
class ListQuery:
    top: int = DEFAULT_PAGE_SIZE
    skip: int = 0
    filter_text: str | None = None
    equals: Mapping[str, str] = field(default_factory=dict)
    order_by: tuple[tuple[str, bool], ...] = ()
    should_count: bool = True


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: Sequence[T]
    count: int | None
    has_more: bool


def parse_orderby(text: str) -> tuple[tuple[str, bool], ...]:
    """OData ``$orderby``: ``no desc, description`` -> ((name, is_descending), ...)."""
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            msg = f"$orderby: '{part.strip()}' is not '<field> [asc|desc]'."
            raise InvalidInputError(msg)
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return tuple(keys)


def parse_sort(text: str) -> tuple[tuple[str, bool], ...]:
    """``sort=-no,description``: a leading ``-`` sorts descending."""
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        name = part.strip()
        is_descending = name.startswith("-")
        name = name.removeprefix("-").removeprefix("+").strip()
        if not name:
            msg = f"sort: '{part}' does not name a field."
            raise InvalidInputError(msg)
        keys.append((name, is_descending))
    return tuple(keys)


def _resolve(fields: Mapping[str, ColumnElement[Any]], name: str, what: str) -> ColumnElement[Any]:
    lowered = {key.lower(): column for key, column in fields.items()}
    column = lowered.get(name.lower())
    if column is None:
        msg = f"{what}: unknown field '{name}'. Fields: {', '.join(sorted(fields))}."
        raise InvalidInputError(msg)
    return column


def _int(raw: str) -> int:
    value = int(raw)
    if abs(value) > MAX_INT:
        raise ValueError(raw)
    return value


def _decimal(raw: str) -> Decimal:
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError(raw)
    return value


def coerce(column: ColumnElement[Any], name: str, raw: str) -> Any:
    """A query-string value as the column's Python type, or a clear 400."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return raw
    try:
        if python_type is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if python_type is datetime:
            return as_utc(datetime.fromisoformat(raw))
        parsers: dict[type, Any] = {int: _int, Decimal: _decimal, date: date.fromisoformat}
        parsers[uuid.UUID] = uuid.UUID
        parser = parsers.get(python_type)
        return parser(raw) if parser is not None else raw
    except (ValueError, InvalidOperation) as exc:
        msg = f"Query parameter '{name}': '{raw}' is not a valid {python_type.__name__}."
        raise InvalidInputError(msg) from exc


def _conditions(
    fields: Mapping[str, ColumnElement[Any]], query: ListQuery
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for name, raw in query.equals.items():
        column = _resolve(fields, name, "Query parameter")
        conditions.append(column == coerce(column, name, raw))
    if query.filter_text:
        conditions.append(filters.compile_filter(query.filter_text, fields))
    return conditions


async def list_page(
    session: AsyncSession,
    statement: SelectOfScalar[T],
    *,
    fields: Mapping[str, ColumnElement[Any]],
    query: ListQuery,
    tiebreak: Sequence[ColumnElement[Any]],
) -> Page[T]:
    """One page (``top`` rows after ``skip``), the total when asked, and whether more follow."""
    statement = statement.where(*_conditions(fields, query))
    count = None
    if query.should_count:
        count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
        count = int((await session.exec(count_statement)).one())
    order: list[ColumnElement[Any]] = []
    for name, is_descending in query.order_by:
        column = _resolve(fields, name, "Sort")
        order.append(column.desc() if is_descending else column.asc())
    page = statement.order_by(*order, *tiebreak).offset(query.skip).limit(query.top + 1)
    rows = list((await session.exec(page)).all())
    return Page(rows=rows[: query.top], count=count, has_more=len(rows) > query.top)
