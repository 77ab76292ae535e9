"""The FastAPI application: ``create_app(settings)`` builds everything from one Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health
from app.api.docs_page import install_docs_page
from app.api.openapi_text import install_openapi_text
from app.api.router import api_router
from app.db import create_engine, create_sessionmaker
from app.exception_handlers import ERROR_RESPONSES, install_exception_handlers
from app.file_modes import make_private_sqlite
from app.logs import get_logger
from app.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    RequestHeadLimitMiddleware,
)
from app.migrations import upgrade_engine
from app.odata.asgi import ODataDispatchMiddleware
from app.odata.asgi import router as odata_router
from app.settings import Settings, get_settings
from app.web.router import install_console

log = get_logger("salesbridge.app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    make_private_sqlite(settings.database_url)  # 0600 before SQLite creates it (umask)
    engine = create_engine(settings.database_url)
    if app.state.should_migrate:
        await upgrade_engine(engine)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.queue = None
    if settings.redis_url:
        from workers.queue import create_queue_pool

        app.state.queue = await create_queue_pool(settings)
    log.info("app_started", database=engine.url.render_as_string(hide_password=True))
    try:
        yield
    finally:
        if app.state.queue is not None:
            await app.state.queue.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None, *, should_migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
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
    app.add_middleware(ODataDispatchMiddleware)  # /odata/ skips the REST stack
    app.add_middleware(  # outermost: an oversized head is refused before anything reads it
        RequestHeadLimitMiddleware,
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
    )
    app.include_router(odata_router)  # first: its catch-all only matches /odata/, hot path
    app.include_router(health.router)
    app.include_router(api_router, responses=ERROR_RESPONSES)  # our error body, not FastAPI's
    install_docs_page(app)
    install_openapi_text(app)
    install_console(app)  # last: the console's pages never shadow the API
    return app
