"""Reading an entity set for a request, whatever the OData version that writes the answer:
a page (keyset paging, optional count, the next link), a count, one entity, ETag checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.odata import availability, responses
from app.odata.entity_sets import EntitySet, Property
from app.odata.errors import ODataNotFoundError
from app.odata.paging import decode_token, encode_token
from app.odata.query import QueryOptions, parse_non_negative, parse_orderby
from app.odata.readers import Rows, reader_for
from app.odata.request import ODataRequest
from app.odata.serialize import RowConverter, converter_for

_PAGING_OPTIONS = ("skip", "skiptoken", "top")


@dataclass
class Page:
    rows: Rows  # driver rows; ``convert`` makes them JSON-ready
    convert: RowConverter
    count: int | None
    next_link: str | None
    applied_page_size: int | None  # a maxpagesize preference that was honoured


async def read_page(
    request: ODataRequest,
    entity_set: EntitySet,
    options: QueryOptions,
    *,
    with_count: bool,
    decimals_as_text: bool = False,
    lean: bool = False,
) -> Page:
    """A page; ``lean``: rows hold only the sort values and the entity's JSON (for answers
    made of the JSON alone)."""
    settings = request.settings
    page_size, applied = responses.requested_page_size(
        request.headers.get("prefer"), settings.odata_max_page_size
    )
    top = parse_non_negative(options, "top")
    skip = parse_non_negative(options, "skip") or 0
    ordering = parse_orderby(entity_set, options)
    secret = settings.secret_key.get_secret_value().encode()
    token = options.get("skiptoken")
    after = decode_token(secret, ordering, token) if token else None
    limit = page_size if top is None else min(top, page_size)
    page = availability.PageRequest(
        filter_text=options.query_value("filter"),
        aliases=options.aliases,
        ordering=ordering,
        after=after,
        skip=0 if after is not None else skip,
        limit=limit,
        probe=top is None or top > page_size,
        decimals_as_text=decimals_as_text,
        lean=lean,
    )
    reader = reader_for(request.state)
    found = await availability.read_page(reader, entity_set, page)
    count = None
    if with_count:
        count = await availability.count_rows(
            reader, entity_set, filter_text=page.filter_text, aliases=options.aliases
        )
    convert = converter_for(entity_set, reader.dialect.name, decimals_as_text=decimals_as_text)
    rows = found[:limit]
    next_link = None
    if len(found) > limit:
        if lean:  # the sort values lead the row, as selected (what the token needs)
            values = list(rows[-1][: len(ordering)])
        else:
            index = {p.name: i for i, p in enumerate(entity_set.properties)}
            last = convert(rows[-1])
            values = [last[index[prop.name]] for prop, _desc in ordering]
        remaining = None if top is None else top - limit
        token = encode_token(secret, ordering, values)
        next_link = _next_link(request, options, token, remaining)
    return Page(rows, convert, count, next_link, page_size if applied else None)


async def read_count(request: ODataRequest, entity_set: EntitySet, options: QueryOptions) -> int:
    return await availability.count_rows(
        reader_for(request.state),
        entity_set,
        filter_text=options.query_value("filter"),
        aliases=options.aliases,
    )


async def read_entity(
    request: ODataRequest,
    entity_set: EntitySet,
    key: dict[str, str],
    *,
    decimals_as_text: bool = False,
    lean: bool = False,
) -> Sequence[Any]:
    """The entity's JSON-ready row (all properties, then its JSON), or 404; ``lean``: the
    JSON alone."""
    reader = reader_for(request.state)
    row = await availability.read_entity(
        reader, entity_set, key, decimals_as_text=decimals_as_text, lean=lean
    )
    if row is None:
        msg = f"No {entity_set.name} with that key."
        raise ODataNotFoundError(msg)
    if lean:
        return row
    convert = converter_for(entity_set, reader.dialect.name, decimals_as_text=decimals_as_text)
    return convert(row)


def property_value(entity_set: EntitySet, row: Sequence[Any], name: str) -> Any:
    return row[[p.name for p in entity_set.properties].index(name)]


def is_not_modified(request: ODataRequest, tag: str) -> bool:
    """``If-None-Match`` names this ETag (or ``*``): answer 304."""
    if_none_match = request.headers.get("if-none-match")
    if not if_none_match:
        return False
    candidates = {part.strip() for part in if_none_match.split(",")}
    return "*" in candidates or tag in candidates or tag.removeprefix("W/") in candidates


def tagged(reply: responses.Reply, tag: str) -> responses.Reply:
    reply.header("ETag", tag)
    return reply


def is_whole(entity_set: EntitySet, selected: Sequence[Property]) -> bool:
    return len(selected) == len(entity_set.properties)


def _next_link(
    request: ODataRequest, options: QueryOptions, token: str, remaining_top: int | None
) -> str:
    """Same path and options, minus $skip, with the remaining $top and the new token."""
    pairs: list[tuple[str, str]] = []
    for name, value in options.values.items():
        if name not in _PAGING_OPTIONS:
            pairs.append((f"${name}", value))
    pairs.extend((f"@{name}", value) for name, value in options.aliases.items())
    pairs.extend(options.custom)
    if remaining_top is not None:
        pairs.append(("$top", str(remaining_top)))
    pairs.append(("$skiptoken", token))
    return f"{request.base_url}{request.path.lstrip('/')}?{urlencode(pairs)}"
