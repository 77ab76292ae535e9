"""An HTML "not found" page for a browser asking for a page the console does not have;
every other caller keeps the API's JSON error.

Installed by ``create_app`` itself, not with the console's pages (which load on first
use): Starlette reads the exception handlers when its first request builds the middleware
stack. The page's rendering is imported when a browser first needs it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

_NOT_CONSOLE = ("/api/", "/odata/", "/docs", "/redoc", "/openapi.json", "/static/")


def _is_console_page(request: Request) -> bool:
    path = request.url.path
    accepts_html = "text/html" in request.headers.get("accept", "")
    return accepts_html and not path.startswith(_NOT_CONSOLE)


def install_console_not_found(app: FastAPI) -> None:
    json_handler: Any = app.exception_handlers[StarletteHTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == 404
            and _is_console_page(request)
        ):
            from app.web.routing import SECURITY_HEADERS, error_response

            page = error_response(request, 404, "There is no console page at this address.")
            page.headers.update(SECURITY_HEADERS)
            return page
        response: Response = await json_handler(request, exc)
        return response

    app.add_exception_handler(StarletteHTTPException, not_found)
