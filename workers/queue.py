"""All Redis/arq naming and connection code (so the trigger could be swapped later).

Redis only carries triggers: the database says what is due and what is done. A trigger
is "run job queue entry N for run number R", with a job id made of both, so arq keeps at
most one trigger per run queued or running, whoever enqueues it (tick, "run now").
"""

from __future__ import annotations

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.settings import Settings

QUEUE_NAME = "salesbridge:queue"
KEY_PREFIX = "salesbridge:"
RUN_ENTRY_TASK = "run_entry"


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
