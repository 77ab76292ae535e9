"""Public probes: liveness, readiness (database + Redis) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_database(request: Request) -> str:
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "down"
        return f"down: {type(exc).__name__}"
    return "ok"


async def _check_redis(request: Request) -> str:
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
        "database": await _check_database(request),
        "redis": await _check_redis(request),
    }
    is_ready = all(value in ("ok", "not configured") for value in checks.values())
    checks["status"] = "ready" if is_ready else "not ready"
    return JSONResponse(checks, status_code=200 if is_ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)  # documents text/plain, not JSON
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
