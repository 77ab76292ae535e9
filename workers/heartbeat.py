"""Workers say they are alive: a key per worker process in Redis, renewed every few seconds.

The console's overview lists the workers seen (a key that has not expired). A worker that
died stops renewing and drops off within ``EXPIRE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

KEY_PREFIX = "salesbridge:worker-seen:"
BEAT_SECONDS = 10
EXPIRE_SECONDS = 30


async def beat(redis: Redis, worker_id: str) -> None:
    """Renew this worker's key until cancelled (a lost Redis only skips beats)."""
    while True:
        try:
            await redis.set(KEY_PREFIX + worker_id, str(time.time()), ex=EXPIRE_SECONDS)
        except (RedisError, OSError):
            pass  # the worker's own loop notices a lost Redis; the key simply lapses
        await asyncio.sleep(BEAT_SECONDS)


@dataclass(frozen=True)
class SeenWorker:
    worker_id: str
    seconds_ago: float


async def seen_workers(redis: Redis) -> list[SeenWorker]:
    keys = sorted([key async for key in redis.scan_iter(match=KEY_PREFIX + "*", count=100)])
    if not keys:
        return []
    values = await redis.mget(keys)
    now = time.time()
    return [
        SeenWorker(key.decode().removeprefix(KEY_PREFIX), max(0.0, now - float(value)))
        for key, value in zip(keys, values, strict=True)
        if value is not None
    ]
