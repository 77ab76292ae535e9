"""Reading availability: one SQL statement per page (plus one for a requested count).

Each query shape is built with SQLAlchemy once and kept compiled (``app.odata.statements``):
per request only the values that change (a key, the keyset values, limit and offset) are
bound. A shape is (set, the ``$filter`` clause's structure, ``$orderby``, which keyset
values are null, whether there is an offset); the filter's literals are bound per request
too, so filters that differ only in their values share one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select, visitors

from app.odata.entity_sets import EntitySet
from app.odata.filter_cache import CompiledFilter, filter_clause
from app.odata.filters import substitute_aliases
from app.odata.paging import Ordering, after_predicate, order_by_clauses, signature
from app.odata.readers import Reader, Rows
from app.odata.statements import cached

_base_selects: dict[tuple[str, bool], Select[Any]] = {}
_LIMIT, _OFFSET = "page_limit", "page_offset"


@dataclass(frozen=True)
class PageRequest:
    filter_text: str | None
    aliases: dict[str, str]
    ordering: Ordering
    after: list[Any] | None  # sort values of the last row already sent
    skip: int
    limit: int
    probe: bool  # fetch one extra row to learn whether another page exists
    decimals_as_text: bool = False  # OData V3 JSON sends decimals as strings
    # Only the sort values and the entity's JSON (the answer is made of the JSON alone).
    lean: bool = False


def base_select(entity_set: EntitySet, *, decimals_as_text: bool = False) -> Select[Any]:
    key = (entity_set.name, decimals_as_text)
    select = _base_selects.get(key)
    if select is None:
        columns: list[ColumnElement[Any]] = [
            p.output_column(decimals_as_text=decimals_as_text) for p in entity_set.properties
        ]
        select = _select(entity_set, [*columns, entity_set.json_column()])
        _base_selects[key] = select
    return select


def lean_select(entity_set: EntitySet, ordering: Ordering) -> Select[Any]:
    """The sort values (for the next link) and the entity's JSON, nothing else: building
    each property's value twice, as a column and inside the JSON, would double the work."""
    columns = [prop.output_column() for prop, _descending in ordering]
    return _select(entity_set, [*columns, entity_set.json_column()])


def _select(entity_set: EntitySet, columns: list[ColumnElement[Any]]) -> Select[Any]:
    select: Select[Any] = sa.select(*columns).select_from(entity_set.source)
    if entity_set.condition is not None:
        select = select.where(entity_set.condition)
    return select


def _literal_values(compiled: CompiledFilter | None) -> dict[str, Any]:
    if compiled is None:
        return {}
    return {f"literal_{index}": value for index, value in enumerate(compiled.values)}


def _filter_text(filter_text: str | None, aliases: dict[str, str]) -> str | None:
    return None if filter_text is None else substitute_aliases(filter_text, aliases)


async def read_page(reader: Reader, entity_set: EntitySet, page: PageRequest) -> Rows:
    text = _filter_text(page.filter_text, page.aliases)
    where = filter_clause(entity_set, text) if text is not None else None
    nulls = None if page.after is None else tuple(value is None for value in page.after)
    order, shape_of_filter = signature(page.ordering), where.shape if where else None
    shape = (
        "page", entity_set.name, page.decimals_as_text, page.lean, page.probe,
        shape_of_filter, order, nulls, bool(page.skip),
    )  # fmt: skip

    def build() -> tuple[ColumnElement[Any], frozenset[str], tuple[Any, ...]]:
        if page.lean:  # the sort values only when a next link may need them
            select = lean_select(entity_set, page.ordering if page.probe else ())
        else:
            select = base_select(entity_set, decimals_as_text=page.decimals_as_text)
        if where is not None:
            select = select.where(where.clause)
        names = {_LIMIT}
        if page.after is not None:
            predicate, after_names = after_predicate(page.ordering, page.after)
            select = select.where(predicate)
            names.update(after_names)
        select = select.order_by(*order_by_clauses(page.ordering))
        select = select.limit(sa.bindparam(_LIMIT, type_=sa.Integer()))
        if page.skip:
            select = select.offset(sa.bindparam(_OFFSET, type_=sa.Integer()))
            names.add(_OFFSET)
        return select, frozenset(names), where.literals if where else ()  # type: ignore[return-value]

    prepared = cached(shape, build, reader.dialect)
    values = _literal_values(where)
    values[_LIMIT] = page.limit + 1 if page.probe else page.limit
    values[_OFFSET] = page.skip
    if page.after is not None:
        values.update((f"after_{i}", value) for i, value in enumerate(page.after))
    return await reader.rows(prepared, prepared.params(values))


async def read_entity(
    reader: Reader,
    entity_set: EntitySet,
    key: dict[str, str],
    *,
    decimals_as_text: bool = False,
    lean: bool = False,
) -> tuple[Any, ...] | None:
    """The entity's row; ``lean``: its JSON alone (a one-element row)."""

    def build() -> tuple[ColumnElement[Any], frozenset[str], tuple[Any, ...]]:
        if lean:
            select = lean_select(entity_set, ())
        else:
            select = base_select(entity_set, decimals_as_text=decimals_as_text)
        for name in entity_set.key:
            column = entity_set.by_name[name].column
            select = select.where(column == sa.bindparam(f"key_{name}", type_=column.type))
        names = frozenset(f"key_{name}" for name in entity_set.key)
        return select.limit(1), names, ()  # type: ignore[return-value]

    shape = ("entity", entity_set.name, decimals_as_text, lean)
    prepared = cached(shape, build, reader.dialect)
    rows = await reader.rows(prepared, prepared.params({f"key_{k}": v for k, v in key.items()}))
    return tuple(rows[0]) if rows else None


async def count_rows(
    reader: Reader,
    entity_set: EntitySet,
    *,
    filter_text: str | None,
    aliases: dict[str, str],
) -> int:
    text = _filter_text(filter_text, aliases)
    where = filter_clause(entity_set, text) if text is not None else None

    def build() -> tuple[ColumnElement[Any], frozenset[str], tuple[Any, ...]]:
        clause = where.clause if where is not None else None
        source = _count_source(entity_set, clause)
        select = sa.select(sa.func.count()).select_from(source)
        if entity_set.condition is not None:
            select = select.where(entity_set.condition)
        if clause is not None:
            select = select.where(clause)
        return select, frozenset(), where.literals if where else ()  # type: ignore[return-value]

    shape = ("count", entity_set.name, where.shape if where else None)
    prepared = cached(shape, build, reader.dialect)
    return int(await reader.scalar(prepared, prepared.params(_literal_values(where))))


def _count_source(entity_set: EntitySet, clause: Any) -> Any:
    """Drop an optional LEFT JOIN nobody filters on: it cannot change the count (the joined
    key is unique), and without it SQLite counts the table's pages instead of joining."""
    source = entity_set.source
    if not isinstance(source, sa.Join) or not source.isouter:
        return source
    joined = source.right
    if clause is not None and any(
        getattr(element, "table", None) is joined for element in visitors.iterate(clause)
    ):
        return source
    return source.left
