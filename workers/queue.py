"""All Redis/arq naming and connection code (so the trigger could be swapped later).

Redis only carries triggers: the database says what is due and what is done.
"""

from __future__ import annotations

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.settings import Settings

QUEUE_NAME = "salesbridge:queue"
KEY_PREFIX = "salesbridge:"


def redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url:
        msg = "No Redis URL: set SALESBRIDGE_REDIS_URL or run `salesbridge serve` (embedded Redis)."
        raise RuntimeError(msg)
    return RedisSettings.from_dsn(settings.redis_url)


async def create_queue_pool(settings: Settings) -> ArqRedis:
    return await create_pool(redis_settings(settings), default_queue_name=QUEUE_NAME, retry=0)
