"""The web console at ``/``: its pages, its static assets (served by the service itself:
htmx, the stylesheet, one small script), and an HTML "not found" for browsers.

``install_console(app)`` is called when the app loads the REST routers, after them, so ``/api``,
``/odata``, ``/docs`` and the probes keep their paths and their JSON errors.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web.rendering import STATIC_DIR
from app.web.views import (
    availability,
    connection,
    couplings,
    jobs,
    mappings,
    overview,
    sales,
    setup,
    sign_in,
    sync_log,
    users,
)

STATIC_CACHE_SECONDS = 3600


class ConsoleStaticFiles(StaticFiles):
    """Static assets may be cached a while (the service's default is ``no-store``)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = f"public, max-age={STATIC_CACHE_SECONDS}"
        response.headers["x-content-type-options"] = "nosniff"
        return response


def console_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for module in (sign_in, overview, setup, connection, mappings, couplings, sync_log, jobs,
                   users, availability, sales):  # fmt: skip
        router.include_router(module.router)
    return router


def install_console(app: FastAPI) -> None:
    """The pages and their assets (the "not found" page is ``app.web.not_found``)."""
    app.mount("/static", ConsoleStaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(console_router())
