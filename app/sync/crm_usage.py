"""The CRM API budget: what each CRM connection used of Dataverse's service protection
limits, counted across every process (serve, each worker) in Redis.

Every client ``build_crm_client`` makes reports its requests here (``app.dataverse.usage``).
Counts are kept per connection (CRM URL + client id: Dataverse counts per user) in
10-second buckets: requests, 429 answers, milliseconds of round trips (an upper bound of
the server's execution time) and milliseconds held back by Retry-After or backoff. A
process adds to its own buffer and writes it with one pipelined ``HINCRBY`` per bucket at
most once a second and when the client closes; keys expire after an hour by themselves.

Redis rather than the database: the counters change on every CRM request from several
processes at once, are additive (atomic increments, no read-modify-write), and are only
worth anything for an hour. Losing them blanks the panel for a while; no work depends on
them, as for everything Redis carries.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.dataverse.usage import (
    EXECUTION_SECONDS_PER_WINDOW,
    REQUESTS_PER_WINDOW,
    WINDOW_SECONDS,
    AttemptUsage,
)
from app.logs import get_logger

log = get_logger("salesbridge.crm_usage")

KEY_PREFIX = "salesbridge:crm-usage:"
CONNECTIONS_KEY = KEY_PREFIX + "connections"
BUCKET_SECONDS = 10
KEEP_SECONDS = 3600
FLUSH_EVERY_SECONDS = 1.0
FIELDS = ("requests", "throttled", "execution_ms", "wait_ms")


def connection_label(server_address: str, client_id: str) -> str:
    return f"{server_address.rstrip('/')} (client {client_id})"


def _connection_key(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:16]


def _bucket(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


def _bucket_key(connection: str, bucket: int) -> str:
    return f"{KEY_PREFIX}{connection}:{bucket}"


class UsageStore:
    """One process's buffer of counts for one Redis, written out in batches."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: defaultdict[tuple[str, int], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(FIELDS, 0)
        )
        self._labels: dict[str, str] = {}
        self._flushed_at = time.monotonic()
        self._lock = asyncio.Lock()

    def add(self, label: str, **counts: int) -> None:
        connection = _connection_key(label)
        self._labels[connection] = label
        bucket = self._pending[(connection, _bucket(time.time()))]
        for name, value in counts.items():
            bucket[name] += value

    async def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= FLUSH_EVERY_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: dict.fromkeys(FIELDS, 0))
            labels, self._labels = self._labels, {}
            self._flushed_at = time.monotonic()
            if not pending:
                return
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for (connection, bucket), counts in pending.items():
                        key = _bucket_key(connection, bucket)
                        for name, value in counts.items():
                            if value:
                                pipe.hincrby(key, name, value)
                        pipe.expire(key, KEEP_SECONDS)
                    pipe.hset(CONNECTIONS_KEY, mapping=labels)
                    pipe.expire(CONNECTIONS_KEY, KEEP_SECONDS)
                    await pipe.execute()
            except (RedisError, OSError) as exc:  # a budget figure never fails a sync
                log.warning("crm_usage_not_recorded", reason=type(exc).__name__)


class ConnectionObserver:
    """The ``UsageObserver`` of one client: counts go to the process's store."""

    def __init__(self, store: UsageStore, label: str) -> None:
        self.store = store
        self.label = label

    async def attempt(self, usage: AttemptUsage) -> None:
        self.store.add(
            self.label,
            requests=1,
            throttled=int(usage.is_throttled),
            execution_ms=round(usage.seconds * 1000),
        )
        await self.store.flush_if_due()

    async def waited(self, seconds: float) -> None:
        self.store.add(self.label, wait_ms=round(seconds * 1000))
        await self.store.flush_if_due()

    async def flush(self) -> None:
        await self.store.flush()


# One store per Redis URL and event loop: a redis.asyncio client belongs to its loop.
_stores: dict[tuple[str, int], UsageStore] = {}


def observer_for(redis_url: str, *, label: str) -> ConnectionObserver | None:
    """The observer for a client of this connection; None without a Redis (nothing kept)."""
    if not redis_url:
        return None
    loop = asyncio.get_running_loop()
    key = (redis_url, id(loop))
    store = _stores.get(key)
    if store is None:
        store = UsageStore(Redis.from_url(redis_url))
        _stores[key] = store
    return ConnectionObserver(store, label)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageWindow:
    started_at: datetime
    requests: int
    throttled: int
    execution_seconds: float
    wait_seconds: float

    @property
    def requests_share(self) -> float:
        return self.requests / REQUESTS_PER_WINDOW

    @property
    def execution_share(self) -> float:
        return self.execution_seconds / EXECUTION_SECONDS_PER_WINDOW


@dataclass(frozen=True)
class ConnectionUsage:
    label: str
    last_window: UsageWindow  # the 5 minutes up to now (Dataverse's sliding window)
    windows: list[UsageWindow]  # the last hour in 5-minute windows, newest first


def _window(started: float, buckets: list[dict[str, int]]) -> UsageWindow:
    def total(name: str) -> int:
        return sum(bucket.get(name, 0) for bucket in buckets)

    return UsageWindow(
        started_at=datetime.fromtimestamp(started, UTC),
        requests=total("requests"),
        throttled=total("throttled"),
        execution_seconds=total("execution_ms") / 1000,
        wait_seconds=total("wait_ms") / 1000,
    )


async def _buckets(redis: Redis, connection: str, starts: list[int]) -> dict[int, dict[str, int]]:
    async with redis.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(_bucket_key(connection, start))
        answers = await pipe.execute()
    return {
        start: {k.decode(): int(v) for k, v in answer.items()}
        for start, answer in zip(starts, answers, strict=True)
        if answer
    }


async def read_usage(redis: Redis, *, now: float | None = None) -> list[ConnectionUsage]:
    """Every connection seen in the last hour, by label."""
    at = time.time() if now is None else now
    stored: dict[bytes, bytes] = await redis.hgetall(CONNECTIONS_KEY)  # type: ignore[misc]
    labels = {k.decode(): v.decode() for k, v in stored.items()}
    newest = _bucket(at)
    starts = list(range(newest - KEEP_SECONDS + BUCKET_SECONDS, newest + 1, BUCKET_SECONDS))
    result = []
    for connection, label in sorted(labels.items(), key=lambda item: item[1]):
        found = await _buckets(redis, connection, starts)
        recent = [b for s, b in found.items() if s > at - WINDOW_SECONDS - BUCKET_SECONDS]
        last = _window(at - WINDOW_SECONDS, recent)
        aligned = int(at // WINDOW_SECONDS) * WINDOW_SECONDS
        windows = [
            _window(start, [b for s, b in found.items() if start <= s < start + WINDOW_SECONDS])
            for start in range(aligned, aligned - KEEP_SECONDS, -WINDOW_SECONDS)
        ]
        result.append(ConnectionUsage(label=label, last_window=last, windows=windows))
    return result
