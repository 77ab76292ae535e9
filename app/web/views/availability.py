"""Item availability: search an item and see exactly what the CRM reads from the OData
service (the same entity sets, statements and value conversion), totals and per
location, plus the URL and user to give the CRM."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api.deps import SessionDep, SettingsDep
from app.connection.connection_setup import get_connection_setup
from app.dataverse.addressing import odata_literal
from app.errors import NotFoundError
from app.odata import availability
from app.odata.entity_sets import ITEM_AVAILABILITY, ITEM_AVAILABILITY_BY_LOCATION, EntitySet
from app.odata.item_search import find_item_numbers
from app.odata.readers import reader_for
from app.odata.serialize import converter_for
from app.web.access import Caller, page
from app.web.rendering import render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
AvailabilityCaller = Annotated[Caller, Depends(page("availability"))]
PAGE_SIZE = 50
MAX_LOCATIONS = 500


async def _rows(
    request: Request, entity_set: EntitySet, *, filter_text: str | None, after: str | None,
    limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    reader = reader_for(request.app.state)
    ordering = tuple((entity_set.by_name[name], False) for name in entity_set.key)
    page_request = availability.PageRequest(
        filter_text=filter_text, aliases={}, ordering=ordering,
        after=[after] if after is not None and len(ordering) == 1 else None, skip=0,
        limit=limit, probe=True, decimals_as_text=True,
    )  # fmt: skip
    # Exact decimal text, as the CRM reads it from the V3 service: a page shows text.
    convert = converter_for(entity_set, reader.dialect.name, decimals_as_text=True)
    names = [prop.name for prop in entity_set.properties]
    found = await availability.read_page(reader, entity_set, page_request)
    # A row ends with the entity's ready-made JSON (what OData answers are built from);
    # the page shows the properties.
    width = len(names)
    return [dict(zip(names, convert(row)[:width], strict=True)) for row in found]


async def _crm_access(
    request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    setup = await get_connection_setup(session, settings)
    return {"odata_url": (setup.odata_url or settings.odata_url).rstrip("/") + "/",
            "odata_user": setup.odata_user_name}  # fmt: skip


@router.get("/availability")
async def search(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: AvailabilityCaller,
    q: Annotated[str, Query(max_length=100)] = "",
    after: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:  # fmt: skip
    text = q.strip()
    if text:  # found by any case, then read exactly as the CRM reads them
        numbers = await find_item_numbers(session, text=text, after=after, limit=PAGE_SIZE + 1)
        filter_text = " or ".join(f"ItemNo eq {odata_literal(n)}" for n in numbers) or None
        rows = await _rows(request, ITEM_AVAILABILITY, filter_text=filter_text, after=None,
                           limit=PAGE_SIZE + 1) if numbers else []  # fmt: skip
    else:
        rows = await _rows(request, ITEM_AVAILABILITY, filter_text=None, after=after,
                           limit=PAGE_SIZE)  # fmt: skip
    next_after = rows[PAGE_SIZE - 1]["ItemNo"] if len(rows) > PAGE_SIZE else None
    context = {
        "title": "Item availability", "q": text, "items": rows[:PAGE_SIZE], "after": after,
        "next_after": next_after, **await _crm_access(request, session, settings),
    }  # fmt: skip
    return render(request, "availability.html", context)


@router.get("/availability/{item_no}")
async def item(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: AvailabilityCaller,
    item_no: str,
) -> Response:  # fmt: skip
    if len(item_no) > 20:
        msg = f"There is no item {item_no[:20]!r}…"
        raise NotFoundError(msg)
    key = f"ItemNo eq {odata_literal(item_no)}"
    totals = await _rows(request, ITEM_AVAILABILITY, filter_text=key, after=None, limit=1)
    if not totals:
        msg = f"There is no item {item_no!r}."
        raise NotFoundError(msg)
    locations = await _rows(request, ITEM_AVAILABILITY_BY_LOCATION, filter_text=key, after=None,
                            limit=MAX_LOCATIONS)  # fmt: skip
    context = {
        "title": f"Item {item_no}", "item": totals[0], "locations": locations[:MAX_LOCATIONS],
        "item_no": item_no, **await _crm_access(request, session, settings),
    }  # fmt: skip
    return render(request, "availability_item.html", context)
