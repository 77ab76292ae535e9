"""``/odata/`` as a lean ASGI app, dispatched before FastAPI's middleware and router.

The OData service is the hot path (bench/odata.py): a key lookup costs tens of
microseconds in SQLite, and the generic stack around it (five middlewares, the router, a
``Request``/``Response`` pair) cost more than that. ``SalesbridgeApp.__call__`` sends
``/odata/...`` and ``/ODataV3/...`` here before FastAPI's own middlewares, behind only the
request head limits; everything else goes down the normal stack. What that stack gives
every response is kept, done once here:

- ``X-Request-ID`` (the caller's, if printable and short, else a new one), bound into the
  structlog context for the request's log lines;
- ``Cache-Control: private, no-store``;
- the same Prometheus series (``salesbridge_http_requests_total`` and the latency
  histogram) under the route label ``/odata/{resource_path:path}``;
- the access log line (``request``: method, path, status, ms) when INFO is enabled.

The body is never read: the service is read-only, and writes get a 405 without it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import structlog
from fastapi import APIRouter
from starlette.datastructures import URL
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.middleware import LATENCY, REQUESTS
from app.odata import router as handler
from app.odata.responses import Reply
from app.odata.v3.router import is_v3_path

ROUTE = "/odata/{resource_path:path}"
V3_ROUTE = "/ODataV3/{resource_path:path}"
_ACCESS_LOGGER = "salesbridge.http"
_access_log = structlog.get_logger(_ACCESS_LOGGER)
_stdlib_access = logging.getLogger(_ACCESS_LOGGER)
_WANTED = {  # the request headers the service reads: raw name -> str name
    name.encode(): name
    for name in (
        "accept",
        "authorization",
        "host",
        "if-none-match",
        "maxdataserviceversion",
        "dataserviceversion",
        "odata-maxversion",
        "prefer",
        "x-request-id",
    )
}
_NO_STORE = (b"cache-control", b"private, no-store")
_base_urls: dict[tuple[Any, ...], str] = {}
_counters: dict[tuple[str, str, int], Any] = {}
_histograms: dict[tuple[str, str], Any] = {}


is_odata_path = handler.is_odata_path


class ODataApp:
    """Serves one OData request; ``scope["app"]`` (set by Starlette) holds the state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED and _WANTED[name] not in headers:  # the first wins, as in Starlette
                headers[_WANTED[name]] = value.decode("latin-1")
        request_id = _request_id(headers.get("x-request-id"))
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        try:
            request = handler.ODataRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                client_ip=scope["client"][0] if scope.get("client") else None,
                base_url=_link_base(scope, headers.get("host")),
                state=scope["app"].state,
            )
            reply = await handler.handle(request)
            status = reply.status
            await _send(send, reply, request_id)
        finally:
            _record(scope, status, started)
            structlog.contextvars.reset_contextvars(**tokens)


async def _send(send: Send, reply: Reply, request_id: str) -> None:
    raw = reply.raw_headers()
    raw.append((b"x-request-id", request_id.encode()))
    raw.append(_NO_STORE)
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    await send({"type": "http.response.body", "body": reply.body})


def _request_id(incoming: str | None) -> str:
    if incoming and incoming.isprintable():
        return incoming[:64]
    return os.urandom(16).hex()


def _link_base(scope: Scope, host: str | None) -> str:
    """Where absolute links start: SALESBRIDGE_PUBLIC_URL when set (the Host header is the
    caller's to choose, so it must not end up in links others follow), else the request's."""
    settings = scope["app"].state.settings
    if settings.has_public_url:
        return f"{settings.public_url.rstrip('/')}/"
    return _base_url(scope, host)


def _base_url(scope: Scope, host: str | None) -> str:
    """``request.base_url`` as Starlette computes it, cached per host and scheme."""
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme", "http"), host, scope.get("server"), root_path)
    found = _base_urls.get(key)
    if found is None:
        base_scope = {
            "type": "http",
            "scheme": key[0],
            "server": key[2],
            "path": root_path if root_path.endswith("/") else root_path + "/",
            "query_string": b"",
            "headers": [] if host is None else [(b"host", host.encode("latin-1"))],
        }
        found = str(URL(scope=base_scope))
        if len(_base_urls) < 256:  # hosts are few; a flood of made-up ones is not cached
            _base_urls[key] = found
    return found


def _record(scope: Scope, status: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    method = scope["method"]
    route = V3_ROUTE if is_v3_path(scope["path"]) else ROUTE
    counter = _counters.get((method, route, status))
    if counter is None:
        counter = REQUESTS.labels(method, route, str(status))
        if len(_counters) < 256:
            _counters[(method, route, status)] = counter
    counter.inc()
    histogram = _histograms.get((method, route))
    if histogram is None:
        histogram = LATENCY.labels(method, route)
        if len(_histograms) < 64:
            _histograms[(method, route)] = histogram
    histogram.observe(elapsed)
    if _stdlib_access.isEnabledFor(logging.INFO):
        _access_log.info(
            "request", method=method, path=scope["path"], status=status, ms=round(elapsed * 1000, 1)
        )


# The route the app's route table shows (and the route-security test walks). In the app,
# ``SalesbridgeApp`` answers first; the route serves the same handler without it.
router = APIRouter()
router.routes.extend(
    Route(
        route,
        ODataApp(),
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    for route in (ROUTE, V3_ROUTE)
)
