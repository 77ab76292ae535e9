"""Collection reads: ``$select/$filter/$orderby/$top/$count`` and keyset paging.

Every page is one ``SELECT ... ORDER BY <orderby>, id LIMIT n+1`` that starts after the
sort values of the previous page's last row, which the opaque ``$skiptoken`` carries, so
paging 20,000 rows never holds more than a page in memory and sees each row once.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from app import exact_json
from app.sandbox.errors import SandboxError, bad_syntax, skip_not_supported
from app.sandbox.operations.expand import Expansion, parse_expand
from app.sandbox.operations.filters import PathTarget, attribute_sql, compile_filter
from app.sandbox.schema.attributes import Schema
from app.sandbox.schema.entities import EntityType
from app.sandbox.schema.navigation import find
from app.sandbox.store import table

COUNT_LIMIT = 5000
_KNOWN_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$expand"}
_COOKIE = re.compile(r'pagingcookie="([A-Za-z0-9_\-=]+)"')


@dataclass
class QueryOptions:
    select: list[str] | None = None
    where: str = ""
    params: list[Any] = field(default_factory=list)
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (attribute, descending)
    top: int | None = None
    count: bool = False
    after: list[Any] | None = None  # sort values of the last row already sent
    page_number: int = 1
    expand: list[Expansion] = field(default_factory=list)


def parse_select(text: str | None, entity: EntityType, schema: Schema) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        schema.check(entity, name)
    return names


def _check_known(query: dict[str, str]) -> None:
    for name in query:
        if name.startswith("$") and name not in _KNOWN_OPTIONS:
            raise SandboxError(
                501, "0x80040800", f"The sandbox does not support the query option {name}."
            )


def parse_single(
    query: dict[str, str], entity: EntityType, schema: Schema
) -> tuple[list[str] | None, list[Expansion]]:
    """``$select`` and ``$expand`` of a read (or a write's representation) of one record;
    an option the sandbox does not implement is refused, never ignored."""
    _check_known(query)
    return parse_select(query.get("$select"), entity, schema), parse_expand(
        query.get("$expand"), entity, schema
    )


def _navigate(entity: EntityType, schema: Schema, name: str) -> PathTarget | None:
    """A single-valued navigation property a ``$filter`` path may follow."""
    navigation = find(entity, name)
    if navigation is None or navigation.kind != "single" or navigation.column is None:
        return None
    target = navigation.target
    return PathTarget(
        table(target.set_name), target.pk, schema.attributes(target), navigation.column,
        table(entity.set_name),
    )  # fmt: skip


def _parse_count(text: str | None) -> bool:
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise SandboxError(400, "0x0", f"'{text}' is not a valid count option.")
    return text.lower() == "true"


def parse_options(query: dict[str, str], entity: EntityType, schema: Schema) -> QueryOptions:
    if "$skip" in query:
        raise skip_not_supported()
    _check_known(query)
    options = QueryOptions(select=parse_select(query.get("$select"), entity, schema))
    options.expand = parse_expand(query.get("$expand"), entity, schema)
    if query.get("$filter"):
        aliases = {name: value for name, value in query.items() if name.startswith("@")}
        options.where, options.params = compile_filter(
            query["$filter"],
            pk=entity.pk,
            logical=entity.logical,
            known=schema.attributes(entity),
            aliases=aliases,
            navigate=lambda name: _navigate(entity, schema, name),
        )
    options.orderby = _parse_orderby(query.get("$orderby"), entity, schema)
    if "$top" in query:
        if not query["$top"].isdigit():
            msg = "$top must be a non-negative integer."
            raise bad_syntax(msg)
        options.top = int(query["$top"])
    options.count = _parse_count(query.get("$count"))
    if "$skiptoken" in query:
        options.after, options.page_number = decode_skiptoken(query["$skiptoken"])
    return options


def _parse_orderby(text: str | None, entity: EntityType, schema: Schema) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for item in (text or "").split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            msg = f"Invalid $orderby item '{item.strip()}'."
            raise bad_syntax(msg)
        schema.check(entity, words[0])
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    if all(name != entity.pk for name, _ in order):
        order.append((entity.pk, False))  # a total order, so keyset paging is exact
    return order


def _is_binary(name: str, pk: str) -> bool:
    """Columns compared as stored (dates, ids, codes); text compares case-insensitively."""
    return (
        name in (pk, "versionnumber")
        or name.endswith("on")
        or (name.startswith("_") and name.endswith("_value"))
        or name.endswith("code")
    )


def _order_sql(name: str, *, descending: bool, pk: str) -> str:
    collate = "" if _is_binary(name, pk) else " COLLATE NOCASE"
    return f"{attribute_sql(name, pk)}{collate} {'DESC' if descending else 'ASC'}"


def _after_sql(options: QueryOptions, pk: str) -> tuple[str, list[Any]]:
    """Rows strictly after ``options.after`` in the sort order (SQLite sorts NULL first)."""
    after = options.after or []
    alternatives: list[str] = []
    params: list[Any] = []
    for index, (name, descending) in enumerate(options.orderby):
        parts: list[str] = []
        for (prior, _), value in zip(options.orderby[:index], after, strict=False):
            parts.append(_compare(prior, "=", value, pk, params))
        value = after[index]
        if value is None:
            if descending:
                continue  # nothing sorts after NULL when descending
            parts.append(f"{attribute_sql(name, pk)} IS NOT NULL")
        elif descending:
            parts.append(
                f"({_compare(name, '<', value, pk, params)} OR {attribute_sql(name, pk)} IS NULL)"
            )
        else:
            parts.append(_compare(name, ">", value, pk, params))
        alternatives.append("(" + " AND ".join(parts) + ")")
    return "(" + (" OR ".join(alternatives) or "0") + ")", params


def _compare(name: str, operator: str, value: Any, pk: str, params: list[Any]) -> str:
    sql = attribute_sql(name, pk)
    if value is None:
        return f"{sql} IS NULL" if operator == "=" else "0"
    params.append(value)
    collate = "" if _is_binary(name, pk) else " COLLATE NOCASE"
    return f"{sql} {operator} ?{collate}"


def page_sql(entity: EntityType, options: QueryOptions, limit: int) -> tuple[str, list[Any]]:
    conditions = ["1"]
    params: list[Any] = []
    if options.where:
        conditions.append(options.where)
        params.extend(options.params)
    if options.after is not None:
        after, after_params = _after_sql(options, entity.pk)
        conditions.append(after)
        params.extend(after_params)
    order = ", ".join(
        _order_sql(name, descending=desc, pk=entity.pk) for name, desc in options.orderby
    )
    where = " AND ".join(conditions)
    source = table(entity.set_name)
    sql = f"SELECT doc FROM {source} WHERE {where} ORDER BY {order} LIMIT {int(limit)}"  # noqa: S608
    return sql, params


def count_sql(entity: EntityType, options: QueryOptions, cap: int | None) -> tuple[str, list[Any]]:
    where = options.where or "1"
    limit = f" LIMIT {int(cap)}" if cap is not None else ""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {table(entity.set_name)} WHERE {where}{limit})"  # noqa: S608
    return sql, list(options.params)


def sort_values(doc: dict[str, Any], options: QueryOptions) -> list[Any]:
    return [_sortable(doc.get(name)) for name, _ in options.orderby]


def _sortable(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return exact_json.encode(value).decode()
    return value


def encode_skiptoken(values: list[Any], page_number: int) -> str:
    """Dataverse's shape: an XML-ish cookie whose pagingcookie the client must not touch."""
    cookie = base64.urlsafe_b64encode(exact_json.encode(values)).decode()
    return f'<cookie pagenumber="{page_number}" pagingcookie="{cookie}" istracking="False" />'


def decode_skiptoken(token: str) -> tuple[list[Any], int]:
    match = _COOKIE.search(token)
    page = re.search(r'pagenumber="(\d+)"', token)
    msg = "The $skiptoken is not valid; use @odata.nextLink unchanged."
    if match is None:
        raise bad_syntax(msg)
    try:
        values = orjson.loads(base64.urlsafe_b64decode(match.group(1)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise bad_syntax(msg) from exc
    if not isinstance(values, list):
        raise bad_syntax(msg)
    return values, int(page.group(1)) if page else 2


def next_link(base: str, query: dict[str, str], skiptoken: str) -> str:
    kept = [(name, value) for name, value in query.items() if name != "$skiptoken"]
    kept.append(("$skiptoken", skiptoken))
    encoded = "&".join(f"{quote(name, safe='$')}={quote(value, safe='')}" for name, value in kept)
    return f"{base}?{encoded}"
