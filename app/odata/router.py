"""The OData v4 endpoint: one Starlette route for everything under ``/odata/``.

One route (not one FastAPI route per URL shape) because OData paths carry key predicates
and ``$`` segments that are easier to parse than to pattern-match, and because every
failure, including unknown paths, must come back as an OData error: this endpoint catches
its own errors, so the REST API's ``{"error","detail"}`` handler never sees them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, ProgrammingError
from starlette.requests import Request
from starlette.responses import Response

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
from app.odata.serialize import (
    EntityWriter,
    collection_payload,
    dumps,
    entity_payload,
    etag,
    value_payload,
)
from app.settings import Settings

log = get_logger("salesbridge.odata")
PREFIX = "/odata/"
SERVICE_PREFIX = "/odata/v4/"


async def odata_endpoint(request: Request) -> Response:
    try:
        response = await _handle(request)
    except SalesbridgeError as exc:
        response = responses.error_response(exc)
    except Exception as exc:
        log.error("odata_unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        response = responses.internal_error_response()
    response.headers["OData-Version"] = responses.ODATA_VERSION
    return response


async def _handle(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    headers = request.headers
    responses.check_max_version(headers.get("odata-maxversion"))
    await authenticate_request(
        request.app.state.sessionmaker,
        settings,
        authorization=headers.get("authorization"),
        client_ip=request.client.host if request.client else None,
    )
    if request.method not in ("GET", "HEAD"):
        msg = "This OData service is read-only."
        raise ODataMethodNotAllowedError(msg)
    path = request.url.path
    if not path.startswith(SERVICE_PREFIX) and path != SERVICE_PREFIX.rstrip("/"):
        msg = "Unknown OData service; the service root is /odata/v4/."
        raise ODataNotFoundError(msg)
    resource = parse_resource(path[len(SERVICE_PREFIX) :], company_name=settings.company_name)
    options = parse_options(request.url.query)
    return await _dispatch(request, resource, options, settings)


async def _dispatch(
    request: Request, resource: Resource, options: QueryOptions, settings: Settings
) -> Response:
    root = f"{request.base_url}{SERVICE_PREFIX.lstrip('/')}"
    format_option = options.get("format")
    accept = request.headers.get("accept")
    if resource.kind == "metadata":
        if responses.wants_json_metadata(format_option, accept):
            return Response(metadata.csdl_json(), media_type="application/json")
        return Response(metadata.csdl_xml(), media_type="application/xml")
    level = responses.metadata_level(format_option, accept)
    content_type = responses.json_content_type(level)
    if resource.kind == "service":
        body = metadata.service_document(f"{root}$metadata")
        return Response(body, media_type=content_type)
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
    request: Request,
    resource: Resource,
    options: QueryOptions,
    entity_set: EntitySet,
    level: str,
    root: str,
) -> Response:
    reader = reader_for(request.app.state)
    if resource.kind == "count":
        count = await availability.count_rows(
            reader, entity_set, filter_text=options.get("filter"), aliases=options.aliases
        )
        return Response(str(count), media_type="text/plain")
    if resource.kind == "collection":
        return await _collection(request, reader, entity_set, options, level, root)
    row = await availability.read_entity(reader, entity_set, resource.key)
    if row is None:
        msg = f"No {entity_set.name} with that key."
        raise ODataNotFoundError(msg)
    return _single(request, resource, entity_set, options, row, level, root)


async def _collection(
    request: Request,
    reader: Reader,
    entity_set: EntitySet,
    options: QueryOptions,
    level: str,
    root: str,
) -> Response:
    settings: Settings = request.app.state.settings
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
    rows = await availability.read_page(reader, entity_set, page)
    count = None
    if with_count:
        count = await availability.count_rows(
            reader, entity_set, filter_text=page.filter_text, aliases=options.aliases
        )
    next_link = None
    if len(rows) > limit:
        rows = rows[:limit]
        index = {p.name: i for i, p in enumerate(entity_set.properties)}
        values = [rows[-1][index[prop.name]] for prop, _desc in ordering]
        remaining = None if top is None else top - limit
        next_link = _next_link(request, options, encode_token(secret, ordering, values), remaining)
    writer = EntityWriter(entity_set, selected, level=level, root=root)
    context = _context_url(root, entity_set, selected)
    body = collection_payload(writer, rows, context=context, count=count, next_link=next_link)
    response = Response(body, media_type=responses.json_content_type(level))
    if applied:
        response.headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
    return response


def _single(
    request: Request,
    resource: Resource,
    entity_set: EntitySet,
    options: QueryOptions,
    row: Any,
    level: str,
    root: str,
) -> Response:
    tag = etag(row)
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    if resource.kind in ("property", "value"):
        index = [p.name for p in entity_set.properties].index(resource.property_name or "")
        value = row[index]
        if resource.kind == "value":
            if value is None:
                return Response(status_code=204, headers={"ETag": tag})
            text = dumps(value).decode().strip('"')
            return Response(text, media_type="text/plain", headers={"ETag": tag})
        context = f"{root}$metadata#{entity_set.name}/{resource.property_name}"
        body = value_payload(value, context=None if level == "none" else context)
        return Response(body, media_type=responses.json_content_type(level), headers={"ETag": tag})
    selected = parse_select(entity_set, options)
    writer = EntityWriter(entity_set, selected, level=level, root=root)
    context = _context_url(root, entity_set, selected) + "/$entity"
    body = entity_payload(writer, row, context=context)
    return Response(body, media_type=responses.json_content_type(level), headers={"ETag": tag})


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
    request: Request, options: QueryOptions, token: str, remaining_top: int | None
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
    return f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(pairs)}"


router = APIRouter()
router.add_route(
    "/odata/{resource_path:path}",
    odata_endpoint,
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
