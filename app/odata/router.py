"""The OData v4 endpoint: one handler for everything under ``/odata/``.

One handler (not one FastAPI route per URL shape) because OData paths carry key
predicates and ``$`` segments that are easier to parse than to pattern-match, and because
every failure, including unknown paths, must come back as an OData error: the handler
catches its own errors, so the REST API's ``{"error","detail"}`` handler never sees them.
It works on a small ``ODataRequest`` and returns a ``Reply`` (``app.odata.asgi`` builds the
one and sends the other), so no framework objects are made per request. ``/ODataV3/``
(BC's V3 URL for the CRM) is answered by ``app.odata.v3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.errors import SalesbridgeError
from app.logs import get_logger
from app.odata import metadata, reading, responses
from app.odata.entity_sets import EntitySet
from app.odata.errors import ODataNotFoundError
from app.odata.paths import Resource, parse_resource
from app.odata.query import (
    QueryOptions,
    parse_count,
    parse_options,
    parse_select,
    refuse_query_options,
)
from app.odata.request import ODataRequest, admit, filter_evaluation
from app.odata.responses import Reply
from app.odata.serialize import (
    MINIMAL,
    collection_payload,
    dumps,
    entity_payload,
    entity_payload_from_json,
    etag,
    value_payload,
    writer_for,
)
from app.odata.v3 import router as v3

log = get_logger("salesbridge.odata")
PREFIX = "/odata/"
SERVICE_PREFIX = "/odata/v4/"
__all__ = ["PREFIX", "SERVICE_PREFIX", "ODataRequest", "handle", "is_odata_path"]


def is_odata_path(path: str) -> bool:
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/") or v3.is_v3_path(path)


async def handle(request: ODataRequest) -> Reply:
    """The reply to one request, errors included; never raises."""
    if v3.is_v3_path(request.path):
        return await v3.handle(request)
    try:
        reply = await _handle(request)
    except SalesbridgeError as exc:
        reply = responses.error_response(exc)
    except Exception as exc:
        log.error("odata_unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        reply = responses.internal_error_response()
    return reply


async def _handle(request: ODataRequest) -> Reply:
    responses.check_max_version(request.headers.get("odata-maxversion"))
    await admit(request)
    path = request.path
    if not path.startswith(SERVICE_PREFIX) and path != SERVICE_PREFIX.rstrip("/"):
        msg = "Unknown OData service; the service root is /odata/v4/."
        raise ODataNotFoundError(msg)
    company = request.settings.company_name
    resource = parse_resource(path[len(SERVICE_PREFIX) :], company_name=company)
    options = parse_options(request.query)
    return await _dispatch(request, resource, options)


async def _dispatch(request: ODataRequest, resource: Resource, options: QueryOptions) -> Reply:
    root = f"{request.base_url}{SERVICE_PREFIX.lstrip('/')}"
    format_option = options.get("format")
    accept = request.headers.get("accept")
    if resource.kind in ("service", "metadata"):
        refuse_query_options(options, resource.kind)
    if resource.kind in ("count", "value"):
        responses.check_plain_text(format_option, accept)
        level = MINIMAL
    elif resource.kind == "metadata":
        if responses.wants_json_metadata(format_option, accept):
            return Reply(metadata.csdl_json(), "application/json")
        return Reply(metadata.csdl_xml(), "application/xml")
    else:
        level = responses.metadata_level(format_option, accept)
    if resource.kind == "service":
        body = metadata.service_document(f"{root}$metadata")
        return Reply(body, responses.json_content_type(level))
    entity_set = resource.entity_set
    assert entity_set is not None  # noqa: S101 - every other kind names a set
    with filter_evaluation(options.get("filter")):
        return await _read(request, resource, options, entity_set, level, root)


async def _read(
    request: ODataRequest,
    resource: Resource,
    options: QueryOptions,
    entity_set: EntitySet,
    level: str,
    root: str,
) -> Reply:
    if resource.kind == "count":
        count = await reading.read_count(request, entity_set, options)
        return Reply(str(count).encode(), "text/plain")
    if resource.kind == "collection":
        return await _collection(request, entity_set, options, level, root)
    selected = parse_select(entity_set, options)
    if resource.kind == "entity" and level == MINIMAL and reading.is_whole(entity_set, selected):
        # The common lookup: the database's JSON of the entity is the answer.
        row = await reading.read_entity(request, entity_set, resource.key, lean=True)
        tag = etag(row)
        if reading.is_not_modified(request, tag):
            return reading.tagged(Reply(status=304), tag)
        context = _context_url(root, entity_set, selected) + "/$entity"
        body = entity_payload_from_json(row[-1], context=context, tag=tag)
        return reading.tagged(Reply(body, responses.json_content_type(level)), tag)
    row = await reading.read_entity(request, entity_set, resource.key)
    return _single(request, resource, entity_set, options, row, level, root)


async def _collection(
    request: ODataRequest, entity_set: EntitySet, options: QueryOptions, level: str, root: str
) -> Reply:
    selected = parse_select(entity_set, options)
    writer = writer_for(entity_set, selected, level=level, root=root)
    page = await reading.read_page(
        request, entity_set, options, with_count=parse_count(options), lean=writer.uses_json
    )
    context = _context_url(root, entity_set, selected)
    body = collection_payload(
        writer,
        page.rows,
        convert=page.convert,
        context=context,
        count=page.count,
        next_link=page.next_link,
    )
    reply = Reply(body, responses.json_content_type(level))
    if page.applied_page_size is not None:
        reply.header("Preference-Applied", f"odata.maxpagesize={page.applied_page_size}")
    return reply


def _single(
    request: ODataRequest,
    resource: Resource,
    entity_set: EntitySet,
    options: QueryOptions,
    row: Sequence[Any],
    level: str,
    root: str,
) -> Reply:
    tag = etag(row)
    if reading.is_not_modified(request, tag):
        return reading.tagged(Reply(status=304), tag)
    if resource.kind in ("property", "value"):
        value = reading.property_value(entity_set, row, resource.property_name or "")
        if resource.kind == "value":
            if value is None:
                return reading.tagged(Reply(status=204), tag)
            text = dumps(value).decode().strip('"')
            return reading.tagged(Reply(text.encode(), "text/plain"), tag)
        context = f"{root}$metadata#{entity_set.name}/{resource.property_name}"
        body = value_payload(value, context=None if level == "none" else context)
        return reading.tagged(Reply(body, responses.json_content_type(level)), tag)
    selected = parse_select(entity_set, options)
    writer = writer_for(entity_set, selected, level=level, root=root)
    context = _context_url(root, entity_set, selected) + "/$entity"
    body = entity_payload(writer, row, context=context)
    return reading.tagged(Reply(body, responses.json_content_type(level)), tag)


def _context_url(root: str, entity_set: EntitySet, selected: Any) -> str:
    if reading.is_whole(entity_set, selected):
        return f"{root}$metadata#{entity_set.name}"
    return f"{root}$metadata#{entity_set.name}({','.join(p.name for p in selected)})"
