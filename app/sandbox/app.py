"""The sandbox's ASGI app: token endpoint, Web API (with limits and faults) and control API.

The Web API edge does, in order: count, check the bearer, apply service protection limits,
add latency, maybe answer an injected 500/503, run the operation or ``$batch``, and maybe
drop the connection instead of answering (after the operation ran, the worst case for a
client: the write landed and the response was lost).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.sandbox.auth import OAuthError, issue_token, verify_bearer
from app.sandbox.config import SandboxConfig
from app.sandbox.control import control_routes
from app.sandbox.errors import SandboxError, unauthorized, unexpected
from app.sandbox.operations.render import Operation, Outcome, error_outcome
from app.sandbox.state import Sandbox
from app.sandbox.webapi import CallContext

_RAW_SEND = "sandbox.raw_send"
_ARRIVED_AT = "sandbox.arrived_at"


class SandboxApp(Starlette):
    """Keeps the server's own ``send`` in the scope, so a fault can drop the connection,
    and the request's arrival time, taken before routing and token checks."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope[_ARRIVED_AT] = time.monotonic()
        scope[_RAW_SEND] = send
        sandbox: Sandbox = self.state.sandbox
        # Webhook deliveries of what this request commits go out once it has its answer.
        with sandbox.webhooks.request_scope(_host(scope)):
            await super().__call__(scope, receive, send)


def _host(scope: Scope) -> str:
    """The host name the client reached the org on (x-ms-dynamics-organization)."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1").rsplit(":", 1)[0] or "localhost"
    server = scope.get("server")
    return str(server[0]) if server else "localhost"


class ThrottledResponse(Response):
    """A 429 that reports when it started and finished going out, so service protection
    can tell requests sent after the client read it from those already on their way."""

    def __init__(self, outcome: Outcome, on_sent: Callable[[float, float], None]) -> None:
        headers, media = _headers(outcome)
        super().__init__(
            outcome.body, status_code=outcome.status, headers=headers, media_type=media
        )
        self.on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started_at = time.monotonic()
        await super().__call__(scope, receive, send)
        # ``send`` hands the bytes to the socket without yielding to the loop, so this is
        # when the 429 was fully written, and no request was looked at in between.
        self.on_sent(started_at, time.monotonic())


def _headers(outcome: Outcome) -> tuple[dict[str, str], str | None]:
    headers = {"OData-Version": "4.0", "REQ_ID": str(uuid.uuid4()), **outcome.headers}
    return headers, headers.pop("Content-Type", None)


def _response(outcome: Outcome) -> Response:
    headers, media = _headers(outcome)
    return Response(outcome.body, status_code=outcome.status, headers=headers, media_type=media)


async def token_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        tenant, token_url = request.path_params["tenant"], str(request.url.replace(query=""))
        body = issue_token(form, sandbox.config, tenant=tenant, token_url=token_url)
    except OAuthError as error:
        return JSONResponse(error.body(), status_code=error.status)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _drop_connection(request: Request) -> None:
    """Close the TCP connection without an answer (uvicorn's send carries the transport)."""
    raw_send = request.scope.get(_RAW_SEND)
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    if transport is None:
        msg = "sandbox fault: dropped connection"
        raise ConnectionAbortedError(msg)
    transport.abort()
    try:  # let the server notice the disconnect, so it doesn't log a missing response
        await asyncio.wait_for(request.receive(), timeout=1.0)
    except TimeoutError:
        pass


def _count(sandbox: Sandbox, path: str) -> None:
    sandbox.counters.total_requests += 1
    head = path.split("(", 1)[0].split("/", 1)[0]
    sandbox.counters.by_entity_set[head or "/"] += 1


async def web_api(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    path = request.path_params.get("path", "")
    _count(sandbox, path)
    user = verify_bearer(request.headers.get("authorization"), sandbox.config)
    if user is None:
        sandbox.counters.unauthorized += 1
        return _finish(sandbox, error_outcome(_with_challenge(unauthorized(), sandbox)))
    connection = _connection(request)
    rejection = sandbox.protection.admit(
        user,
        request.scope.get(_ARRIVED_AT, time.monotonic()),
        connection=connection,
        forced=sandbox.faults.should_throttle(),
    )
    if rejection is not None:
        return _throttled(sandbox, rejection, user, connection)
    try:
        return await _serve(request, sandbox, path)
    finally:
        sandbox.protection.release(user)


async def _serve(request: Request, sandbox: Sandbox, path: str) -> Response:
    if sandbox.config.latency_ms > 0:
        await asyncio.sleep(sandbox.config.latency_ms / 1000)
    status = sandbox.faults.error_status()
    if status is not None:
        sandbox.counters.faults_injected += 1
        sandbox.counters.errors_injected += 1
        return _finish(sandbox, error_outcome(unexpected(status)))
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    call = CallContext(f"{request.base_url}api/data/v{sandbox.config.api_version}/")
    if path == "$batch":
        if request.method != "POST":
            outcome = error_outcome(SandboxError(405, "0x0", "$batch needs POST."))
        else:
            outcome = sandbox.batch.run(body, headers, call)
    else:
        query = dict(request.query_params.items())
        outcome = sandbox.webapi.execute(
            Operation(request.method, path, query, headers, body), call
        )
    if sandbox.faults.should_drop():
        sandbox.counters.faults_injected += 1
        sandbox.counters.drops_injected += 1
        await _drop_connection(request)
    return _finish(sandbox, outcome)


def _connection(request: Request) -> tuple[str, int] | None:
    client = request.scope.get("client")
    if not client:
        return None
    host, port = client
    return str(host), int(port)


def _throttled(
    sandbox: Sandbox, rejection: SandboxError, user: str, connection: tuple[str, int] | None
) -> Response:
    sandbox.counters.by_status[rejection.status] += 1
    retry_after = int(rejection.headers["Retry-After"])

    def on_sent(started_at: float, written_at: float) -> None:
        sandbox.protection.sent(
            user, connection, retry_after=retry_after, started_at=started_at, written_at=written_at
        )

    return ThrottledResponse(error_outcome(rejection), on_sent)


def _with_challenge(error: SandboxError, sandbox: Sandbox) -> SandboxError:
    error.headers["WWW-Authenticate"] = (
        f"Bearer authorization_uri=/{sandbox.config.tenant_id}/oauth2/v2.0/token"
    )
    return error


def _finish(sandbox: Sandbox, outcome: Outcome) -> Response:
    sandbox.counters.by_status[outcome.status] += 1
    return _response(outcome)


def create_sandbox_app(config: SandboxConfig | None = None) -> Starlette:
    config = config or SandboxConfig()
    sandbox = Sandbox(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sandbox.webhooks.dispatcher.start()
        try:
            yield
        finally:
            await sandbox.webhooks.dispatcher.stop()
            sandbox.close()

    api = f"/api/data/v{config.api_version}"
    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    routes: list[Any] = [
        Route("/{tenant}/oauth2/v2.0/token", token_endpoint, methods=["POST"]),
        Route(api + "/{path:path}", web_api, methods=methods),
        Route(api, web_api, methods=methods),
        *control_routes(),
    ]
    application = SandboxApp(routes=routes, lifespan=lifespan)
    application.state.sandbox = sandbox
    return application
