"""``salesbridge sandbox``: serve the sandbox with uvicorn, logging like the service.

The port is bound before anything starts (a port in use is one clear line); once uvicorn
listens, ``announce`` is called with the URL clients use, so what it prints works at once.
uvicorn's own lines and one line per request go through the service's structured logging
(console or JSON, as ``SALESBRIDGE_LOG_FORMAT`` says).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import get_logger
from app.ports import bind, local_url
from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

log = get_logger("salesbridge.sandbox")

Announce = Callable[[str, SandboxConfig], None]


class RequestLog:
    """One ``request`` line per call (method, path, status, ms), as the service writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("request", method=scope["method"], path=scope["path"], status=status,
                     ms=elapsed_ms)  # fmt: skip


class _AnnouncingServer(uvicorn.Server):
    """Announces itself once listening; Ctrl-C or SIGTERM end it with exit code 0, as serve.

    uvicorn re-raises the signal after its shutdown, which ends the process with 130/143.
    """

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_listening()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def serve(*, host: str, port: int, db_path: Path | None, announce: Announce) -> None:
    """Run until interrupted; ``db_path`` None keeps everything in memory."""
    sock = bind(host, port, what="sandbox", option="--port")
    config = SandboxConfig(db_path=db_path)
    app = create_sandbox_app(config)
    base_url = local_url(host, port)
    server = _AnnouncingServer(
        uvicorn.Config(RequestLog(app), log_config=None, access_log=False, lifespan="on"),
        on_listening=lambda: announce(base_url, config),
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
