"""The worker's ear: nudges on Redis start the mappings that read what changed.

Started by the worker's start-up (``workers.settings``), one per worker process. It
subscribes to the nudge channel of its Redis db (``workers.queue.nudge_channel``); the
first message opens a window of ``settings.sync_debounce_ms`` in which further messages
are gathered, so a burst of
writes becomes one wake per mapping. Then ``app.jobs.wake_now.wake`` moves the entries
that read those tables to start now, and each one that may start is enqueued at once
(the same trigger as the tick's: one arq job id per entry and run). Entries that were
running stay pending and are asked again after each further window until they could
start, so a change made during a run gets the run right after it.

Every worker hears every message. The conditional UPDATE, arq's job id and "a run
started after the nudge was heard" keep that to one run.

Losing Redis ends the subscription; it is made again after a short pause (the worker
itself also restarts on Redis loss: ``workers.settings.run_worker``). What a lost
message would have woken, the tick's database wake-up and the periodic run still carry.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.jobs import wake_now
from app.logs import get_logger
from workers.queue import enqueue_entry, nudge_channel

log = get_logger("salesbridge.nudge_listener")

RESUBSCRIBE_SECONDS = 1.0
# With no debounce (0 ms) entries that are running are still asked again, not in a loop.
MIN_RETRY_SECONDS = 0.25
# A wake that fails (database away) is tried again after this, while the messages wait.
FAILED_WAKE_RETRY_SECONDS = 2.0
MAX_NAMES = 1000  # per message: more is not a nudge of ours
MAX_NAME_LENGTH = 100


def parse(data: Any) -> tuple[list[str], list[str]] | None:
    """(erp_tables, crm_entities) of a message, or None when it is not a nudge."""
    try:
        body = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    found: list[list[str]] = []
    for key in ("erp_tables", "crm_entities"):
        names = body.get(key, [])
        if not isinstance(names, list) or len(names) > MAX_NAMES:
            return None
        if not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME_LENGTH for n in names):
            return None
        found.append(names)
    return found[0], found[1]


class NudgeListener:
    def __init__(
        self, redis: ArqRedis, sessionmaker: SessionMaker, *, debounce_seconds: float
    ) -> None:
        self.redis = redis
        self.sessionmaker = sessionmaker
        self.debounce_seconds = debounce_seconds
        self.heard = wake_now.Heard()
        self._wake_at: float | None = None  # monotonic; None while nothing is pending

    async def run(self) -> None:
        """Listen until cancelled; re-subscribe after a pause when Redis drops."""
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    channel = nudge_channel(self.redis)
                    await pubsub.subscribe(channel)
                    log.info("nudge_listener_subscribed", channel=channel)
                    await self._serve(pubsub)
            except (RedisError, OSError) as exc:
                log.warning(
                    "nudge_listener_lost",
                    reason=type(exc).__name__,
                    retry_in_seconds=RESUBSCRIBE_SECONDS,
                )
            except Exception:  # noqa: BLE001 - a bug here must not end near-real-time sync
                log.exception("nudge_listener_failed", retry_in_seconds=RESUBSCRIBE_SECONDS)
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _serve(self, pubsub: PubSub) -> None:
        while True:
            timeout = None
            if self._wake_at is not None:
                timeout = max(0.0, self._wake_at - time.monotonic())
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            if message is not None and message.get("type") == "message":
                self.hear(message.get("data"))
            if self._wake_at is not None and time.monotonic() >= self._wake_at:
                await self.wake()

    def hear(self, data: Any) -> None:
        names = parse(data)
        if names is None:
            size = len(data) if isinstance(data, bytes | str) else 0
            log.warning("nudge_ignored", reason="malformed", size=size)
            return
        erp_tables, crm_entities = names
        if not (erp_tables or crm_entities):
            return
        self.heard.add(erp_tables=erp_tables, crm_entities=crm_entities, at=utc_now())
        if self._wake_at is None:
            self._wake_at = time.monotonic() + self.debounce_seconds

    async def wake(self) -> None:
        """Wake and enqueue what was heard; keep what could not start yet."""
        heard, self.heard = self.heard, wake_now.Heard()
        try:
            async with session_scope(self.sessionmaker) as session:
                woken = await wake_now.wake(session, heard, now=utc_now())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("nudge_wake_failed", reason=type(exc).__name__)
            self._merge(heard)
            self._wake_at = time.monotonic() + FAILED_WAKE_RETRY_SECONDS
            return
        for due in woken.due:
            try:
                await enqueue_entry(self.redis, entry_id=due.entry_id, run_count=due.run_count)
            except (RedisError, OSError) as exc:
                # The entry is due in the database: the next tick enqueues it.
                log.warning("entry_not_enqueued", entry_id=due.entry_id, reason=type(exc).__name__)
        self._merge(woken.pending)
        self._wake_at = None
        if self.heard:
            retry = max(self.debounce_seconds, MIN_RETRY_SECONDS)
            self._wake_at = time.monotonic() + retry

    def _merge(self, other: wake_now.Heard) -> None:
        for name, at in other.erp_tables.items():
            self.heard.erp_tables[name] = max(at, self.heard.erp_tables.get(name, at))
        for name, at in other.crm_entities.items():
            self.heard.crm_entities[name] = max(at, self.heard.crm_entities.get(name, at))
        for entry_id, at in other.entries.items():
            self.heard.add_entry(entry_id, at)


def start(ctx: dict[str, Any]) -> asyncio.Task[None]:
    """The listener of a worker (its arq ctx: ``redis``, ``sessionmaker``, ``settings``)."""
    listener = NudgeListener(
        ctx["redis"],
        ctx["sessionmaker"],
        debounce_seconds=ctx["settings"].sync_debounce_ms / 1000,
    )
    return asyncio.create_task(listener.run(), name="nudge-listener")
