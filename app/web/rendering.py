"""Templates: one per page in ``templates/``, the htmx swaps in ``templates/partials/``.

Templates only show what a view hands them; the filters here format values (times in
UTC, numbers with separators) and decide nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.clock import as_utc, utc_now
from app.web.access import Caller

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((utc_now() - as_utc(value)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    else:
        amount = f"{seconds} s"
    return f"in {amount}" if future else f"{amount} ago"


def _number(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


templates.env.filters.update(when=_when, ago=_ago, number=_number, percent=_percent)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    caller: Caller | None = getattr(request.state, "caller", None)
    values = {"caller": caller, "path": request.url.path, **(context or {})}
    response: HTMLResponse = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=headers
    )
    return response


def go_to(request: Request, location: str) -> Response:
    """After a change: reload the page (htmx) or redirect (a plain form)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)
