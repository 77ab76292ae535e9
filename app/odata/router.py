"""The OData v4 endpoint: one handler for everything under ``/odata/``.

One handler (not one FastAPI route per URL shape) because OData paths carry key
predicates and ``$`` segments that are easier to parse than to pattern-match, and because
every failure, including unknown paths, must come back as an OData error: the handler
catches its own errors, so the REST API's ``{"error","detail"}`` handler never sees them.
It works on a small ``ODataRequest`` and returns a ``Reply`` (``app.odata.asgi`` builds the
one and sends the other), so no framework objects are made per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.exc import DataError, DBAPIError, OperationalError, ProgrammingError

from app.errors import SalesbridgeError
from app.logs import get_logger
from app.odata import availability, metadata, responses
from app.odata.auth import authenticate_request
from app.odata.entity_sets import EntitySet
from app.odata.errors import ODataFilterError, ODataMethodNotAllowedError, ODataNotFoundError
from app.odata.paging import decode_token, encode_token
from app.odata.paths import Resource, parse_resource
from app.odata.query import (
    QueryOptions,
    parse_count,
    parse_non_negative,
    parse_options,
    parse_orderby,
    parse_select,
)
from app.odata.readers import Reader, reader_for
from app.odata.responses import Reply
from app.odata.serialize import (
    EntityWriter,
    collection_payload,
    converter_for,
    dumps,
    entity_payload,
    etag,
    value_payload,
)
from app.settings import Settings

log = get_logger("salesbridge.odata")
PREFIX = "/odata/"
SERVICE_PREFIX = "/odata/v4/"


@dataclass
class ODataRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    client_ip: str | None
    base_url: str  # scheme://host/root_path/
    state: Any  # the app's state: settings, sessionmaker, engine


async def handle(request: ODataRequest) -> Reply:
    """The reply to one request, errors included; never raises."""
    try:
        reply = await _handle(request)
    except SalesbridgeError as exc:
        reply = responses.error_response(exc)
    except Exception as exc:
        log.error("odata_unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        reply = responses.internal_error_response()
    return reply


async def _handle(request: ODataRequest) -> Reply:
    settings: Settings = request.state.settings
    headers = request.headers
    responses.check_max_version(headers.get("odata-maxversion"))
    await authenticate_request(
        request.state.sessionmaker,
        settings,
        authorization=headers.get("authorization"),
        client_ip=request.client_ip,
    )
    if request.method not in ("GET", "HEAD"):
        msg = "This OData service is read-only."
        raise ODataMethodNotAllowedError(msg)
    path = request.path
    if not path.startswith(SERVICE_PREFIX) and path != SERVICE_PREFIX.rstrip("/"):
        msg = "Unknown OData service; the service root is /odata/v4/."
        raise ODataNotFoundError(msg)
    resource = parse_resource(path[len(SERVICE_PREFIX) :], company_name=settings.company_name)
    options = parse_options(request.query)
    return await _dispatch(request, resource, options)


async def _dispatch(request: ODataRequest, resource: Resource, options: QueryOptions) -> Reply:
    root = f"{request.base_url}{SERVICE_PREFIX.lstrip('/')}"
    format_option = options.get("format")
    accept = request.headers.get("accept")
    if resource.kind == "metadata":
        if responses.wants_json_metadata(format_option, accept):
            return Reply(metadata.csdl_json(), "application/json")
        return Reply(metadata.csdl_xml(), "application/xml")
    level = responses.metadata_level(format_option, accept)
    if resource.kind == "service":
        body = metadata.service_document(f"{root}$metadata")
        return Reply(body, responses.json_content_type(level))
    entity_set = resource.entity_set
    assert entity_set is not None  # noqa: S101 - every other kind names a set
    try:
        return await _read(request, resource, options, entity_set, level, root)
    except (DataError, ProgrammingError, OperationalError) as exc:
        # A filter that compiles but the database cannot evaluate (a value out of its range,
        # a function this SQLite build lacks) is the client's problem, not a 500.
        if options.get("filter") is None or not _is_evaluation_error(exc):
            raise
        msg = "The $filter could not be evaluated by the database."
        raise ODataFilterError(msg) from exc


def _is_evaluation_error(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return "no such function" in str(exc.orig)
    return True


async def _read(
    request: ODataRequest,
    resource: Resource,
    options: QueryOptions,
    entity_set: EntitySet,
    level: str,
    root: str,
) -> Reply:
    reader = reader_for(request.state)
    if resource.kind == "count":
        count = await availability.count_rows(
            reader, entity_set, filter_text=options.get("filter"), aliases=options.aliases
        )
        return Reply(str(count).encode(), "text/plain")
    if resource.kind == "collection":
        return await _collection(request, reader, entity_set, options, level, root)
    row = await availability.read_entity(reader, entity_set, resource.key)
    if row is None:
        msg = f"No {entity_set.name} with that key."
        raise ODataNotFoundError(msg)
    converted = converter_for(entity_set, reader.dialect.name)(row)
    return _single(request, resource, entity_set, options, converted, level)


async def _collection(
    request: ODataRequest,
    reader: Reader,
    entity_set: EntitySet,
    options: QueryOptions,
    level: str,
    root: str,
) -> Reply:
    settings: Settings = request.state.settings
    page_size, applied = responses.requested_page_size(
        request.headers.get("prefer"), settings.odata_max_page_size
    )
    top = parse_non_negative(options, "top")
    skip = parse_non_negative(options, "skip") or 0
    ordering = parse_orderby(entity_set, options)
    selected = parse_select(entity_set, options)
    with_count = parse_count(options)
    secret = settings.secret_key.get_secret_value().encode()
    token = options.get("skiptoken")
    after = decode_token(secret, ordering, token) if token else None
    limit = page_size if top is None else min(top, page_size)
    page = availability.PageRequest(
        filter_text=options.get("filter"),
        aliases=options.aliases,
        ordering=ordering,
        after=after,
        skip=0 if after is not None else skip,
        limit=limit,
        probe=top is None or top > page_size,
    )
    found = await availability.read_page(reader, entity_set, page)
    count = None
    if with_count:
        count = await availability.count_rows(
            reader, entity_set, filter_text=page.filter_text, aliases=options.aliases
        )
    convert = converter_for(entity_set, reader.dialect.name)
    rows = found[:limit]
    next_link = None
    if len(found) > limit:
        index = {p.name: i for i, p in enumerate(entity_set.properties)}
        last = convert(rows[-1])
        values = [last[index[prop.name]] for prop, _desc in ordering]
        remaining = None if top is None else top - limit
        next_link = _next_link(request, options, encode_token(secret, ordering, values), remaining)
    writer = EntityWriter(entity_set, selected, level=level, root=root)
    context = _context_url(root, entity_set, selected)
    body = collection_payload(
        writer, rows, convert=convert, context=context, count=count, next_link=next_link
    )
    reply = Reply(body, responses.json_content_type(level))
    if applied:
        reply.header("Preference-Applied", f"odata.maxpagesize={page_size}")
    return reply


def _single(
    request: ODataRequest,
    resource: Resource,
    entity_set: EntitySet,
    options: QueryOptions,
    row: Sequence[Any],
    level: str,
) -> Reply:
    tag = etag(row)
    if _matches(request.headers.get("if-none-match"), tag):
        return _tagged(Reply(status=304), tag)
    if resource.kind in ("property", "value"):
        index = [p.name for p in entity_set.properties].index(resource.property_name or "")
        value = row[index]
        if resource.kind == "value":
            if value is None:
                return _tagged(Reply(status=204), tag)
            text = dumps(value).decode().strip('"')
            return _tagged(Reply(text.encode(), "text/plain"), tag)
        root = f"{request.base_url}{SERVICE_PREFIX.lstrip('/')}"
        context = f"{root}$metadata#{entity_set.name}/{resource.property_name}"
        body = value_payload(value, context=None if level == "none" else context)
        return _tagged(Reply(body, responses.json_content_type(level)), tag)
    selected = parse_select(entity_set, options)
    root = f"{request.base_url}{SERVICE_PREFIX.lstrip('/')}"
    writer = EntityWriter(entity_set, selected, level=level, root=root)
    context = _context_url(root, entity_set, selected) + "/$entity"
    body = entity_payload(writer, row, context=context)
    return _tagged(Reply(body, responses.json_content_type(level)), tag)


def _tagged(reply: Reply, tag: str) -> Reply:
    reply.header("ETag", tag)
    return reply


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {part.strip() for part in if_none_match.split(",")}
    return "*" in candidates or tag in candidates or tag.removeprefix("W/") in candidates


def _context_url(root: str, entity_set: EntitySet, selected: Any) -> str:
    if len(selected) == len(entity_set.properties):
        return f"{root}$metadata#{entity_set.name}"
    return f"{root}$metadata#{entity_set.name}({','.join(p.name for p in selected)})"


def _next_link(
    request: ODataRequest, options: QueryOptions, token: str, remaining_top: int | None
) -> str:
    """Same path and options, minus $skip, with the remaining $top and the new token."""
    pairs: list[tuple[str, str]] = []
    for name, value in options.values.items():
        if name not in ("skip", "skiptoken", "top"):
            pairs.append((f"${name}", value))
    pairs.extend((f"@{name}", value) for name, value in options.aliases.items())
    pairs.extend(options.custom)
    if remaining_top is not None:
        pairs.append(("$top", str(remaining_top)))
    pairs.append(("$skiptoken", token))
    return f"{request.base_url}{request.path.lstrip('/')}?{urlencode(pairs)}"
