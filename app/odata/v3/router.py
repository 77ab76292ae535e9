"""``/ODataV3/``: Business Central's OData V3 URL form, read-only, for the CRM.

BC hands Dynamics 365 Sales the V3 URL of its ``ProductItemAvailability`` web service
(``…/ODataV3/Company('<name>')/ProductItemAvailability``), and Sales reads it with HTTP
Basic (user name + web service access key). This path serves ``ProductItemAvailability``
and ``ItemAvailability`` that way, from the same data, credentials, ``$filter``
translation and keyset paging as ``/odata/v4/``; only the protocol edges are V3's:
``DataServiceVersion`` headers, V3 query options and literals, JSON light payloads, EDMX
``$metadata`` and the ``odata.error`` body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.errors import SalesbridgeError
from app.logs import get_logger
from app.odata import reading, responses
from app.odata.entity_sets import (
    ENTITY_SETS,
    ITEM_AVAILABILITY,
    PRODUCT_ITEM_AVAILABILITY,
    EntitySet,
)
from app.odata.errors import ODataBadRequestError
from app.odata.paths import Resource, parse_resource
from app.odata.query import QueryOptions, parse_select, refuse_query_options
from app.odata.request import ODataRequest, admit, filter_evaluation
from app.odata.responses import Reply
from app.odata.serialize import dumps, etag
from app.odata.v3 import json_light
from app.odata.v3.metadata import edmx
from app.odata.v3.options import parse_v3_options, wants_inline_count

log = get_logger("salesbridge.odata")
PREFIX = "/ODataV3"
SETS: dict[str, EntitySet] = {s.name: s for s in (PRODUCT_ITEM_AVAILABILITY, ITEM_AVAILABILITY)}
_SET_NAMES = tuple(SETS)
assert all(ENTITY_SETS[name] is s for name, s in SETS.items())  # noqa: S101 - shared sets


def is_v3_path(path: str) -> bool:
    head = path[: len(PREFIX) + 1].lower()
    return head in (PREFIX.lower(), PREFIX.lower() + "/")


async def handle(request: ODataRequest) -> Reply:
    """The V3 reply to one request, errors included; never raises."""
    try:
        reply = await _handle(request)
    except SalesbridgeError as exc:
        reply = Reply(json_light.error_body(exc), _ERROR_TYPE, exc.status_code)
        for name, value in (exc.headers or {}).items():
            reply.header(name, value)
        reply.header("Content-Language", "en-US")
    except Exception as exc:
        log.error("odata_unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        reply = Reply(json_light.internal_error_body(), _ERROR_TYPE, 500)
    reply.version = json_light.VERSION_HEADER
    return reply


_ERROR_TYPE = json_light.content_type(json_light.MINIMAL)


async def _handle(request: ODataRequest) -> Reply:
    _check_versions(request.headers)
    await admit(request)
    rest = request.path[len(PREFIX) :].lstrip("/")
    company = request.settings.company_name
    resource = parse_resource(rest, company_name=company, entity_sets=SETS)
    options = parse_v3_options(request.query)
    root = f"{request.base_url}{PREFIX.lstrip('/')}/"
    format_option, accept = options.get("format"), request.headers.get("accept")
    if resource.kind in ("service", "metadata"):
        refuse_query_options(options, resource.kind)
    if resource.kind == "metadata":
        return Reply(edmx(_SET_NAMES), "application/xml")
    if resource.kind in ("count", "value"):
        responses.check_plain_text(format_option, accept)
        level = json_light.MINIMAL
    else:
        level = json_light.metadata_level(format_option, accept)
    if resource.kind == "service":
        body = json_light.service_document(f"{root}$metadata", _SET_NAMES)
        return Reply(body, json_light.content_type(level))
    entity_set = resource.entity_set
    assert entity_set is not None  # noqa: S101 - every other kind names a set
    with filter_evaluation(options.query_value("filter")):
        return await _read(request, resource, entity_set, options, level, root)


def _check_versions(headers: dict[str, str]) -> None:
    """JSON light needs V3: a client that allows less (``MaxDataServiceVersion: 2.0``) or
    sends a later version (``DataServiceVersion: 4.0``) is refused."""
    highest = _version(headers, "maxdataserviceversion")
    sent = _version(headers, "dataserviceversion")
    if (highest is not None and highest < 3) or (sent is not None and sent > 3):  # noqa: PLR2004
        msg = "This service speaks OData V3: DataServiceVersion 3.0."
        raise ODataBadRequestError(msg)


def _version(headers: dict[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw.split(";", 1)[0].strip())
    except ValueError as exc:
        msg = f"The {name} header '{raw[:20]}' is not a version number."
        raise ODataBadRequestError(msg) from exc


async def _read(
    request: ODataRequest,
    resource: Resource,
    entity_set: EntitySet,
    options: QueryOptions,
    level: str,
    root: str,
) -> Reply:
    if resource.kind == "count":
        count = await reading.read_count(request, entity_set, options)
        return Reply(str(count).encode(), "text/plain")
    selected = parse_select(entity_set, options)
    writer = json_light.EntityWriter(entity_set, selected, level=level, root=root)
    context = _context(root, entity_set, selected)
    if resource.kind == "collection":
        page = await reading.read_page(
            request,
            entity_set,
            options,
            with_count=wants_inline_count(options),
            decimals_as_text=True,
        )
        body = json_light.collection(
            writer,
            page.rows,
            convert=page.convert,
            context=context,
            count=page.count,
            next_link=page.next_link,
        )
        return Reply(body, json_light.content_type(level))
    row = await reading.read_entity(request, entity_set, resource.key, decimals_as_text=True)
    return _single(request, resource, entity_set, row, writer, f"{context}/@Element", root)


def _single(
    request: ODataRequest,
    resource: Resource,
    entity_set: EntitySet,
    row: Sequence[Any],
    writer: json_light.EntityWriter,
    context: str,
    root: str,
) -> Reply:
    tag = etag(row)
    if reading.is_not_modified(request, tag):
        return reading.tagged(Reply(status=304), tag)
    if resource.kind == "entity":
        body = json_light.entity(writer, row, context=context)
        return reading.tagged(Reply(body, json_light.content_type(writer.level)), tag)
    name = resource.property_name or ""
    value = reading.property_value(entity_set, row, name)
    if resource.kind == "value":
        if value is None:
            return reading.tagged(Reply(status=204), tag)
        text = value if isinstance(value, str) else dumps(value).decode().strip('"')
        return reading.tagged(Reply(text.encode(), "text/plain"), tag)
    edm_type = entity_set.by_name[name].edm_type
    metadata_url = None if writer.level == json_light.NONE else f"{root}$metadata#{edm_type}"
    body = json_light.property_value(value, context=metadata_url)
    return reading.tagged(Reply(body, json_light.content_type(writer.level)), tag)


def _context(root: str, entity_set: EntitySet, selected: Sequence[Any]) -> str:
    if reading.is_whole(entity_set, selected):
        return f"{root}$metadata#{entity_set.name}"
    return f"{root}$metadata#{entity_set.name}&$select={','.join(p.name for p in selected)}"
