"""All Redis/arq naming and connection code (so the trigger could be swapped later).

Redis only carries triggers: the database says what is due and what is done. A trigger
is "run job queue entry N for run number R", with a job id made of both, so arq keeps at
most one trigger per run queued or running, whoever enqueues it (tick, "run now").
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Protocol

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.logs import get_logger
from app.models.integration import JobQueueEntry
from app.settings import Settings

log = get_logger("salesbridge.queue")

QUEUE_NAME = "salesbridge:queue"
KEY_PREFIX = "salesbridge:"
RUN_ENTRY_TASK = "run_entry"
# Pub/sub channel of "these tables changed": workers wake the mappings that read them.
NUDGE_CHANNEL = "salesbridge:nudge"


def redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url:
        msg = "No Redis URL: set SALESBRIDGE_REDIS_URL or run `salesbridge serve` (embedded Redis)."
        raise RuntimeError(msg)
    return RedisSettings.from_dsn(settings.redis_url)


async def create_queue_pool(settings: Settings) -> ArqRedis:
    return await create_pool(redis_settings(settings), default_queue_name=QUEUE_NAME, retry=0)


def entry_job_id(entry_id: int, run_count: int) -> str:
    return f"jqe:{entry_id}:{run_count}"


async def enqueue_entry(pool: ArqRedis, *, entry_id: int, run_count: int) -> bool:
    """Trigger one run of an entry; False when that run's trigger is already queued."""
    job = await pool.enqueue_job(
        RUN_ENTRY_TASK,
        entry_id,
        run_count,
        _job_id=entry_job_id(entry_id, run_count),
        _queue_name=QUEUE_NAME,
    )
    return job is not None


class QueuePool(Protocol):
    """Where the app gets its Redis pool (``app.main.QueueConnection``: opened on first use)."""

    async def pool(self) -> ArqRedis: ...


async def trigger_entries(
    queue: QueuePool | None, entries: Sequence[JobQueueEntry], *, is_run_now: bool = False
) -> None:
    """After the commit: trigger the entries that wait for nothing now ("run now": all).

    Entries that run after others (``parameters.after``) and any trigger Redis refused are
    started by the next scheduler tick, which reads the database.
    """
    for entry in entries:
        if queue is None or entry.id is None:
            continue
        if entry.parameters.get("after") and not is_run_now:
            continue
        try:
            await enqueue_entry(await queue.pool(), entry_id=entry.id, run_count=entry.run_count)
        except (RedisError, OSError) as exc:
            log.warning("entry_not_enqueued", entry_id=entry.id, reason=type(exc).__name__)


def nudge_channel(redis: Redis) -> str:
    """The nudge channel of the Redis db the queue uses. Pub/sub channels are shared by
    every db of a Redis server, so two installations on one server (each on its own db)
    would otherwise wake each other's mappings."""
    return f"{NUDGE_CHANNEL}:{redis.connection_pool.connection_kwargs.get('db', 0)}"


async def nudge(
    queue: QueuePool | None,
    *,
    erp_tables: Collection[str] = (),
    crm_entities: Collection[str] = (),
) -> None:
    """After the commit: tell the workers which ERP tables and CRM entities changed, so
    the mappings that read them run in seconds rather than after the wake-up delay.

    Best effort by design: a message no worker hears (none subscribed, Redis away) only
    delays the change to the database-based wake-up and the periodic run, so a failure
    here is logged and never reaches the caller.
    """
    if queue is None or not (erp_tables or crm_entities):
        return
    message = json.dumps(
        {"erp_tables": sorted(set(erp_tables)), "crm_entities": sorted(set(crm_entities))}
    )
    try:
        pool = await queue.pool()
        await pool.publish(nudge_channel(pool), message)
    except (RedisError, OSError) as exc:
        log.warning("nudge_not_sent", reason=type(exc).__name__)
