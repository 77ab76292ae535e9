"""The ``salesbridge serve`` process: uvicorn and one arq worker in one event loop.

Redis (embedded or not) is started by the caller before this loop runs and stopped after
it ends, so the API and the worker never lose it while they shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from app.logs import get_logger
from app.main import create_app
from app.settings import Settings

log = get_logger("salesbridge.service")

WORKER_RESTART_SECONDS = 5.0
STARTUP_FAILURE_EXIT_CODE = 3  # what uvicorn.run uses


class Server(uvicorn.Server):
    """uvicorn that records SIGINT/SIGTERM but does not re-raise them after its shutdown.

    uvicorn re-raises the signal once it has stopped, which for SIGTERM ends the process
    at once; serve still has its worker and its Redis to stop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


async def keep_worker_running(settings: Settings) -> None:
    """The embedded worker; if it stops on an error (Redis gone a while), start it again."""
    from workers.settings import run_worker

    while True:
        try:
            await run_worker(settings, handle_signals=False)
        except Exception:  # noqa: BLE001 - logged; the API keeps serving meanwhile
            log.exception("embedded_worker_failed", restart_in_seconds=WORKER_RESTART_SECONDS)
        await asyncio.sleep(WORKER_RESTART_SECONDS)


def uvicorn_config(
    settings: Settings, *, ssl_certfile: Path | None, ssl_keyfile: Path | None
) -> uvicorn.Config:
    trusted = settings.trusted_proxies.strip()
    return uvicorn.Config(
        create_app(settings, should_migrate=False),  # the command migrated before serving
        host=settings.host,
        port=settings.port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        # X-Forwarded-* only from the configured proxies; none by default.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        log_config=None,
        access_log=False,
        server_header=False,
    )


async def run_service(
    settings: Settings, *, ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None
) -> None:
    server = Server(uvicorn_config(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile))
    worker = (
        asyncio.create_task(keep_worker_running(settings)) if settings.embedded_worker else None
    )
    try:
        await server.serve()
    finally:
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    if not server.started:  # uvicorn logged why (port in use, database or Redis down)
        raise SystemExit(STARTUP_FAILURE_EXIT_CODE)
