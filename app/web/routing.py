"""Console routes answer HTML, errors included, with the console's security headers.

``ConsoleRoute`` is the route class of every console router: the service's errors (the
same ones the REST API turns into JSON) become a message the page shows: for an htmx
request the message replaces the page's message area (``HX-Retarget``), otherwise an
error page. No session sends the browser to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.responses import RedirectResponse

from app.errors import SalesbridgeError
from app.exception_handlers import describe_integrity_error
from app.web.access import SignInRequiredError
from app.web.rendering import is_htmx, render

SECURITY_HEADERS = {
    # Every script and style is ours and served from /static: nothing inline, no eval.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
MAX_LISTED_ERRORS = 20


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    location = f"/sign-in?next={quote(target, safe='')}" if target != "/" else "/sign-in"
    if is_htmx(request):  # a swap must not put the sign-in page inside the page
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_response(
    request: Request, status_code: int, detail: str, errors: list[dict[str, str]] | None = None
) -> Response:
    context = {"status_code": status_code, "detail": detail, "errors": errors or []}
    if is_htmx(request):
        headers = {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"}
        return render(
            request, "partials/message.html", context, status_code=status_code, headers=headers
        )
    return render(request, "error.html", context, status_code=status_code)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    found = []
    for err in exc.errors()[:MAX_LISTED_ERRORS]:
        field = ".".join(str(part) for part in err.get("loc", ()) if part not in ("body", "query"))
        found.append({"field": field, "message": str(err.get("msg", "invalid value"))})
    return found


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequiredError:
                response = sign_in_redirect(request)
            except SalesbridgeError as exc:
                errors = [{k: str(v) for k, v in e.items()} for e in exc.errors or []]
                response = error_response(request, exc.status_code, exc.detail, errors)
                response.headers.update(exc.headers or {})
            except RequestValidationError as exc:
                errors = _validation_errors(exc)
                response = error_response(request, 422, "Some values are not valid.", errors)
            except IntegrityError as exc:
                response = error_response(request, 409, describe_integrity_error(exc))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler
