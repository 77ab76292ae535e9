"""Integration table mappings: the list; a mapping's field mappings (direction, constant,
validate) and table filters with live validation of the ``$filter`` text; run now, full
synchronization, synchronize modified records."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api import mappings as api
from app.api import sync as api_sync
from app.api.deps import SessionDep
from app.api.schemas.mappings import FieldMappingUpdate, MappingUpdate
from app.errors import SalesbridgeError
from app.mappings import table_mappings
from app.models.integration import DeletionConflictResolution, Direction, UpdateConflictResolution
from app.web.access import Admin, Caller, page
from app.web.forms import form_values, parse
from app.web.rendering import go_to, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
MappingsCaller = Annotated[Caller, Depends(page("mappings"))]
FILTER_FIELDS = ("table_filter", "integration_table_filter")


@router.get("/mappings")
async def mappings_page(request: Request, session: SessionDep, caller: MappingsCaller) -> Response:
    rows = await api.list_mappings(session, caller.user)
    context = {"title": "Integration table mappings", "mappings": rows, "is_admin": caller.is_admin}
    return render(request, "mappings.html", context)


@router.get("/mappings/{name}")
async def mapping_page(
    request: Request, session: SessionDep, caller: MappingsCaller, name: str
) -> Response:
    mapping = await api.get_mapping(session, caller.user, name)
    context = {
        "title": f"Mapping {mapping.name}", "mapping": mapping,
        "fields": await api.list_field_mappings(session, caller.user, name),
        "is_admin": caller.is_admin, "directions": list(Direction),
        "update_resolutions": list(UpdateConflictResolution),
        "deletion_resolutions": list(DeletionConflictResolution),
    }  # fmt: skip
    return render(request, "mapping.html", context)


@router.get("/mappings/{name}/check-filter")
async def check_filter(
    request: Request, session: SessionDep, _caller: MappingsCaller, name: str,
    field: Annotated[str, Query(pattern="^(table_filter|integration_table_filter)$")],
) -> Response:  # fmt: skip
    """Live validation: the filter compiled exactly as saving it would (htmx sends the
    textarea under its own name)."""
    mapping = await table_mappings.get_mapping_or_raise(session, name)
    text = request.query_params.get(field, "")[:4096]
    try:
        if field == "table_filter":
            table_mappings.validate_table_filter(mapping.table_name, text)
        else:
            table_mappings.validate_integration_table_filter(mapping.integration_table, text)
    except SalesbridgeError as exc:
        context = {"ok": False, "detail": exc.detail, "field": field}
    else:
        context = {"ok": True, "detail": "The filter is valid.", "field": field}
    return render(request, "partials/filter_check.html", context)


@router.post("/mappings/{name}")
async def save_mapping(request: Request, session: SessionDep, caller: Admin, name: str) -> Response:
    body = parse(MappingUpdate, await form_values(request))
    await api.update_mapping(session, caller.user, name, body)
    return go_to(request, f"/mappings/{name}")


@router.post("/mappings/{name}/fields/{field_id}")
async def save_field(
    request: Request, session: SessionDep, caller: Admin, name: str, field_id: uuid.UUID
) -> Response:
    body = parse(FieldMappingUpdate, await form_values(request))
    row = await api.update_field_mapping(session, caller.user, name, field_id, body)
    detail = f"Saved {row.field or row.constant_value!r} → {row.integration_field}."
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})


async def _queued_message(request: Request, what: str, entries: list[object]) -> Response:
    count = len(entries)
    detail = (
        f"{what}: {count} job queue entr{'y' if count == 1 else 'ies'} queued; workers run them."
    )
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})


@router.post("/mappings/{name}/run")
async def run_now(request: Request, session: SessionDep, caller: Admin, name: str) -> Response:
    full = (await form_values(request)).get("full") == "true"
    queued = await api_sync.run_mapping(request, session, name, caller.user, full=full)
    what = f"{'Full synchronization' if full else 'Run'} of {name}"
    return await _queued_message(request, what, list(queued.entries))


@router.post("/sync/full")
async def full_sync(request: Request, session: SessionDep, caller: Admin) -> Response:
    queued = await api_sync.full_sync(request, session, caller.user)
    return await _queued_message(request, "Full synchronization", list(queued.entries))


@router.post("/sync/modified")
async def sync_modified(request: Request, session: SessionDep, caller: Admin) -> Response:
    queued = await api_sync.sync_modified(request, session, caller.user)
    return await _queued_message(request, "Synchronize modified records", list(queued.entries))
