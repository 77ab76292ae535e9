"""List conventions of the ERP API: paging, sorting, filtering, the ``next`` link.

``$top``/``$skip`` (OData) or ``limit``/``offset``; ``$orderby=no desc,name`` or
``sort=-no,name``; ``$filter=<OData expression>``; and ``field=value`` for equality on
any public field. ``$count=false`` skips the total. Any other ``$`` option is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import ColumnElement

from app.erp import listing
from app.errors import InvalidInputError
from app.models.base import TableBase
from app.settings import Settings

OPTIONS = frozenset({"$top", "$skip", "limit", "offset", "$orderby", "sort", "$filter", "$count"})
PageSize = Annotated[int | None, Query(ge=0, le=listing.MAX_OFFSET)]
Offset = Annotated[int | None, Query(ge=0, le=listing.MAX_OFFSET)]


def _one_of(name_a: str, a: Any, name_b: str, b: Any) -> Any:
    if a is not None and b is not None:
        msg = f"Give either {name_a} or {name_b}, not both."
        raise InvalidInputError(msg)
    return a if a is not None else b


def _equality_params(request: Request) -> dict[str, str]:
    equals: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            msg = "Query parameters must not contain NUL characters."
            raise InvalidInputError(msg)
    for name in request.query_params:
        if name in OPTIONS:
            continue
        if name.startswith("$"):
            msg = f"Unknown query option '{name}'. Options: {', '.join(sorted(OPTIONS))}."
            raise InvalidInputError(msg)
        values = request.query_params.getlist(name)
        if len(values) > 1:
            msg = f"Query parameter '{name}' is given more than once."
            raise InvalidInputError(msg)
        equals[name] = values[0]
    return equals


def list_query(
    request: Request,
    *,
    top: Annotated[PageSize, Query(alias="$top")] = None,
    skip: Annotated[Offset, Query(alias="$skip")] = None,
    limit: PageSize = None,
    offset: Offset = None,
    orderby: Annotated[str | None, Query(alias="$orderby", max_length=500)] = None,
    sort: Annotated[str | None, Query(max_length=500)] = None,
    filter_text: Annotated[str | None, Query(alias="$filter", max_length=4000)] = None,
    should_count: Annotated[bool, Query(alias="$count")] = True,
) -> listing.ListQuery:
    size = _one_of("$top", top, "limit", limit)
    order_by: tuple[tuple[str, bool], ...] = ()
    if _one_of("$orderby", orderby, "sort", sort) is not None:
        order_by = listing.parse_orderby(orderby) if orderby else listing.parse_sort(sort or "")
    return listing.ListQuery(
        top=min(listing.DEFAULT_PAGE_SIZE if size is None else size, listing.MAX_PAGE_SIZE),
        skip=_one_of("$skip", skip, "offset", offset) or 0,
        filter_text=filter_text,
        equals=_equality_params(request),
        order_by=order_by,
        should_count=should_count,
    )


ListQueryDep = Annotated[listing.ListQuery, Depends(list_query)]


def public_fields(
    model: type[TableBase], read_schema: type[BaseModel]
) -> dict[str, ColumnElement[Any]]:
    """The Read schema's fields as columns: the only names filters and sorts may use."""
    columns = sa.inspect(model).columns
    return {name: columns[name] for name in read_schema.model_fields if name in columns}


def next_link(request: Request, query: listing.ListQuery, *, has_more: bool) -> str | None:
    """The same request one page on, in the paging style the caller used."""
    if not has_more:
        return None
    params = request.query_params
    size_name, skip_name = (
        ("limit", "offset") if "limit" in params or "offset" in params else ("$top", "$skip")
    )
    url = request.url.remove_query_params(["$top", "$skip", "limit", "offset"])
    url = url.include_query_params(**{size_name: query.top, skip_name: query.skip + query.top})
    settings: Settings = request.app.state.settings
    if not settings.has_public_url:
        return str(url)
    # The configured public URL, never the caller's Host header, starts links others follow.
    root_path = request.scope.get("root_path", "")
    path = url.path.removeprefix(root_path) if root_path else url.path
    return f"{settings.public_url.rstrip('/')}{path}?{url.query}"


def page_body(
    request: Request,
    page: listing.Page[Any],
    query: listing.ListQuery,
    *,
    list_schema: type[BaseModel],
    read_schema: type[BaseModel],
) -> BaseModel:
    items: Sequence[BaseModel] = [read_schema.model_validate(row) for row in page.rows]
    return list_schema(
        items=items, count=page.count, next=next_link(request, query, has_more=page.has_more)
    )
