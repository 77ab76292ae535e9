"""``$expand``: related rows inline, with a nested ``$select``.

Supported: single-valued navigation properties (lookups, also the system ones such as
``createdby``; polymorphic ones by their suffixed name, ``customerid_account``), many-to-many
relationships and the one-to-many relationships of app/sandbox/schema/navigation.py, each with an
optional ``$select``. Other nested options are refused (501), never ignored; an unknown
name is refused the way Dataverse's OData parser refuses it (400).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.sandbox.errors import SandboxError, bad_syntax, unknown_property, unsupported
from app.sandbox.operations.payload import LOGICAL_ANNOTATION
from app.sandbox.schema.attributes import Schema
from app.sandbox.schema.entities import RELATIONSHIPS, EntityType
from app.sandbox.schema.navigation import Navigation, find
from app.sandbox.store import Store, column, table

# Rows one collection-valued expansion returns at most (Dataverse pages them at 5000).
EXPAND_LIMIT = 5000


@dataclass(frozen=True)
class Expansion:
    navigation: Navigation
    select: list[str] | None


def split_top_level(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == separator and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    if depth != 0:
        msg = "Unbalanced parentheses in $expand."
        raise bad_syntax(msg)
    return [part for part in parts if part]


def _not_navigation(name: str, entity: EntityType) -> SandboxError:
    return SandboxError(
        400,
        "0x0",
        f"Property '{name}' on type '{entity.type_name}' is not a navigation property or "
        f"complex property. Only navigation properties can be expanded.",
    )


def parse_expand(text: str | None, entity: EntityType, schema: Schema) -> list[Expansion]:
    if text is None:
        return []
    expansions: list[Expansion] = []
    for item in split_top_level(text, ","):
        name, _, options = item.partition("(")
        name = name.strip()
        navigation = find(entity, name)
        if navigation is None:
            if schema.declares(entity, name):
                raise _not_navigation(name, entity)
            raise unknown_property(name, entity.logical)
        select = _nested_select(options.removesuffix(")"), navigation, schema)
        expansions.append(Expansion(navigation, select))
    return expansions


def _nested_select(options: str, navigation: Navigation, schema: Schema) -> list[str] | None:
    select: list[str] | None = None
    for option in split_top_level(options, ";"):
        name, sep, value = option.partition("=")
        if name.strip() != "$select" or not sep:
            msg = (
                f"The sandbox supports only $select inside $expand, not '{name.strip()}' "
                f"(in the expansion of {navigation.name})."
            )
            raise unsupported(msg)
        select = [part.strip() for part in value.split(",") if part.strip()]
        for part in select:
            schema.check(navigation.target, part)
    return select


Render = Callable[[dict[str, Any], EntityType, list[str] | None], dict[str, Any]]


def expand_row(
    row: dict[str, Any],
    doc: dict[str, Any],
    expansions: list[Expansion],
    store: Store,
    render: Render,
) -> dict[str, Any]:
    """Add each expansion to ``row``: an object (or null) or an array of rendered rows."""
    for expansion in expansions:
        nav = expansion.navigation
        if nav.kind == "single":
            related = _single(doc, nav, store)
            select = expansion.select
            row[nav.name] = None if related is None else render(related, nav.target, select)
            continue
        record_id = str(doc[nav.source.pk])
        read = _many if nav.kind == "many" else _children
        rows = read(record_id, nav, store)
        row[nav.name] = [render(child, nav.target, expansion.select) for child in rows]
    return row


def _single(doc: dict[str, Any], nav: Navigation, store: Store) -> dict[str, Any] | None:
    target_id = doc.get(nav.column or "")
    if not target_id:
        return None
    if nav.is_polymorphic and doc.get(f"{nav.column}{LOGICAL_ANNOTATION}") != nav.target.logical:
        return None
    return store.get(nav.target.set_name, str(target_id))


def _many(record_id: str, nav: Navigation, store: Store) -> list[dict[str, Any]]:
    left, _ = RELATIONSHIPS[nav.relationship or ""]
    from_left = nav.source.set_name == left
    ids = store.associated(nav.relationship or "", record_id, from_left=from_left)
    found = (store.get(nav.target.set_name, other) for other in ids[:EXPAND_LIMIT])
    return [row for row in found if row is not None]


def _children(record_id: str, nav: Navigation, store: Store) -> list[dict[str, Any]]:
    sql = (
        f"SELECT doc FROM {table(nav.target.set_name)} "  # noqa: S608 - registry names only
        f"WHERE {column(nav.child_column)} = ? ORDER BY id LIMIT {EXPAND_LIMIT}"
    )
    return store.select(sql, (record_id,))
