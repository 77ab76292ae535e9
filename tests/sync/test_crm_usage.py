"""The CRM API budget adds up across processes: each process has its own store (buffer and
Redis connection); Redis sums them per connection and window."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app.dataverse.usage import AttemptUsage
from app.sync import crm_usage


async def test_two_processes_counts_add_up_per_connection(redis_url: str) -> None:
    label = crm_usage.connection_label("https://contoso.crm4.dynamics.com/", "app-1")
    other = crm_usage.connection_label("https://fabrikam.crm.dynamics.com", "app-2")
    reader = Redis.from_url(redis_url)
    await reader.delete(crm_usage.CONNECTIONS_KEY)
    api, worker = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        in_api = crm_usage.ConnectionObserver(crm_usage.UsageStore(api), label)
        in_worker = crm_usage.ConnectionObserver(crm_usage.UsageStore(worker), label)
        elsewhere = crm_usage.ConnectionObserver(crm_usage.UsageStore(worker), other)
        for _ in range(3):
            await in_api.attempt(AttemptUsage(seconds=0.25, is_throttled=False))
        await in_worker.attempt(AttemptUsage(seconds=0.5, is_throttled=True))
        await in_worker.waited(2.0)
        await elsewhere.attempt(AttemptUsage(seconds=0.1, is_throttled=False))
        for observer in (in_api, in_worker, elsewhere):
            await observer.flush()
        usage = {u.label: u for u in await crm_usage.read_usage(reader)}
    finally:
        for client in (api, worker, reader):
            await client.aclose()
    window = usage[label].last_window
    assert (window.requests, window.throttled) == (4, 1)
    assert window.execution_seconds == 1.25
    assert window.wait_seconds == 2.0
    assert round(window.requests_share, 6) == round(4 / 6000, 6)
    assert usage[other].last_window.requests == 1
    hour = usage[label].windows
    assert len(hour) == 12 and sum(w.requests for w in hour) == 4
    assert label == "https://contoso.crm4.dynamics.com (client app-1)"


async def test_old_buckets_leave_the_last_five_minutes(redis_url: str) -> None:
    label = crm_usage.connection_label("https://old.crm.dynamics.com", "app-3")
    redis = Redis.from_url(redis_url)
    try:
        store = crm_usage.UsageStore(redis)
        observer = crm_usage.ConnectionObserver(store, label)
        await observer.attempt(AttemptUsage(seconds=1.0, is_throttled=False))
        await observer.flush()
        later = time.time() + 400  # the request is now 6 to 7 minutes old
        usage = {u.label: u for u in await crm_usage.read_usage(redis, now=later)}
    finally:
        await redis.aclose()
    assert usage[label].last_window.requests == 0
    assert sum(w.requests for w in usage[label].windows) == 1
