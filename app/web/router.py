"""The web console at ``/``: its pages, its static assets (served by the service itself:
htmx, the stylesheet, one small script), and an HTML "not found" for browsers.

``install_console(app)`` is called by ``create_app`` after the REST routers, so ``/api``,
``/odata``, ``/docs`` and the probes keep their paths and their JSON errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web.rendering import STATIC_DIR
from app.web.routing import SECURITY_HEADERS, error_response
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
_NOT_CONSOLE = ("/api/", "/odata/", "/docs", "/redoc", "/openapi.json", "/static/")


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


def _is_console_page(request: Request) -> bool:
    path = request.url.path
    accepts_html = "text/html" in request.headers.get("accept", "")
    return accepts_html and not path.startswith(_NOT_CONSOLE)


def install_console(app: FastAPI) -> None:
    app.mount("/static", ConsoleStaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(console_router())
    json_handler: Any = app.exception_handlers[StarletteHTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == 404
            and _is_console_page(request)
        ):
            page = error_response(request, 404, "There is no console page at this address.")
            page.headers.update(SECURITY_HEADERS)
            return page
        response: Response = await json_handler(request, exc)
        return response

    app.add_exception_handler(StarletteHTTPException, not_found)
