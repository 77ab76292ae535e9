"""The publisher behind ``app.committed_tables``: after an ERP commit, nudge the workers.

``send_nudges(sessionmaker, queue)`` attaches it to a process's sessionmaker (the API app
in its lifespan, the worker at start-up). A commit schedules the PUBLISH on the event
loop and returns at once, so a write never waits for Redis; the PUBLISH has a short
deadline of its own, and ``workers.queue.nudge`` logs and swallows Redis errors. A nudge
that is lost only delays the change to the database wake-up and the periodic run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from arq.connections import ArqRedis

from app import committed_tables
from app.db import SessionMaker
from app.logs import get_logger
from app.mappings.field_catalog import ERP_MODELS
from workers.queue import QueuePool, nudge

log = get_logger("salesbridge.nudges")

# A PUBLISH answers in well under a millisecond; this only bounds a Redis that hangs.
SEND_TIMEOUT_SECONDS = 2.0
CLOSE_TIMEOUT_SECONDS = 3.0


class FixedPool:
    """A ``QueuePool`` over a pool that is already open (the worker's arq Redis)."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def pool(self) -> ArqRedis:
        return self._redis


class NudgeSender:
    """Called inside a commit with the ERP tables it changed; publishes in the background."""

    def __init__(self, queue: QueuePool | None) -> None:
        self.queue = queue
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self, tables: frozenset[str]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a commit outside an event loop: nobody to send it
            return
        task = loop.create_task(self._send(tables))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, tables: Collection[str]) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await nudge(self.queue, erp_tables=tables)
        except TimeoutError:
            log.warning("nudge_not_sent", reason="timeout", tables=sorted(tables))
        except Exception:  # noqa: BLE001 - a background task: nobody else would see it
            log.exception("nudge_not_sent", tables=sorted(tables))

    async def aclose(self) -> None:
        """Let the nudges in flight go out (briefly) before the Redis client closes."""
        if self._sending:
            _, late = await asyncio.wait(set(self._sending), timeout=CLOSE_TIMEOUT_SECONDS)
            for task in late:
                task.cancel()


def send_nudges(sessionmaker: SessionMaker, queue: QueuePool | None) -> NudgeSender:
    """After each commit of a session from ``sessionmaker`` that changed ERP tables (the
    names mappings use), nudge the workers through ``queue``."""
    sender = NudgeSender(queue)
    committed_tables.attach(sessionmaker, tables=ERP_MODELS, publish=sender)
    return sender
