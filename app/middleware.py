"""Pure ASGI middleware: request ids and access log, size caps, cache headers, metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import get_logger

log = get_logger("salesbridge.http")

REQUESTS = Counter(
    "salesbridge_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram("salesbridge_http_request_seconds", "HTTP request latency", ["method", "route"])


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path: str = getattr(route, "path", None) or "unmatched"
    return path


class RequestContextMiddleware:
    """Request id (``X-Request-ID``), access log line, metrics, ``Cache-Control: private``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"private, no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")


class RequestHeadLimitMiddleware:
    """Refuse an oversized request head before anything reads it: 414 or 431.

    uvicorn's default httptools parser takes any number of headers of any size (h11 caps
    the whole head at 16 KiB, httptools the target near 64 KiB); these caps are ours and
    the same under either. Added outermost in ``create_app``, so it guards ``/odata/`` too.
    """

    def __init__(
        self, app: ASGIApp, *, max_url_bytes: int, max_header_bytes: int, max_header_count: int
    ) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        target = len(scope.get("raw_path") or scope["path"]) + len(scope.get("query_string", b""))
        if target > self.max_url_bytes:
            detail = f"The request target is longer than the limit of {self.max_url_bytes} bytes."
            await _reject(send, scope, 414, "URITooLong", detail)
            return
        if len(headers) > self.max_header_count:
            detail = f"The request has more than {self.max_header_count} headers."
            await _reject(send, scope, 431, "HeadersTooLarge", detail)
            return
        size = 0
        for name, value in headers:
            size += len(name) + len(value)
        if size > self.max_header_bytes:
            limit = self.max_header_bytes
            detail = f"The request headers are larger than the limit of {limit} bytes."
            await _reject(send, scope, 431, "HeadersTooLarge", detail)
            return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413 before they are read into memory.

    A declared ``Content-Length`` over the limit is refused unread. A chunked body is
    counted as it arrives; the app's body parser turns the abort into its own 400, so the
    response is swapped for the 413 on its way out.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _reject_body(send, scope, self.max_body_bytes)
            return
        received = 0
        too_large = False
        replied = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    msg = "body too large"
                    raise _BodyTooLargeError(msg)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if not too_large:
                await send(message)
                return
            if not replied:  # whatever the app made of the aborted body, the answer is 413
                replied = True
                await _reject_body(send, scope, self.max_body_bytes)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLargeError:
            if not replied:
                await _reject_body(send, scope, self.max_body_bytes)


class _BodyTooLargeError(Exception):
    pass


async def _reject_body(send: Send, scope: Scope, limit: int) -> None:
    detail = f"The request body is larger than the limit of {limit} bytes."
    await _reject(send, scope, 413, "PayloadTooLarge", detail)


async def _reject(send: Send, scope: Scope, status: int, kind: str, detail: str) -> None:
    """The house error body, or the OData one under ``/odata/`` (its clients parse that)."""
    # Refused before the access log's middleware sees the request: logged here, path only.
    log.info("request_refused", method=scope["method"], path=scope["path"][:200], status=status)
    body: dict[str, Any]
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"private, no-store")]
    if scope["path"].startswith("/odata"):
        body = {"error": {"code": f"BadRequest_{kind}", "message": detail}}
        headers.append((b"odata-version", b"4.0"))
    else:
        body = {"error": kind, "detail": detail}
    payload = orjson.dumps(body)
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
