"""Reading availability: one SQL statement per page (plus one for a requested count).

Statements are built from cached pieces (the full-row select per set, compiled filters),
so a request spends its time in the database and in orjson, not in building SQL.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select, visitors

from app.odata.entity_sets import EntitySet
from app.odata.filters import compile_filter, substitute_aliases
from app.odata.paging import Ordering, after_predicate, order_by_clauses
from app.odata.readers import Reader

_FILTER_CACHE_SIZE = 512
_filter_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_base_selects: dict[str, Select[Any]] = {}


@dataclass(frozen=True)
class PageRequest:
    filter_text: str | None
    aliases: dict[str, str]
    ordering: Ordering
    after: list[Any] | None  # sort values of the last row already sent
    skip: int
    limit: int
    probe: bool  # fetch one extra row to learn whether another page exists


def base_select(entity_set: EntitySet) -> Select[Any]:
    select = _base_selects.get(entity_set.name)
    if select is None:
        columns = [p.output_column() for p in entity_set.properties]
        select = sa.select(*columns).select_from(entity_set.source)
        if entity_set.condition is not None:
            select = select.where(entity_set.condition)
        _base_selects[entity_set.name] = select
    return select


def filter_clause(entity_set: EntitySet, filter_text: str, aliases: dict[str, str]) -> Any:
    """The compiled ``$filter``, cached: clauses are immutable and reusable across requests."""
    text = substitute_aliases(filter_text, aliases)
    cache_key = (entity_set.name, text)
    clause = _filter_cache.get(cache_key)
    if clause is None:
        clause = compile_filter(text, entity_set.filter_fields)
        _filter_cache[cache_key] = clause
        if len(_filter_cache) > _FILTER_CACHE_SIZE:
            _filter_cache.popitem(last=False)
    else:
        _filter_cache.move_to_end(cache_key)
    return clause


async def read_page(
    reader: Reader, entity_set: EntitySet, page: PageRequest
) -> Sequence[Sequence[Any]]:
    select = base_select(entity_set)
    if page.filter_text is not None:
        select = select.where(filter_clause(entity_set, page.filter_text, page.aliases))
    if page.after is not None:
        select = select.where(after_predicate(page.ordering, page.after))
    select = select.order_by(*order_by_clauses(page.ordering))
    select = select.limit(page.limit + 1 if page.probe else page.limit)
    if page.skip:
        select = select.offset(page.skip)
    return await reader.rows(select)


async def read_entity(
    reader: Reader, entity_set: EntitySet, key: dict[str, str]
) -> Sequence[Any] | None:
    select = base_select(entity_set)
    for name, value in key.items():
        column = entity_set.by_name[name].column
        select = select.where(column == sa.literal(value, column.type))
    return await reader.first(select)


async def count_rows(
    reader: Reader,
    entity_set: EntitySet,
    *,
    filter_text: str | None,
    aliases: dict[str, str],
) -> int:
    clause = filter_clause(entity_set, filter_text, aliases) if filter_text is not None else None
    source = _count_source(entity_set, clause)
    select = sa.select(sa.func.count()).select_from(source)
    if entity_set.condition is not None:
        select = select.where(entity_set.condition)
    if clause is not None:
        select = select.where(clause)
    return int(await reader.scalar(select))


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
