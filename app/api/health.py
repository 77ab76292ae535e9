"""Public probes: liveness, readiness (database + Redis) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def check_database(request: Request) -> str:
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "down"
        return f"down: {type(exc).__name__}"
    return "ok"


async def check_redis(request: Request) -> str:
    queue = getattr(request.app.state, "queue", None)
    if queue is None:
        return "not configured"
    try:
        await (await queue.pool()).ping()
    except Exception as exc:  # noqa: BLE001
        return f"down: {type(exc).__name__}"
    return "ok"


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {
        "database": await check_database(request),
        "redis": await check_redis(request),
    }
    is_ready = all(value in ("ok", "not configured") for value in checks.values())
    checks["status"] = "ready" if is_ready else "not ready"
    return JSONResponse(checks, status_code=200 if is_ready else 503)


_BUDGET = "(all processes, last 5 minutes; Dataverse allows 6000 requests / 1200 s per user)"
CRM_REQUESTS = Gauge("salesbridge_crm_requests", f"CRM requests {_BUDGET}", ["connection"])
CRM_EXECUTION = Gauge(
    "salesbridge_crm_execution_seconds", f"CRM request round trips {_BUDGET}", ["connection"]
)
CRM_THROTTLED = Gauge("salesbridge_crm_throttled", f"CRM 429 answers {_BUDGET}", ["connection"])
CRM_WAIT = Gauge(
    "salesbridge_crm_wait_seconds",
    f"Time held back by Retry-After/backoff {_BUDGET}",
    ["connection"],
)


async def _export_crm_usage(request: Request) -> None:
    """The CRM API budget is counted in Redis by every process; read it at scrape time."""
    queue = getattr(request.app.state, "queue", None)
    if queue is None:
        return
    # Not loaded by a process that serves only OData: redis, with cryptography and jwt
    # behind it, took about 8 MB of serve's memory.
    from redis.exceptions import RedisError

    from app.sync import crm_usage

    try:
        usage = await crm_usage.read_usage(await queue.pool())
    except (RedisError, OSError):
        return  # /metrics still answers with the process's own figures
    for gauge in (CRM_REQUESTS, CRM_EXECUTION, CRM_THROTTLED, CRM_WAIT):
        gauge.clear()
    for connection in usage:
        window = connection.last_window
        CRM_REQUESTS.labels(connection.label).set(window.requests)
        CRM_EXECUTION.labels(connection.label).set(window.execution_seconds)
        CRM_THROTTLED.labels(connection.label).set(window.throttled)
        CRM_WAIT.labels(connection.label).set(window.wait_seconds)


@router.get("/metrics", response_class=PlainTextResponse)  # documents text/plain, not JSON
async def metrics(request: Request) -> Response:
    await _export_crm_usage(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
