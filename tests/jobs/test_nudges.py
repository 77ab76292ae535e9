"""ERP -> CRM in seconds: an ERP commit nudges the workers, whose listener starts the
mappings that read the changed tables (the real app, a real worker on real Redis, the
sandbox as the CRM), on a Redis of these tests' own (``tests.jobs.private_redis``). The
worker runs without its cron tick, so only a nudge can start a resting entry here;
deadlines are generous and no test measures a duration."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col, select

from app.clock import as_utc, utc_now
from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.jobs import queue
from app.main import create_app
from app.models import erp
from app.models.integration import ConnectionSetup, JobQueueEntry, JobStatus
from app.settings import Settings
from tests.fixtures.services import free_port
from tests.jobs.conftest import entries
from tests.jobs.private_redis import (  # noqa: F401 - fixtures
    PrivateRedis,
    private_redis_server,
    private_settings,
)
from tests.workers.conftest import wait_for
from workers.nudge_sender import FixedPool
from workers.queue import create_queue_pool, nudge, nudge_channel
from workers.settings import create_worker

DEADLINE = 10.0  # seconds: a nudge takes about one debounce period plus a poll
REST = timedelta(hours=12)


async def _rest_all(sessionmaker: SessionMaker) -> datetime:
    """Every recurring entry resting after a run that started (and ended) just now."""
    now = utc_now()
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.recurring))
            .values(status=JobStatus.on_hold_with_inactivity_timeout,
                    earliest_start_at=now + REST, last_started_at=now, last_finished_at=now)
        )  # fmt: skip
    return now


async def _entry(sessionmaker: SessionMaker, mapping: str) -> JobQueueEntry:
    (entry,) = await entries(sessionmaker, mapping_name=mapping, recurring=True)
    return entry


async def _runs(sessionmaker: SessionMaker) -> dict[str, int]:
    return {e.mapping_name: e.run_count for e in await entries(sessionmaker, recurring=True)}


async def _wait_started(sessionmaker: SessionMaker, mapping: str, *, after: datetime) -> None:
    async def started() -> bool:
        entry = await _entry(sessionmaker, mapping)
        return entry.last_started_at is not None and as_utc(entry.last_started_at) > after

    await wait_for(started, timeout=DEADLINE, what=f"the {mapping} entry to start")


async def _wait_idle(sessionmaker: SessionMaker, mapping: str) -> None:
    async def idle() -> bool:
        return (await _entry(sessionmaker, mapping)).status != JobStatus.in_process

    await wait_for(idle, timeout=60, what=f"the {mapping} run to end")


async def _subscribers(pool: ArqRedis) -> int:
    ((_, count),) = await pool.pubsub_numsub(nudge_channel(pool))
    return int(count)


@asynccontextmanager
async def _worker(settings: Settings, pool: ArqRedis) -> AsyncIterator[Worker]:
    """A real worker (its start-up starts the nudge listener), without the cron tick."""
    before = await _subscribers(pool)
    worker = create_worker(settings, handle_signals=False, cron_jobs=[], poll_delay=0.05)
    running = asyncio.create_task(worker.async_run())

    async def listening() -> bool:
        assert not running.done(), running
        return await _subscribers(pool) > before

    async def jobs_done() -> bool:
        return all(task.done() for task in worker.tasks.values())

    try:
        await wait_for(listening, timeout=DEADLINE, what="the nudge listener to subscribe")
        yield worker
    finally:
        # A run's entry is recorded before arq ends its job; closing cancels what runs.
        await wait_for(jobs_done, timeout=60, what="the worker's jobs to end")
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()


@pytest.fixture
def nudged_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"sync_debounce_ms": 300})


async def test_an_item_written_over_rest_starts_its_mapping_within_seconds(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    rested = await _rest_all(sessionmaker)
    before = await _runs(sessionmaker)
    async with _worker(nudged_settings, arq_pool):
        response = await client.post("/api/v1/items", json={"no": "N1"}, headers=admin)
        assert response.status_code == 201, response.text
        await _wait_started(sessionmaker, "ITEM-PRODUCT", after=rested)
        await _wait_idle(sessionmaker, "ITEM-PRODUCT")
    after = await _runs(sessionmaker)
    assert after["ITEM-PRODUCT"] == before["ITEM-PRODUCT"] + 1
    # Only the mapping that reads items ran.
    assert {name for name in after if after[name] != before[name]} == {"ITEM-PRODUCT"}


async def test_a_write_by_the_sync_nudges_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    rested = await _rest_all(sessionmaker)
    before = await _runs(sessionmaker)
    async with arq_pool.pubsub() as pubsub, _worker(nudged_settings, arq_pool):
        await pubsub.subscribe(nudge_channel(arq_pool))
        token = current_actor.set(SYNC_ACTOR)
        try:  # the app's own sessions, as a sync job in the same process would write
            async with session_scope(app.state.sessionmaker) as session:
                session.add(erp.Item(no="S1", description="written by the sync"))
        finally:
            current_actor.reset(token)
        # A person's write after it: once its mapping started, the sync's write (earlier
        # on the same channel) has been heard too, had it been sent.
        response = await client.post("/api/v1/currencies", json={"code": "EUR"}, headers=admin)
        assert response.status_code == 201, response.text
        await _wait_started(sessionmaker, "CURRENCY", after=rested)
        await _wait_idle(sessionmaker, "CURRENCY")
        heard = await _messages(pubsub)
    assert {"erp_tables": ["currency"], "crm_entities": []} in heard
    assert not [m for m in heard if "item" in m.get("erp_tables", [])]
    after = await _runs(sessionmaker)
    assert {name for name in after if after[name] != before[name]} == {"CURRENCY"}


async def _messages(pubsub: Any) -> list[dict[str, Any]]:
    """What the channel carried so far (until it has been quiet for half a second)."""
    found = []
    quiet_until = time.monotonic() + 0.5
    while time.monotonic() < quiet_until:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            found.append(json.loads(message["data"]))
            quiet_until = time.monotonic() + 0.5
    return found


async def test_a_burst_of_writes_wakes_each_mapping_once(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    worker_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    # A window long enough that the 50 writes fall into it on a slow machine too.
    settings = worker_settings.model_copy(update={"sync_debounce_ms": 8000})
    rested = await _rest_all(sessionmaker)
    before = await _runs(sessionmaker)
    async with _worker(settings, arq_pool):
        for number in range(25):
            response = await client.post(
                "/api/v1/items", json={"no": f"B{number:02}"}, headers=admin
            )
            assert response.status_code == 201, response.text
            response = await client.patch(
                f"/api/v1/items/B{number:02}", json={"description": "changed"}, headers=admin
            )
            assert response.status_code == 200, response.text
        await _wait_started(sessionmaker, "ITEM-PRODUCT", after=rested)
        await _wait_idle(sessionmaker, "ITEM-PRODUCT")
        # Another window passes: nothing pending may start a second run.
        await asyncio.sleep(settings.sync_debounce_ms / 1000 + 1)
    after = await _runs(sessionmaker)
    assert after["ITEM-PRODUCT"] == before["ITEM-PRODUCT"] + 1
    assert {name for name in after if after[name] != before[name]} == {"ITEM-PRODUCT"}


async def test_two_workers_hear_a_nudge_and_start_one_run(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    rested = await _rest_all(sessionmaker)
    before = await _runs(sessionmaker)
    async with _worker(nudged_settings, arq_pool), _worker(nudged_settings, arq_pool):
        assert await _subscribers(arq_pool) == 2
        response = await client.post("/api/v1/items", json={"no": "W1"}, headers=admin)
        assert response.status_code == 201, response.text
        await _wait_started(sessionmaker, "ITEM-PRODUCT", after=rested)
        await _wait_idle(sessionmaker, "ITEM-PRODUCT")
        await asyncio.sleep(1.5)  # several windows: a late listener starts nothing more
    after = await _runs(sessionmaker)
    assert after["ITEM-PRODUCT"] == before["ITEM-PRODUCT"] + 1


async def test_a_change_during_a_run_gets_a_run_right_after_it(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    await _rest_all(sessionmaker)
    item_entry = await _entry(sessionmaker, "ITEM-PRODUCT")
    assert item_entry.id is not None
    async with _worker(nudged_settings, arq_pool):
        # A run of ITEM-PRODUCT is going (claimed as a worker would).
        async with session_scope(sessionmaker) as session:
            await session.exec(
                update(JobQueueEntry)
                .where(col(JobQueueEntry.id) == item_entry.id)
                .values(earliest_start_at=utc_now() - timedelta(seconds=1))
            )
        async with session_scope(sessionmaker) as session:
            run = await queue.claim(
                session, entry_id=item_entry.id, run_count=item_entry.run_count,
                worker_id="elsewhere:1", now=utc_now(), claim_seconds=120,
            )  # fmt: skip
        assert run is not None
        response = await client.post("/api/v1/items", json={"no": "D1"}, headers=admin)
        assert response.status_code == 201, response.text
        # Several windows pass while the run goes on: it is not started twice.
        await asyncio.sleep(1.5)
        assert (await _entry(sessionmaker, "ITEM-PRODUCT")).run_count == run.run_count
        finished_at = utc_now()
        async with session_scope(sessionmaker) as session:
            fresh = await session.get(JobQueueEntry, item_entry.id)
            assert fresh is not None
            result = queue.RunResult(changed=1)
            assert await queue.finish(session, run=run, entry=fresh, result=result, now=finished_at)
        await _wait_started(sessionmaker, "ITEM-PRODUCT", after=finished_at)
        await _wait_idle(sessionmaker, "ITEM-PRODUCT")
    assert (await _entry(sessionmaker, "ITEM-PRODUCT")).run_count == run.run_count + 1


async def test_a_malformed_message_is_ignored_and_a_crm_nudge_wakes_its_mapping(
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    rested = await _rest_all(sessionmaker)
    before = await _runs(sessionmaker)
    async with _worker(nudged_settings, arq_pool) as worker:
        for junk in ("not json", "[1, 2]", '{"erp_tables": "item"}', '{"crm_entities": [7]}'):
            await arq_pool.publish(nudge_channel(arq_pool), junk)
        # The listener lives on: a CRM entity nudge (as the webhook receiver sends) wakes
        # the mapping that reads that CRM table, and only that one.
        await nudge(FixedPool(arq_pool), crm_entities=["systemuser"])
        await _wait_started(sessionmaker, "SALESPEOPLE", after=rested)
        await _wait_idle(sessionmaker, "SALESPEOPLE")
        assert not worker.ctx["nudge_listener"].done()
    after = await _runs(sessionmaker)
    assert {name for name in after if after[name] != before[name]} == {"SALESPEOPLE"}


async def test_a_disabled_connection_wakes_nothing(
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
) -> None:
    await _rest_all(sessionmaker)
    async with session_scope(sessionmaker) as session:
        await session.exec(update(ConnectionSetup).values(is_enabled=False))
    before = await _states(sessionmaker)
    async with _worker(nudged_settings, arq_pool):
        await nudge(FixedPool(arq_pool), erp_tables=["item", "currency"])
        await asyncio.sleep(1.5)  # several windows
    assert await _states(sessionmaker) == before


async def _states(sessionmaker: SessionMaker) -> list[tuple[Any, ...]]:
    return [
        (e.id, e.status, e.earliest_start_at, e.run_count)
        for e in await entries(sessionmaker, recurring=True)
    ]


async def test_a_publisher_that_cannot_reach_redis_does_not_fail_the_write(
    settings: Settings, sessionmaker: SessionMaker, admin: dict[str, str]
) -> None:
    closed = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    application = create_app(closed, should_migrate=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            response = await api.post("/api/v1/items", json={"no": "R1"}, headers=admin)
            assert response.status_code == 201, response.text
            response = await api.patch(
                "/api/v1/items/R1", json={"description": "still fine"}, headers=admin
            )
            assert response.status_code == 200, response.text
    async with sessionmaker() as session:
        item = (await session.exec(select(erp.Item).where(erp.Item.no == "R1"))).one()
    assert item.description == "still fine"


async def test_the_listener_subscribes_again_after_redis_restarts(
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
    nudged_settings: Settings,
    arq_pool: ArqRedis,
    private_redis: PrivateRedis,
) -> None:
    rested = await _rest_all(sessionmaker)
    async with _worker(nudged_settings, arq_pool):
        private_redis.stop()
        private_redis.start()  # empty, on the same port: every subscription is gone
        fresh = await create_queue_pool(nudged_settings)
        try:

            async def listening() -> bool:
                return await _subscribers(fresh) > 0

            await wait_for(listening, timeout=DEADLINE, what="the listener to subscribe again")
            await nudge(FixedPool(fresh), erp_tables=["item"])

            async def woken() -> bool:
                entry = await _entry(sessionmaker, "ITEM-PRODUCT")
                start, started = entry.earliest_start_at, entry.last_started_at
                return (start is not None and as_utc(start) <= utc_now()) or (
                    started is not None and as_utc(started) > rested
                )

            # Woken (arq's own loop may have ended with the connection; the worker's
            # restart is run_worker's, tested in tests/workers) or already started.
            await wait_for(woken, timeout=DEADLINE, what="the ITEM-PRODUCT entry to wake")
        finally:
            await fresh.aclose()
