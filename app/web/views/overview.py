"""Overview: connection, job queue, CRM change notifications, latest runs, failed and
skipped records, the OData service for the CRM, service health and the CRM API budget."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from redis.exceptions import RedisError
from starlette.responses import RedirectResponse

from app.api.deps import SessionDep, SettingsDep
from app.api.health import check_database, check_redis
from app.connection.connection_setup import get_connection_setup
from app.connection.crm_notifications import notification_status
from app.couplings import record_state
from app.jobs.queue_summary import summarize_queue
from app.sync import crm_usage, log_pages, progress
from app.web.access import PAGE_BY_NAME, Caller, CallerDep, page
from app.web.rendering import render
from app.web.routing import ConsoleRoute
from workers import heartbeat

router = APIRouter(route_class=ConsoleRoute)
OverviewCaller = Annotated[Caller, Depends(page("overview"))]
LATEST_RUNS = 8


async def budget_context(request: Request) -> dict[str, Any]:
    queue = request.app.state.queue
    if queue is None:
        return {"usage": [], "usage_error": "No Redis: CRM requests are not counted."}
    try:
        return {"usage": await crm_usage.read_usage(await queue.pool()), "usage_error": ""}
    except (RedisError, OSError) as exc:
        return {"usage": [], "usage_error": f"Redis is not answering ({type(exc).__name__})."}


async def _workers(request: Request) -> list[heartbeat.SeenWorker] | None:
    queue = request.app.state.queue
    if queue is None:
        return None
    try:
        return await heartbeat.seen_workers(await queue.pool())
    except (RedisError, OSError):
        return None


def _attention_totals(counts: dict[str, tuple[int, int]]) -> dict[str, int]:
    return {
        "skipped_records": sum(skipped for skipped, _failed in counts.values()),
        "failed_records": sum(failed for _skipped, failed in counts.values()),
    }


@router.get("/")
async def overview(
    request: Request, session: SessionDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    if not caller.may_open(PAGE_BY_NAME["overview"]):  # product-availability: its one page
        return RedirectResponse(caller.home, status_code=303)
    setup = await get_connection_setup(session, settings)
    runs = await log_pages.list_runs(session, filters=log_pages.RunFilter(), limit=LATEST_RUNS)
    context: dict[str, Any] = {
        "title": "Overview",
        "setup": setup,
        "odata_url": setup.odata_url or settings.odata_url,
        "runs": runs.runs,
        "run_status": log_pages.run_status,
        "running": await progress.running_jobs(session),
        **_attention_totals(await record_state.attention_counts(session)),
        "queue": await summarize_queue(session) if caller.is_admin else None,
        "notifications": await notification_status(session),
        "health": {
            "database": await check_database(request),
            "redis": await check_redis(request),
        },
        "workers": await _workers(request),
        **await budget_context(request),
    }
    return render(request, "overview.html", context)


@router.get("/budget")
async def budget_panel(request: Request, _caller: OverviewCaller) -> Response:
    """The CRM API budget panel alone (the overview refreshes it)."""
    return render(request, "partials/budget.html", await budget_context(request))
