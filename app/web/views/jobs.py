"""Job queue: entries with status, next start and last error; set on hold / ready, run
now, edit the interval and the inactivity timeout (integration-admin, as in the API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api import jobs as api
from app.api.deps import SessionDep
from app.api.schemas.jobs import JobQueueEntryUpdate
from app.erp import listing
from app.web.access import Admin, Caller, page
from app.web.forms import form_values, parse
from app.web.rendering import render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
JobsCaller = Annotated[Caller, Depends(page("jobs"))]
PAGE_SIZE = 100
EDITABLE = ("minutes_between_runs", "inactivity_timeout_minutes", "description")


@router.get("/jobs")
async def jobs_page(
    request: Request, session: SessionDep, caller: JobsCaller,
    skip: Annotated[int, Query(ge=0, le=listing.MAX_OFFSET)] = 0,
) -> Response:  # fmt: skip
    query = listing.ListQuery(top=PAGE_SIZE, skip=skip, order_by=(("id", False),))
    body = await api.list_entries(request, session, query, caller.user)
    context = {
        "title": "Job queue entries", "entries": body.items, "count": body.count, "skip": skip,
        "page_size": PAGE_SIZE, "has_more": body.next is not None,
    }  # fmt: skip
    return render(request, "jobs.html", context)


def _row(request: Request, entry: object, message: str = "") -> Response:
    return render(request, "partials/job_row.html", {"e": entry, "saved": message})


@router.post("/jobs/{entry_id}/hold")
async def hold(
    request: Request, session: SessionDep, caller: Admin, entry_id: api.EntryId
) -> Response:
    return _row(request, await api.set_on_hold(session, entry_id, caller.user), "on hold")


@router.post("/jobs/{entry_id}/ready")
async def ready(
    request: Request, session: SessionDep, caller: Admin, entry_id: api.EntryId
) -> Response:
    return _row(request, await api.set_ready(session, entry_id, caller.user), "ready")


@router.post("/jobs/{entry_id}/run-now")
async def run_now(
    request: Request, session: SessionDep, caller: Admin, entry_id: api.EntryId
) -> Response:
    return _row(request, await api.run_now(request, session, entry_id, caller.user), "started")


@router.post("/jobs/{entry_id}")
async def edit(
    request: Request, session: SessionDep, caller: Admin, entry_id: api.EntryId
) -> Response:
    values = {k: v for k, v in (await form_values(request)).items() if k in EDITABLE}
    body = parse(JobQueueEntryUpdate, values)
    return _row(request, await api.update_entry(session, entry_id, body, caller.user), "saved")
