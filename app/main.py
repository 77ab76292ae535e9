"""The FastAPI application: ``create_app(settings)`` builds everything from one Settings.

The REST API (``app.api``: most of the code, the sync engine and the Dataverse client
behind it), the ``/docs`` page and the web console are imported on the first request
that is not for the OData service, the probes or the metrics, and the job queue's Redis
connection on its first use: a process that serves only OData (the CRM's availability
reads) never loads them. Asking the app for its routes or its OpenAPI document loads the
REST API too, so both are complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import health
from app.api.openapi_text import install_openapi_text
from app.db import create_engine, create_sessionmaker
from app.exception_handlers import ERROR_RESPONSES, install_exception_handlers
from app.file_modes import make_private_sqlite
from app.logs import get_logger
from app.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    RequestHeadLimitMiddleware,
)
from app.odata.asgi import ODataApp, is_odata_path
from app.odata.asgi import router as odata_router
from app.settings import Settings, get_settings
from app.web.not_found import install_console_not_found

if TYPE_CHECKING:
    from arq.connections import ArqRedis

log = get_logger("salesbridge.app")
_EAGER_PATHS = ("/healthz", "/readyz", "/metrics")  # answered without the REST API


class QueueConnection:
    """The app's connection to the job queue's Redis, opened on first use (REST endpoints
    that start jobs, ``/readyz``), so a process serving only OData holds no Redis client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> ArqRedis:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    from workers.queue import create_queue_pool

                    self._pool = await create_queue_pool(self.settings)
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class SalesbridgeApp(FastAPI):
    """FastAPI with the REST API included on first use (see the module docstring), and the
    OData service answered before FastAPI's stack (``odata_app``, set by ``create_app``)."""

    api_loaded = False
    odata_app: ASGIApp | None = None

    def load_api(self) -> None:
        if self.api_loaded:
            return
        from app.api.crm_notifications import install_receiver
        from app.api.docs_page import install_docs_page
        from app.api.router import api_router
        from app.web.router import install_console

        self.include_router(api_router, responses=ERROR_RESPONSES)  # our error body
        install_receiver(self, self.state.settings)  # at the configured path, keyed by the CRM
        install_docs_page(self)
        install_console(self)  # last: the console's pages never shadow the API
        self.api_loaded = True

    @property
    def routes(self) -> list[Any]:
        self.load_api()
        return super().routes

    def openapi(self) -> dict[str, Any]:
        self.load_api()
        return super().openapi()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.odata_app is not None and scope["type"] == "http" and is_odata_path(scope["path"]):
            # The hot path: FastAPI's and Starlette's middlewares cost more per request than
            # a key lookup; app.odata.asgi does what they would (request id, metrics, log).
            scope["app"] = self
            await self.odata_app(scope, receive, send)
            return
        if not self.api_loaded and scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if not is_odata_path(path) and path not in _EAGER_PATHS:
                self.load_api()  # once, on the event loop: imports are synchronous anyway
        await super().__call__(scope, receive, send)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    make_private_sqlite(settings.database_url)  # 0600 before SQLite creates it (umask)
    engine = create_engine(settings.database_url)
    if app.state.should_migrate:
        from app.migrations import upgrade_engine

        await upgrade_engine(engine)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.queue = QueueConnection(settings) if settings.redis_url else None
    app.state.nudges = None
    if app.state.queue is not None:
        # ERP writes nudge the workers after commit (app.committed_tables); the Redis
        # client still opens on first use.
        from workers.nudge_sender import send_nudges

        app.state.nudges = send_nudges(app.state.sessionmaker, app.state.queue)
    log.info("app_started", database=engine.url.render_as_string(hide_password=True))
    try:
        yield
    finally:
        if app.state.nudges is not None:
            await app.state.nudges.aclose()
        if app.state.queue is not None:
            await app.state.queue.aclose()
        reader = getattr(app.state, "odata_reader", None)
        if reader is not None:  # the OData service's own connections (app.odata.readers)
            await reader.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None, *, should_migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    app = SalesbridgeApp(
        title="Salesbridge",
        version="0.1.0",
        summary="ERP <-> Dynamics 365 Sales bridge: item availability OData service and sync.",
        lifespan=lifespan,
        docs_url=None,  # app.api.docs_page serves it from the installed files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.should_migrate = should_migrate
    install_exception_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    head_limits = {
        "max_url_bytes": settings.max_url_bytes,
        "max_header_bytes": settings.max_header_bytes,
        "max_header_count": settings.max_header_count,
    }
    # Outermost: an oversized head is refused before anything reads it, OData included.
    app.add_middleware(RequestHeadLimitMiddleware, **head_limits)
    app.odata_app = RequestHeadLimitMiddleware(ODataApp(), **head_limits)
    app.include_router(odata_router)  # first: its catch-all only matches /odata/, hot path
    app.include_router(health.router)
    install_openapi_text(app)
    # Now, not with the console: Starlette takes the handlers when its first request builds
    # the middleware stack, which may be an OData request, before the console is loaded.
    install_console_not_found(app)
    return app
