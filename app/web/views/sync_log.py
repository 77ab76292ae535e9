"""Sync log: runs filtered by mapping, direction, status and time; a run's failed records
with the action each needs; live progress of running runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.deps import SessionDep
from app.clock import utc_now
from app.couplings import record_state
from app.errors import NotFoundError
from app.mappings.table_mappings import get_mapping, list_mappings
from app.models.integration import Direction
from app.sync import log_pages, progress
from app.web.access import Caller, page
from app.web.forms import parse
from app.web.rendering import is_htmx, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
LogCaller = Annotated[Caller, Depends(page("sync_log"))]
PAGE_SIZE = 50


class RunFilterForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mapping: str | None = Field(default=None, max_length=50)
    direction: Direction | None = None
    status: log_pages.RunStatus | None = None
    started_from: date | None = None
    started_until: date | None = None
    after: int | None = Field(default=None, ge=0, le=2**63 - 1)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def run_filter(self) -> log_pages.RunFilter:
        def at(day: date | None, *, plus: int = 0) -> datetime | None:
            if day is None:
                return None
            return datetime.combine(day + timedelta(days=plus), time(), tzinfo=utc_now().tzinfo)

        return log_pages.RunFilter(
            mapping_name=self.mapping, direction=self.direction, status=self.status,
            started_from=at(self.started_from), started_until=at(self.started_until, plus=1),
        )  # fmt: skip


@router.get("/sync-log")
async def sync_log(request: Request, session: SessionDep, _caller: LogCaller) -> Response:
    form = parse(RunFilterForm, request.query_params)
    runs = await log_pages.list_runs(
        session, filters=form.run_filter(), after=form.after, limit=PAGE_SIZE
    )
    query = {k: v for k, v in request.query_params.items() if k != "after" and v}
    context = {
        "title": "Sync log",
        "form": form,
        "runs": runs.runs,
        "next_after": runs.next_after,
        "query": query,
        "run_status": log_pages.run_status,
        "mappings": [m.name for m in await list_mappings(session)],
        "directions": list(Direction),
        "statuses": list(log_pages.RunStatus),
        "running": await progress.running_jobs(session),
    }
    name = "partials/runs_page.html" if is_htmx(request) else "sync_log.html"
    return render(request, name, context)


@router.get("/sync-log/progress")
async def running_progress(request: Request, session: SessionDep, _caller: LogCaller) -> Response:
    """Polled while runs are going on; answers without polling once none is left."""
    return render(request, "partials/live_progress.html",
                  {"running": await progress.running_jobs(session)})  # fmt: skip


@router.get("/sync-log/{job_id}")
async def run_details(
    request: Request,
    session: SessionDep,
    caller: LogCaller,
    job_id: uuid.UUID,
    after: Annotated[int | None, Field(ge=0, le=2**63 - 1)] = None,
) -> Response:
    run = await log_pages.get_run(session, job_id)
    if run is None:
        msg = f"Sync job {job_id} does not exist."
        raise NotFoundError(msg)
    errors = await log_pages.list_run_errors(session, job_id=job_id, after=after, limit=PAGE_SIZE)
    mapping = await get_mapping(session, run.mapping_name)
    failed = (
        await record_state.failed_records(session, mapping=mapping, errors=errors.errors)
        if mapping is not None
        else [record_state.FailedRecord(e, e.source_id, None, "") for e in errors.errors]
    )
    context = {
        "title": f"Run of {run.mapping_name}",
        "run": run,
        "status": log_pages.run_status(run),
        "failed": failed,
        "next_after": errors.next_after,
        "is_admin": caller.is_admin,
    }
    return render(request, "sync_run.html", context)
