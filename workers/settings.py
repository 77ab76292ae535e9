"""The arq worker: functions, the scheduler tick, start-up and shut-down.

``salesbridge worker`` and ``salesbridge serve`` build it with ``create_worker(settings)``;
``arq workers.settings.WorkerSettings`` builds the same worker from the environment.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from arq import cron, func
from arq.worker import Worker
from redis.exceptions import RedisError

from app.db import create_engine, create_sessionmaker
from app.file_modes import make_private_sqlite
from app.logs import get_logger
from app.settings import Settings, get_settings
from workers import heartbeat, nudge_listener, tasks
from workers.nudge_sender import FixedPool, send_nudges
from workers.queue import QUEUE_NAME, RUN_ENTRY_TASK, redis_settings

log = get_logger("salesbridge.worker")

TICK_TIMEOUT_SECONDS = 20
HEALTH_CHECK_SECONDS = 60
REDIS_RETRY_SECONDS = 2


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    make_private_sqlite(settings.database_url)  # 0600 before SQLite creates it (umask)
    engine = create_engine(settings.database_url)
    ctx["engine"] = engine
    ctx["sessionmaker"] = create_sessionmaker(engine)
    # ERP rows written here by anyone but the sync nudge the workers, as the API's do.
    ctx["nudges"] = send_nudges(ctx["sessionmaker"], FixedPool(ctx["redis"]))
    # Stored as claimed_by: says which process holds a claim (and which to look at).
    ctx["worker_id"] = f"{socket.gethostname()[:80]}:{os.getpid()}"
    ctx["heartbeat"] = asyncio.create_task(heartbeat.beat(ctx["redis"], ctx["worker_id"]))
    if not ctx.get("is_burst"):
        ctx["nudge_listener"] = nudge_listener.start(ctx)
    log.info("worker_started", worker_id=ctx["worker_id"], queue=QUEUE_NAME)


async def shutdown(ctx: dict[str, Any]) -> None:
    beating = ctx.pop("heartbeat", None)
    if beating is not None:
        beating.cancel()
    listening = ctx.pop("nudge_listener", None)
    if listening is not None:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    nudges = ctx.pop("nudges", None)
    if nudges is not None:
        await nudges.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()


def tick_seconds(settings: Settings) -> set[int]:
    return set(range(0, 60, settings.scheduler_tick_seconds))


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of arq's ``Worker``; every task has its own short timeout."""
    run_entry = func(
        tasks.run_entry,
        name=RUN_ENTRY_TASK,
        timeout=settings.job_timeout_seconds + tasks.ARQ_TIMEOUT_MARGIN_SECONDS,
        keep_result=0,  # frees the job id at once: the database keeps the outcome
        max_tries=3,
    )
    tick = cron(
        tasks.tick,
        name="tick",
        second=tick_seconds(settings),
        run_at_startup=True,
        timeout=TICK_TIMEOUT_SECONDS,
        unique=True,
    )
    return {
        "functions": [run_entry],
        "cron_jobs": [tick],
        "queue_name": QUEUE_NAME,
        "redis_settings": redis_settings(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }


def create_worker(settings: Settings, **overrides: Any) -> Worker:
    """Call inside the running event loop: arq's Worker takes the loop when it is built.

    A burst worker (``burst=True``: run what is queued, then stop) does not listen for
    nudges: it would start runs nobody asked it for."""
    options = {**worker_options(settings), **overrides}
    if options.get("burst"):
        options["ctx"] = {**options["ctx"], "is_burst": True}
    return Worker(**options)


async def _close(worker: Worker) -> None:
    """Close a worker; with Redis gone arq's close fails before its shutdown hook, which
    must still run: an undisposed engine keeps the process from exiting."""
    try:
        await worker.close()
    except (RedisError, OSError):
        await shutdown(worker.ctx)


async def run_worker(settings: Settings, **overrides: Any) -> None:
    """Run a worker until a signal stops it (or this coroutine is cancelled).

    Losing Redis (a restart, a failover) ends arq's loop with a connection error; the
    worker is then closed and started again after a pause, so Redis can restart under
    running workers. What Redis lost, the next tick enqueues again from the database.
    """
    while True:
        worker = create_worker(settings, **overrides)
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as exc:
            log.warning("redis_lost", error=str(exc), retry_in_seconds=REDIS_RETRY_SECONDS)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return
        finally:
            await _close(worker)
        await asyncio.sleep(REDIS_RETRY_SECONDS)


def __getattr__(name: str) -> Any:
    # Built on first use, so importing this module reads no settings and creates no files.
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_options(get_settings()))
    raise AttributeError(name)
