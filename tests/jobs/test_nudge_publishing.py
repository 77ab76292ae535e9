"""Every ERP commit of the real app nudges the workers once, naming the ERP tables it
changed: REST writes, bulk upserts, ledger postings and statements that bypass the unit
of work alike; the sync's own writes, rollbacks and other tables nudge nothing.

Read on a real Redis subscription, on a Redis of these tests' own
(``tests.jobs.private_redis``)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from redis.asyncio.client import PubSub
from sqlalchemy import delete, insert, update
from sqlmodel import col

from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.models import erp
from app.models.integration import JobKind, JobQueueEntry
from tests.jobs.private_redis import private_redis_server, private_settings  # noqa: F401 - fixtures
from workers.queue import nudge_channel

Nudge = list[str]


@pytest.fixture
async def channel(arq_pool: ArqRedis) -> AsyncIterator[PubSub]:
    async with arq_pool.pubsub() as pubsub:
        await pubsub.subscribe(nudge_channel(arq_pool))
        yield pubsub


async def _next_erp_nudge(pubsub: PubSub, *, timeout: float = 10) -> Nudge:
    """The ERP tables of the next nudge that names any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is None:
            continue
        tables: Nudge = json.loads(message["data"])["erp_tables"]
        if tables:
            return tables
    pytest.fail(f"no ERP nudge within {timeout} s")


async def _quiet(pubsub: PubSub) -> list[Nudge]:
    """ERP nudges still arriving (until half a second passes without one)."""
    found = []
    quiet_until = time.monotonic() + 0.5
    while time.monotonic() < quiet_until:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None and (tables := json.loads(message["data"])["erp_tables"]):
            found.append(tables)
            quiet_until = time.monotonic() + 0.5
    return found


async def test_rest_writes_bulk_upserts_and_postings_nudge_their_tables(
    client: httpx.AsyncClient, admin: dict[str, str], channel: PubSub
) -> None:
    async def call(method: str, url: str, body: Any = None) -> None:
        response = await client.request(method, url, json=body, headers=admin)
        assert response.status_code < 300, response.text

    await call("POST", "/api/v1/items", {"no": "1000"})
    assert await _next_erp_nudge(channel) == ["item"]
    await call("PATCH", "/api/v1/items/1000", {"description": "Bicycle"})
    assert await _next_erp_nudge(channel) == ["item"]
    await call("POST", "/api/v1/currencies/bulk-upsert", [{"code": "EUR"}, {"code": "USD"}])
    assert await _next_erp_nudge(channel) == ["currency"]
    entry = {"item_no": "1000", "posting_date": "2024-03-01", "entry_type": "purchase",
             "quantity": "10"}  # fmt: skip
    await call("POST", "/api/v1/item-ledger-entries", entry)
    assert await _next_erp_nudge(channel) == ["item_ledger_entry"]
    await call("DELETE", "/api/v1/currencies/USD")
    assert await _next_erp_nudge(channel) == ["currency"]
    # A read commits too, and changes nothing.
    await call("GET", "/api/v1/items")
    assert await _quiet(channel) == []


async def test_statements_outside_the_unit_of_work_nudge_once_per_commit(
    app: FastAPI, channel: PubSub
) -> None:
    sessionmaker: SessionMaker = app.state.sessionmaker
    async with session_scope(sessionmaker) as session:
        await session.exec(insert(erp.Currency).values(code="EUR", description="Euro"))
        await session.exec(insert(erp.UnitOfMeasure).values(code="PCS", description="Pieces"))
        await session.exec(
            update(erp.Currency).where(col(erp.Currency.code) == "EUR").values(description="€")
        )
    assert await _next_erp_nudge(channel) == ["currency", "unit_of_measure"]
    async with session_scope(sessionmaker) as session:
        await session.exec(delete(erp.UnitOfMeasure))
    assert await _next_erp_nudge(channel) == ["unit_of_measure"]
    assert await _quiet(channel) == []


async def test_the_sync_rollbacks_and_other_tables_nudge_nothing(
    app: FastAPI, channel: PubSub
) -> None:
    sessionmaker: SessionMaker = app.state.sessionmaker
    token = current_actor.set(SYNC_ACTOR)
    try:
        async with session_scope(sessionmaker) as session:
            session.add(erp.Item(no="S1", description="written by the sync"))
            await session.exec(insert(erp.Currency).values(code="EUR"))
    finally:
        current_actor.reset(token)
    async with sessionmaker() as session:
        session.add(erp.Customer(no="C1", name="rolled back"))
        await session.flush()
        await session.rollback()
        # The same session's next transaction publishes only what it wrote itself.
        session.add(JobQueueEntry(kind=JobKind.purge_sync_log))
        await session.commit()
        session.add(erp.Location(code="MAIN", name="Main"))
        await session.commit()
    assert await _next_erp_nudge(channel) == ["location"]
    assert await _quiet(channel) == []
